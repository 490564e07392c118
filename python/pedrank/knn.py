"""k-nearest-neighbour estimator (transformer-ranker, Garbas et al. 2024): leave-one-out k-NN on the features.

Each sample is classified by the majority label of its k nearest other samples (Euclidean by default), and
the score is the classification quality of those predictions: micro F1 (= accuracy) for C > 2 and, as the
authors' torchmetrics call does for C = 2, the F1 of the positive class (the larger label value). Regression
targets give the Pearson correlation of the neighbours' mean with the target.

Distances are computed in row blocks: memory O(N * block_size), never an N x N matrix.
"""

from __future__ import annotations

import numpy as np
import threadpoolctl

from . import _core
from ._registry import ScoreEntry, register
from ._validation import (
    PedrankValueError,
    check_features,
    check_int,
    check_labels,
    check_targets,
    is_torch_tensor,
    to_numpy,
)

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


def knn_neighbours(features, k=3, *, distance="euclidean", block_size=1024):
    """Indices of each sample's k nearest other samples, nearest first: shape (n_samples, k), int64.

    Blocks of ``block_size`` rows against all N (memory O(block_size * N)); torch tensors stay on their device
    (``torch.cdist`` and ``topk``, the authors' calls), NumPy uses the Gram expansion in float64.
    """
    if is_torch_tensor(features):
        return _blocks_torch(features, k, distance, block_size)
    # NumPy's BLAS on pedrank's thread policy for this call (as pactran): all cores only when they are free
    threads = int(_core.call_threads(features.shape[0], features.shape[1]))
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        return _blocks_numpy(features, k, distance, block_size)


def knn(features, labels, *, k=3, distance="euclidean", regression=False, binary="f1", block_size=1024,
        backend="auto"):
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


register(ScoreEntry(name="knn", function=knn, reference="pedrank.reference.knn:knn", memory=_memory, order=14))
