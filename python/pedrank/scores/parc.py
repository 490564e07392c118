"""PARC: pairwise annotation representation comparison (Bolya et al., NeurIPS 2021)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pedrank._engine.backend import to_numpy
from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.memory import check_memory, format_bytes, parc_bytes
from pedrank._engine.validation import (
    PedrankValueError,
    check_bool,
    check_classification,
    check_int,
    finite_score,
    rescaled_for_range,
)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["parc", "parc_inputs"]

# The authors' PCA (metrics.py of the PED repository, ``feature_reduce``): scikit-learn's
# randomized solver with one power iteration and this seed.
AUTHORS_PCA = {"svd_solver": "randomized", "random_state": 1919, "iterated_power": 1}

# exact=True: principal components whose variance is below this fraction of the largest
# are rounding noise of rank-deficient features (D > N, duplicated columns);
# standardising them would blow that noise up to unit variance, so they are dropped.
COMPONENT_VARIANCE_RTOL = 1e-12


def parc_inputs(features: Any, labels: Any, *, n_components: int, max_samples: int, random_state: int | None,
                exact: bool = False, backend: str = "auto",
                implementation: str = "core") -> tuple[np.ndarray, np.ndarray, Any]:
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
    check_bool(exact, name="exact")
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

    Where the rounding values fall depends on how the BLAS tiles the *whole* m x m product
    (numpy's ``X @ X.T`` runs a symmetric rank-k update): the same expression computed in
    row blocks differs from it in some positions (measured with OpenBLAS 0.3.31: 128 of
    3.1 million pairs at m = 2,500, C = 7), so the default form keeps this one m x m matrix
    for as long as it takes to read its upper triangle into one byte per pair.
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


EQUALLY_DISSIMILAR = "features: every pair of samples is equally dissimilar; PARC's rank correlation is undefined"


#: Entries (float64) of one row block of the pairwise matrices: 32 MiB.
_BLOCK_ENTRIES = 1 << 22
#: Entries per chunk of the passes over the sorted triangle (the tie runs).
_CHUNK = 1 << 22


def _block_rows(m):
    return int(max(8, min(m, _BLOCK_ENTRIES // max(1, m))))


def _row_blocks(m):
    """(start, stop, offset) of each row block and its first pair in the row-major upper triangle."""
    offset = 0
    rows = _block_rows(m)
    for start in range(0, m, rows):
        stop = min(m, start + rows)
        yield start, stop, offset
        # rows start..stop-1 hold m-1-i pairs each
        offset += (stop - start) * (m - 1) - (start + stop - 1) * (stop - start) // 2


def _triangle(block, start):
    """The pairs (i, j > i) of the row block ``block`` = rows start.., columns start..m-1, row-major."""
    rows, columns = block.shape
    return block[np.arange(columns)[None, :] > np.arange(rows)[:, None]]


def _unit_rows(standardised):
    """Each sample's standardised components centred and scaled to unit norm (a constant sample: zeros),
    so that the sample correlation of i and j is ``u_i . u_j``."""
    centred = standardised - standardised.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    norms[norms == 0] = np.inf  # a constant row: correlation 0 with every other sample
    centred /= norms[:, None]
    return centred


def _dissimilarity_blocks(standardised):
    """Yield (start, stop, offset, pairs) with ``1 - corr(x_i, x_j)`` of each row block's pairs, float64."""
    unit = _unit_rows(standardised)
    m = unit.shape[0]
    for start, stop, offset in _row_blocks(m):
        block = unit[start:stop] @ unit[start:].T  # the only (block, m) float64 array
        pairs = _triangle(block, start)
        del block
        np.subtract(1.0, pairs, out=pairs)
        yield start, stop, offset, pairs


def _label_codes(encoded, n_pairs):
    """The authors' label dissimilarity over the upper triangle as (codes, values, counts).

    ``codes`` (one byte per pair, two where over 255 distinct values) index ``values``, the distinct values of
    ``authors_label_dissimilarity`` in increasing order (their rounding noise kept), which occur ``counts``
    times. The m x m matrix is read in row blocks and released before the features' pairs are made.
    """
    dissimilarity = authors_label_dissimilarity(encoded)
    m = dissimilarity.shape[0]
    codes = np.empty(n_pairs, dtype=np.uint8)
    known: list[float] = []
    for start, stop, offset in _row_blocks(m):
        pairs = _triangle(dissimilarity[start:stop, start:], start)
        block_codes = np.full(pairs.shape[0], -1, dtype=np.int32)
        for code, value in enumerate(known):
            block_codes[pairs == value] = code
        unmatched = block_codes < 0
        if unmatched.any():
            new = np.unique(pairs[unmatched])
            block_codes[unmatched] = len(known) + np.searchsorted(new, pairs[unmatched])
            known.extend(float(value) for value in new)
            if len(known) > np.iinfo(codes.dtype).max + 1:
                codes = codes.astype(np.uint32)
        codes[offset:offset + pairs.shape[0]] = block_codes
    del dissimilarity
    values = np.array(known)
    counts = np.bincount(codes, minlength=values.shape[0]).astype(np.int64)
    order = np.argsort(values, kind="stable")  # codes in increasing label value
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.shape[0])
    return codes, relabel, values[order], counts[order]


