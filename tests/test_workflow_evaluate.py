"""pedrank.evaluate: the ranking metrics the transferability papers report."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from pedrank import PedrankValueError
from pedrank.workflow.entry import RankRecord
from pedrank.workflow.evaluate import TruthFileError, evaluate, read_baseline, read_truth
from pedrank.workflow.io import FeatureFileError
from pedrank.workflow.rank import RankTable
from test_cli_rank import run_cli  # tests/ is on sys.path under pytest's default import mode


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
    with pytest.raises(ValueError, match=r"accuracies has no value for 2 scored model\(s\)") as info:
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


def test_tied_scores_count_as_drawn_at_random_whatever_their_order():
    # A constant score used to get the accuracy of whichever model the caller listed first (1.0 or 0.78 here).
    accuracies = {"a": 0.9, "b": 0.8, "c": 0.7}
    for order in itertools.permutations(accuracies):
        result = evaluate(dict.fromkeys(order, 0.0), accuracies, top_k=(1, 2, 3))
        assert result.top_k_relative_accuracy == pytest.approx({1: 0.8 / 0.9, 2: (0.9 * 2 / 3 + 0.8 / 3) / 0.9,
                                                                3: 1.0})


def test_a_tie_across_the_kth_place_is_the_expectation_over_its_orders():
    rng = np.random.default_rng(7)
    scores = {"a": 3.0, "b": 2.0, "c": 2.0, "d": 2.0, "e": 1.0}
    accuracies = {m: float(v) for m, v in zip(scores, rng.uniform(0.5, 1.0, size=5))}
    tied = ["b", "c", "d"]
    for k in (1, 2, 3, 4, 5):
        # brute force: every order of the tied models, the best accuracy among the first k
        bests = []
        for order in itertools.permutations(tied):
            ranking = ["a", *order, "e"]
            bests.append(max(accuracies[m] for m in ranking[:k]))
        expected = np.mean(bests) / max(accuracies.values())
        assert evaluate(scores, accuracies, top_k=k).top_k_relative_accuracy[k] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("top_k", [[1.7], "3", [], True, [1, None], 2.0])
def test_top_k_that_is_not_integers_is_refused(top_k):
    with pytest.raises(PedrankValueError, match=r"^top_k: found .*; expected integers >= 1"):
        evaluate({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}, top_k=top_k)


def test_one_integer_top_k_is_a_list_of_one():
    result = evaluate({"a": 1.0, "b": 2.0, "c": 0.0}, {"a": 1.0, "b": 2.0, "c": 3.0}, top_k=2)
    assert result.top_k_relative_accuracy == pytest.approx({2: 2.0 / 3.0})


def test_scores_that_are_not_named_are_refused_naming_the_item():
    with pytest.raises(PedrankValueError, match=r"^scores: found an item 3.0 \(float\); expected a mapping"):
        evaluate([3.0, 2.0], {"a": 1.0, "b": 2.0})


def test_a_constant_ground_truth_is_refused_with_its_value_and_count():
    scores = {"a": 1.0, "b": 2.0, "c": 3.0}
    # only the scored models count: the unscored 'd' does not make the truth judge anything
    with pytest.raises(PedrankValueError, match="^accuracies.*all 3 values") as info:
        evaluate(scores, {"a": 80.0, "b": 80.0, "c": 80.0, "d": 95.0})
    message = str(info.value)
    assert message.startswith("accuracies")
    assert "all 3 values" in message and "equal 80" in message and "no ranking can be judged" in message
    # one differing scored model is enough to judge a ranking
    assert evaluate(scores, {"a": 80.0, "b": 80.0, "c": 81.0}).kendall_tau > 0


def test_a_constant_truth_read_from_a_file_names_the_file_and_column(tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("model,cifar10,dtd\na,0.9,0.7\nb,0.9,0.6\nc,0.9,0.5\n")
    truth = read_truth(path, "cifar10")
    with pytest.raises(PedrankValueError, match="'cifar10'.*all 3 values") as info:
        evaluate({"a": 1.0, "b": 2.0, "c": 3.0}, truth)
    message = str(info.value)
    assert str(path) in message and "'cifar10'" in message and "all 3 values" in message and "0.9" in message
    assert evaluate({"a": 1.0, "b": 2.0, "c": 3.0}, read_truth(path, "dtd")).kendall_tau == pytest.approx(-1.0)


def test_fractions_mixed_with_percentages_are_refused_naming_values_and_models():
    scores = {"a": 1.0, "b": 2.0, "c": 3.0}
    with pytest.raises(PedrankValueError, match=r"fractions \(a: 0\.8, c: 0\.9\)") as info:
        evaluate(scores, {"a": 0.80, "b": 85.0, "c": 0.9})
    message = str(info.value)
    assert "fractions (a: 0.8, c: 0.9)" in message and "percentages (b: 85)" in message
    assert "one scale" in message


@pytest.mark.parametrize("accuracies", [
    {"a": 0.0, "b": 1.0, "c": 0.5},  # 0 and 1 fit both scales
    {"a": 1.0, "b": 50.0, "c": 90.0},
    {"a": 0.0, "b": 100.0, "c": 42.5},
    {"a": 0.25, "b": 0.5, "c": 0.75},
])
def test_one_scale_with_zero_or_one_is_accepted(accuracies):
    scores = {"a": 3.0, "b": 1.0, "c": 2.0}
    result = evaluate(scores, accuracies)
    x = [scores[m] for m in scores]
    y = [accuracies[m] for m in scores]
    assert result.kendall_tau == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-15)


@pytest.mark.parametrize("value", [-0.5, 100.5, 250.0])
def test_accuracies_outside_0_100_are_refused(value):
    with pytest.raises(PedrankValueError, match=re.escape(f"c: {value:g} outside [0, 100]")):
        evaluate({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 50.0, "b": 60.0, "c": value})


# ------------------------------------------------------------------------------------ baselines


def test_a_baseline_is_judged_exactly_like_a_score():
    scores, accuracies = _random_case(8, 3)
    sizes = dict(zip(scores, np.random.default_rng(9).uniform(1e6, 1e8, size=8)))
    probe = dict(zip(scores, np.random.default_rng(10).uniform(40, 90, size=8)))
    result = evaluate(scores, accuracies, top_k=(1, 2), baselines={"params": sizes, "probe": probe})
    assert list(result.baselines) == ["params", "probe"]
    for name, values in (("params", sizes), ("probe", probe)):
        alone = evaluate(values, accuracies, top_k=(1, 2))
        assert result.baselines[name] == alone
        x = [values[m] for m in scores]
        y = [accuracies[m] for m in scores]
        assert alone.weighted_tau == pytest.approx(stats.weightedtau(x, y)[0], abs=1e-15)
    # the score's own metrics are those of an evaluation without baselines
    plain = evaluate(scores, accuracies, top_k=(1, 2))
    assert (result.weighted_tau, result.kendall_tau, result.top_k_relative_accuracy) == (
        plain.weighted_tau, plain.kendall_tau, plain.top_k_relative_accuracy)
    flat = result.to_dict()
    assert flat["baselines"]["params"]["kendall_tau"] == pytest.approx(result.baselines["params"].kendall_tau)
    assert flat["weighted_tau"] == plain.to_dict()["weighted_tau"] and "random" not in flat


def test_a_size_ordered_baseline_can_beat_the_score():
    # The point of baselines: a perfect size ordering against a poor score.
    accuracies = {"a": 60.0, "b": 70.0, "c": 80.0, "d": 90.0}
    result = evaluate({"a": 4, "b": 3, "c": 1, "d": 2}, accuracies, baselines={"params": {"a": 1, "b": 2, "c": 3,
                                                                                        "d": 4}})
    assert result.baselines["params"].kendall_tau == pytest.approx(1.0)
    assert result.kendall_tau < 0
    text = result.to_string()
    assert "params" in text.splitlines()[1] and f"{result.kendall_tau:.4f}" in text


def test_baselines_with_a_missing_or_bad_value_or_a_reserved_name_are_refused():
    scores = {"a": 1.0, "b": 2.0, "c": 3.0}
    accuracies = {"a": 1.0, "b": 2.0, "c": 3.0}
    with pytest.raises(PedrankValueError, match=r"baselines\['params'\] has no value for 1 scored model\(s\): \['b'\]"):
        evaluate(scores, accuracies, baselines={"params": {"a": 1.0, "c": 2.0, "x": 5.0}})
    with pytest.raises(PedrankValueError, match=r"not finite for model\(s\) \['c'\]"):
        evaluate(scores, accuracies, baselines={"params": {"a": 1.0, "b": 2.0, "c": math.inf}})
    for name in ("score", "random"):
        with pytest.raises(PedrankValueError, match=repr(name)):
            evaluate(scores, accuracies, baselines={name: scores})
    with pytest.raises(PedrankValueError, match="random_rankings"):
        evaluate(scores, accuracies, random_rankings=-1)


def _exact_random_top_k(y, k):
    """E[max of a uniformly random k-subset of y] / max(y), from the order statistics."""
    y = np.sort(np.asarray(y, dtype=float))
    n = y.shape[0]
    weights = np.array([math.comb(i, k - 1) for i in range(n)], dtype=float) / math.comb(n, k)
    return float(weights @ y / y[-1])


def test_random_rankings_match_their_exact_distribution():
    _, accuracies = _random_case(6, 4)
    scores = dict(zip(accuracies, range(6)))
    n_draws = 1000
    result = evaluate(scores, accuracies, top_k=(1, 2, 4), random_rankings=n_draws, seed=5)
    random = result.random
    assert random.permutations == n_draws and random.seed == 5
    # Kendall tau of a random ranking against distinct accuracies: mean 0, variance 2(2n+5)/(9n(n-1)).
    n = 6
    exact_std = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
    assert abs(random.mean["kendall_tau"]) < 4 * exact_std / math.sqrt(n_draws)
    assert random.std["kendall_tau"] == pytest.approx(exact_std, rel=0.1)
    # Top-k relative accuracy: the expected best of k random models.
    y = list(accuracies.values())
    for k in (1, 2, 4):
        spread = random.std[f"top{k}_relative_accuracy"]
        assert abs(random.mean[f"top{k}_relative_accuracy"] - _exact_random_top_k(y, k)) < 4 * spread / math.sqrt(
            n_draws) + 1e-12
    # Weighted tau: the mean over all 720 rankings, computed exhaustively.
    values = [stats.weightedtau(np.array(p, dtype=float), np.array(y))[0] for p in itertools.permutations(range(n))]
    assert abs(random.mean["weighted_tau"] - np.mean(values)) < 4 * np.std(values) / math.sqrt(n_draws)
    assert random.std["weighted_tau"] == pytest.approx(np.std(values), rel=0.1)


def test_random_rankings_are_deterministic_given_the_seed():
    scores, accuracies = _random_case(7, 6)
    first = evaluate(scores, accuracies, random_rankings=200, seed=11)
    assert evaluate(scores, accuracies, random_rankings=200, seed=11) == first
    other = evaluate(scores, accuracies, random_rankings=200, seed=12)
    assert other.random.mean["weighted_tau"] != first.random.mean["weighted_tau"]
    flat = first.to_dict()["random"]
    assert flat["permutations"] == 200 and flat["seed"] == 11
    assert flat["kendall_tau_mean"] == first.random.mean["kendall_tau"]
    assert flat["top3_relative_accuracy_std"] == first.random.std["top3_relative_accuracy"]
    assert "+-" in first.to_string() and "random (200 rankings)" in first.to_string()


def test_without_baselines_the_text_is_one_value_per_metric():
    scores, accuracies = _random_case(4, 7)
    lines = evaluate(scores, accuracies).to_string().splitlines()
    assert lines[0] == "4 models"
    assert [line.split()[0] for line in lines[1:]] == ["weighted_tau", "kendall_tau", "pearson",
                                                       "top1_relative_accuracy", "top3_relative_accuracy"]
    assert all(len(line.split()) == 2 for line in lines[1:])


def test_evaluate_does_not_mutate_its_inputs():
    scores, accuracies = _random_case(5, 8)
    sizes = dict(zip(scores, range(5)))
    copies = (dict(scores), dict(accuracies), dict(sizes))
    evaluate(scores, accuracies, baselines={"params": sizes}, random_rankings=10)
    assert (scores, accuracies, sizes) == copies


# ------------------------------------------------------------------------------------ truth files


def _write(path, text):
    path.write_text(text)
    return path


def test_a_plain_two_column_truth_file_is_read_whatever_its_header(tmp_path):
    plain = _write(tmp_path / "acc.csv", "model,accuracy\na,90.5\nb,80\nc,\n")
    for dataset in (None, "cifar10", "accuracy"):
        truth = read_truth(plain, dataset)
        assert truth.accuracies == {"a": 90.5, "b": 80.0} and truth.column == "accuracy" and truth.baselines == {}
    other_names = _write(tmp_path / "top1.csv", "name,top1,family\nx,0.7,cnn\ny,0.9,vit\n")
    truth = read_truth(other_names, "pets")
    assert truth.accuracies == {"x": 0.7, "y": 0.9} and truth.column == "top1"  # 'family' is not numeric


def test_the_per_dataset_layout_and_its_baseline_columns(tmp_path):
    path = _write(tmp_path / "truth.csv", "model,cifar10,dtd,params,source_accuracy,baseline_probe\n"
                                          "a,90.5,70,25.6e6,76.1,88\nb,80,,11.7e6,69.8,81\n")
    truth = read_truth(path, "dtd")
    assert truth.accuracies == {"a": 70.0} and truth.column == "dtd"
    assert truth.baselines == {"params": {"a": 25.6e6, "b": 11.7e6}, "source_accuracy": {"a": 76.1, "b": 69.8},
                               "probe": {"a": 88.0, "b": 81.0}}
    assert read_truth(path, "cifar10").accuracies == {"a": 90.5, "b": 80.0}
    # baseline columns never count as accuracies: with one dataset column the file is plain
    single = _write(tmp_path / "single.csv", "model,acc,params\na,1,3\nb,2,4\n")
    assert read_truth(single, "cifar10").column == "acc"


@pytest.mark.parametrize("dataset", [None, "pets"])
def test_an_ambiguous_truth_file_names_the_file_and_its_columns(tmp_path, dataset):
    path = _write(tmp_path / "truth.csv", "model,cifar10,dtd\na,90,70\nb,80,60\n")
    with pytest.raises(TruthFileError, match=re.escape("['model', 'cifar10', 'dtd']")) as info:
        read_truth(path, dataset)
    message = str(info.value)
    assert message.startswith(str(path)) and "['model', 'cifar10', 'dtd']" in message
    assert ("'pets'" in message) == (dataset == "pets")
    assert isinstance(info.value, PedrankValueError) and isinstance(info.value, FeatureFileError)


def test_truth_files_that_cannot_be_used(tmp_path):
    cases = {
        "model,notes\na,good\n": "no numeric accuracy column",
        "model,accuracy\na,90\na,91\n": "'a' appears again (first on line 2)",
        "model,cifar10,dtd\na,x,1\n": "line 2: cifar10 is not a number",
        "model\na\n": "at least one value column",
    }
    for index, (text, expected) in enumerate(cases.items()):
        path = _write(tmp_path / f"t{index}.csv", text)
        with pytest.raises(TruthFileError, match=re.escape(expected)):
            read_truth(path, "cifar10")
    with pytest.raises(TruthFileError, match="no such file"):
        read_truth(tmp_path / "absent.csv")


def test_a_single_column_named_after_a_dataset_is_not_read_as_another(tmp_path):
    """``model,cifar10`` holds cifar10's accuracies: asked for dtd it is refused (it used to be read as dtd's)."""
    path = _write(tmp_path / "tone.csv", "model,cifar10\na,90\nb,80\nc,85\n")
    with pytest.raises(TruthFileError, match=r"tone\.csv: no column is named 'dtd', and the only accuracy column, "
                                             r"'cifar10', is named after something else") as info:
        read_truth(path, "dtd")
    assert "rename the column to 'dtd'" in str(info.value)
    for dataset in (None, "cifar10"):  # no dataset asked for, or its own
        assert read_truth(path, dataset).accuracies == {"a": 90.0, "b": 80.0, "c": 85.0}
    # a generic name serves any dataset; a dataset's name with generic words serves that dataset only
    for column in ("accuracy", "acc", "top1", "test_accuracy", "Top-1 acc", "finetuned_accuracy"):
        generic = _write(tmp_path / "generic.csv", f"model,{column}\na,0.9\nb,0.8\n")
        assert read_truth(generic, "dtd").column == column
    named = _write(tmp_path / "named.csv", "model,dtd_acc\na,0.9\nb,0.8\n")
    assert read_truth(named, "dtd").accuracies == {"a": 0.9, "b": 0.8}
    with pytest.raises(TruthFileError, match="the only accuracy column, 'dtd_acc'"):
        read_truth(named, "cifar10")


@pytest.mark.parametrize("cell", ["-", "n/a", "N/A", "\u2014", "?"])
def test_a_placeholder_cell_is_a_missing_value_and_never_hides_its_column(tmp_path, cell):
    """``a,90,-`` in ``model,cifar10,dtd``: dtd used to count as non-numeric and vanish, so that no dataset, or
    pets, silently got cifar10's column."""
    path = _write(tmp_path / "t.csv", f"model,cifar10,dtd\na,90,{cell}\nb,80,70\nc,85,60\n")
    for dataset in (None, "pets"):
        with pytest.raises(TruthFileError, match=re.escape("several accuracy columns ['cifar10', 'dtd']")):
            read_truth(path, dataset)
    assert read_truth(path, "dtd").accuracies == {"b": 70.0, "c": 60.0}  # a: no value, as an empty cell
    assert read_truth(path, "cifar10").accuracies == {"a": 90.0, "b": 80.0, "c": 85.0}
    with pytest.raises(PedrankValueError, match=r"no value for 1 scored model\(s\): \['a'\]"):
        evaluate({"a": 1.0, "b": 2.0, "c": 3.0}, read_truth(path, "dtd"))


