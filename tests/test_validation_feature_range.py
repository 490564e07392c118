"""The accepted range of the features' largest |value|, [SMALLEST_FEATURE, LARGEST_FEATURE] = [1e-150, 1e150], holds
for NumPy arrays and torch tensors alike, with one wording (pedrank/_engine/validation.py).

Beyond 1e150 sums of squares overflow float64 (a torch tensor there used to rank noise first, give LEAD chance level
and LogME a raw LinAlgError); below 1e-150 squares approach float64's underflow (k-NN gave 0.24 instead of 1.0 at
1e-200, so a good model ranked below noise). All-zero and constant features stay a dead model
(UninformativeFeaturesError), whatever their scale.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import pedrank
from pedrank._engine import validation
from pedrank._engine.validation import LARGEST_FEATURE, SMALLEST_FEATURE, check_features

TOO_LARGE = r"found \|value\| up to .*values beyond 1e\+150 overflow float64 sums of squares\. Rescale the features"
TOO_SMALL = r"found \|value\| only up to .*below 1e-150 underflow float64 squares.*Rescale the features"
DEAD = r"carry no information: all \d+ rows are identical"


def _problem(seed=0, n=120, d=8, c=4):
    """Well-separated classes (k-NN 1.0 at an ordinary scale) and a noise model of the same shape."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    good = rng.normal(size=(n, d)) + 3.0 * labels[:, None]
    noise = rng.normal(size=(n, d))
    return good, noise, labels


def _quietly(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return call()


def _message(call):
    with pytest.raises(pedrank.PedrankValueError, match=r".") as info:
        call()
    return str(info.value)


def test_both_limits_are_exported():
    assert {"LARGEST_FEATURE", "SMALLEST_FEATURE"} <= set(validation.__all__)
    assert (SMALLEST_FEATURE, LARGEST_FEATURE) == (1e-150, 1e150)


# ------------------------------------------------------------------------------------------------ too large


def test_torch_features_beyond_the_largest_are_refused_like_numpy():
    torch = pytest.importorskip("torch")
    good, _, _ = _problem()
    features = good.copy()
    features[7, 2] = 3e160  # the only value beyond the limit: the message names its row
    with pytest.raises(pedrank.PedrankValueError, match=r"^model X: found \|value\| up to 3e\+160 \(first in row 7\)"):
        check_features(features, name="model X")
    expected = _message(lambda: check_features(features, name="model X"))
    with pytest.raises(pedrank.PedrankValueError, match=TOO_LARGE) as info:
        check_features(torch.from_numpy(features), name="model X")
    assert str(info.value) == expected
    # a whole tensor at that scale, every entry beyond: row 0
    with pytest.raises(pedrank.PedrankValueError, match=r"features: found \|value\| up to .*\(first in row 0\)"):
        check_features(torch.from_numpy(good * 1e160))


@pytest.mark.parametrize("score", [pedrank.logme, pedrank.lead, pedrank.knn])
def test_scores_refuse_a_torch_tensor_beyond_the_largest(score):
    torch = pytest.importorskip("torch")
    good, _, labels = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=TOO_LARGE):
        _quietly(lambda: score(torch.from_numpy(good * 1e160), labels))


def test_ped_refuses_a_torch_tensor_beyond_the_largest():
    torch = pytest.importorskip("torch")
    good, _, labels = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=TOO_LARGE):
        _quietly(lambda: pedrank.ped(torch.from_numpy(good * 1e160), labels))


@pytest.mark.parametrize("metric", ["knn", "logme"])
def test_rank_gives_a_torch_tensor_beyond_the_largest_an_error_row(metric):
    torch = pytest.importorskip("torch")
    good, noise, labels = _problem()
    pool = {"huge": torch.from_numpy(good * 1e160), "noise": noise, "good": good}
    table = _quietly(lambda: pedrank.rank(pool, labels, metric=metric, errors="row"))
    assert table.models[0] == "good" and table.models[-1] == "huge", table
    assert np.isnan(table.scores["huge"]) and set(table.errors) == {"huge"}, table.errors
    assert re.search(r"model 'huge': features: " + TOO_LARGE, table.errors["huge"]), table.errors["huge"]
    with pytest.raises(pedrank.PedrankValueError, match=r"model 'huge': features: found \|value\| up to"):
        _quietly(lambda: pedrank.rank(pool, labels, metric=metric))


