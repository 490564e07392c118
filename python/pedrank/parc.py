"""PARC: pairwise annotation representation comparison (Bolya et al., NeurIPS 2021)."""

from __future__ import annotations

import numpy as np

from ._kernels import select_kernels
from ._memory import check_memory, format_bytes, parc_bytes
from ._validation import PedrankValueError, check_classification, check_int
from .backend import to_numpy

__all__ = ["parc", "parc_inputs"]

# Principal components whose variance is below this fraction of the largest are rounding
# noise of rank-deficient features (D > N, duplicated columns); standardising them would
# blow that noise up to unit variance, so they are dropped.
COMPONENT_VARIANCE_RTOL = 1e-12


def parc_inputs(features, labels, *, n_components, max_samples, random_state, backend="auto", implementation="core"):
    """Validated, subsampled, PCA-reduced and standardised features for PARC.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features)
    labels : array_like of shape (n_samples,)
    n_components, max_samples, random_state
        See :func:`parc`.

    Returns
    -------
    standardised : ndarray of shape (m, k), float64
        m = min(n_samples, max_samples) rows; k >= 2 principal components, each scaled
        to unit (population) variance.
    encoded : ndarray of shape (m,), int64
        Target classes of those rows.
    kernels : module or object
        The kernels chosen for the features under ``backend``.

    Raises
    ------
    InsufficientMemoryError
        Before anything large is allocated, when the m x m matrices would not fit
        (``implementation`` "core" for :func:`parc`, "reference" for the reference).
    """
    check_int(n_components, name="n_components", minimum=2)
    check_int(max_samples, name="max_samples", minimum=2)
    features, encoded, _ = check_classification(features, labels)
    kernels = select_kernels(features, backend)
    features = to_numpy(features)
    n_samples = features.shape[0]
    n_rows = min(n_samples, max_samples)
    check_memory(
        parc_bytes(n_rows, features.shape[1], implementation=implementation),
        what=f"parc ({implementation}) on {n_rows} x {features.shape[1]} features (pairwise {n_rows} x {n_rows})",
        advice="lower max_samples (memory grows with its square; 5000 rows need about "
        f"{format_bytes(parc_bytes(5000, features.shape[1], implementation=implementation))})",
    )
    if n_samples > max_samples:
        # The same indices select features and labels (the authors' code subsamples the
        # features into the labels' place).
        rows = np.sort(np.random.default_rng(random_state).choice(n_samples, max_samples, replace=False))
        features, encoded = features[rows], encoded[rows]
    features = np.asarray(features, dtype=np.float64)
    if np.unique(encoded).shape[0] < 2:
        raise PedrankValueError(
            f"labels: the {encoded.shape[0]} subsampled rows hold a single class; PARC needs "
            "two (raise max_samples or balance the classes)"
        )
    n_kept = min(n_components, *features.shape)
    from sklearn.decomposition import PCA  # lazily: it adds ~2 s to `import pedrank`

    pca = PCA(n_components=n_kept, svd_solver="full").fit(features)
    variances = pca.explained_variance_
    informative = variances > COMPONENT_VARIANCE_RTOL * variances[0]
    if informative.sum() < 2:
        raise PedrankValueError(
            f"features: found {int(informative.sum())} direction(s) of non-zero variance (shape "
            f"{features.shape}); PARC correlates samples across at least 2 principal components"
        )
    projected = pca.transform(features)[:, informative]
    return projected / projected.std(axis=0), encoded, kernels


def spearman_with_binary(values, indicator):
    """Spearman correlation between ``values`` and a 0/1 ``indicator`` (ties averaged).

    The indicator's ranks are an increasing affine map of it, so this is the Pearson
    correlation of rank(values) with the indicator itself.
    """
    from scipy.stats import rankdata

    ranks = rankdata(values)
    ones = int(np.count_nonzero(indicator))
    total = ranks.shape[0]
    spread = ranks.std()
    if spread == 0:
        raise PedrankValueError(
            "features: every pair of samples is equally dissimilar; PARC's rank correlation "
            "is undefined"
        )
    if ones in (0, total):
        raise PedrankValueError(
            "labels: every pair of samples is in different classes (one sample per class) or "
            "in the same class; PARC's rank correlation is undefined"
        )
    fraction = ones / total
    covariance = ranks[indicator].sum() / total - ranks.mean() * fraction
    return covariance / (spread * np.sqrt(fraction * (1.0 - fraction)))


def parc(features, labels, *, n_components=32, max_samples=15000, random_state=0, backend="auto"):
    """PARC transferability score (Bolya et al., NeurIPS 2021).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model.
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    n_components : int, default=32
        PCA dimension (at most min(n_samples, n_features)).
    max_samples : int, default=15000
        Larger sets are scored on ``max_samples`` rows drawn without replacement
        (PARC builds n x n matrices).
    random_state : int or None, default=0
        Seeds the subsampling (``numpy.random.default_rng``).
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the n x n sample correlations (PCA is scikit-learn's, on the host).

    Returns
    -------
    float
        100 x Spearman correlation between the upper triangles of the samples' feature
        dissimilarity 1 - corr(x_i, x_j) and label dissimilarity 1 - corr(onehot_i,
        onehot_j); in [-100, 100], higher is better.

    Raises
    ------
    ValueError
        Fewer than 2 directions of non-zero variance, one sample per class, or a
        subsample holding a single class.

    Notes
    -----
    Steps: PCA (exact SVD, scikit-learn) to ``n_components``, each component scaled to
    unit variance (as the authors' StandardScaler), Pearson correlation between samples
    across components. The authors use a randomized PCA solver with a single power
    iteration, an approximation; the exact solver makes the score deterministic and
    seed-free. Their label dissimilarity, ``1 - corrcoef(onehot)``, also carries rounding
    noise (e.g. 0 and 2.2e-16 for same-class pairs) that their Spearman correlation ranks
    as distinct values; here the two label values are exact ties. Together: 3e-3 to 6e-2
    relative from their numbers on rank-deficient features (README.md). Components
    with variance below 1e-12 of the largest are dropped (rounding
    noise of rank-deficient features). A sample whose standardised components are all
    equal has no correlation with the others: it is taken as 0 (dissimilarity 1). The
    label dissimilarity takes two values (0 same class, C/(C-1) different class), so the
    rank correlation is computed from the feature ranks and the different-class
    indicator.
    """
    standardised, encoded, kernels = parc_inputs(
        features,
        labels,
        n_components=n_components,
        max_samples=max_samples,
        random_state=random_state,
        backend=backend,
    )
    # Correlation between samples = covariance of the transposed matrix, normalised.
    _, correlation = kernels.covariance(standardised.T)
    spread = np.sqrt(np.clip(np.diagonal(correlation), 0.0, None))
    spread[spread == 0] = np.inf  # a constant row: correlation 0 with every other sample
    correlation /= spread[:, None]
    correlation /= spread[None, :]
    upper = np.triu(np.ones(correlation.shape, dtype=bool), 1)
    dissimilarity = 1.0 - correlation[upper]
    different_class = (encoded[:, None] != encoded[None, :])[upper]
    del correlation, upper  # the n x n matrices go before the ranking allocates its own
    return float(100.0 * spearman_with_binary(dissimilarity, different_class))