def test_other_text_in_a_dataset_column_is_refused_not_dropped(tmp_path):
    path = _write(tmp_path / "t.csv", "model,cifar10,dtd\na,90,pending\nb,80,70\n")
    with pytest.raises(TruthFileError, match=re.escape("several accuracy columns ['cifar10', 'dtd']")):
        read_truth(path, "pets")
    with pytest.raises(TruthFileError, match=re.escape("line 2: dtd is not a number ('pending')")):
        read_truth(path, "dtd")
    notes = _write(tmp_path / "notes.csv", "model,cifar10,family\na,90,cnn\nb,80,vit\n")  # no number: notes
    assert read_truth(notes).column == "cifar10"


def test_percent_cells_are_percentages(tmp_path):
    marked = _write(tmp_path / "marked.csv", "model,cifar10,dtd\na,80%,1\nb, 85.5 % ,2\nc,90%,3\n")
    plain = _write(tmp_path / "plain.csv", "model,cifar10,dtd\na,80,1\nb,85.5,2\nc,90,3\n")
    truth = read_truth(marked, "cifar10")
    assert truth.accuracies == read_truth(plain, "cifar10").accuracies == {"a": 80.0, "b": 85.5, "c": 90.0}
    assert truth.percent == {"a", "b", "c"}
    scores = {"a": 2.0, "b": 3.0, "c": 1.0}
    assert evaluate(scores, truth) == evaluate(scores, read_truth(plain, "cifar10"))
    # a plain layout with % cells: the column is numeric
    assert read_truth(_write(tmp_path / "one.csv", "model,top1\nx,70%\ny,75%\n")).accuracies == {"x": 70, "y": 75}


