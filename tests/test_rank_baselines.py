"""Trivial baselines (parameter count, source accuracy) carried by `rank` and judged by `evaluate` beside the score."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from pedrank import PedrankValueError
from pedrank.frontends.cli import main
from pedrank.workflow.io import read_scores
from pedrank.workflow.rank import rank

PARAMS = {"wide": 25.6e6, "mid": 11.7e6, "flat": 4.2e6}
SOURCE = {"wide": 71.5, "mid": 76.1, "flat": 69.8}


def _pool(directory=None):
    rng = np.random.default_rng(5)
    labels = np.arange(60) % 3
    pool = {}
    for name, separation in (("wide", 2.0), ("mid", 1.0), ("flat", 0.3)):
        pool[name] = (rng.normal(scale=separation, size=(3, 5))[labels] + rng.normal(size=(60, 5)), labels)
        if directory is not None:
            directory.mkdir(exist_ok=True)
            np.savez(directory / f"{name}.npz", features=pool[name][0], labels=labels)
    return pool


@pytest.mark.parametrize("metric", ["sfda", "ncti"])  # ncti ranks through its pool step
def test_rank_carries_the_baselines_into_every_output(metric):
    table = rank(_pool(), metric=metric, baselines={"params": PARAMS, "source_accuracy": SOURCE})
    assert table.baselines == {"params": PARAMS, "source_accuracy": SOURCE}
    records = table.to_records()
    assert [r["baseline_params"] for r in records] == [PARAMS[m] for m in table.models]
    assert table.to_csv().splitlines()[0].endswith("baseline_params,baseline_source_accuracy")
    header = table.to_string().splitlines()[1].split()
    assert header[-2:] == ["params", "source_accuracy"]
    # the baselines never change the ranking
    assert table.models == rank(_pool(), metric=metric).models


@pytest.mark.parametrize("baselines, message", [
    ({"params": {"wide": 1.0, "mid": 2.0}}, r"no value for 1 scored model\(s\): \['flat'\]"),
    ({"params": {**PARAMS, "mid": float("nan")}}, r"no value for 1 scored model\(s\): \['mid'\]"),
    ({"params": {**PARAMS, "mid": float("inf")}}, r"not finite for model\(s\) \['mid'\]"),
    ({"params": {**PARAMS, "mid": "big"}}, r"\['mid'\]: found 'big'; expected a number"),
    ({"score": PARAMS}, "reserved"),
    ({"baseline_params": PARAMS}, "prefix"),
    ({"params": [1, 2, 3]}, "expected a mapping of model to value"),
])
def test_bad_baselines_are_refused_with_the_value_found(baselines, message):
    with pytest.raises(PedrankValueError, match=message):
        rank(_pool(), baselines=baselines)


def test_cli_rank_then_evaluate_judges_the_baselines_beside_the_score(tmp_path, capsys):
    _pool(tmp_path / "pool")
    (tmp_path / "params.csv").write_text("model,params\n" + "".join(f"{m},{v}\n" for m, v in PARAMS.items()))
    (tmp_path / "imagenet.csv").write_text("model,top1\n" + "".join(f"{m},{v}\n" for m, v in SOURCE.items()))
    scores_path = tmp_path / "scores.json"
    assert main(["rank", str(tmp_path / "pool"), "--metric", "logme", "--no-progress", "--json", str(scores_path),
                 "--baseline", f"params={tmp_path / 'params.csv'}",
                 "--baseline", f"source_accuracy={tmp_path / 'imagenet.csv'}"]) == 0
    scores, info = read_scores(scores_path)
    assert info["baselines"] == {"params": PARAMS, "source_accuracy": SOURCE}
    truth = {"wide": 0.93, "mid": 0.88, "flat": 0.61}
    (tmp_path / "truth.csv").write_text("model,accuracy\n" + "".join(f"{m},{v}\n" for m, v in truth.items()))
    metrics_path = tmp_path / "metrics.json"
    capsys.readouterr()
    assert main(["evaluate", str(scores_path), "--truth", str(tmp_path / "truth.csv"), "--json",
                 str(metrics_path)]) == 0
    result = json.loads(metrics_path.read_text())
    models = list(truth)
    for name, values in (("params", PARAMS), ("source_accuracy", SOURCE)):
        expected = stats.weightedtau([values[m] for m in models], [truth[m] for m in models])[0]
        assert result["baselines"][name]["weighted_tau"] == pytest.approx(expected)
    assert "source_accuracy" in capsys.readouterr().out
    # a baseline file without a value for a pooled model is refused before any scoring
    (tmp_path / "short.csv").write_text("model,params\nwide,1\n")
    assert main(["rank", str(tmp_path / "pool"), "--no-progress", "--baseline",
                 f"params={tmp_path / 'short.csv'}"]) != 0
    assert "no value for the models" in capsys.readouterr().err
