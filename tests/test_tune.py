"""pedrank.tune: leave-one-dataset-out choice of PED's options, its score cache and the config round trip."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import pedrank
from pedrank._engine.validation import PedrankValueError
from pedrank.frontends.cli import main
from pedrank.workflow import tune as tune_module
from pedrank.workflow.rank import rank
from pedrank.workflow.tune import read_ped_config, setting_label, tune

MODELS = ["m0", "m1", "m2", "m3"]
ACCURACY = {m: 0.5 + 0.1 * i for i, m in enumerate(MODELS)}  # m3 best


def _pool(seed: int, n: int = 120, d: int = 6, classes: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n // classes)
    pool = {}
    for i, model in enumerate(MODELS):
        centers = rng.normal(size=(classes, d)) * (0.3 + 0.3 * i)
        pool[model] = (centers[labels] + rng.normal(size=(n, d)), labels.copy())
    return pool


# ------------------------------------------------------------------------ planted best settings

# Settings that always move (radius 2: every cluster overlaps) and differ by the step length alone.
GRID = [{"radius": 2.0, "elastic": k, "max_steps": 1} for k in (0.5, 1.0, 2.0)]
A = tune_module.setting_key(GRID[2])  # planted best on d0, d1, d2
B = tune_module.setting_key(GRID[1])  # planted best on d3 only
PERFECT = [0.1, 0.2, 0.3, 0.4]  # same order as the accuracies
REVERSED = PERFECT[::-1]


def _default_table(dataset, setting):
    if setting == A:
        return REVERSED if dataset == "d3" else PERFECT
    if setting == B:
        return PERFECT if dataset == "d3" else REVERSED
    return REVERSED  # PED off, k = 0.5 and PED's default


def _planted(monkeypatch, datasets: dict, table=_default_table) -> dict:
    """Replace the score by a lookup: recognise (dataset, model, setting) from the moved features, return the
    planted score of that setting on that dataset."""
    originals = {}
    movement = {}
    for dataset, pool in datasets.items():
        for model, (features, labels) in pool.items():
            originals[id(labels)] = (dataset, model, features)
            for options in GRID:
                moved = pedrank.ped(features, labels, **options).features
                key = dataset, model, round(float(np.abs(moved - features).sum()), 6)
                movement[key] = tune_module.setting_key(options)

    def fake(features, labels, metric, options):
        dataset, model, original = originals[id(labels)]
        delta = round(float(np.abs(np.asarray(features) - original).sum()), 6)
        setting = None if delta == 0 else movement.get((dataset, model, delta), "default")  # default: not planted
        return table(dataset, setting)[MODELS.index(model)]

    monkeypatch.setattr(tune_module, "_score", fake)
    return {d: dict(ACCURACY) for d in datasets}


def test_leave_one_out_on_planted_settings(monkeypatch):
    datasets = {f"d{j}": _pool(j) for j in range(4)}
    truth = _planted(monkeypatch, datasets)
    result = tune(datasets, truth, metrics=["sfda"], grid=GRID)
    folds = {f.held_out: f for f in result.folds["sfda"]}
    for held_out in ("d0", "d1", "d2"):
        assert folds[held_out].setting == A
        assert folds[held_out].tau == pytest.approx(1.0)
    # d3's own best (B) is never seen when d3 is held out: the others choose A, which is the worst on d3.
    assert folds["d3"].setting == A
    assert folds["d3"].tau == pytest.approx(-1.0)
    assert result.in_sample("sfda", "d3") == (B, pytest.approx(1.0))
    assert result.chosen["sfda"] == A
    rows = result.rows("sfda")
    assert rows["in-sample best"]["mean"] == pytest.approx(1.0)
    assert rows["leave-one-out"]["mean"] == pytest.approx(0.5)
    assert rows["off"]["mean"] == pytest.approx(-1.0)
    assert result.recommended["sfda"] == A  # leave-one-out +0.5 beats PED off's -1
    assert result.config()["metrics"]["sfda"] == dict(A)
    assert "LOO setting" in result.to_string()
    json.loads(result.to_json())


def test_held_out_truth_is_not_read_while_choosing(monkeypatch):
    datasets = {f"d{j}": _pool(j) for j in range(4)}
    truth = _planted(monkeypatch, datasets)
    first = tune(datasets, truth, metrics=["sfda"], grid=GRID)
    flipped = dict(truth)
    flipped["d3"] = {m: 1 - v for m, v in truth["d3"].items()}  # d3's truth reversed: B is now its worst
    second = tune(datasets, flipped, metrics=["sfda"], grid=GRID)
    assert first.folds["sfda"][3].setting == second.folds["sfda"][3].setting == A
    assert second.folds["sfda"][3].tau == pytest.approx(1.0)  # only the held-out number moves
    # the other folds see d3's truth, and may change: here A's margin grows
    assert [f.setting for f in second.folds["sfda"][:3]] == [A, A, A]


def test_a_setting_that_does_not_carry_over_is_written_false(monkeypatch, tmp_path):
    """Each setting is perfect on one dataset and reversed on the other: in-sample tuning finds +1 everywhere,
    out of sample it is -1, below PED off's -1/3: the config says leave PED off."""
    datasets = {f"d{j}": _pool(50 + j) for j in range(2)}
    middling = [0.3, 0.4, 0.1, 0.2]  # weighted tau -1/3 against the accuracies

    def table(dataset, setting):
        if setting == A:
            return PERFECT if dataset == "d0" else REVERSED
        if setting == B:
            return PERFECT if dataset == "d1" else REVERSED
        return middling if setting is None else REVERSED

    truth = _planted(monkeypatch, datasets, table)
    result = tune(datasets, truth, metrics=["sfda"], grid=GRID)
    rows = result.rows("sfda")
    assert rows["in-sample best"]["mean"] == pytest.approx(1.0)
    assert rows["leave-one-out"]["mean"] == pytest.approx(-1.0)
    assert rows["off"]["mean"] == pytest.approx(-1 / 3)
    assert result.chosen["sfda"] == B  # in-sample: A and B tie at 0, B comes first in the grid
    assert result.recommended["sfda"] is None
    path = result.write_config(tmp_path / "ped.json")
    assert read_ped_config(path, "sfda") is False
    assert json.loads(path.read_text())["chosen_in_sample"]["sfda"] == dict(B)


