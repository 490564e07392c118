"""`pedrank reproduce` on a subset of the paper's (model, dataset) pairs, and `pedrank plot`, as subprocesses."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy import stats

import pedrank
from pedrank.workflow import paper
from test_cli_rank import run_cli  # tests/ is on sys.path under pytest's default import mode

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAIRS = {
    "cifar10": ["byol", "moco-v1", "swav", "insdis"],
    "dtd": ["simclr-v2", "pcl-v1", "infomin"],
}


def _write_paper_subset(directory):
    directory.mkdir()
    rng = np.random.default_rng(0)
    written = {}
    for dataset, models in PAIRS.items():
        for model in models:
            labels = np.arange(60) % 4
            centres = rng.normal(scale=rng.uniform(0.2, 2.0), size=(4, 5))
            features = centres[labels] + rng.normal(size=(60, 5))
            np.save(directory / f"{model}_{dataset}_feature.npy", features)
            np.save(directory / f"{model}_{dataset}_label.npy", labels)
            written[(model, dataset)] = (features, labels)
    np.save(directory / "my-vit_cifar10_feature.npy", np.zeros((4, 2)))  # not a paper model
    np.save(directory / "my-vit_cifar10_label.npy", np.arange(4) % 2)
    return written


def _cells(stdout):
    """{method: {dataset: (ours, paper)}} from the printed table."""
    lines = stdout.strip().splitlines()
    header = next(line for line in lines if line.startswith("method"))
    datasets = header.split()[1:]
    table = {}
    for line in lines[lines.index(header) + 1:]:
        if not line.strip():  # the paper's in-sample grid_k rows follow
            break
        name = line.split()[0]
        if name in ("models", "note:"):
            continue
        pairs = re.findall(r"(-?\d\.\d{3}|n/a) \((-?\d\.\d{3}|n/a)\)", line)
        table[name] = dict(zip(datasets, [(float(a), float(b)) for a, b in pairs]))
        assert len(pairs) == len(datasets)
    return datasets, table


def test_reproduce_prints_exactly_the_present_cells_with_the_papers_values(tmp_path):
    written = _write_paper_subset(tmp_path / "feats")
    out = tmp_path / "cells.json"
    done = run_cli("reproduce", tmp_path / "feats", "--no-progress", "--json", out)
    assert done.returncode == 0, done.stderr
    datasets, table = _cells(done.stdout)
    assert datasets == [d for d in paper.datasets() if d in PAIRS]
    assert sorted(table) == sorted(["LogME", "LogME+PED", "SFDA", "SFDA+PED", "GBC", "GBC+PED"])
    assert "my-vit_cifar10_feature.npy" in done.stderr

    metric_of = {"LogME": "logme", "SFDA": "sfda", "GBC": "gbc"}
    for method, by_dataset in table.items():
        for dataset, (ours, reported) in by_dataset.items():
            assert reported == paper.reported_weighted_tau(method, dataset)
            metric = metric_of[method.split("+")[0]]
            scores = []
            for model in PAIRS[dataset]:
                x, y = written[(model, dataset)]
                scores.append(pedrank.score(x, y, metric, ped="+PED" in method))
            truth = [paper.ground_truth(dataset)[m] for m in PAIRS[dataset]]
            assert ours == pytest.approx(stats.weightedtau(scores, truth)[0], abs=5e-4)

    cells = json.loads(out.read_text())["cells"]
    assert {(c["method"], c["dataset"]) for c in cells} == {(m, d) for m in table for d in PAIRS}
    assert all(c["n_models"] == len(PAIRS[c["dataset"]]) for c in cells)


def test_reproduce_one_dataset_and_one_metric(tmp_path):
    _write_paper_subset(tmp_path / "feats")
    done = run_cli("reproduce", tmp_path / "feats", "--dataset", "dtd", "--metrics", "sfda")
    assert done.returncode == 0, done.stderr
    datasets, table = _cells(done.stdout)
    assert datasets == ["dtd"] and sorted(table) == ["SFDA", "SFDA+PED"]
    assert table["SFDA+PED"]["dtd"][1] == 0.907
    in_sample = done.stdout.split("in-sample")[1]
    assert re.search(r"SFDA\+PED grid_k +\((-?\d\.\d{3})\)", in_sample).group(1) == \
        f"{paper.reported_weighted_tau('SFDA+PED', 'dtd', variant='grid_k'):.3f}"


def test_reproduce_without_paper_features_is_a_usage_error(tmp_path):
    (tmp_path / "feats").mkdir()
    np.save(tmp_path / "feats" / "mine_cars2_feature.npy", np.zeros((4, 2)))
    np.save(tmp_path / "feats" / "mine_cars2_label.npy", np.arange(4) % 2)
    done = run_cli("reproduce", tmp_path / "feats")
    assert done.returncode == 2
    assert "no features of the paper" in done.stderr and "Traceback" not in done.stderr


def test_plot_ped_writes_a_png(tmp_path):
    written = _write_paper_subset(tmp_path / "feats")
    ped_png = tmp_path / "ped.png"
    done = run_cli("plot", "ped", tmp_path / "feats" / "byol_cifar10_feature.npy", "--radius", "0.6", "-o", ped_png)
    assert done.returncode == 0, done.stderr
    data = ped_png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    x, y = written[("byol", "cifar10")]
    assert f"{pedrank.ped(x, y).steps} PED step" in done.stdout


def test_plot_scores_writes_a_png(tmp_path):
    _write_paper_subset(tmp_path / "feats")
    files = [tmp_path / "feats" / f"{model}_cifar10_feature.npy" for model in PAIRS["cifar10"]]
    scores = tmp_path / "scores.json"
    assert run_cli("rank", *files, "--json", scores).returncode == 0
    scores_png = tmp_path / "scores.png"
    done = run_cli("plot", "scores", scores, "-o", scores_png)  # truth: the paper's, dataset from the JSON
    assert done.returncode == 0, done.stderr
    assert scores_png.read_bytes()[:8] == PNG_SIGNATURE
    assert int.from_bytes(scores_png.read_bytes()[16:20], "big") > 300
