"""`pedrank finetune` and `pedrank plot finetune` on tiny CPU models."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("torch")

from test_cli_rank import run_cli  # noqa: E402  tests/ is on sys.path under pytest's default import mode

MODELS = """
import torch

def small():
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

def extractor():
    return torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh())

def conv_only():
    return torch.nn.Sequential(torch.nn.Flatten())
"""

FAST = ["--lr", "0.1", "0.01", "--wd", "0", "--iterations", "10", "--batch-size", "16", "--checkpoints", "2"]


def _setup(tmp_path, n=90, classes=3):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    inputs = rng.normal(scale=2.0, size=(classes, 6))[labels] + rng.normal(size=(n, 6))
    data = tmp_path / "toy.npz"
    np.savez(data, inputs=inputs.astype(np.float32), labels=labels)
    (tmp_path / "models.py").write_text(MODELS)
    return data, tmp_path / "models.py"


def test_finetune_writes_truth_curves_and_resumes(tmp_path):
    data, models = _setup(tmp_path)
    args = ["finetune", data, "--model", f"small={models}:small", "--model", f"feat={models}:extractor",
            "--head", "feat=append", "--cache", tmp_path / "cache", "-o", tmp_path / "acc.csv",
            "--curves", tmp_path / "curves.csv", *FAST]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "4 trained, 0 cached" in done.stdout
    with (tmp_path / "acc.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["small", "feat"] and all(0 <= float(r["toy"]) <= 1 for r in rows)
    first = (tmp_path / "acc.csv").read_text()
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "0 trained, 4 cached" in again.stdout
    assert (tmp_path / "acc.csv").read_text() == first

    scores = tmp_path / "scores.csv"
    scores.write_text("dataset,model,metric,ped,score\n"
                      "toy,small,logme,0,1.0\ntoy,feat,logme,0,2.0\ntoy,small,logme,1,2.0\ntoy,feat,logme,1,1.0\n")
    plotted = run_cli("plot", "finetune", tmp_path / "curves.csv", "--scores", scores, "-o", tmp_path / "f.png")
    if plotted.returncode == 1 and "matplotlib" in plotted.stderr:
        pytest.skip("matplotlib is not installed")
    assert plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert "logme" in plotted.stdout and "logme+PED" in plotted.stdout


@pytest.mark.parametrize("case, message", [
    ("one_class", "labels: found 1 class"),
    ("no_head", "no torch.nn.Linear layer to replace"),
    ("missing_key", "missing ['labels']"),
    ("bad_spec", "--model: found 'nocolon'"),
    ("no_attribute", "has no attribute 'absent'"),
])
def test_finetune_errors_exit_2_without_traceback(tmp_path, case, message):
    data, models = _setup(tmp_path)
    model = f"m={models}:small"
    if case == "one_class":
        np.savez(data, inputs=np.zeros((20, 6), np.float32), labels=np.zeros(20, int))
    elif case == "no_head":
        model = f"m={models}:conv_only"
    elif case == "missing_key":
        np.savez(data, inputs=np.zeros((20, 6), np.float32))
    elif case == "bad_spec":
        model = "nocolon"
    elif case == "no_attribute":
        model = f"m={models}:absent"
    done = run_cli("finetune", data, "--model", model, "-o", tmp_path / "acc.csv", *FAST)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
