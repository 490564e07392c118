"""`pedrank rank` and `pedrank evaluate` end to end, as a subprocess, against the Python API and scipy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import pedrank
from pedrank.workflow import paper
from pedrank.workflow.rank import rank

MODELS = {"byol": 1.6, "moco-v1": 0.4, "swav": 1.0, "insdis": 0.15}


def run_cli(*args, cwd=None):
    """Run `python -m pedrank.cli ARGS` with this pedrank importable; returns the CompletedProcess."""
    env = dict(os.environ)
    package_parent = str(Path(pedrank.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pedrank.frontends.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=60)


def _features(separation, seed, n=72, d=5, c=4):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    centres = rng.normal(scale=separation, size=(c, d))
    return centres[labels] + rng.normal(size=(n, d)), labels


def _write_pool(directory, layout, datasets=("cifar10",)):
    """The pool in one layout; returns {dataset: {model: (features, labels)}}."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for d_index, dataset in enumerate(datasets):
        for index, (model, separation) in enumerate(MODELS.items()):
            x, y = _features(separation, seed=10 * d_index + index)
            written.setdefault(dataset, {})[model] = (x, y)
            if layout == "authors":
                np.save(directory / f"{model}_{dataset}_feature.npy", x)
                np.save(directory / f"{model}_{dataset}_label.npy", y)
            elif layout == "npz":
                np.savez(directory / f"{model}.npz", features=x, labels=y)
            elif layout == "pt":
                import torch

                torch.save({"features": torch.from_numpy(x), "labels": torch.from_numpy(y)},
                           directory / f"{model}.pt")
    return written


def _printed_table(stdout):
    lines = stdout.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "model"])
    return [(cells[1], float(cells[2])) for cells in (line.split() for line in lines[start + 1:])]


@pytest.mark.parametrize("layout", ["authors", "npz", "pt"])
def test_printed_ranking_matches_the_api(tmp_path, layout):
    if layout == "pt":
        pytest.importorskip("torch")
    pool = _write_pool(tmp_path / "feats", layout)["cifar10"]
    done = run_cli("rank", tmp_path / "feats", "--metric", "logme")
    assert done.returncode == 0, done.stderr
    expected = rank(pool, metric="logme")
    printed = _printed_table(done.stdout)
    assert [model for model, _ in printed] == expected.models
    assert [score for _, score in printed] == pytest.approx([r.score for r in expected], abs=2e-6)


def test_json_output_with_ped_options_and_dataset_choice(tmp_path):
    pools = _write_pool(tmp_path / "feats", "authors", datasets=("cifar10", "dtd"))
    out = tmp_path / "scores.json"
    done = run_cli("rank", tmp_path / "feats", "--dataset", "dtd", "--metric", "gbc", "--ped",
                   "--radius", "0.3", "--elastic", "1.5", "--json", out)
    assert done.returncode == 0, done.stderr
    records = json.loads(out.read_text())
    expected = rank(pools["dtd"], metric="gbc", ped={"radius": 0.3, "elastic": 1.5})
    assert [r["model"] for r in records] == expected.models
    assert [r["score"] for r in records] == pytest.approx([r.score for r in expected], rel=1e-12)
    assert [r["ped_steps"] for r in records] == [r.ped_steps for r in expected]
    assert {r["dataset"] for r in records} == {"dtd"}
    assert _printed_table(done.stdout)[0][0] == expected.models[0]


def test_csv_to_stdout_and_metric_options(tmp_path):
    pool = _write_pool(tmp_path / "feats", "npz")["cifar10"]
    done = run_cli("rank", tmp_path / "feats", "--metric", "sfda", "--option", "shrinkage=0.25", "--csv", "-")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("rank,model,score")
    expected = rank(pool, metric="sfda", shrinkage=0.25)
    assert [line.split(",")[1] for line in lines[1:]] == expected.models
    assert [float(line.split(",")[2]) for line in lines[1:]] == pytest.approx([r.score for r in expected])


def test_evaluate_matches_scipy_on_the_rank_output(tmp_path):
    pool = _write_pool(tmp_path / "feats", "authors")["cifar10"]
    scores_path = tmp_path / "scores.json"
    assert run_cli("rank", tmp_path / "feats", "--metric", "sfda", "--json", scores_path).returncode == 0
    truth = tmp_path / "truth.csv"
    accuracies = {"byol": 91.0, "moco-v1": 80.5, "swav": 88.0, "insdis": 83.0, "unscored": 99.0}
    truth.write_text("model,cifar10,dtd\n" + "".join(f"{m},{a},1\n" for m, a in accuracies.items()))
    metrics_path = tmp_path / "metrics.json"
    done = run_cli("evaluate", scores_path, "--truth", truth, "--json", metrics_path)  # dataset from the scores
    assert done.returncode == 0, done.stderr
    metrics = json.loads(metrics_path.read_text())
    scores = {name: pedrank.score(x, y, "sfda") for name, (x, y) in pool.items()}
    x = [scores[m] for m in scores]
    y = [accuracies[m] for m in scores]
    assert metrics["weighted_tau"] == pytest.approx(stats.weightedtau(x, y)[0], abs=1e-12)
    assert metrics["kendall_tau"] == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)
    assert metrics["pearson"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-9)
    best = max(scores, key=scores.get)
    assert metrics["top1_relative_accuracy"] == pytest.approx(accuracies[best] / 91.0)
    assert f"{metrics['weighted_tau']:.4f}" in done.stdout