def test_off_wins_ties_and_is_written_false(tmp_path, monkeypatch):
    datasets = {f"d{j}": _pool(j) for j in range(3)}
    monkeypatch.setattr(tune_module, "_score", lambda X, y, metric, options: float(np.asarray(X)[:, 0].std()))
    truth = {d: dict(ACCURACY) for d in datasets}
    result = tune(datasets, truth, metrics=["sfda"], grid=[{"radius": 0.0}])  # radius 0: nothing moves
    assert result.chosen["sfda"] is None
    path = result.write_config(tmp_path / "ped.json")
    assert json.loads(path.read_text())["metrics"]["sfda"] is False
    assert read_ped_config(path, "sfda") is False


# ------------------------------------------------------------------------ speed: PED statistics, cache


def test_planner_equals_ped():
    features, labels = _pool(5)["m2"]
    planner = tune_module._PEDPlanner(features, labels, None, "auto")
    for options in ({}, {"radius": 1.0, "elastic": 2.0}, {"radius": 0.3, "elastic": 0.6}, {"max_steps": 0}):
        setting = tune_module.setting_key(options)
        total, steps = planner.displacement(setting)
        expected = pedrank.ped(features, labels, **options)
        assert steps == expected.steps
        np.testing.assert_array_equal(planner.moved(total, steps), expected.features)


def test_each_score_computed_once_and_disk_cache(tmp_path, monkeypatch):
    datasets = {f"d{j}": _pool(10 + j) for j in range(3)}
    truth = {d: dict(ACCURACY) for d in datasets}
    seen = []
    real = tune_module._score

    def counting(features, labels, metric, options):
        seen.append((metric, np.asarray(features).tobytes()))
        return real(features, labels, metric, options)

    monkeypatch.setattr(tune_module, "_score", counting)
    grid = {"elastic": [0.6, 1.0, 2.0], "radius": [0.6, 1.0]}
    result = tune(datasets, truth, metrics=["sfda", "logme"], grid=grid, cache=tmp_path)
    settings = len(result.settings)  # 6 PED settings + off; the default (0.6, 1.0) is among them
    assert settings == 7
    assert len(seen) == len(set(seen))  # never the same features scored twice with a score
    assert result.calls == len(seen) <= 3 * 4 * 2 * settings
    assert result.calls + result.shared == 3 * 4 * 2 * settings
    # A second run reads every score from the disk cache, with the same taus.
    seen.clear()
    again = tune(datasets, truth, metrics=["sfda", "logme"], grid=grid, cache=tmp_path)
    assert seen == [] and again.calls == 0 and again.cached == result.calls
    assert again.taus == result.taus