def test_percent_cells_mixed_with_fractions_are_refused(tmp_path):
    path = _write(tmp_path / "mixed.csv", "model,accuracy\na,80%\nb,0.8\nc,0.9\n")
    with pytest.raises(TruthFileError, match=r"fractions \(b: 0\.8, c: 0\.9\)") as info:
        read_truth(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "'accuracy'" in message
    assert "fractions (b: 0.8, c: 0.9)" in message and "percentages (a: 80%)" in message
    bare = _write(tmp_path / "bare.csv", "model,accuracy\na,0.80\nb,85\nc,0.9\n")
    with pytest.raises(TruthFileError, match=r"fractions \(a: 0\.8, c: 0\.9\) and percentages \(b: 85\)"):
        read_truth(bare)


def test_a_percentage_below_one_is_written_with_its_sign(tmp_path):
    # 0.5% beside 85 and 90 is one scale; a bare 0.5 there would be a fraction
    path = _write(tmp_path / "low.csv", "model,accuracy\na,0.5%\nb,85\nc,90\n")
    truth = read_truth(path)
    assert truth.accuracies == {"a": 0.5, "b": 85.0, "c": 90.0} and truth.percent == {"a"}
    scores = {"a": 1.0, "b": 2.0, "c": 3.0}
    assert evaluate(scores, truth).kendall_tau == pytest.approx(1.0)
    # the plain dict has lost the sign, so its 0.5 is a fraction again
    with pytest.raises(PedrankValueError, match="mixes fractions"):
        evaluate(scores, truth.accuracies)
    with pytest.raises(TruthFileError, match=r"line 3: accuracy is not a number \('%'\).*85%"):
        read_truth(_write(tmp_path / "sign.csv", "model,accuracy,dtd\na,80%,1\nb,%,2\n"), "accuracy")


def test_read_baseline_by_name_or_single_column(tmp_path):
    assert read_baseline(_write(tmp_path / "s.csv", "name,size\na,1\nb,2\n"), "params") == {"a": 1.0, "b": 2.0}
    both = _write(tmp_path / "b.csv", "model,params,source_accuracy\na,1,70\nb,2,60\n")
    assert read_baseline(both, "source_accuracy") == {"a": 70.0, "b": 60.0}
    with pytest.raises(TruthFileError, match=r"no column 'probe' and 2 numeric columns"):
        read_baseline(both, "probe")


# ------------------------------------------------------------------------------------ command line


def _pool_files(tmp_path):
    """A rank table written as CSV, a plain truth CSV and a sizes CSV; returns paths and the values."""
    table = RankTable([RankRecord("vit", 2.5, 0.1), RankRecord("resnet", 1.5, 0.1), RankRecord("convnext", 1.0, 0.1),
                       RankRecord("mobilenet", -0.5, 0.1)], metric="sfda", dataset="cifar10")
    accuracies = {"resnet": 91.25, "vit": 93.5, "convnext": 94.0, "mobilenet": 85.75}
    sizes = {"resnet": 25.6e6, "vit": 86.6e6, "convnext": 88.6e6, "mobilenet": 3.5e6}
    scores = tmp_path / "scores.csv"
    table.to_csv(scores)
    truth = tmp_path / "accuracies.csv"
    with truth.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "accuracy"])
        writer.writerows(accuracies.items())
    size_file = tmp_path / "sizes.csv"
    size_file.write_text("model,params\n" + "".join(f"{m},{v!r}\n" for m, v in sizes.items()))
    return scores, truth, size_file, table, accuracies, sizes


