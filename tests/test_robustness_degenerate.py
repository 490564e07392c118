"""Degenerate but legal inputs: every score returns a finite value in its range or raises a
pedrank ValueError that says why; never NaN, never an exception from deep inside numpy/scipy.

What each score does in each case is tabulated in the README ("Robustness").
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pedrank
import pedrank.reference as reference
from pedrank import PedrankValueError

IMPLEMENTATIONS = {"public": pedrank, "reference": reference}


def _clusters(n_samples, n_features, n_classes, *, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    features = rng.normal(size=(n_samples, n_features)) + labels[:, None]
    return features, labels


def _one_sample_class():
    features, labels = _clusters(40, 6, 4)
    labels = labels.copy()
    labels[0] = 9
    return features, labels


def _every_class_one_sample():
    features, _ = _clusters(20, 6, 2)
    return features, np.arange(20)


def _classes_close_to_samples():
    features, _ = _clusters(20, 6, 2)
    labels = np.arange(20)
    labels[-1] = 0
    return features, labels


def _more_features_than_samples():
    return _clusters(20, 50, 3)


def _far_more_features_than_samples():
    return _clusters(6, 300, 2)


def _constant_column():
    features, labels = _clusters(40, 6, 4)
    features[:, 2] = 3.0
    return features, labels


def _all_samples_identical():
    features, labels = _clusters(40, 6, 4)
    features[:] = features[0]
    return features, labels


def _all_zero():
    features, labels = _clusters(40, 6, 4)
    return np.zeros_like(features), labels


def _duplicated_samples():
    features, labels = _clusters(40, 6, 4)
    return np.vstack([features, features]), np.concatenate([labels, labels])


def _identical_samples_within_each_class():
    features, labels = _clusters(5, 6, 5)
    return np.repeat(features, 3, axis=0), np.repeat(labels, 3)


def _two_samples():
    features, labels = _clusters(2, 3, 2)
    return features, labels


def _coincident_class_means():
    # Two classes holding the same rows in the same order: bitwise equal means.
    features, _ = _clusters(10, 3, 1)
    return np.vstack([features, features]), np.repeat([0, 1], 10)


def _imbalanced():
    features, labels = _clusters(200, 5, 2)
    labels = (np.arange(200) < 3).astype(int)
    return features, labels


def _scaled(factor):
    def make():
        features, labels = _clusters(40, 6, 4)
        return features * factor, labels

    return make


CASES = {
    "one-sample-class": _one_sample_class,
    "every-class-one-sample": _every_class_one_sample,
    "classes-close-to-samples": _classes_close_to_samples,
    "D>N": _more_features_than_samples,
    "D>>N": _far_more_features_than_samples,
    "constant-column": _constant_column,
    "all-samples-identical": _all_samples_identical,
    "all-zero": _all_zero,
    "duplicated-samples": _duplicated_samples,
    "identical-within-class": _identical_samples_within_each_class,
    "two-samples": _two_samples,
    "coincident-class-means": _coincident_class_means,
    "imbalanced-3-of-200": _imbalanced,
    "scale-1e-6": _scaled(1e-6),
    "scale-1e6": _scaled(1e6),
    "scale-1e-12": _scaled(1e-12),
    "scale-1e12": _scaled(1e12),
    "scale-1e-150": _scaled(1e-150),
    "scale-1e150": _scaled(1e150),
}


def _n_classes(labels):
    return np.unique(labels).shape[0]


def _check_logme(lib, features, labels):
    value = lib.logme(features, labels)
    assert np.isfinite(value), value
    exact = lib.logme(features, labels, exact_dimension=True)
    assert np.isfinite(exact), exact


def _check_sfda(lib, features, labels):
    for shrinkage in (None, 0.5):
        value = lib.sfda(features, labels, shrinkage=shrinkage)
        assert np.isfinite(value) and 0 < value <= 1 + 1e-12, (shrinkage, value)


def _check_gbc(lib, features, labels):
    bound = _n_classes(labels) * (_n_classes(labels) - 1)
    for covariance in ("spherical", "diagonal"):
        value = lib.gbc(features, labels, covariance=covariance)
        assert np.isfinite(value) and -bound - 1e-9 <= value <= 0, (covariance, value)


def _check_ped(lib, features, labels):
    result = lib.ped(features, labels)
    assert result.features.shape == features.shape
    assert np.isfinite(result.features).all()
    assert np.isfinite(result.energies).all() and np.isfinite(result.movements).all()
    assert len(result.energies) == result.steps + 1


CHECKS = {"logme": _check_logme, "sfda": _check_sfda, "gbc": _check_gbc, "ped": _check_ped}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("score", list(CHECKS))
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_finite_result_or_a_clear_error(implementation, score, case):
    lib = IMPLEMENTATIONS[implementation]
    features, labels = CASES[case]()
    with warnings.catch_warnings():
        # Overflow/underflow warnings on the way are allowed; what comes out is checked.
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            CHECKS[score](lib, features, labels)
        except PedrankValueError as error:
            message = str(error)
            assert ":" in message and len(message) > 30, message


def test_ped_without_overlap_returns_the_features_unchanged_and_no_steps():
    # Radius 0 or clusters far apart: the first step moves nothing (the authors divide 0 by 0).
    features, labels = _clusters(30, 4, 3)
    features = features + labels[:, None] * 100.0
    for lib in IMPLEMENTATIONS.values():
        result = lib.ped(features, labels)
        assert result.steps == 0 and result.movements == []
        np.testing.assert_array_equal(result.features, features)


def test_ped_counts_coincident_class_means_instead_of_dividing_by_zero():
    features, labels = _coincident_class_means()
    for lib in IMPLEMENTATIONS.values():
        result = lib.ped(features, labels)
        assert result.coincident_pairs == 1
        assert result.steps == 0
        np.testing.assert_array_equal(result.features, features)


def test_one_sample_class_takes_part_in_every_score():
    # The singleton class must count (not be dropped): moving its sample changes the score.
    features, labels = _one_sample_class()
    moved = features.copy()
    moved[0] += 5.0
    for lib in IMPLEMENTATIONS.values():
        for score in (lib.logme, lib.sfda, lib.gbc):
            assert score(features, labels) != score(moved, labels)
