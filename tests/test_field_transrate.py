"""TransRate: hand-computed coding rates, parity with the reference, edge cases."""

import math
import re

import numpy as np
import pytest

from pedrank.reference.transrate import transrate as reference_transrate
from pedrank.scores.transrate import transrate

# Two classes on orthogonal axes: Z^T Z = diag(2, 8), class 0 diag(2, 0), class 1 diag(0, 8).
AXES = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
AXES_LABELS = np.array([0, 0, 1, 1])


def test_hand_computed_paper_normalisation():
    # d/(n eps) = 2/4: log det diag(2, 5); classes 2/2: log 3 and log 9, weights 1/2.
    expected = 0.5 * math.log(10) - 0.75 * math.log(3)
    assert transrate(AXES, AXES_LABELS, eps=1.0) == pytest.approx(expected, rel=1e-12)
    assert reference_transrate(AXES, AXES_LABELS, eps=1.0) == pytest.approx(expected, rel=1e-12)


def test_hand_computed_authors_normalisation():
    # 1/(n eps) = 1/4: log det diag(1.5, 3); classes 1/2: log 2 and log 5, averaged.
    expected = 0.5 * math.log(4.5) - 0.25 * math.log(10)
    assert transrate(AXES, AXES_LABELS, eps=1.0, normalization="authors") == pytest.approx(expected, rel=1e-12)


def test_hand_computed_unbalanced_single_sample_class():
    features = np.array([[1.0], [1.0], [1.0], [-3.0]])
    labels = np.array([0, 0, 0, 1])
    expected = 5 / 8 * math.log(2) - 1 / 8 * math.log(10)
    assert transrate(features, labels, eps=1.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", [(90, 6), (30, 45)])
@pytest.mark.parametrize("normalization", ["paper", "authors"])
def test_matches_reference(shape, normalization):
    rng = np.random.default_rng(shape[1])
    labels = np.arange(shape[0]) % 3
    features = rng.normal(size=shape) + rng.normal(scale=2, size=(3, shape[1]))[labels]
    np.testing.assert_allclose(
        transrate(features, labels, normalization=normalization),
        reference_transrate(features, labels, normalization=normalization),
        rtol=1e-8,
    )


def test_more_informative_features_score_higher():
    rng = np.random.default_rng(1)
    labels = np.arange(200) % 4
    noise = rng.normal(size=(200, 5))
    separated = noise + 5 * np.eye(4, 5)[labels]
    assert transrate(separated, labels) > transrate(noise, labels) + 1


def test_huge_and_tiny_features_stay_finite():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(40, 8))
    labels = np.arange(40) % 2
    for scale in (1e-6, 1e6):
        assert np.isfinite(transrate(features * scale, labels))


def test_invariant_to_relabelling_and_order_and_no_mutation():
    rng = np.random.default_rng(3)
    features, labels = rng.normal(size=(30, 4)), np.arange(30) % 3
    before = features.copy()
    expected = transrate(features, labels)
    order = rng.permutation(30)
    np.testing.assert_allclose(transrate(features[order], (labels * -2.5)[order]), expected, rtol=1e-10)
    np.testing.assert_array_equal(features, before)


@pytest.mark.parametrize(("options", "message"), [
    ({"eps": 0.0}, "eps: expected a finite number > 0, found 0.0"),
    ({"eps": -1.0}, "eps: expected a finite number > 0, found -1.0"),
    ({"normalization": "mcr2"}, "normalization: expected one of ('paper', 'authors'), found 'mcr2'"),
])
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        transrate(AXES, AXES_LABELS, **options)
