"""The command line's contract for scripts: exit 2 with the file and the reason on stderr, no traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_cli_rank import run_cli  # tests/ is on sys.path under pytest's default import mode


def _good_pool(directory):
    directory.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for model in ("a", "b"):
        np.savez(directory / f"{model}.npz", features=rng.normal(size=(30, 4)), labels=np.arange(30) % 3)


def _cases(tmp_path):
    good = tmp_path / "good"
    _good_pool(good)
    bad = tmp_path / "bad"
    bad.mkdir()
    np.savez(bad / "nan.npz", features=np.full((6, 2), np.nan), labels=np.arange(6) % 2)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    np.save(lonely / "m_ds_feature.npy", np.zeros((6, 2)))
    keys = tmp_path / "keys"
    keys.mkdir()
    np.savez(keys / "m.npz", X=np.zeros((6, 2)), y=np.zeros(6))
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps([{"model": "a", "score": 1.0}, {"model": "zz", "score": 2.0}]))
    truth = tmp_path / "truth.csv"
    truth.write_text("model,ds\na,90\nb,80\n")
    two_columns = tmp_path / "truth2.csv"  # two accuracy columns: --dataset must name one of them
    two_columns.write_text("model,ds,ds2\na,90,1\nb,80,2\n")
    not_json = tmp_path / "scores_broken.json"
    not_json.write_text("{")
    scored = tmp_path / "scores_abc.json"
    scored.write_text(json.dumps([{"model": m, "score": s} for m, s in (("a", 1.0), ("b", 2.0), ("c", 3.0))]))
    constant = tmp_path / "constant.csv"
    constant.write_text("model,ds\na,85\nb,85\nc,85\nd,90\n")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("model,ds\na,0.80\nb,85\nc,0.9\n")
    percent_and_fraction = tmp_path / "percent.csv"
    percent_and_fraction.write_text("model,ds\na,80%\nb,0.8\nc,0.9\n")
    return {
        "missing path": (["rank", tmp_path / "nope"], "nope"),
        "nan features": (["rank", bad], "nan.npz"),
        "missing labels file": (["rank", lonely], "m_ds_label.npy"),
        "npz without keys": (["rank", keys], "m.npz"),
        "unknown metric": (["rank", good, "--metric", "magic"], "magic"),
        "ped option without --ped": (["rank", good, "--radius", "0.3"], "--ped"),
        "negative radius": (["rank", good, "--ped", "--radius", "-1"], "radius"),
        "unknown metric option": (["rank", good, "--option", "bogus=1"], "bogus"),
        "model missing from truth": (["evaluate", scores, "--truth", truth], "zz"),
        "unknown truth column": (["evaluate", scores, "--truth", two_columns, "--dataset", "other"], "other"),
        "broken scores file": (["evaluate", not_json, "--truth", truth], "scores_broken.json"),
        "constant truth": (["evaluate", scored, "--truth", constant], "constant.csv, column 'ds'): all 3 values"),
        "mixed scales": (["evaluate", scored, "--truth", mixed], "fractions (a: 0.8, c: 0.9) and percentages (b: 85)"),
        "percent with fractions": (["evaluate", scored, "--truth", percent_and_fraction], "percentages (a: 80%)"),
        "plot of a missing file": (["plot", "ped", tmp_path / "none.npz"], "none.npz"),
        "reproduce on a file": (["reproduce", truth], "truth.csv"),
        "bad syntax": (["rank"], "usage"),
        "unknown command": (["frobnicate"], "usage"),
    }


CASE_NAMES = [
    "missing path", "nan features", "missing labels file", "npz without keys", "unknown metric",
    "ped option without --ped", "negative radius", "unknown metric option", "model missing from truth",
    "unknown truth column", "broken scores file", "constant truth", "mixed scales", "percent with fractions",
    "plot of a missing file", "reproduce on a file", "bad syntax",
    "unknown command",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_exits_2_naming_the_problem_without_a_traceback(tmp_path, case):
    args, expected = _cases(tmp_path)[case]
    done = run_cli(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert expected in done.stderr
    assert done.stdout == ""


def test_success_exits_0(tmp_path):
    _good_pool(tmp_path / "good")
    done = run_cli("rank", tmp_path / "good", "--no-progress")
    assert done.returncode == 0 and done.stderr == ""


def test_an_internal_error_exits_1_and_says_it_is_a_bug(tmp_path, monkeypatch, capsys):
    # A bare ValueError (or any exception) from inside pedrank is not the user's input being wrong: exit 1, one
    # line that says so, not exit 2 ("bad input").
    import importlib

    from pedrank.frontends.cli import main

    rank_module = importlib.import_module("pedrank.workflow.rank")  # `pedrank.rank` is the function

    _good_pool(tmp_path / "good")

    def broken(*args, **kwargs):
        raise ValueError("shapes (3,) and (4,) not aligned")

    monkeypatch.setattr(rank_module, "score_entry", broken)
    assert main(["rank", str(tmp_path / "good"), "--metric", "sfda", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "internal error, a bug in pedrank (ValueError: shapes (3,) and (4,) not aligned)" in err
    assert "PEDRANK_DEBUG=1" in err and "Traceback" not in err


def test_python_dash_m_pedrank_is_the_command():
    import subprocess
    import sys

    shown = subprocess.run([sys.executable, "-m", "pedrank", "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: pedrank"), shown.stderr[-1000:]
    refused = subprocess.run([sys.executable, "-m", "pedrank", "rank", "--no-such-option"], capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 2 and "pedrank rank: error:" in refused.stderr
