"""The hierarchical bootstrap of the evidence (issue 25): a clear winner is found, a tie is called a tie."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import zoo_modules
from pedrank import PedrankValueError
from pedrank.workflow.bootstrap import hierarchical_bootstrap


def synthetic(n_datasets=6, n_models=12, n_seeds=3, n_resamples=4, *, noise=None, seed=0):
    """Accuracies per (dataset, model, seed) and scores of named variants that follow them with given noise."""
    rng = np.random.default_rng(seed)
    noise = noise or {"good": 0.02, "bad": 10.0}
    accuracies, scores = [], []
    for d in range(n_datasets):
        quality = rng.uniform(0.6, 0.95, size=n_models)
        for m in range(n_models):
            for s in range(n_seeds):
                accuracies.append({"dataset": f"d{d}", "model": f"m{m}", "seed": s,
                                   "accuracy": quality[m] + rng.normal(0, 0.005)})
        for r in ["measured", *range(n_resamples)]:
            for variant, sd in noise.items():
                values = quality + rng.normal(0, sd, size=n_models)
                for m in range(n_models):
                    scores.append({"dataset": f"d{d}", "resample": r, "model": f"m{m}", "variant": variant,
                                   "score": values[m]})
    return scores, accuracies


def test_a_clear_winner_is_found():
    scores, accuracies = synthetic()
    result = hierarchical_bootstrap(scores, accuracies, n_boot=200, random_state=1)
    assert result.p_beats("good", "bad") > 0.99
    low, high = result.interval("good")
    assert 0.6 < low <= result.measured["good"] <= high <= 1.0  # duplicated models in a draw tie, so below 1
    assert result.interval("bad")[1] < low


def test_identical_variants_are_a_tie_and_equal_quality_ones_are_not_separated():
    scores, accuracies = synthetic(noise={"a": 0.05, "b": 0.05})
    copy = [{**row, "variant": "a_copy"} for row in scores if row["variant"] == "a"]
    result = hierarchical_bootstrap(scores + copy, accuracies, n_boot=300, random_state=2)
    assert result.p_beats("a", "a_copy") == 0.5  # every draw a tie, counted half
    assert 0.1 < result.p_beats("a", "b") < 0.9  # the same quality: the rule's 0.9 is not reached


def test_the_same_seed_gives_the_same_draws_and_another_seed_others():
    scores, accuracies = synthetic(n_datasets=3, n_models=5)
    first = hierarchical_bootstrap(scores, accuracies, n_boot=50, random_state=3)
    again = hierarchical_bootstrap(scores, accuracies, n_boot=50, random_state=3)
    other = hierarchical_bootstrap(scores, accuracies, n_boot=50, random_state=4)
    np.testing.assert_array_equal(first.draws, again.draws)
    assert not np.array_equal(first.draws, other.draws)


def test_more_datasets_narrow_the_interval():
    narrow = hierarchical_bootstrap(*synthetic(n_datasets=12, noise={"v": 0.1}), n_boot=300, random_state=5)
    wide = hierarchical_bootstrap(*synthetic(n_datasets=2, noise={"v": 0.1}), n_boot=300, random_state=5)
    assert np.subtract(*narrow.interval("v")[::-1]) < np.subtract(*wide.interval("v")[::-1])


def test_a_failed_model_is_a_failure_not_a_tie():
    scores, accuracies = synthetic(n_datasets=3, n_models=6, noise={"good": 0.02, "broken": 0.02})
    for row in scores:
        if row["variant"] == "broken" and row["model"] == "m0":
            row["score"] = math.nan
    result = hierarchical_bootstrap(scores, accuracies, n_boot=100, random_state=6)
    assert result.failures["broken"] > 50 and "good" not in result.failures
    assert result.p_beats("good", "broken") >= result.failures["broken"] / 100  # each failed draw a loss
    assert math.isnan(result.measured["broken"])


@pytest.mark.parametrize("values", ["continuous", "few levels", "ranks"])
def test_the_batched_weighted_tau_is_scipys(values):
    """The bootstrap's one-pass weighted tau of many score rows equals SciPy's ``weightedtau`` on each row, ties of
    the scores, of the accuracies and of both included; a row (or a truth) that ties every model is 0."""
    from scipy import stats

    from pedrank.workflow.bootstrap import _weighted_taus

    rng = np.random.default_rng(5)
    for n_models in (2, 3, 7, 24, 48):
        if values == "continuous":
            scores, accuracies = rng.normal(size=(6, n_models)), rng.normal(size=n_models)
        elif values == "few levels":
            scores = rng.integers(0, 3, size=(6, n_models)).astype(float)
            accuracies = rng.integers(0, 2, size=n_models).astype(float)
        else:
            scores = rng.integers(0, n_models, size=(6, n_models)).astype(float)
            accuracies = rng.integers(0, n_models, size=n_models).astype(float)
        scores[0] = 1.0  # ties every model
        expected = [0.0 if np.ptp(row) == 0 or np.ptp(accuracies) == 0 else stats.weightedtau(row, accuracies)[0]
                    for row in scores]
        np.testing.assert_allclose(_weighted_taus(scores, accuracies), expected, rtol=1e-12, atol=1e-14)
    flat = _weighted_taus(rng.normal(size=(3, 5)), np.full(5, 0.7))
    assert np.array_equal(flat, np.zeros(3))


def test_bad_input_is_refused_with_the_reason():
    scores, accuracies = synthetic(n_datasets=1, n_models=1)
    with pytest.raises(PedrankValueError, match="no dataset has two models"):
        hierarchical_bootstrap(scores, accuracies, n_boot=5)
    scores, accuracies = synthetic(n_datasets=2, n_models=4)
    with pytest.raises(PedrankValueError, match=r"variants: \['nope'\] have no scores"):
        hierarchical_bootstrap(scores, accuracies, n_boot=5, variants=["nope"])
    with pytest.raises(PedrankValueError, match="n_boot"):
        hierarchical_bootstrap(scores, accuracies, n_boot=0)


def _two_families():
    """Family "many": 11 datasets where variant "b" follows the accuracies and "a" is noise; family "few": 1 dataset
    where "a" follows them and "b" is reversed."""
    many_scores, many_accuracies = synthetic(n_datasets=11, n_models=8, noise={"a": 10.0, "b": 0.01}, seed=11)
    few_scores, few_accuracies = synthetic(n_datasets=1, n_models=8, noise={"a": 0.01, "b": 0.01}, seed=12)
    for row in few_scores:
        row["dataset"] = "few0"
        if row["variant"] == "b":
            row["score"] = -row["score"]
    for row in few_accuracies:
        row["dataset"] = "few0"
    strata = {**{f"d{d}": "many" for d in range(11)}, "few0": "few"}
    return many_scores + few_scores, many_accuracies + few_accuracies, strata


def test_strata_weigh_each_family_alike():
    scores, accuracies, strata = _two_families()
    plain = hierarchical_bootstrap(scores, accuracies, n_boot=200, random_state=7)
    stratified = hierarchical_bootstrap(scores, accuracies, n_boot=200, random_state=7, strata=strata)
    # pooled, the eleven "many" datasets carry b; per family, b's near 1 and its near -1 cancel, a's near 1 on "few"
    # and its noise on "many" average to about +0.5
    assert plain.p_beats("b", "a") > 0.95
    per_dataset = {row["dataset"]: None for row in accuracies}
    by_family = {}
    for dataset in per_dataset:
        alone = hierarchical_bootstrap([r for r in scores if r["dataset"] == dataset],
                                       [r for r in accuracies if r["dataset"] == dataset], n_boot=1)
        by_family.setdefault(strata[dataset], []).append(alone.measured)
    for variant in ("a", "b"):
        expected = np.mean([np.mean([m[variant] for m in family]) for family in by_family.values()])
        assert stratified.measured[variant] == pytest.approx(expected, rel=1e-12)
    assert stratified.measured["a"] > stratified.measured["b"]
    assert stratified.p_beats("a", "b") > 0.9
    # a draw keeps each family's size: "few" is drawn in every draw, so b never reaches its pooled mean
    assert np.nanmax(stratified.draws[:, stratified.variants.index("b")]) < plain.measured["b"]


def test_one_stratum_is_the_plain_bootstrap():
    scores, accuracies = synthetic(n_datasets=4, n_models=6)
    plain = hierarchical_bootstrap(scores, accuracies, n_boot=60, random_state=8)
    single = hierarchical_bootstrap(scores, accuracies, n_boot=60, random_state=8,
                                    strata={f"d{d}": "all" for d in range(4)})
    np.testing.assert_array_equal(plain.draws, single.draws)
    assert plain.measured == single.measured


def test_a_dataset_without_a_stratum_is_refused():
    scores, accuracies = synthetic(n_datasets=3, n_models=4)
    with pytest.raises(PedrankValueError, match=r"strata: datasets \['d2'\] have no stratum"):
        hierarchical_bootstrap(scores, accuracies, n_boot=5, strata={"d0": "x", "d1": "y"})


def _result(columns):
    """A BootstrapResult with the given draws per variant (measured = the draws' mean)."""
    from pedrank.workflow.bootstrap import BootstrapResult

    names = list(columns)
    draws = np.column_stack([np.asarray(columns[v], dtype=float) for v in names])
    return BootstrapResult(variants=names, measured={v: float(np.mean(columns[v])) for v in names}, draws=draws)


def test_the_default_changes_only_on_a_probable_win():
    from pedrank.workflow.recommendation import challenge

    rng = np.random.default_rng(0)
    base = rng.normal(0.3, 0.1, size=500)
    clear = _result({"default": base, "better": base + 0.2, "similar": base + rng.normal(0.01, 0.05, 500),
                     "worse": base - 0.3})
    chosen, tied = challenge(clear, "default", ["default", "better", "similar", "worse"])
    assert chosen == "better" and tied == ["better"]
    close = _result({"default": base, "similar": base + rng.normal(0.01, 0.05, 500), "worse": base - 0.3})
    chosen, tied = challenge(close, "default", ["default", "similar", "worse"])
    assert chosen == "default" and tied == ["default", "similar"]  # kept, and said to be tied with "similar"
    # two clear winners with the same P: the cheaper is chosen
    both = _result({"default": base, "fast": base + 0.5, "slow": base + 0.5})
    assert challenge(both, "default", ["fast", "slow"], cost={"fast": 1.0, "slow": 60.0})[0] == "fast"
    assert challenge(both, "default", ["fast", "slow"], cost={"fast": 90.0, "slow": 60.0})[0] == "slow"
    with pytest.raises(PedrankValueError, match="incumbent"):
        challenge(both, "gone", ["fast"])


def test_tied_challengers_go_by_cost_not_by_a_few_draws_of_probability():
    from pedrank.workflow.recommendation import challenge

    rng = np.random.default_rng(1)
    base = rng.normal(0.3, 0.1, size=500)
    noise = rng.normal(0.0, 0.05, size=500)
    # both beat the default in every draw; "pricey" in slightly more draws than "cheap" against each other, but
    # neither beats the other in 90 % of them: tied, so the cheaper wins, whatever the order of P
    result = _result({"default": base, "cheap": base + 0.3 + noise, "pricey": base + 0.31 - noise})
    assert result.p_beats("pricey", "cheap") < 0.9 and result.p_beats("cheap", "pricey") < 0.9
    assert challenge(result, "default", ["cheap", "pricey"], cost={"cheap": 1.0, "pricey": 5.0})[0] == "cheap"
    # a challenger that another challenger beats in >= 90 % of the draws is out, however cheap
    dominated = _result({"default": base, "cheap": base + 0.2, "best": base + 0.5})
    assert challenge(dominated, "default", ["cheap", "best"], cost={"cheap": 1.0, "best": 50.0})[0] == "best"


def test_the_default_cost_table_prices_ped_and_forms():
    from pedrank.workflow.recommendation import PED_RELATIVE_COST, relative_cost

    assert relative_cost("logme") == 1.0
    assert relative_cost("logme:exact+PED") == 1.0 + PED_RELATIVE_COST
    assert relative_cost("ncti (pool)") == relative_cost("ncti")
    assert relative_cost("consensus: pactran, sfda, logme") == float("inf")


def test_a_resample_scored_before_models_joined_is_stale_not_judged():
    (evidence,) = zoo_modules("evidence")

    def unit(dataset, resample, models, budget="full"):
        return {"set": "finetuned", "dataset": dataset, "budget": budget, "resample": resample,
                "scores": {m: {"logme": 0.0} for m in models}}

    six, fourteen = [f"m{i}" for i in range(6)], [f"m{i}" for i in range(14)]
    found = [unit("digits", None, fourteen), unit("digits", 0, fourteen), unit("digits", 1, six),
             unit("digits", None, six, "small"), unit("digits", 0, six, "small"),  # small: not yet rescored whole
             unit("mnist", 0, six)]  # no measured unit: nothing to compare with, kept
    current, stale = evidence.current_units(found)
    assert [(u["dataset"], u["budget"], u["resample"]) for u in stale] == [("digits", "full", 1)]
    assert len(current) == 5
    # a resample with every model of its measured unit (and one more, refused there) is current, and so is one
    # that pedrank refused a model on (near-dead features on its rows): it was scored with that model present
    assert evidence.current_units([unit("lfw", None, six), unit("lfw", 2, six + ["x"])])[1] == []
    refused = {**unit("lfw", 3, six[1:]), "refused": {six[0]: "ValueError: ..."}}
    assert evidence.current_units([unit("lfw", None, six), refused])[1] == []
    # a model left out of the truth since the measured unit was scored (an under-trained fine-tune) is not judged:
    # resamples scored without it are current
    truth = {"finetuned": {"digits": {m: 0.9 for m in fourteen[:11]}}}
    later = [unit("digits", None, fourteen), unit("digits", 4, fourteen[:11])]
    assert evidence.current_units(later)[1] == [later[1]]
    assert evidence.current_units(later, truth)[1] == []