def test_real_scores_match_rank():
    datasets = {f"d{j}": _pool(20 + j) for j in range(2)}
    truth = {d: dict(ACCURACY) for d in datasets}
    result = tune(datasets, truth, metrics=["logme"], grid=[{"elastic": 1.5, "radius": 1.0}])
    setting = result.settings[1]
    for dataset, pool in datasets.items():
        table = rank(pool, metric="logme", ped=dict(setting))
        expected = pedrank.evaluate(table.scores, truth[dataset]).weighted_tau
        assert result.tau("logme", dataset, setting) == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------ config round trip


def _write_zoo(folder, datasets):
    folder.mkdir()
    for dataset, pool in datasets.items():
        for model, (features, labels) in pool.items():
            np.savez(folder / f"{dataset}__{model}.npz", features=features, labels=labels)


def test_config_round_trip_python_and_cli(tmp_path, capsys):
    datasets = {f"d{j}": _pool(30 + j) for j in range(3)}
    zoo = tmp_path / "zoo"
    _write_zoo(zoo, datasets)
    truth = tmp_path / "truth.csv"
    truth.write_text("model," + ",".join(datasets) + "\n"
                     + "".join(f"{m}," + ",".join(f"{ACCURACY[m]}" for _ in datasets) + "\n" for m in MODELS))
    config = tmp_path / "ped.json"
    code = main(["tune", str(zoo), "--truth", str(truth), "--metric", "sfda", "--metric", "gbc",
                 "--elastic", "0.6,2.0", "--radius", "0.6", "-o", str(config), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "leave-one-out" in out and "settings written" in out
    data = json.loads(config.read_text())
    assert set(data["metrics"]) == {"sfda", "gbc"}
    # Force a known setting for sfda to test rank with it.
    data["metrics"]["sfda"] = {"elastic": 2.0, "radius": 1.0}
    data["metrics"]["gbc"] = False
    config.write_text(json.dumps(data))
    pool = {m: (f, y) for m, (f, y) in datasets["d0"].items()}
    with_file = rank(pool, metric="sfda", ped=config)
    with_dict = rank(pool, metric="sfda", ped={"elastic": 2.0, "radius": 1.0})
    assert with_file.scores == with_dict.scores and with_file.ped
    off = rank(pool, metric="gbc", ped=str(config))
    assert not off.ped and off.scores == rank(pool, metric="gbc").scores
    # CLI rank --ped-config
    code = main(["rank", str(zoo / "d0__m0.npz"), str(zoo / "d0__m1.npz"), "--metric", "sfda", "--ped-config",
                 str(config), "--json", "-", "--no-progress"])
    assert code == 0
    records = json.loads(capsys.readouterr().out)
    expected = rank({m: datasets["d0"][m] for m in ("m0", "m1")}, metric="sfda", ped={"elastic": 2.0, "radius": 1.0})
    assert {r["model"].split("__")[1]: r["score"] for r in records} == pytest.approx(expected.scores, rel=1e-12)
    assert records[0]["metric"] == "sfda+ped"
    # a plain dict of PED options serves every metric
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"radius": 0.3}))
    assert read_ped_config(plain, "logme") == {"radius": 0.3}


# ------------------------------------------------------------------------ errors


