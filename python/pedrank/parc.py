"""PARC: pairwise annotation representation comparison (Bolya et al., NeurIPS 2021)."""

from __future__ import annotations

import numpy as np

from ._config import follows_thread_policy
from ._kernels import select_kernels
from ._memory import check_memory, format_bytes, parc_bytes
from ._registry import ScoreEntry, register
from ._validation import PedrankValueError, check_classification, check_int, finite_score, rescaled_for_range
from .backend import to_numpy

__all__ = ["parc", "parc_inputs"]

# The authors' PCA (metrics.py of the PED repository, ``feature_reduce``): scikit-learn's
# randomized solver with one power iteration and this seed.
AUTHORS_PCA = {"svd_solver": "randomized", "random_state": 1919, "iterated_power": 1}

# exact=True: principal components whose variance is below this fraction of the largest
# are rounding noise of rank-deficient features (D > N, duplicated columns);
# standardising them would blow that noise up to unit variance, so they are dropped.
COMPONENT_VARIANCE_RTOL = 1e-12


def parc_inputs(features, labels, *, n_components, max_samples, random_state, exact=False, backend="auto",
                implementation="core"):
    """Validated, subsampled, PCA-reduced and standardised features for PARC.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features)
    labels : array_like of shape (n_samples,)
    n_components, max_samples, random_state, exact
        See :func:`parc`.

    Returns
    -------
    standardised : ndarray of shape (m, k), float64
        m = min(n_samples, max_samples) rows; k principal components, each scaled to unit
        (population) variance. ``exact=False``: the authors' steps, scikit-learn's
        ``PCA(svd_solver="randomized", random_state=1919, iterated_power=1).fit_transform``
        then ``StandardScaler().fit_transform``, k = min(n_components, m, n_features).
        ``exact=True``: the exact (full SVD) PCA, components of variance below 1e-12 of
        the largest dropped, so k >= 2 may be smaller.
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
    if not isinstance(exact, (bool, np.bool_)):
        raise PedrankValueError(f"exact: expected True or False, found {exact!r}")
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
    # PARC's correlations do not depend on the scale; the PCA's products of features at 1e120 or 1e-120 do.
    features = rescaled_for_range(np.asarray(features, dtype=np.float64))
    if np.unique(encoded).shape[0] < 2:
        raise PedrankValueError(
            f"labels: the {encoded.shape[0]} subsampled rows hold a single class; PARC needs "
            "two (raise max_samples or balance the classes)"
        )
    n_kept = min(n_components, *features.shape)
    # lazily: scikit-learn adds ~2 s to `import pedrank`
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    pca = PCA(n_components=n_kept, **({"svd_solver": "full"} if exact else AUTHORS_PCA))
    # fit_transform, as the authors: for the randomized solver it returns U * S, which
    # differs from transform()'s projection by the approximation's error.
    projected = pca.fit_transform(features)
    variances = pca.explained_variance_
    informative = variances > COMPONENT_VARIANCE_RTOL * variances[0]
    if informative.sum() < 2:
        raise PedrankValueError(
            f"features: found {int(informative.sum())} direction(s) of non-zero variance (shape "
            f"{features.shape}); PARC correlates samples across at least 2 principal components"
        )
    if exact:
        projected = projected[:, informative]
        return projected / projected.std(axis=0), encoded, kernels
    # The authors' standardisation, every component kept (their rounding-noise components
    # too, as their code does).
    return StandardScaler().fit_transform(projected), encoded, kernels


def authors_label_dissimilarity(encoded):
    """The authors' label dissimilarity matrix ``1 - corrcoef(onehot)``, m x m float64.

    In exact arithmetic it takes two values (0 same class, C/(C-1) different class), but
    the expression's rounding leaves neighbours of them (0 and 2.2e-16, C/(C-1) and one
    ulp more) at positions that depend on the BLAS's matrix product. The authors' Spearman
    correlation ranks those apart; this is their NumPy expression, so on the same NumPy
    and BLAS it carries the same rounding. Computed in place (one m x m matrix).
    """
    one_hot = np.eye(int(encoded.max()) + 1)[encoded]
    dissimilarity = np.corrcoef(one_hot)
    np.subtract(1.0, dissimilarity, out=dissimilarity)
    return dissimilarity


def pearson(x, y):
    """Pearson correlation of two float vectors (scipy's Spearman applies it to ranks)."""
    x = x - x.mean()
    y = y - y.mean()
    return float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))


