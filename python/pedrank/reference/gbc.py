"""Reference GBC (Pandy et al., CVPR 2022): PCA, Gaussian class models, Bhattacharyya sum.

Ported from the math of the paper and the authors' (TensorFlow) code: a plain loop
over ordered class pairs.
"""

from __future__ import annotations

import numpy as np

from pedrank._engine.constants import GBC_VARIANCE_FLOOR
from pedrank._engine.memory import guard
from pedrank._engine.validation import check_classification
from pedrank.scores.gbc import check_gbc_options

VARIANCE_FLOOR = GBC_VARIANCE_FLOOR


def pca_project(features, n_components):
    """Project centred features on their top principal directions (eigenvectors of the
    population covariance with the largest eigenvalues)."""
    centred = features - features.mean(axis=0)
    covariance = centred.T @ centred / features.shape[0]
    _, eigenvectors = np.linalg.eigh(covariance)
    return centred @ eigenvectors[:, ::-1][:, :n_components]


def gbc(features, labels, *, n_components=64, covariance="spherical", exact_logdet=False):
    """Reference GBC score in [-C(C-1), 0]. See :func:`pedrank.gbc`."""
    check_gbc_options(n_components, covariance)
    features, encoded, classes = check_classification(features, labels)
    guard("gbc", features, classes.shape[0], implementation="reference", n_components=n_components)
    features = np.asarray(features, dtype=np.float64)
    n_components = min(n_components, *features.shape)
    projected = pca_project(features, n_components)
    n_classes = classes.shape[0]
    means, variances = [], []
    for c in range(n_classes):
        members = projected[encoded == c]
        means.append(members.mean(axis=0))
        variance = np.maximum(members.var(axis=0), VARIANCE_FLOOR)
        if covariance == "spherical":
            variance = np.full(n_components, variance.mean())
        variances.append(variance)
    # The authors' spherical mode takes the log-determinant of the scalar variance once.
    quirk = covariance == "spherical" and not exact_logdet
    total = 0.0
    for i in range(n_classes):
        for j in range(n_classes):
            if i == j:
                continue
            pooled = (variances[i] + variances[j]) / 2
            mahalanobis = np.sum((means[i] - means[j]) ** 2 / pooled) / 8
            if quirk:
                logdet = np.log(pooled[0]) - 0.5 * np.log(variances[i][0]) - 0.5 * np.log(variances[j][0])
            else:
                logdet = (
                    np.sum(np.log(pooled))
                    - 0.5 * np.sum(np.log(variances[i]))
                    - 0.5 * np.sum(np.log(variances[j]))
                )
            total += np.exp(-(mahalanobis + 0.5 * logdet))
    return float(-total)
