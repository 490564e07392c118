"""k-nearest-neighbour estimator (transformer-ranker, Garbas et al. 2024): leave-one-out k-NN on the features.

Each sample is classified by the majority label of its k nearest other samples (Euclidean by default), and
the score is the classification quality of those predictions: micro F1 (= accuracy) for C > 2 and, as the
authors' torchmetrics call does for C = 2, the F1 of the positive class (the larger label value). Regression
targets give the Pearson correlation of the neighbours' mean with the target.

Distances are computed in row blocks: memory O(N * block_size), never an N x N matrix. Euclidean neighbours on
NumPy are exactly the reference's (its float64 distances and its stable order, ties included), found through a
float32 product filter with a proven error bound (see ``_euclidean_blocks``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pedrank._engine.config import blas_on_policy
from pedrank._engine.validation import (
    PedrankValueError,
    check_bool,
    check_features,
    check_int,
    check_labels,
    check_targets,
    finite_score,
    is_torch_tensor,
    to_numpy,
)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["knn", "knn_neighbours", "DISTANCES", "BINARY_SCORES"]

DISTANCES = ("euclidean", "cosine")
BINARY_SCORES = ("f1", "accuracy")


def check_knn_options(k, distance, block_size, binary, n_samples):
    k = check_int(k, name="k", minimum=1)
    if k >= n_samples:
        raise PedrankValueError(f"k: expected an integer below the number of samples ({n_samples}), found {k}")
    if distance not in DISTANCES:
        raise PedrankValueError(f"distance: expected one of {DISTANCES}, found {distance!r}")
    if binary not in BINARY_SCORES:
        raise PedrankValueError(f"binary: expected one of {BINARY_SCORES}, found {binary!r}")
    return k, check_int(block_size, name="block_size", minimum=1)


def _blocks_numpy(X, k, distance, block_size):
    """Cosine neighbours: float64 Gram blocks, as the reference's ``1 - unit @ unit.T``."""
    X = np.asarray(X, dtype=np.float64)
    if distance == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X / np.where(norms > 0, norms, 1.0)
    squared = np.einsum("ij,ij->i", X, X)
    n = X.shape[0]
    neighbours = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        block = X[start:stop] @ X.T  # the only (block, N) float64 array: the rest is in place
        if distance == "cosine":
            np.subtract(1.0, block, out=block)
        else:  # same rounding as sqrt(max(a - 2 g + b, 0)): a - 2 g == (-2 g) + a exactly
            block *= -2.0
            block += squared[start:stop, None]
            block += squared[None, :]
            np.maximum(block, 0.0, out=block)
            np.sqrt(block, out=block)
        rows = np.arange(stop - start)
        block[rows, rows + start] = np.inf
        part = np.argpartition(block, k - 1, axis=1)[:, :k]
        order = np.lexsort((part, np.take_along_axis(block, part, axis=1)), axis=1)  # by distance, then index
        neighbours[start:stop] = np.take_along_axis(part, order, axis=1)
    return neighbours


_U32 = 2.0 ** -24  # float32's unit roundoff
_U64 = 2.0 ** -53
_PARTITION_ROWS = 256  # rows per argpartition call (k > _ARGMIN_K): its int64 result is (rows, N)
_ARGMIN_K = 16  # up to this k, the k columns behind T_i are found by k row-wise argmins, not an argpartition
_REFINE_ENTRIES = 1 << 22  # float64 entries per chunk of exact candidate distances (32 MiB)


