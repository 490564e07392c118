"""pedrank.evaluate: the ranking metrics the transferability papers report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pedrank.evaluate import evaluate
from pedrank.rank import RankRecord, RankTable


def _random_case(n_models, seed):
    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(n_models)]
    scores = dict(zip(names, rng.normal(size=n_models)))
    accuracies = dict(zip(names, rng.uniform(50, 95, size=n_models)))
    return scores, accuracies


@pytest.mark.parametrize("seed", range(5))
def test_correlations_are_scipys_with_its_defaults(seed):
    scores, accuracies = _random_case(9, seed)
    result = evaluate(scores, accuracies)
    x = np.array(list(scores.values()))
    y = np.array([accuracies[m] for m in scores])
    assert result.weighted_tau == pytest.approx(stats.weightedtau(x, y)[0], abs=1e-15)
    assert result.kendall_tau == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-15)
    assert result.pearson == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)


def test_top_k_relative_accuracy_by_hand():
    scores = {"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.5}
    accuracies = {"a": 70.0, "b": 80.0, "c": 100.0, "d": 90.0}
    result = evaluate(scores, accuracies, top_k=(1, 2, 3, 4, 10))
    # best-scored first: a(70), b(80), d(90), c(100)
    assert result.top_k_relative_accuracy == pytest.approx({1: 0.7, 2: 0.8, 3: 0.9, 4: 1.0, 10: 1.0})
    assert result.models == ("a", "b", "d", "c")
    flat = result.to_dict()
    assert flat["top1_relative_accuracy"] == pytest.approx(0.7)
    assert flat["n_models"] == 4


def test_a_perfect_ranking_scores_one_and_a_reversed_one_minus_one():
    accuracies = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    same = evaluate({"a": 10, "b": 20, "c": 30, "d": 40}, accuracies)
    reversed_ = evaluate({"a": 40, "b": 30, "c": 20, "d": 10}, accuracies)
    assert same.weighted_tau == pytest.approx(1.0) and same.kendall_tau == pytest.approx(1.0)
    assert reversed_.weighted_tau == pytest.approx(-1.0) and reversed_.kendall_tau == pytest.approx(-1.0)
    assert reversed_.top_k_relative_accuracy[1] == pytest.approx(0.25)


def test_extra_ground_truth_models_are_ignored():
    scores, accuracies = _random_case(5, 1)
    more = dict(accuracies, unscored=99.0)
    assert evaluate(scores, more) == evaluate(scores, accuracies)


def test_missing_models_are_listed():
    scores, accuracies = _random_case(5, 2)
    del accuracies["m1"], accuracies["m3"]
    with pytest.raises(ValueError) as info:
        evaluate(scores, accuracies)
    message = str(info.value)
    assert "m1" in message and "m3" in message and "2 scored model" in message


def test_nan_accuracy_counts_as_missing_and_nan_score_is_refused():
    with pytest.raises(ValueError, match="'b'"):
        evaluate({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": math.nan})
    with pytest.raises(ValueError, match="not finite"):
        evaluate({"a": 1.0, "b": math.nan}, {"a": 1.0, "b": 2.0})


def test_too_few_models_and_bad_k():
    with pytest.raises(ValueError, match="at least 2"):
        evaluate({"a": 1.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="top_k"):
        evaluate({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}, top_k=(0,))


def test_accepts_a_rank_table_and_records():
    table = RankTable([RankRecord("b", 2.0, 0.1), RankRecord("a", 1.0, 0.1), RankRecord("c", 0.5, 0.1)])
    accuracies = {"a": 3.0, "b": 2.0, "c": 1.0}
    expected = evaluate({"a": 1.0, "b": 2.0, "c": 0.5}, accuracies)
    assert evaluate(table, accuracies).weighted_tau == pytest.approx(expected.weighted_tau)
    records = [{"model": "a", "score": 1.0}, {"model": "b", "score": 2.0}, {"model": "c", "score": 0.5}]
    assert evaluate(records, accuracies).kendall_tau == pytest.approx(expected.kendall_tau)


def test_constant_scores_give_nan_pearson_not_an_error():
    result = evaluate({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 2.0, "c": 3.0})
    assert math.isnan(result.pearson)
    assert result.to_dict()["pearson"] is None
