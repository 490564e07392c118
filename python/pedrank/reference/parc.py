"""Reference PARC (Bolya et al., NeurIPS 2021): explicit n x n dissimilarity matrices and
scipy's Spearman correlation."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from ..parc import authors_label_dissimilarity, check_pair_classes, parc_inputs


def parc(features, labels, *, n_components=32, max_samples=15000, random_state=0, exact=False):
    """Reference PARC. See :func:`pedrank.parc`."""
    standardised, encoded, _ = parc_inputs(
        features,
        labels,
        n_components=n_components,
        max_samples=max_samples,
        random_state=random_state,
        exact=exact,
        implementation="reference",
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.corrcoef(standardised)
    correlation[~np.isfinite(correlation)] = 0.0  # rows with no variance: correlation 0
    feature_dissimilarity = 1.0 - correlation
    if exact:
        # Equal entries may differ in the last bit; rounding keeps them tied for the ranking.
        one_hot = np.eye(int(encoded.max()) + 1)[encoded]
        label_dissimilarity = np.round(1.0 - np.corrcoef(one_hot), 12)
    else:
        # The authors' expression, its rounding noise ranked as distinct values.
        label_dissimilarity = authors_label_dissimilarity(encoded)
    upper = np.triu_indices(standardised.shape[0], 1)
    different = np.count_nonzero(encoded[upper[0]] != encoded[upper[1]])
    check_pair_classes(different, upper[0].shape[0])
    rho = spearmanr(feature_dissimilarity[upper], label_dissimilarity[upper]).statistic
    return float(100.0 * rho)