def check_pair_classes(different_class_count, total):
    if different_class_count in (0, total):
        raise PedrankValueError(
            "labels: every pair of samples is in different classes (one sample per class) or "
            "in the same class; PARC's rank correlation is undefined"
        )


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
    check_pair_classes(ones, total)
    fraction = ones / total
    covariance = ranks[indicator].sum() / total - ranks.mean() * fraction
    return covariance / (spread * np.sqrt(fraction * (1.0 - fraction)))


def spearman_with_authors_labels(dissimilarity, encoded, upper):
    """Spearman correlation between feature dissimilarities (upper triangle, row-major)
    and the authors' label dissimilarity ``1 - corrcoef(onehot)`` over the same pairs,
    its rounding-level differences ranked as distinct values as their ``spearmanr`` does.
    """
    from scipy.stats import rankdata

    counts = np.bincount(encoded)
    total = dissimilarity.shape[0]
    check_pair_classes(total - int((counts * (counts - 1) // 2).sum()), total)
    feature_ranks = rankdata(dissimilarity)
    del dissimilarity
    if np.all(feature_ranks == feature_ranks[0]):
        raise PedrankValueError(
            "features: every pair of samples is equally dissimilar; PARC's rank correlation "
            "is undefined"
        )
    label_dissimilarity = authors_label_dissimilarity(encoded)
    label_values = label_dissimilarity[upper]
    del label_dissimilarity, upper
    label_ranks = rankdata(label_values)
    del label_values
    return pearson(feature_ranks, label_ranks)


@finite_score("parc")
@follows_thread_policy
def parc(features, labels, *, n_components=32, max_samples=15000, random_state=0, exact=False, backend="auto"):
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
        Seeds the subsampling (``numpy.random.default_rng``). The PCA's seed is the
        authors' fixed 1919.
    exact : bool, default=False
        False: the authors' numbers (``PARC_Score`` of the PED repository), quirks
        included (see Notes). True: the principled form, exact PCA and exact ties.
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
    Steps: PCA to ``n_components``, each component standardised, Pearson correlation
    between samples across components, Spearman correlation of the two dissimilarities.

    ``exact=False`` (default) takes the authors' numerical steps: scikit-learn's
    ``PCA(svd_solver="randomized", random_state=1919, iterated_power=1).fit_transform``
    (one power iteration: an approximation of the principal components),
    ``StandardScaler().fit_transform`` of every component, and the label dissimilarity
    as their NumPy expression ``1 - corrcoef(onehot)``. That expression is not exactly
    two-valued: rounding leaves neighbours such as 0 and 2.2e-16 (same class) that the
    Spearman correlation ranks as distinct values, not as ties, and that moves the score
    (3e-3 to 6e-2 relative on rank-deficient features, docs/parity.md). Where those rounding
    values fall depends on NumPy's BLAS, so the default equals the authors' code run
    with the same NumPy and BLAS on the same kind of CPU (to 1e-13 on the authors'
    vectors, tests/data/authors_rank_deficient_field.npz); elsewhere it equals what the
    authors' code gives there.

    ``exact=True``: exact (full SVD) PCA; components with variance below 1e-12 of the
    largest dropped (rounding noise of rank-deficient features, which standardising
    would blow up to unit variance); the label dissimilarity's two values (0 same
    class, C/(C-1) different class) as exact ties, so the rank correlation is computed
    from the feature ranks and the different-class indicator. Deterministic and
    independent of the BLAS and of any seed.

    Both: a sample whose standardised components are all equal has no correlation
    with the others and is taken as 0 (dissimilarity 1), where the authors' code
    returns NaN; a subsample is drawn from matching rows of features and labels (the
    authors' code passed features as labels); n_components is capped at the number of
    features as well as of samples.
    """
    standardised, encoded, kernels = parc_inputs(
        features,
        labels,
        n_components=n_components,
        max_samples=max_samples,
        random_state=random_state,
        exact=exact,
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
    del correlation  # the n x n matrices go before the ranking allocates its own
    if exact:
        different_class = (encoded[:, None] != encoded[None, :])[upper]
        del upper
        return float(100.0 * spearman_with_binary(dissimilarity, different_class))
    return float(100.0 * spearman_with_authors_labels(dissimilarity, encoded, upper))


def _memory(n_samples, n_features, n_classes, *, dtype_size, implementation="core", max_samples=15000):
    return parc_bytes(min(n_samples, max_samples), n_features, implementation=implementation)


register(ScoreEntry(name="parc", function=parc, reference="pedrank.reference.parc:parc", memory=_memory,
                    forms={"exact": {"exact": True}}, order=4))
