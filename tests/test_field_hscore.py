"""H-score and regularised H-score: bounds, hand-computed cases, parity with the reference."""

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf

from conftest import blobs  # tests/ is on sys.path under pytest
from pedrank import PedrankValueError, _core
from pedrank.reference.hscore import h_score as reference_h_score
from pedrank.reference.hscore import regularized_h_score as reference_regularized_h_score
from pedrank.scores.hscore import h_score, ledoit_wolf_shrinkage, regularized_h_score


def test_h_score_hand_computed_one_dimension():
    features = np.array([[0.0], [2.0], [4.0], [6.0]])
    labels = np.array([0, 0, 1, 1])
    # between-class variance 4, total variance 5
    assert h_score(features, labels) == pytest.approx(0.8, rel=1e-12)
    assert reference_h_score(features, labels) == pytest.approx(0.8, rel=1e-12)


def test_h_score_bounds_and_random_features_near_zero():
    features, labels = blobs(300, 6, 4, 2.0, 0)
    score = h_score(features, labels)
    assert 0.5 < score <= min(6, 4 - 1) + 1e-9
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(2000, 5))
    assert 0 <= h_score(noise, rng.integers(0, 3, 2000)) < 0.05


@pytest.mark.parametrize("shape", [(80, 5), (40, 12), (12, 30)])
def test_h_scores_match_reference(shape):
    features, labels = blobs(*shape, 3, 2.0, sum(shape))
    np.testing.assert_allclose(h_score(features, labels), reference_h_score(features, labels), rtol=1e-8)
    np.testing.assert_allclose(
        regularized_h_score(features, labels), reference_regularized_h_score(features, labels), rtol=1e-8
    )


def test_h_score_singular_covariance_stays_bounded():
    features, labels = blobs(10, 40, 2, 2.0, 3)
    features = np.hstack([features, features[:, :5], np.ones((10, 3))])
    score = h_score(features, labels)
    assert np.isfinite(score) and -1e-9 <= score <= 1 + 1e-6


def test_constant_features_are_refused_and_unrelated_features_score_near_zero():
    # Constant features are a dead model (refused before H-score: its rounding noise used to score up to 1.3);
    # features unrelated to the labels score near 0.
    labels = np.arange(10) % 2
    for score in (h_score, regularized_h_score):
        with pytest.raises(PedrankValueError, match="carry no information"):
            score(np.ones((10, 3)), labels)
    unrelated = np.tile([[1.0, 2.0], [3.0, -1.0]], (6, 1))  # each class holds the same rows, a b a b a b
    labels = np.repeat([0, 1], 6)
    for score in (h_score, regularized_h_score):
        assert score(unrelated, labels) == pytest.approx(0.0, abs=1e-12)


def test_ledoit_wolf_shrinkage_matches_scikit_learn():
    features, _ = blobs(50, 8, 3, 2.0, 4)
    mean, covariance = _core.covariance(features)
    _, expected = ledoit_wolf(features)
    np.testing.assert_allclose(ledoit_wolf_shrinkage(features, mean, covariance), expected, rtol=1e-10)


def test_regularized_h_score_below_h_score_and_equal_in_one_dimension():
    features, labels = blobs(60, 10, 3, 0.5, 5)
    assert 0 < regularized_h_score(features, labels) <= h_score(features, labels)
    column = features[:, :1]
    np.testing.assert_allclose(regularized_h_score(column, labels), h_score(column, labels), rtol=1e-12)


def test_h_scores_invariant_to_relabelling_and_order_and_no_mutation():
    features, labels = blobs(60, 4, 3, 2.0, 6)
    before = features.copy()
    for score in (h_score, regularized_h_score):
        expected = score(features, labels)
        order = np.random.default_rng(0).permutation(60)
        names = np.array(["z", "x", "y"])[labels]
        np.testing.assert_allclose(score(features[order], names[order]), expected, rtol=1e-10)
    np.testing.assert_array_equal(features, before)


def test_h_score_float32_and_fortran_order():
    features, labels = blobs(50, 4, 2, 2.0, 7)
    single = features.astype(np.float32)
    expected = h_score(single.astype(np.float64), labels)
    np.testing.assert_allclose(h_score(single, labels), expected, rtol=1e-8)
    np.testing.assert_allclose(h_score(np.asfortranarray(single), labels), expected, rtol=1e-8)
