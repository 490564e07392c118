"""Reference NLEEP (Li et al., CVPR 2021), as the PED/SFDA authors compute it."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from pedrank._engine.validation import PedrankValueError, check_classification, feature_scale
from pedrank.scores.nleep import check_nleep_memory, check_nleep_options, check_nleep_scale


def nleep(features, labels, *, components_per_class=5, variance_kept=0.8, random_state=0, log=False):
    """Reference NLEEP. See :func:`pedrank.nleep`."""
    features, encoded, classes = check_classification(features, labels)
    # components_per_class * C >= n_samples is refused: scikit-learn raises for more components than samples,
    # and with as many every sample is its own component (NLEEP = 1.0 whatever the features).
    check_nleep_options(components_per_class, variance_kept, n_classes=classes.shape[0],
                        n_samples=features.shape[0])
    n_mixture = components_per_class * classes.shape[0]
    check_nleep_memory(features.shape[0], features.shape[1], n_mixture, implementation="reference")
    features = np.asarray(features, dtype=np.float64)
    if np.all(features == features[0]):
        raise PedrankValueError("features: every column is constant (zero variance)")
    check_nleep_scale(feature_scale(features))
    n_samples = features.shape[0]
    n_classes = classes.shape[0]
    reduced = PCA(n_components=variance_kept, svd_solver="full").fit_transform(features)
    n_components = components_per_class * n_classes
    check_nleep_memory(n_samples, features.shape[1], n_components, reduced.shape[1], implementation="reference")
    mixture = GaussianMixture(
        n_components=n_components, covariance_type="full", random_state=random_state
    ).fit(reduced)
    posteriors = mixture.predict_proba(reduced)  # p(z | x)
    joint = np.zeros((n_classes, n_components))  # P(y, z)
    for y in range(n_classes):
        joint[y] = posteriors[encoded == y].sum(axis=0) / n_samples
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    per_sample = np.array(
        [np.dot(posteriors[i], conditional[encoded[i]]) for i in range(n_samples)]
    )
    return float(np.mean(np.log(per_sample)) if log else np.mean(per_sample))
