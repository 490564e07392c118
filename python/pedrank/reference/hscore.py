"""Reference H-score (Bao et al., 2019) and regularised H-score (Ibrahim et al., ICLR 2022),
written from the definitions with explicit matrices."""

from __future__ import annotations

import numpy as np
from sklearn.covariance import ledoit_wolf

from pedrank._engine.validation import check_classification

#: The pseudo-inverse drops eigenvalues below eps * n * largest (numpy.linalg.matrix_rank's tolerance): the
#: authors' rcond=1e-15 keeps the rounding noise of a singular covariance and inverts it into huge numbers.
PINV_RTOL = np.finfo(np.float64).eps


def _features_and_conditional_means(features, labels):
    features, encoded, classes = check_classification(features, labels)
    features = np.asarray(features, dtype=np.float64)
    g = np.zeros_like(features)  # g(f) = E[f | y], sample by sample
    for c in range(classes.shape[0]):
        g[encoded == c] = features[encoded == c].mean(axis=0)
    return features, g


def _population_covariance(x):
    centred = x - x.mean(axis=0)
    return centred.T @ centred / x.shape[0]


def _pinv(matrix):
    return np.linalg.pinv(matrix, rcond=PINV_RTOL * matrix.shape[0], hermitian=True)


def h_score(features, labels):
    """Reference H-score. See :func:`pedrank.h_score`."""
    f, g = _features_and_conditional_means(features, labels)
    return float(np.trace(_pinv(_population_covariance(f)) @ _population_covariance(g)))


def regularized_h_score(features, labels):
    """Reference regularised H-score. See :func:`pedrank.regularized_h_score`."""
    f, g = _features_and_conditional_means(features, labels)
    shrunk, alpha = ledoit_wolf(f)
    return float(np.trace(_pinv(shrunk) @ ((1.0 - alpha) * _population_covariance(g))))