def _tie_term(sorted_values):
    """sum over runs of equal values of (t^3 - t), exactly (Python int), read in chunks of the sorted array."""
    total = 0
    run = 1  # length of the run ending at the previous element
    n = sorted_values.shape[0]
    for start in range(1, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        equal = sorted_values[start:stop] == sorted_values[start - 1:stop - 1]
        if not equal.any():
            if run > 1:
                total += run ** 3 - run
            run = 1
            continue
        breaks = np.flatnonzero(~equal)
        if breaks.shape[0] == 0:  # the whole chunk continues the run
            run += stop - start
            continue
        # the run from before the chunk ends at the first break
        first = run + int(breaks[0])
        if first > 1:
            total += first ** 3 - first
        lengths = np.diff(breaks)  # runs that start and end inside the chunk
        lengths = lengths[lengths > 1].astype(object)
        total += int(sum(t ** 3 - t for t in lengths))
        run = stop - start - int(breaks[-1])
    if run > 1:
        total += run ** 3 - run
    return total


def _spearman_grouped(values, stash, counts, label_twice_ranks, majority):
    """Spearman correlation of the pairs' feature dissimilarities ``values`` with a label that takes a few
    distinct values: exactly scipy's ``spearmanr`` (average ranks for ties on both sides), without an index
    sort.

    ``counts[g]`` pairs have label group g, whose label rank (ties averaged) is ``label_twice_ranks[g] / 2``;
    ``stash[g]`` holds the feature dissimilarities of every group but ``majority``. ``values`` is sorted in
    place. The feature ranks' sum over a group g is read from the sorted triangle (its rank of v is
    (#< v + #<= v + 1) / 2, by two searchsorted of the sorted group); the majority's is the rest of
    P (P + 1) / 2. Covariance and variances are then exact integers (twice the ranks are integers).
    """
    n_pairs = values.shape[0]
    values.sort()  # in place: the one O(P log P) step
    if values[0] == values[-1]:
        raise PedrankValueError(EQUALLY_DISSIMILAR)
    twice_sums = {}
    for group, group_values in stash.items():
        group_values = np.sort(group_values)
        below = np.searchsorted(values, group_values, side="left")
        upto = np.searchsorted(values, group_values, side="right")
        twice_sums[group] = int(below.sum(dtype=np.int64)) + int(upto.sum(dtype=np.int64)) + group_values.shape[0]
    twice_sums[majority] = n_pairs * (n_pairs + 1) - sum(twice_sums.values())
    centre = n_pairs + 1  # twice the mean rank, on both sides
    groups = range(len(counts))
    covariance = sum((int(label_twice_ranks[g]) - centre) * (twice_sums.get(g, 0) - int(counts[g]) * centre)
                     for g in groups)
    feature_variance = (n_pairs ** 3 - n_pairs - _tie_term(values)) // 3
    label_variance = sum(int(counts[g]) * (int(label_twice_ranks[g]) - centre) ** 2 for g in groups)
    return covariance / math.sqrt(feature_variance * label_variance)


def _twice_ranks(counts):
    """Twice the average rank of each group of tied values, given the groups' counts in increasing value."""
    counts = [int(c) for c in counts]
    below = np.cumsum([0] + counts[:-1])
    return [2 * int(b) + c + 1 for b, c in zip(below, counts)]


def _parc_spearman(standardised, encoded, exact):
    """PARC's Spearman correlation between the feature and label dissimilarities' upper triangles, in row blocks.

    Memory: the P = m (m - 1) / 2 feature dissimilarities (float64, sorted in place), one label byte per pair
    (default form), the minority groups' dissimilarities, and one row block (32 MiB); the default form first
    holds the authors' m x m label matrix alone (see ``authors_label_dissimilarity``).
    """
    m = standardised.shape[0]
    n_pairs = m * (m - 1) // 2
    class_counts = np.bincount(encoded)
    same_pairs = int((class_counts * (class_counts - 1) // 2).sum())
    check_pair_classes(n_pairs - same_pairs, n_pairs)
    if exact:
        codes = None  # group 0 same class, 1 different class: the exact label's two values
        counts = np.array([same_pairs, n_pairs - same_pairs], dtype=np.int64)
    else:
        codes, relabel, _, counts = _label_codes(encoded, n_pairs)
    majority = int(np.argmax(counts))
    values = np.empty(n_pairs, dtype=np.float64)
    stash: dict[int, Any] = {}  # a list of blocks, then their concatenation
    for start, stop, offset, pairs in _dissimilarity_blocks(standardised):
        end = offset + pairs.shape[0]
        values[offset:end] = pairs
        if exact:
            block = encoded[start:stop, None] != encoded[None, start:]
            groups = _triangle(block, start).view(np.uint8)
        else:
            assert codes is not None  # the default form's label codes (None only in the exact form)
            groups = relabel[codes[offset:end]]
        present = np.bincount(groups, minlength=counts.shape[0])
        for group in np.flatnonzero(present):
            if group != majority:
                stash.setdefault(int(group), []).append(pairs[groups == group])
    del codes
    stash = {group: np.concatenate(parts) for group, parts in stash.items()}
    return _spearman_grouped(values, stash, counts, _twice_ranks(counts), majority)


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

def _spearman_dense(standardised, encoded, exact, kernels):
    """The previous implementation (to 2026-12): the m x m correlation, the upper triangle's index mask,
    scipy's ``rankdata`` of both triangles. Kept as the oracle of tests/test_parc_blocked.py and the "before" of
    benchmarks/parc_speed.py; ``parc`` does not call it (about 5 m^2 float64 at its peak)."""
    _, correlation = kernels.covariance(standardised.T)
    spread = np.sqrt(np.clip(np.diagonal(correlation), 0.0, None))
    spread[spread == 0] = np.inf
    correlation /= spread[:, None]
    correlation /= spread[None, :]
    upper = np.triu(np.ones(correlation.shape, dtype=bool), 1)
    dissimilarity = 1.0 - correlation[upper]
    del correlation
    if exact:
        different_class = (encoded[:, None] != encoded[None, :])[upper]
        del upper
        return spearman_with_binary(dissimilarity, different_class)
    return spearman_with_authors_labels(dissimilarity, encoded, upper)


@finite_score("parc")
@follows_thread_policy
def parc(features: Any, labels: Any, *, n_components: int = 32, max_samples: int = 15000,
         random_state: int | None = 0, exact: bool = False, backend: str = "auto") -> float:
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
        Accepted for a uniform interface: PARC runs on the host (the PCA is scikit-learn's; the pairwise
        correlations are NumPy row blocks, the ranking one in-place sort).

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

    Computation and memory (m = rows after subsampling, P = m (m - 1) / 2 pairs): the sample
    correlations are made in row blocks of 32 MiB (``unit[block] @ unit.T``), their upper
    triangle written into one float64 array of P values (8 P bytes = 4 m^2), which is sorted
    in place: the only O(P log P) step, no index sort. The label is a few-valued function of
    the pair, so the rank correlation needs only each label group's sum of feature ranks,
    read from the sorted array by binary search of the minority groups' values (the
    majority's is the rest); ties are averaged on both sides as scipy's ``spearmanr`` does,
    and the covariance and variances are computed in exact integers. Beyond the P values:
    one byte per pair (the default form's label codes), the minority groups' values
    (8 bytes per same-class pair, about P / C) and one row block. The default form first
    builds the authors' label matrix ``1 - corrcoef(onehot)`` whole (8 m^2 bytes, released
    before the pairs are made): where its rounding noise falls depends on how the BLAS tiles
    the whole product, and a blocked product differs from it (see
    ``authors_label_dissimilarity``). Peak, measured (VmHWM over the call's start, float32
    features, C = 100): see BENCHMARKS.md, "PARC". Inputs whose correlations hold exact ties
    (duplicated samples, integer grids) have them broken by rounding in every
    implementation (this one, the reference's ``np.corrcoef``, the authors'), each at its
    own pairs: there the values agree to about 1e-3 relative only
    (tests/test_parc_blocked.py).

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
    return float(100.0 * _parc_spearman(standardised, encoded, exact))


def _memory(n_samples, n_features, n_classes, *, dtype_size, implementation="core", max_samples=15000):
    return parc_bytes(min(n_samples, max_samples), n_features, implementation=implementation)


register(ScoreEntry(name="parc", function=parc, reference="pedrank.reference.parc:parc", memory=_memory,
                    forms={"exact": {"exact": True}}, order=4, scale_range=(0.0, math.inf)))
