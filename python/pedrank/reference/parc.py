"""Reference PARC (Bolya et al., NeurIPS 2021): explicit n x n dissimilarity matrices and
scipy's Spearman correlation.

Written from the spec and the authors' ``PARC_Score`` / ``feature_reduce`` (metrics.py of the PED
repository), independently of :mod:`pedrank.parc`:

1. subsample ``max_samples`` rows when N is larger (the same rows of features and labels: the authors'
   code passed features as labels there);
2. PCA to ``min(n_components, m, D)`` dimensions. Default: the authors' scikit-learn
   ``PCA(svd_solver="randomized", random_state=1919, iterated_power=1).fit_transform`` and
   ``StandardScaler``. ``exact=True``: a full-SVD PCA, components whose variance is below 1e-12 of the
   largest dropped (rounding noise), each kept component divided by its population std;
3. feature dissimilarity ``1 - corrcoef(rows)`` (a constant row: correlation 0), label dissimilarity the
   authors' ``1 - corrcoef(onehot)`` with its rounding noise (default) or rounded to exact ties;
4. 100 x Spearman correlation of the two upper triangles.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from pedrank._engine.memory import check_memory, format_bytes, parc_bytes
from pedrank._engine.validation import PedrankValueError, check_classification, check_int, rescaled_for_range, to_numpy
from pedrank.scores.parc import check_pair_classes

#: The authors' PCA in ``feature_reduce``: randomized, one power iteration, their seed.
AUTHORS_PCA_OPTIONS = {"svd_solver": "randomized", "random_state": 1919, "iterated_power": 1}

#: exact=True drops principal components whose variance is below this fraction of the largest.
NOISE_VARIANCE_RTOL = 1e-12


def _check_memory(n_rows, n_features):
    """The m x m matrices of this implementation, refused before they are allocated."""
    needed = parc_bytes(n_rows, n_features, implementation="reference")
    check_memory(
        needed,
        what=f"parc (reference) on {n_rows} x {n_features} features (pairwise {n_rows} x {n_rows})",
        advice="lower max_samples (memory grows with its square; 5000 rows need about "
        f"{format_bytes(parc_bytes(5000, n_features, implementation='reference'))})",
    )


def _standardised_components(features, n_components, exact):
    """PCA-reduced features, each component scaled to unit population variance."""
    n_kept = min(n_components, features.shape[0], features.shape[1])
    pca = PCA(n_components=n_kept, svd_solver="full") if exact else PCA(n_components=n_kept, **AUTHORS_PCA_OPTIONS)
    projected = pca.fit_transform(features)  # as the authors: U * S for the randomized solver
    variances = pca.explained_variance_
    informative = variances > NOISE_VARIANCE_RTOL * variances[0]
    if informative.sum() < 2:
        raise PedrankValueError(
            f"features: found {int(informative.sum())} direction(s) of non-zero variance (shape "
            f"{features.shape}); PARC correlates samples across at least 2 principal components"
        )
    if exact:
        kept = projected[:, informative]
        return kept / kept.std(axis=0)
    return StandardScaler().fit_transform(projected)  # every component, as the authors' code


def parc(features, labels, *, n_components=32, max_samples=15000, random_state=0, exact=False):
    """Reference PARC. See :func:`pedrank.parc`."""
    check_int(n_components, name="n_components", minimum=2)
    check_int(max_samples, name="max_samples", minimum=2)
    if not isinstance(exact, (bool, np.bool_)):
        raise PedrankValueError(f"exact: expected True or False, found {exact!r}")
    checked, encoded, _ = check_classification(features, labels)
    X = to_numpy(checked)
    n_samples, n_features = X.shape
    _check_memory(min(n_samples, max_samples), n_features)
    if n_samples > max_samples:
        rows = np.sort(np.random.default_rng(random_state).choice(n_samples, max_samples, replace=False))
        X, encoded = X[rows], encoded[rows]
    if np.unique(encoded).shape[0] < 2:
        raise PedrankValueError(
            f"labels: the {encoded.shape[0]} subsampled rows hold a single class; PARC needs "
            "two (raise max_samples or balance the classes)"
        )
    # PARC does not depend on the features' scale; the PCA's products at 1e120 or 1e-120 would overflow.
    X = rescaled_for_range(np.asarray(X, dtype=np.float64))
    standardised = _standardised_components(X, n_components, exact)

    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.corrcoef(standardised)
    correlation[~np.isfinite(correlation)] = 0.0  # rows with no variance: correlation 0
    feature_dissimilarity = 1.0 - correlation
    one_hot = np.eye(int(encoded.max()) + 1)[encoded]
    label_dissimilarity = 1.0 - np.corrcoef(one_hot)  # the authors' expression, rounding noise included
    if exact:
        # Equal entries may differ in the last bit; rounding keeps them tied for the ranking.
        label_dissimilarity = np.round(label_dissimilarity, 12)
    upper = np.triu_indices(standardised.shape[0], 1)
    different = np.count_nonzero(encoded[upper[0]] != encoded[upper[1]])
    check_pair_classes(different, upper[0].shape[0])
    rho = spearmanr(feature_dissimilarity[upper], label_dissimilarity[upper]).statistic
    return float(100.0 * rho)