def test_evaluate_against_the_shipped_paper_ground_truth(tmp_path):
    scores_path = tmp_path / "s.json"
    scores_path.write_text(json.dumps([{"model": "byol", "score": 3.0}, {"model": "swav", "score": 2.0},
                                       {"model": "insdis", "score": 1.0}]))
    done = run_cli("evaluate", scores_path, "--dataset", "pets", "--json", "-")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    truth = paper.ground_truth("pets")
    expected = stats.weightedtau([3.0, 2.0, 1.0], [truth["byol"], truth["swav"], truth["insdis"]])[0]
    assert metrics["weighted_tau"] == pytest.approx(expected)


@pytest.mark.parametrize("metric", ["nleep", "parc", "h_score", "regularized_h_score", "transrate"])
def test_field_scores_after_ped_through_the_command_line(tmp_path, metric):
    pool = _write_pool(tmp_path / "feats", "npz")["cifar10"]
    out = tmp_path / "scores.json"
    done = run_cli("rank", tmp_path / "feats", "--metric", metric, "--ped", "--json", out)
    assert done.returncode == 0, done.stderr
    records = json.loads(out.read_text())
    expected = {model: pedrank.score(x, y, metric, ped=True) for model, (x, y) in pool.items()}
    assert {r["model"]: r["score"] for r in records} == pytest.approx(expected, rel=1e-12)
    assert [r["model"] for r in records] == sorted(expected, key=expected.get, reverse=True)


def test_nce_ranks_source_predictions_read_from_files(tmp_path):
    """1-D files of source-model predictions rank by NCE; a feature score on them names the file."""
    rng = np.random.default_rng(5)
    labels = np.arange(120) % 4
    noise = {"sharp": 0.05, "blurry": 0.6, "random": 1.0}
    pool = {}
    for model, flip in noise.items():
        predictions = np.where(rng.random(120) < flip, rng.integers(0, 6, size=120), labels + 2)
        np.save(tmp_path / f"{model}_toy_feature.npy", predictions)
        np.save(tmp_path / f"{model}_toy_label.npy", labels)
        pool[model] = (predictions, labels)
    done = run_cli("rank", tmp_path, "--metric", "nce", "--json", tmp_path / "nce.json")
    assert done.returncode == 0, done.stderr
    records = json.loads((tmp_path / "nce.json").read_text())
    expected = rank(pool, metric="nce")
    assert [r["model"] for r in records] == [r.model for r in expected] == ["sharp", "blurry", "random"]
    np.testing.assert_allclose([r["score"] for r in records], [r.score for r in expected], rtol=1e-12)
    refused = run_cli("rank", tmp_path, "--metric", "sfda")
    assert refused.returncode == 2
    assert "_toy_feature.npy" in refused.stderr and "2-D" in refused.stderr


def test_rank_reads_dataset_names_with_underscores(tmp_path):
    """`--dataset oxford_pets` picks vit_b16_oxford_pets_feature.npy as the model vit_b16 (issue 23)."""
    separations = {"vit_b16": 1.6, "resnet_50": 0.4, "moco-v1": 1.0}
    pools = {}
    for d_index, dataset in enumerate(("oxford_pets", "stanford_cars")):
        for index, (model, separation) in enumerate(separations.items()):
            x, y = _features(separation, seed=10 * d_index + index)
            np.save(tmp_path / f"{model}_{dataset}_feature.npy", x)
            np.save(tmp_path / f"{model}_{dataset}_label.npy", y)
            pools.setdefault(dataset, {})[model] = (x, y)
    for dataset in pools:
        out = tmp_path / f"{dataset}.json"
        done = run_cli("rank", tmp_path, "--dataset", dataset, "--metric", "logme", "--json", out)
        assert done.returncode == 0, done.stderr
        records = json.loads(out.read_text())
        expected = rank(pools[dataset], metric="logme")
        assert [r["model"] for r in records] == expected.models
        assert [r["score"] for r in records] == pytest.approx([r.score for r in expected], rel=1e-12)
        assert {r["dataset"] for r in records} == {dataset}
    several = run_cli("rank", tmp_path, "--metric", "logme")
    assert several.returncode == 2
    assert "several datasets (oxford_pets, stanford_cars)" in several.stderr
    assert "Traceback" not in several.stderr
