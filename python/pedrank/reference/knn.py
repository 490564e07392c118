"""Reference k-NN estimator: a port of transformer-ranker's ``NearestNeighbors.fit`` (flairNLP/transformer-ranker,
transformer_ranker/estimators/nearestneighbors.py) in NumPy: the full N x N distance matrix, the diagonal set
to inf, stable sorting, majority vote by counting, torchmetrics' F1 (binary: positive class; else micro)."""

from __future__ import annotations

import numpy as np

from pedrank._engine.validation import PedrankValueError, check_features, check_labels, check_targets
from pedrank.scores.knn import check_knn_options


def knn(features, labels, *, k=3, distance="euclidean", regression=False, binary="f1", block_size=1024):
    """Reference k-NN. See :func:`pedrank.knn`."""
    X = np.array(check_features(features), dtype=np.float64)
    n = X.shape[0]
    k, _ = check_knn_options(k, distance, block_size, binary, n)
    if distance == "cosine":
        unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        distances = 1.0 - unit @ unit.T
    else:
        # the authors' torch.cdist, as the plain sum of squared differences; 64 rows at a time (the same numbers,
        # without an N x N x D temporary)
        distances = np.concatenate([np.sqrt(((X[i:i + 64, None, :] - X[None, :, :]) ** 2).sum(axis=-1))
                                    for i in range(0, n, 64)], axis=0) if n else np.zeros((0, 0))
    np.fill_diagonal(distances, np.inf)
    neighbours = np.argsort(distances, axis=1, kind="stable")[:, :k]
    if regression:
        y = check_targets(labels, n)
        if y.shape[1] != 1:
            raise PedrankValueError("labels: regression=True expects one target per sample")
        y = y[:, 0]
        return float(np.corrcoef(np.stack([y, y[neighbours].mean(axis=1)]))[0, 1])
    y, classes = check_labels(labels, n)
    predicted = np.array([np.bincount(row, minlength=classes.shape[0]).argmax() for row in y[neighbours]])
    if classes.shape[0] == 2 and binary == "f1":
        tp = np.sum((predicted == 1) & (y == 1))
        fp = np.sum((predicted == 1) & (y == 0))
        fn = np.sum((predicted == 0) & (y == 1))
        return float(2 * tp / (2 * tp + fp + fn)) if 2 * tp + fp + fn > 0 else 0.0
    return float(np.mean(predicted == y))
