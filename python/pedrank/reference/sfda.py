"""Reference SFDA (Shao et al., ECCV 2022): a direct port of the authors' algorithm.

It solves the generalised eigenproblem with scipy like the authors, and loops over
classes for ConfMix, on a private copy (the authors' code overwrites the caller's
features: that bug is not reproduced).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from pedrank._engine.constants import SFDA_MIN_SHRINKAGE, SFDA_POWER_ROUNDS
from pedrank._engine.memory import guard
from pedrank._engine.validation import PedrankValueError, check_classification, check_fraction, within_scatter_is_zero


def _population_covariance(features):
    centred = features - features.mean(axis=0)
    return centred.T @ centred / features.shape[0]


def _shrink(matrix, shrinkage):
    n_features = matrix.shape[0]
    shrunk = (1.0 - shrinkage) * matrix
    shrunk.flat[:: n_features + 1] += shrinkage * np.trace(matrix) / n_features
    return shrunk


def power_iteration_eigenvalue(matrix, rounds=SFDA_POWER_ROUNDS):
    """The authors' estimate of the largest eigenvalue (3 rounds from the row sums)."""
    v = matrix.sum(axis=1)
    for _ in range(rounds):
        w = matrix @ v
        norm = np.linalg.norm(w, 2)
        if not norm > 0:  # no spread left to measure (the authors divide 0 by 0 here)
            return 0.0
        w = w / norm
        v = matrix @ w
        norm = np.linalg.norm(v, 2)
        if not norm > 0:
            return 0.0
        v = v / norm
    return float(v @ matrix @ w)


def adaptive_shrinkage(within_scatter):
    return max(np.exp(-5.0 * power_iteration_eigenvalue(within_scatter)), SFDA_MIN_SHRINKAGE)


def sfda_fit(features, encoded, n_classes, shrinkage=None):
    """Fit the shrinkage FDA classifier; returns (coef (C, D), intercept (C,), shrinkage)."""
    n_samples, n_features = features.shape
    priors = np.bincount(encoded, minlength=n_classes) / n_samples
    means = np.stack([features[encoded == c].mean(axis=0) for c in range(n_classes)])
    within = np.zeros((n_features, n_features))
    for c in range(n_classes):
        within += priors[c] * _population_covariance(features[encoded == c])
    counts = np.bincount(encoded, minlength=n_classes)
    if within_scatter_is_zero(float(np.trace(within)), counts, means, n_samples):
        raise PedrankValueError(
            "sfda: the within-class scatter is zero (every class's samples are identical, e.g. one "
            "sample per class); the Fisher discriminant is undefined. Expected at least one class "
            "with two different samples"
        )
    if shrinkage is None:
        shrinkage = adaptive_shrinkage(within)
    total = _shrink(_population_covariance(features), shrinkage)
    shrunk_within = _shrink(within, shrinkage)
    between = total - shrunk_within
    eigenvalues, eigenvectors = linalg.eigh(between, shrunk_within)
    eigenvectors = eigenvectors[:, np.argsort(eigenvalues)[::-1]]
    coef = means @ eigenvectors @ eigenvectors.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return coef, intercept, shrinkage


def _softmax(scores):
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def predict_proba(features, coef, intercept):
    return _softmax(features @ coef.T + intercept)


def sfda(features, labels, *, shrinkage=None):
    """Reference SFDA score: mean p(y_i | x_i) after ConfMix. See :func:`pedrank.sfda`."""
    if shrinkage is not None:
        shrinkage = check_fraction(shrinkage, name="shrinkage")
    features, encoded, classes = check_classification(features, labels)
    n_classes = classes.shape[0]
    guard("sfda", features, n_classes, implementation="reference")
    features = np.array(features, dtype=np.float64)  # private copy: ConfMix writes into it
    coef, intercept, shrinkage = sfda_fit(features, encoded, n_classes, shrinkage)
    probabilities = _softmax(predict_proba(features, coef, intercept))  # the authors' second softmax
    means = np.stack([features[encoded == c].mean(axis=0) for c in range(n_classes)])
    other_means = (means.sum(axis=0) - means) / (n_classes - 1)
    for c in range(n_classes):
        rows = np.flatnonzero(encoded == c)
        confidence = probabilities[rows, c][:, None]
        features[rows] = confidence * features[rows] + (1 - confidence) * other_means[c]
    coef, intercept, _ = sfda_fit(features, encoded, n_classes, shrinkage)
    probabilities = predict_proba(features, coef, intercept)
    return float(probabilities[np.arange(features.shape[0]), encoded].mean())