# ------------------------------------------------------------------------------------------------ too small


def test_tiny_features_are_refused_naming_the_argument_and_the_value():
    good, _, _ = _problem()
    tiny = good * 1e-200
    peak = float(np.abs(tiny).max())
    message = _message(lambda: check_features(tiny, name="source"))
    assert message.startswith(f"source: found |value| only up to {peak:.3g};"), message
    assert "below 1e-150" in message and "divide by their standard deviation" in message, message


def test_tiny_torch_features_are_refused_like_numpy():
    torch = pytest.importorskip("torch")
    good, _, _ = _problem()
    expected = _message(lambda: check_features(good * 1e-200, name="model X"))
    with pytest.raises(pedrank.PedrankValueError, match=r"^model X: " + TOO_SMALL) as info:
        check_features(torch.from_numpy(good * 1e-200), name="model X")
    assert str(info.value) == expected


@pytest.mark.parametrize("score", [pedrank.knn, pedrank.lead, pedrank.itm, pedrank.h_score, pedrank.logme])
def test_scores_refuse_tiny_features_instead_of_scoring_chance(score):
    # k-NN gave 0.24 (chance) instead of 1.0 at 1e-200, H-score 0.0
    good, _, labels = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=r"^features: " + TOO_SMALL):
        _quietly(lambda: score(good * 1e-200, labels))


def test_rank_puts_a_tiny_model_in_an_error_row_not_below_noise_silently():
    good, noise, labels = _problem()
    table = _quietly(lambda: pedrank.rank({"tiny": good * 1e-200, "noise": noise, "good": good}, labels,
                                          metric="knn", errors="row"))
    assert table.models == ["good", "noise", "tiny"], table
    assert np.isnan(table.scores["tiny"]) and set(table.errors) == {"tiny"}, table.errors
    assert re.search(r"model 'tiny': features: " + TOO_SMALL, table.errors["tiny"]), table.errors["tiny"]


def test_the_limit_itself_is_accepted_and_the_next_float_below_is_not():
    good, _, _ = _problem()
    features = good / np.abs(good).max() * 0.5e-150
    features[3, 1] = SMALLEST_FEATURE
    assert check_features(features) is features
    features[3, 1] = np.nextafter(SMALLEST_FEATURE, 0.0)
    with pytest.raises(pedrank.PedrankValueError, match=r"^features: found \|value\| only up to 1e-150;"):
        check_features(features)


def test_features_at_the_1e150_small_scale_are_still_accepted_and_scored():
    good, _, labels = _problem()
    features = np.random.default_rng(5).normal(size=(120, 8)) * 1e-150
    assert np.abs(features).max() > SMALLEST_FEATURE
    assert check_features(features) is features
    assert pedrank.knn(good * 1e-150, labels) == pedrank.knn(good, labels) == 1.0


def test_torch_features_at_the_1e150_small_scale_are_still_accepted():
    torch = pytest.importorskip("torch")
    good, _, labels = _problem()
    tensor = torch.from_numpy(np.random.default_rng(5).normal(size=(120, 8)) * 1e-150)
    assert check_features(tensor) is tensor
    assert pedrank.knn(torch.from_numpy(good * 1e-150), labels) == 1.0


def test_tiny_values_are_fine_where_nothing_is_scored():
    # informative=False: a few rows through a fitted linear map; nothing squares them
    row = np.full((1, 8), 1e-200)
    assert check_features(row, min_samples=1, informative=False) is row


# ------------------------------------------------------------------------------------------------ dead models


@pytest.mark.parametrize("value", [0.0, 1e-200])
def test_constant_features_are_a_dead_model_whatever_their_scale(value):
    features = np.full((60, 5), value)
    with pytest.raises(pedrank.UninformativeFeaturesError, match=DEAD):
        check_features(features)
    with pytest.raises(pedrank.UninformativeFeaturesError, match=r"^features: " + DEAD):
        pedrank.knn(features, np.arange(60) % 3)


@pytest.mark.parametrize("value", [0.0, 1e-200])
def test_constant_torch_features_are_a_dead_model_whatever_their_scale(value):
    torch = pytest.importorskip("torch")
    with pytest.raises(pedrank.UninformativeFeaturesError, match=DEAD):
        check_features(torch.full((60, 5), value, dtype=torch.float64))
