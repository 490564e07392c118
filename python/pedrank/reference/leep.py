"""Reference LEEP (Nguyen et al., ICML 2020), written from the paper's equations."""

from __future__ import annotations

import numpy as np

from pedrank._engine.validation import check_labels
from pedrank.scores.leep import check_probabilities


def leep(source_probabilities, labels):
    """Reference LEEP. See :func:`pedrank.leep`."""
    theta = check_probabilities(source_probabilities)
    encoded, classes = check_labels(labels, theta.shape[0])
    n_samples, n_source = theta.shape
    n_classes = classes.shape[0]
    joint = np.zeros((n_classes, n_source))  # P(y, z), Eq. (1)
    for i in range(n_samples):
        joint[encoded[i]] += theta[i] / n_samples
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    total = 0.0
    for i in range(n_samples):  # Eq. (2)
        total += np.log(np.dot(conditional[encoded[i]], theta[i]))
    return float(total / n_samples)
