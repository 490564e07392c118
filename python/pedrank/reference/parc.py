"""Reference PARC (Bolya et al., NeurIPS 2021): explicit n x n dissimilarity matrices and
scipy's Spearman correlation."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from ..parc import parc_inputs


def parc(features, labels, *, n_components=32, max_samples=15000, random_state=0):
    """Reference PARC. See :func:`pedrank.parc`."""
    standardised, encoded, _ = parc_inputs(
        features,
        labels,
        n_components=n_components,
        max_samples=max_samples,
        random_state=random_state,
        implementation="reference",
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.corrcoef(standardised)
    correlation[~np.isfinite(correlation)] = 0.0  # rows with no variance: correlation 0
    one_hot = np.eye(int(encoded.max()) + 1)[encoded]
    feature_dissimilarity = 1.0 - correlation
    # Equal entries may differ in the last bit; rounding keeps them tied for the ranking.
    label_dissimilarity = np.round(1.0 - np.corrcoef(one_hot), 12)
    upper = np.triu_indices(standardised.shape[0], 1)
    rho = spearmanr(feature_dissimilarity[upper], label_dissimilarity[upper]).statistic
    return float(100.0 * rho)
