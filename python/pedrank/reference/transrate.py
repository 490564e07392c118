"""Reference TransRate (Huang et al., ICML 2022), written from the coding-rate definition."""

from __future__ import annotations

import numpy as np

from pedrank._engine.validation import check_classification, check_positive
from pedrank.scores.transrate import check_normalization


def _coding_rate(z, eps, n_features, normalization):
    n = z.shape[0]
    scale = (n_features if normalization == "paper" else 1.0) / (n * eps)
    _, logdet = np.linalg.slogdet(np.eye(n_features) + scale * z.T @ z)
    return 0.5 * logdet


def transrate(features, labels, *, eps=1e-4, normalization="paper"):
    """Reference TransRate. See :func:`pedrank.transrate`."""
    eps = check_positive(eps, name="eps")
    check_normalization(normalization)
    features, encoded, classes = check_classification(features, labels)
    z = np.asarray(features, dtype=np.float64)
    z = z - z.mean(axis=0)
    n_samples, n_features = z.shape
    n_classes = classes.shape[0]
    rate = _coding_rate(z, eps, n_features, normalization)
    conditional = 0.0
    for c in range(n_classes):
        members = z[encoded == c]
        weight = members.shape[0] / n_samples if normalization == "paper" else 1.0 / n_classes
        conditional += weight * _coding_rate(members, eps, n_features, normalization)
    return float(rate - conditional)