def _exact_distances(X, rows, cols):
    """The reference's distances for the pairs (rows[m], cols[m]): ``sqrt(((x - y) ** 2).sum())`` in float64.

    The same operations on the same float64 values, summed along a contiguous row of length D as the reference's
    ``(...) ** 2).sum(axis=-1)`` does (NumPy's pairwise summation), so the same bits.
    """
    out = np.empty(rows.shape[0], dtype=np.float64)
    step = max(1, _REFINE_ENTRIES // max(1, X.shape[1]))
    for start in range(0, rows.shape[0], step):
        stop = min(start + step, rows.shape[0])
        difference = np.asarray(X[rows[start:stop]], dtype=np.float64)  # float64 - float32 below: exact cast
        np.subtract(difference, X[cols[start:stop]], out=difference)
        np.square(difference, out=difference)  # ``** 2`` is numpy's square: the same products
        out[start:stop] = np.sqrt(difference.sum(axis=-1))
    return out


def _smallest_columns(block, k):
    """k distinct columns per row of ``block`` holding its k smallest values: ((b, k) int64, (b, k) values).

    For k <= ``_ARGMIN_K``, k row-wise ``argmin`` passes (SIMD reductions, each about the cost of reading the block),
    each chosen entry set to +inf for the next pass and restored at the end; above, ``argpartition`` (the caller
    passes 256 rows at a time then: its int64 result is (rows, N)). Which of several equal values is taken differs
    between the two, and does not matter: any k columns give a valid bound T_i (``_euclidean_blocks``), the k
    smallest the tightest.
    """
    if k > _ARGMIN_K:
        columns = np.argpartition(block, k - 1, axis=1)[:, :k]
        return columns, np.take_along_axis(block, columns, axis=1)
    b = block.shape[0]
    rows = np.arange(b)
    columns = np.empty((b, k), dtype=np.int64)
    values = np.empty((b, k), dtype=block.dtype)
    for j in range(k):
        columns[:, j] = np.argmin(block, axis=1)
        values[:, j] = block[rows, columns[:, j]]
        block[rows, columns[:, j]] = np.inf
    for j in range(k - 1, -1, -1):  # in reverse, so that a column taken twice (only if a row ran out of finite
        block[rows, columns[:, j]] = values[:, j]  # values) gets its first, original value back
    return columns, values


def _euclidean_blocks(X, k, block_size):
    """Euclidean neighbours, exactly the reference's: float32 products as a filter, float64 distances to decide.

    For a block of rows, ``h_ij = |x_j|^2 - 2 x_i . x_j`` is formed from one float32 matrix product (half the time
    and memory of float64). A rigorous bound e_ij on its error against exact arithmetic (the float32 inner product,
    gamma_D * |x_i| |x_j|; the float32 rounding of the inputs, of the norms and of the sums) gives, from any k
    columns, an upper bound T_i on the k-th smallest exact squared distance; every column that can be among the
    reference's k nearest then has ``h_ij - e_ij <= T_i - |x_i|^2`` (with room for the reference's own float64
    rounding, relative (D + 3) u64 on a sum of positive squares). Those candidates, usually a handful per row, get
    the reference's own float64 distance ``sqrt(sum((x_i - x_j)^2))``, and the k smallest by (distance, index)
    are the reference's stable-argsort choice, ties included. Returns None when the float32 range does not hold
    the data (norms above 1e17 or below 1e-15), for the float64 path.

    Besides the product, each block is read k + 3 times (two in-place passes, k argmins, one comparison into a
    reused mask): the product is about 85 % of the time at 10,000 x 1,024 (BENCHMARKS.md, "k-NN at its floor").
    The products go into one reused (block_size, N) float32 buffer.
    """
    n, d = X.shape
    squared = np.empty(n, dtype=np.float64)
    step = max(1, _REFINE_ENTRIES // max(1, d))
    for start in range(0, n, step):  # float64 squared norms without a float64 copy of X
        chunk = np.asarray(X[start:start + step], dtype=np.float64)
        squared[start:start + step] = np.einsum("ij,ij->i", chunk, chunk)
    norms = np.sqrt(squared)
    largest = float(norms.max())
    if not 1e-15 < largest < 1e17:
        return None
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    squared32 = squared.astype(np.float32)
    gamma = d * _U32 / (1.0 - d * _U32)
    # |h~ - h| <= product * |x_i| |x_j| + 4 u32 |x_j|^2 (+ an absolute term for float32 underflow)
    product = 2.0 * (gamma * (1.0 + _U32) ** 2 + 2.0 * _U32 + _U32 ** 2) + 4.0 * _U32
    absolute = (d + 8) * 2.0 ** -140 * (1.0 + largest) ** 2
    reference_rounding = ((1.0 + (d + 8) * _U64) / (1.0 - (d + 8) * _U64)) ** 2 * (1.0 + 1e-12)
    neighbours = np.empty((n, k), dtype=np.int64)
    rows_max = min(block_size, n)
    buffer = np.empty((rows_max, n), dtype=np.float32)
    mask = np.empty((rows_max, n), dtype=np.bool_)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        b = stop - start
        block = np.matmul(X32[start:stop], X32.T, out=buffer[:b])  # (b, N) float32
        block *= -2.0
        block += squared32[None, :]
        block[np.arange(b), np.arange(start, stop)] = np.inf
        sq_i = squared[start:stop]
        n_i = norms[start:stop]
        # T_i from the k columns of smallest h~: max over them of |x_i|^2 + h~ + e
        upper = np.empty(b, dtype=np.float64)
        rows_at_once = _PARTITION_ROWS if k > _ARGMIN_K else b  # (rows, k) temporaries below: bounded for large k
        for low in range(0, b, rows_at_once):
            high = min(low + rows_at_once, b)
            part, h = _smallest_columns(block[low:high], k)
            error = product * n_i[low:high, None] * norms[part] + 4.0 * _U32 * squared[part] + absolute
            upper[low:high] = (h.astype(np.float64) + error).max(axis=1)
        limit = (sq_i + upper) * reference_rounding - sq_i + 1e-12 * (np.abs(upper) + sq_i)  # h - e <= limit
        coarse = limit + product * n_i * largest + 4.0 * _U32 * largest ** 2 + absolute  # e with |x_j| <= max
        threshold = np.nextafter(coarse.astype(np.float32), np.float32(np.inf))
        flat = np.flatnonzero(np.less_equal(block, threshold[:, None], out=mask[:b]))
        h = block.ravel()[flat].astype(np.float64)
        rows, cols = np.divmod(flat, n)
        keep = h - (product * n_i[rows] * norms[cols] + 4.0 * _U32 * squared[cols] + absolute) <= limit[rows]
        rows, cols = rows[keep], cols[keep]
        distances = _exact_distances(X, rows + start, cols)
        order = np.lexsort((cols, distances, rows))  # by row, then distance, then index: the stable argsort
        rows, cols = rows[order], cols[order]
        first = np.searchsorted(rows, np.arange(b))
        counts = np.diff(np.append(first, rows.shape[0]))
        if np.any(counts < k):  # cannot happen (the k columns behind T_i are candidates); stay correct anyway
            return None
        neighbours[start:stop] = cols[first[:, None] + np.arange(k)[None, :]]
    return neighbours


def _blocks_torch(X, k, distance, block_size):
    import torch

    X = X.to(torch.float64)
    if distance == "cosine":
        X = torch.nn.functional.normalize(X, dim=1)
    n = X.shape[0]
    neighbours = torch.empty((n, k), dtype=torch.long, device=X.device)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        block = 1.0 - X[start:stop] @ X.T if distance == "cosine" else torch.cdist(X[start:stop], X, p=2)
        rows = torch.arange(start, stop, device=X.device)
        block[rows - start, rows] = float("inf")
        neighbours[start:stop] = block.topk(k, largest=False).indices
    return neighbours.cpu().numpy()


def knn_neighbours(features: Any, k: int = 3, *, distance: str = "euclidean", block_size: int = 1024) -> Any:
    """Indices of each sample's k nearest other samples, nearest first: shape (n_samples, k), int64.

    Blocks of ``block_size`` rows against all N (memory O(block_size * N)); torch tensors stay on their device
    (``torch.cdist`` and ``topk``, the authors' calls). NumPy, Euclidean: float32 products as a filter with a
    rigorous error bound, then the reference's own float64 distances on the few candidates, so the neighbours are
    the reference's, ties included (``_euclidean_blocks``); cosine: the Gram expansion in float64.
    """
    if is_torch_tensor(features):
        return _blocks_torch(features, k, distance, block_size)
    # NumPy's BLAS on pedrank's thread policy for this call (as pactran): all cores only when they are free
    with blas_on_policy(features.shape[0], features.shape[1]):
        if distance == "euclidean":
            neighbours = _euclidean_blocks(features, k, block_size)
            if neighbours is not None:
                return neighbours
        return _blocks_numpy(features, k, distance, block_size)


@finite_score("knn")
def knn(features: Any, labels: Any, *, k: int = 3, distance: str = "euclidean", regression: bool = False,
        binary: str = "f1", block_size: int = 1024, backend: str = "auto") -> float:
    """k-NN transferability estimate (leave-one-out), as transformer-ranker's ``NearestNeighbors``.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model.
    labels : array_like of shape (n_samples,)
        Class labels (any values, mapped to 0..C-1 in sorted order), or real targets with ``regression=True``.
    k : int, default=3
        Neighbours per sample (1 <= k < N).
    distance : {"euclidean", "cosine"}, default="euclidean"
    regression : bool, default=False
        Predict the mean of the neighbours' targets; score their Pearson correlation with the targets.
    binary : {"f1", "accuracy"}, default="f1"
        For C = 2: "f1", the authors' F1 of the positive class (the larger label value); "accuracy", the
        micro F1 used for C > 2. Ignored for C > 2.
    block_size : int, default=1024
        Rows per distance block.
    backend : {"auto", "numpy", "torch"}, default="auto"
        Accepted for a uniform interface: a torch tensor is searched on its device, NumPy on the host.

    Returns
    -------
    float
        In [0, 1] for classification (higher is better), in [-1, 1] for regression.

    Notes
    -----
    The majority vote breaks ties towards the smallest class index (``torch.mode`` does the same on the
    authors' CPU runs). Neighbours at exactly equal distance are taken by index on the NumPy path; torch's
    ``topk`` picks among them in its own order, and rounding differs between the Gram expansion and
    ``torch.cdist``, so near-ties may choose different neighbours.
    """
    regression = check_bool(regression, name="regression")
    features = check_features(features)
    n_samples = features.shape[0]
    k, block_size = check_knn_options(k, distance, block_size, binary, n_samples)
    if regression:
        targets = check_targets(labels, n_samples)
        if targets.shape[1] != 1:
            raise PedrankValueError(f"labels: regression=True expects one target per sample, found shape "
                                    f"{targets.shape}")
        targets = targets[:, 0]
    else:
        encoded, classes = check_labels(labels, n_samples)
    if backend == "numpy" and is_torch_tensor(features):
        features = to_numpy(features)
    neighbours = knn_neighbours(features, k, distance=distance, block_size=block_size)
    if regression:
        predicted = targets[neighbours].mean(axis=1)
        return float(np.corrcoef(targets, predicted)[0, 1])
    n_classes = classes.shape[0]
    votes = np.zeros((n_samples, n_classes), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n_samples), k), encoded[neighbours].ravel()), 1)
    predicted = np.argmax(votes, axis=1)
    if n_classes == 2 and binary == "f1":
        tp = np.sum((predicted == 1) & (encoded == 1))
        denominator = 2 * tp + np.sum(predicted != encoded)
        return float(2 * tp / denominator) if denominator > 0 else 0.0
    return float(np.mean(predicted == encoded))


def _memory(n_samples, n_features, n_classes, *, dtype_size=8, implementation="core"):
    block = min(1024, n_samples)
    return int(8 * (2 * block * n_samples + n_samples * (n_features + n_classes + 3)))


register(ScoreEntry(name="knn", function=knn, reference="pedrank.reference.knn:knn", memory=_memory, order=14,
                    held_out=True, scale_range=(0.0, math.inf)))