def test_errors(tmp_path, capsys):
    datasets = {f"d{j}": _pool(40 + j) for j in range(2)}
    truth = {d: dict(ACCURACY) for d in datasets}
    with pytest.raises(PedrankValueError, match="at least 2 datasets"):
        tune({"d0": datasets["d0"]}, truth)
    partial = {"d0": dict(ACCURACY), "d1": {m: v for m, v in ACCURACY.items() if m != "m2"}}
    with pytest.raises(PedrankValueError, match=r"'d1' has no accuracy for model\(s\) \['m2'\]"):
        tune(datasets, partial, metrics=["sfda"], grid=[{}])
    with pytest.raises(PedrankValueError, match="no ground truth for dataset 'd1'"):
        tune(datasets, {"d0": dict(ACCURACY)}, metrics=["sfda"], grid=[{}])
    with pytest.raises(PedrankValueError, match=r"unknown PED option\(s\) \['elasticity'\]"):
        tune(datasets, truth, grid={"elasticity": [1.0]})
    with pytest.raises(PedrankValueError, match=r"unknown PED option\(s\) \['k'\]"):
        tune(datasets, truth, grid=[{"k": 1.0}])
    with pytest.raises(PedrankValueError, match="radius"):
        tune(datasets, truth, grid={"radius": [-1.0]})
    with pytest.raises(PedrankValueError, match="predictions"):
        tune(datasets, truth, metrics=["leep"])
    with pytest.raises(PedrankValueError, match="not known"):
        tune(datasets, truth, metrics=["nope"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"metrics": {"sfda": {"elasticity": 1.0}}}))
    with pytest.raises(PedrankValueError, match="unknown"):
        rank(datasets["d0"], metric="sfda", ped=bad)
    with pytest.raises(PedrankValueError, match="no PED setting for metric 'logme'"):
        rank(datasets["d0"], metric="logme", ped=bad)
    # CLI: one dataset only, and --ped-config with --ped, exit 2 with a message
    zoo = tmp_path / "zoo"
    _write_zoo(zoo, {"d0": datasets["d0"]})
    csv = tmp_path / "t.csv"
    csv.write_text("model,d0\n" + "".join(f"{m},{ACCURACY[m]}\n" for m in MODELS))
    assert main(["tune", str(zoo), "--truth", str(csv), "--no-progress"]) == 2
    assert "at least 2 datasets" in capsys.readouterr().err
    assert main(["rank", str(zoo / "d0__m0.npz"), str(zoo / "d0__m1.npz"), "--ped", "--ped-config", str(bad)]) == 2
    assert "--ped-config" in capsys.readouterr().err
    assert main(["tune", str(zoo), "--truth", str(csv), "--elastic", "a,b"]) == 2
    assert main(["tune", str(zoo), "--truth", str(csv), "--dataset", "nope"]) == 2
    assert "datasets found: ['d0']" in capsys.readouterr().err


# ------------------------------------------------------------------------ ground truth: one column per dataset


def test_a_one_column_truth_file_serves_one_dataset_at_most(tmp_path):
    """A CSV with one column used to be read for every dataset: ``model,cifar10`` gave dtd cifar10's accuracies."""
    from pedrank.workflow.tune.inputs import read_truths

    named = tmp_path / "truth1.csv"
    named.write_text("model,cifar10\nm0,0.9\nm1,0.8\nm2,0.7\n")
    with pytest.raises(PedrankValueError, match=r"no ground truth for dataset 'dtd': .*truth1\.csv: no column is "
                                                r"named 'dtd', and the only accuracy column, 'cifar10'"):
        read_truths(named, ["cifar10", "dtd"])
    assert read_truths(named, ["cifar10"]) == {"cifar10": {"m0": 0.9, "m1": 0.8, "m2": 0.7}}
    generic = tmp_path / "acc.csv"
    generic.write_text("model,accuracy\nm0,0.9\nm1,0.8\nm2,0.7\n")
    with pytest.raises(PedrankValueError, match=r"column 'accuracy' of .*acc\.csv would serve both dataset "
                                                r"'cifar10' and 'dtd'"):
        read_truths(generic, ["cifar10", "dtd"])
    with pytest.raises(PedrankValueError, match="would serve both"):
        read_truths({"cifar10": generic, "dtd": str(generic)}, ["cifar10", "dtd"])
    other = tmp_path / "acc2.csv"
    other.write_text("model,accuracy\nm0,0.5\nm1,0.6\nm2,0.7\n")
    assert read_truths({"cifar10": generic, "dtd": other}, ["cifar10", "dtd"])["dtd"] == {"m0": 0.5, "m1": 0.6,
                                                                                        "m2": 0.7}
    # several files: each dataset's column named after it, in one file only
    dtd = tmp_path / "dtd.csv"
    dtd.write_text("model,dtd_acc\nm0,0.5\nm1,0.6\nm2,0.7\n")
    assert read_truths([named, dtd], ["cifar10", "dtd"]) == {"cifar10": {"m0": 0.9, "m1": 0.8, "m2": 0.7},
                                                             "dtd": {"m0": 0.5, "m1": 0.6, "m2": 0.7}}
    with pytest.raises(PedrankValueError, match="no file has a column named 'dtd'"):
        read_truths([named, generic], ["cifar10", "dtd"])
    both = tmp_path / "both.csv"
    both.write_text("model,cifar10,dtd\nm0,0.9,0.1\nm1,0.8,0.2\nm2,0.7,0.3\n")
    with pytest.raises(PedrankValueError, match="dataset 'cifar10' has a column in several files"):
        read_truths([named, both], ["cifar10", "dtd"])
    # a placeholder in the per-dataset file is a missing value, never a reason to use another column
    both.write_text("model,cifar10,dtd\nm0,0.9,-\nm1,0.8,0.2\nm2,0.7,0.3\n")
    assert read_truths(both, ["cifar10", "dtd"])["dtd"] == {"m1": 0.2, "m2": 0.3}
    with pytest.raises(PedrankValueError, match=r"several accuracy columns \['cifar10', 'dtd'\] and no column is "
                                                r"named 'pets'"):
        read_truths(both, ["cifar10", "pets"])


