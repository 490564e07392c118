"""LEEP and NCE: hand-computed cases, fast-vs-reference parity, invariances, validation."""

import math

import numpy as np
import pytest

import pedrank
from pedrank import PedrankValueError
from pedrank.reference.leep import leep as reference_leep
from pedrank.reference.nce import nce as reference_nce
from pedrank.scores.leep import leep
from pedrank.scores.nce import nce


def random_probabilities(n_samples, n_source, seed):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(n_source, 0.3), size=n_samples), rng.integers(0, 4, n_samples)


def test_leep_perfect_transfer_is_zero():
    labels = np.array([0, 1, 2, 0, 1, 2, 2])
    # the source classes are a renaming of the target classes
    theta = np.eye(3)[(labels + 1) % 3]
    assert leep(theta, labels) == pytest.approx(0.0, abs=1e-12)


def test_leep_uninformative_source_is_log_one_over_c():
    # Two source outputs, each taken by half of every class: they say nothing about the target class.
    labels = np.repeat(np.arange(4), 6)
    first, second = np.full(7, 1 / 7), np.arange(1.0, 8.0) / 28
    theta = np.where((np.arange(24) % 2 == 0)[:, None], first, second)
    assert leep(theta, labels) == pytest.approx(math.log(1 / 4), rel=1e-12)
    # A source whose output never changes is a dead model: refused, not scored
    with pytest.raises(PedrankValueError, match="source_probabilities: carry no information"):
        leep(np.full((24, 7), 1 / 7), labels)


def test_leep_hand_computed():
    theta = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    labels = np.array([0, 0, 1])
    # P(y|z): y=0 -> (1, 1/3), y=1 -> (0, 2/3); EEP = (1, 2/3, 2/3)
    assert leep(theta, labels) == pytest.approx(2 / 3 * math.log(2 / 3), rel=1e-12)
    assert reference_leep(theta, labels) == pytest.approx(2 / 3 * math.log(2 / 3), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leep_matches_reference(seed):
    theta, labels = random_probabilities(60, 9, seed)
    np.testing.assert_allclose(leep(theta, labels), reference_leep(theta, labels), rtol=1e-8)


def test_leep_unused_source_class_is_ignored():
    theta, labels = random_probabilities(30, 5, 3)
    padded = np.hstack([theta, np.zeros((30, 2))])
    np.testing.assert_allclose(leep(padded, labels), leep(theta, labels), rtol=1e-12)


def test_leep_invariant_to_relabelling_and_source_order():
    theta, labels = random_probabilities(40, 6, 4)
    names = np.array(["d", "a", "c", "b"])[labels]
    expected = leep(theta, labels)
    np.testing.assert_allclose(leep(theta[:, ::-1], names), expected, rtol=1e-12)


def test_leep_does_not_modify_inputs():
    theta, labels = random_probabilities(30, 5, 5)
    theta_before, labels_before = theta.copy(), labels.copy()
    leep(theta, labels)
    np.testing.assert_array_equal(theta, theta_before)
    np.testing.assert_array_equal(labels, labels_before)


def test_leep_accepts_float32_rounding():
    theta, labels = random_probabilities(50, 300, 6)
    single = theta.astype(np.float32)
    np.testing.assert_allclose(leep(single, labels), leep(single.astype(np.float64), labels), rtol=1e-12)


@pytest.mark.parametrize(
    "theta, message",
    [
        (np.array([[1.2, -0.2], [0.5, 0.5], [0.5, 0.5]]), "negative"),
        (np.array([[0.9, 0.0], [0.5, 0.5], [0.5, 0.5]]), "sum to 1"),
        (np.array([0.5, 0.5, 0.5]), "2-D"),
    ],
)
def test_leep_rejects_non_probabilities(theta, message):
    with pytest.raises(ValueError, match=message):
        leep(theta, np.array([0, 1, 1]))


def test_nce_hand_computed_table():
    source = np.array([0, 0, 1, 1, 1, 0])
    target = np.array([0, 0, 1, 1, 0, 1])
    # z=0 -> targets (0, 0, 1); z=1 -> targets (1, 1, 0)
    expected = 2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)
    assert nce(source, target) == pytest.approx(expected, rel=1e-12)
    assert reference_nce(source, target) == pytest.approx(expected, rel=1e-12)


def test_nce_extremes():
    target = np.array([0, 1, 1, 2, 2, 2])
    assert nce(target * 7 + 1, target) == pytest.approx(0.0, abs=1e-15)
    entropy = -sum(p * math.log(p) for p in (1 / 6, 2 / 6, 3 / 6))
    assert nce(np.zeros(6, dtype=int), target) == pytest.approx(-entropy, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_nce_matches_reference_and_is_invariant_to_relabelling(seed):
    rng = np.random.default_rng(seed)
    source, target = rng.integers(0, 6, 80), rng.integers(0, 3, 80)
    expected = reference_nce(source, target)
    np.testing.assert_allclose(nce(source, target), expected, rtol=1e-8)
    renamed_source = np.array(list("uvwxyz"))[::-1][source]
    renamed_target = (10 - 3 * target).astype(float)
    np.testing.assert_allclose(nce(renamed_source, renamed_target), expected, rtol=1e-12)


def test_nce_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="labels"):
        nce(np.array([0, 1, 1]), np.array([0, 1]))


def test_source_output_scores_rank_a_pool_through_the_common_interface():
    rng = np.random.default_rng(3)
    labels = np.arange(90) % 3
    informative = labels * 2 + rng.integers(0, 2, 90)  # each source class implies one target class
    noise = rng.integers(0, 6, 90)
    table = pedrank.rank({"informative": (informative, labels), "noise": (noise, labels)}, metric="nce")
    assert table.models == ["informative", "noise"]
    assert table[0].score == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="backend"):
        pedrank.nce(noise, labels, backend="cupy")