def test_cli_round_trip_of_csv_files_equals_the_python_api(tmp_path):
    scores, truth, size_file, table, accuracies, sizes = _pool_files(tmp_path)
    done = run_cli("evaluate", scores, "--truth", truth, "--baseline", f"params={size_file}", "--random", "300",
                   "--seed", "3", "--json", "-")
    assert done.returncode == 0, done.stderr
    expected = evaluate(table, accuracies, baselines={"params": sizes}, random_rankings=300, seed=3).to_dict()
    got = json.loads(done.stdout)
    assert got["baselines"]["params"] == pytest.approx(expected["baselines"]["params"], rel=1e-12)
    assert got["random"] == pytest.approx(expected["random"], rel=1e-12)
    assert {k: v for k, v in got.items() if k not in ("baselines", "random")} == pytest.approx(
        {k: v for k, v in expected.items() if k not in ("baselines", "random")}, rel=1e-12)


def test_cli_text_shows_truth_column_baselines_and_random(tmp_path):
    scores, truth, size_file, table, accuracies, sizes = _pool_files(tmp_path)
    with_params = tmp_path / "truth_params.csv"
    with_params.write_text("model,accuracy,params\n" + "".join(f"{m},{accuracies[m]},{sizes[m]}\n" for m in sizes))
    done = run_cli("evaluate", scores, "--truth", with_params)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "column 'accuracy'" in lines[0] and "(dataset cifar10)" in lines[0]
    assert lines[2].split() == ["score", "params", "random", "(1000", "rankings)"]
    result = evaluate(table, accuracies, baselines={"params": sizes}, random_rankings=1000)
    row = next(line for line in lines if line.startswith("kendall_tau")).split()
    assert row[1] == f"{result.kendall_tau:.4f}" and row[2] == f"{result.baselines['params'].kendall_tau:.4f}"
    assert row[3:] == [f"{result.random.mean['kendall_tau']:.4f}", "+-", f"{result.random.std['kendall_tau']:.4f}"]
    off = run_cli("evaluate", scores, "--truth", truth, "--random", "0")
    assert off.returncode == 0 and "random" not in off.stdout and "+-" not in off.stdout