def test_cli_tune_refuses_a_truth_column_of_another_dataset(tmp_path, capsys):
    datasets = {f"d{j}": _pool(60 + j) for j in range(2)}
    zoo = tmp_path / "zoo"
    _write_zoo(zoo, datasets)
    only_d0 = tmp_path / "only_d0.csv"
    only_d0.write_text("model,d0\n" + "".join(f"{m},{ACCURACY[m]}\n" for m in MODELS))
    assert main(["tune", str(zoo), "--truth", str(only_d0), "--metric", "sfda", "--radius", "0.6", "--elastic",
                 "1.0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dataset 'd1'" in err and "only_d0.csv" in err and "'d0'" in err


def test_mapping_truths_follow_the_scale_rule(monkeypatch):
    """tune used to rank 80 above 0.9 in ``{"m0": 0.7, "m1": 80, "m2": 0.9}``, which evaluate refuses."""
    datasets = {f"d{j}": _pool(70 + j) for j in range(2)}
    monkeypatch.setattr(tune_module, "_score", lambda X, y, metric, options: float(np.asarray(X)[:, 0].std()))
    mixed = {"d0": {"m0": 0.7, "m1": 80, "m2": 0.9, "m3": 0.6}, "d1": {m: 70 + i for i, m in enumerate(MODELS)}}
    with pytest.raises(PedrankValueError, match=r"truth\['d0'\]: mixes fractions \(m0: 0\.7, m2: 0\.9, m3: "
                                                r"0\.6\) and percentages \(m1: 80\)"):
        tune(datasets, mixed, metrics=["sfda"], grid=[{}])
    with pytest.raises(PedrankValueError, match=re.escape("truth['d1']: m0: 170 outside [0, 100]")):
        tune(datasets, {"d0": dict(ACCURACY), "d1": {**mixed["d1"], "m0": 170}}, metrics=["sfda"], grid=[{}])
    with pytest.raises(PedrankValueError, match=re.escape("truth['d1']['m1']: found 'high'; expected a number")):
        tune(datasets, {"d0": dict(ACCURACY), "d1": {**mixed["d1"], "m1": "high"}}, metrics=["sfda"], grid=[{}])
    # one scale per dataset: fractions on one, percentages on another, is fine
    result = tune(datasets, {"d0": dict(ACCURACY), "d1": mixed["d1"]}, metrics=["sfda"], grid=[{}])
    assert result.datasets == ["d0", "d1"]


def test_a_truth_that_is_the_same_for_every_model_is_refused(monkeypatch):
    """Every ranking ties against it: its taus were NaN and the dataset dropped out of the choice silently."""
    datasets = {f"d{j}": _pool(80 + j) for j in range(2)}
    monkeypatch.setattr(tune_module, "_score", lambda X, y, metric, options: float(np.asarray(X)[:, 0].std()))
    flat = {"d0": dict(ACCURACY), "d1": dict.fromkeys(MODELS, 0.8)}
    with pytest.raises(PedrankValueError, match=re.escape("truth['d1']: all 4 values of the scored models")):
        tune(datasets, flat, metrics=["sfda"], grid=[{}])


# ------------------------------------------------------------------------ the cache and PED's reference files


def test_the_cache_is_not_reused_when_a_reference_file_appears_or_changes(tmp_path):
    """Adding ``{model}_reference.npy`` beside the features changes PED's scores; the cache used to return the
    scores computed without it."""
    folder = tmp_path / "pools"
    folder.mkdir()
    for dataset, seed in (("a", 1), ("b", 2)):
        for model, (features, labels) in _pool(80 + seed).items():
            np.save(folder / f"{model}_{dataset}_feature.npy", features)
            np.save(folder / f"{model}_{dataset}_label.npy", labels)
    truth = {d: dict(ACCURACY) for d in "ab"}
    grid = {"radius": [0.3, 1.0]}

    def run(cache):
        return tune(tune_module.find_datasets(folder), truth, metrics=["sfda"], grid=grid, off=False, cache=cache,
                    progress=False)

    first = run(tmp_path / "cache")
    assert first.calls > 0 and first.cached == 0
    for i, model in enumerate(MODELS):
        reference = np.random.default_rng(10 + i).normal(size=(50, 6)) * 5 + 3
        np.save(folder / f"{model}_reference.npy", reference)
    with_reference = run(tmp_path / "cache")
    assert with_reference.cached == 0 and with_reference.calls == first.calls
    assert with_reference.taus == run(None).taus  # the same as a run without a cache
    assert run(tmp_path / "cache").calls == 0  # and reused once computed with it
    np.save(folder / "m0_reference.npy", np.random.default_rng(99).normal(size=(50, 6)))
    changed = run(tmp_path / "cache")
    assert changed.calls > 0 and changed.cached > 0  # m0's entries recomputed, the others' reused


def test_reference_digest_tells_features_from_mean_and_std():
    digest = tune_module._reference_digest
    mean, std = np.zeros(4), np.ones(4)
    assert digest(None) == "none"
    assert digest((mean, std)) == digest((mean.copy(), std.copy())) != digest(np.stack([mean, std]))
    assert digest((mean, std)) != digest((mean, std * 2))


# ------------------------------------------------------------------------ the CLI's grid


def test_cli_grid_keeps_the_defaults_of_options_not_given(tmp_path, monkeypatch, capsys):
    """``--radius 0.3`` alone used to try elastic 1.0 only, while --help says the elastic default is the grid
    0.6,...,2.0: an option not given now keeps the default its help states."""
    from pedrank.workflow.tune.settings import DEFAULT_GRID, PED_DEFAULTS

    datasets = {f"d{j}": _pool(90 + j) for j in range(2)}
    zoo = tmp_path / "zoo"
    _write_zoo(zoo, datasets)
    truth = tmp_path / "truth.csv"
    truth.write_text("model,d0,d1\n" + "".join(f"{m},{ACCURACY[m]},{ACCURACY[m]}\n" for m in MODELS))
    monkeypatch.setattr(tune_module, "_score", lambda X, y, metric, options: float(np.asarray(X)[:, 0].std()))

    def settings(*options):
        assert main(["tune", str(zoo), "--truth", str(truth), "--metric", "sfda", "--no-progress", "--json", "-",
                     *options]) == 0
        return json.loads(capsys.readouterr().out)["settings"]

    alone = settings("--radius", "0.3")
    assert alone == ["off", *(setting_label(tune_module.setting_key({"radius": 0.3, "elastic": k}))
                              for k in DEFAULT_GRID["elastic"])]
    assert len(settings("--elastic", "2.0")) == 1 + len(DEFAULT_GRID["radius"])
    assert len(settings("--time-step", "0.05,0.2")) == 1 + 2 * len(DEFAULT_GRID["radius"]) * len(
        DEFAULT_GRID["elastic"])
    assert settings("--radius", "0.3", "--elastic", "2.0") == ["off", "radius=0.3 elastic=2"]
    # the defaults --help states are the ones used
    with pytest.raises(SystemExit, match="0"):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("radius", "elastic"):
        values = ",".join(str(v) for v in DEFAULT_GRID[option])
        assert f"--{option} LIST comma-separated values to try (default {values})" in text
    for option in ("time_step", "exit_ratio", "max_steps"):
        assert (f"--{option.replace('_', '-')} LIST comma-separated values to try (default PED's, "
                f"{PED_DEFAULTS[option]:g})") in text
    assert "--radius 0.3 alone tries radius 0.3 with every default elastic" in text


def test_setting_labels():
    assert setting_label(None) == "off"
    assert setting_label(tune_module.setting_key({})) == "default"
    assert setting_label(tune_module.setting_key({"elastic": 1.2, "radius": 0.3})) == "radius=0.3 elastic=1.2"