def test_cli_reads_percent_cells_like_plain_percentages(tmp_path):
    scores, truth, _, table, accuracies, _ = _pool_files(tmp_path)
    marked = _write(tmp_path / "marked.csv", "model,accuracy\n" + "".join(f"{m},{a}%\n" for m, a in accuracies.items()))
    done = run_cli("evaluate", scores, "--truth", marked, "--random", "0", "--json", "-")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == pytest.approx(evaluate(table, accuracies).to_dict(), rel=1e-12)


def test_cli_refuses_a_one_column_truth_of_another_dataset(tmp_path):
    """The scores are dtd's, the truth file's only column cifar10's: exit 2 naming both (it used to judge dtd's
    scores against cifar10's accuracies and exit 0)."""
    scores = tmp_path / "s_dtd.json"
    records = [{"model": m, "score": s, "dataset": "dtd"} for m, s in (("a", 1), ("b", 3), ("c", 2))]
    scores.write_text(json.dumps(records))
    truth = _write(tmp_path / "tone.csv", "model,cifar10\na,90\nb,80\nc,85\n")
    done = run_cli("evaluate", scores, "--truth", truth, "--random", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "tone.csv" in done.stderr and "'cifar10'" in done.stderr and "'dtd'" in done.stderr
    assert run_cli("evaluate", scores, "--truth", truth, "--dataset", "cifar10", "--random", "0").returncode == 0


def test_cli_refuses_an_ambiguous_truth_file_and_a_bad_baseline_flag(tmp_path):
    scores, *_ = _pool_files(tmp_path)
    ambiguous = _write(tmp_path / "two.csv", "model,cifar100,dtd\nvit,1,2\n")
    done = run_cli("evaluate", scores, "--truth", ambiguous)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "two.csv" in done.stderr and "['model', 'cifar100', 'dtd']" in done.stderr and "'cifar10'" in done.stderr
    bad_flag = run_cli("evaluate", scores, "--truth", ambiguous, "--baseline", "params")
    assert bad_flag.returncode == 2 and "NAME=CSV" in bad_flag.stderr
