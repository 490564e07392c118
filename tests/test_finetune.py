"""pedrank.finetune: the fine-tuning harness on tiny CPU models (seconds)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pedrank import PedrankValueError  # noqa: E402
from pedrank.workflow.finetune import (  # noqa: E402
    finetune,
    read_curves,
    read_score_table,
    stratified_split,
    write_accuracies,
    write_curves,
    write_score_table,
)
from test_cli_rank import run_cli  # noqa: E402  tests/ is on sys.path under pytest's default import mode

GRID = {"learning_rates": (0.1, 0.01), "weight_decays": (1e-4, 0.0), "iterations": 12, "batch_size": 16,
        "checkpoints": 3}


def _data(n=120, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    centres = rng.normal(scale=2.0, size=(c, d))
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def _mlp(d=6, hidden=8):
    return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 5))


def _extractor(d=6):
    return torch.nn.Sequential(torch.nn.Linear(d, 4), torch.nn.Tanh())


class Counting:
    """A factory that counts its calls and can fail after a number of them (a killed job)."""

    def __init__(self, build, fail_after=None):
        self.build, self.fail_after, self.calls = build, fail_after, 0

    def __call__(self):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("killed")
        return self.build()


def _pool(seed=0):
    torch.manual_seed(seed)
    return {"mlp": _mlp(), "wide": _mlp(hidden=16)}


def test_same_seed_same_accuracies_other_seed_other_runs():
    X, y = _data()
    first = finetune(_pool(), X, y, seed=3, **GRID)
    second = finetune(_pool(), X, y, seed=3, **GRID)
    assert first.accuracies == second.accuracies
    assert [r["curve"] for r in first.runs] == [r["curve"] for r in second.runs]
    assert [r["val_loss"] for r in first.runs] == [r["val_loss"] for r in second.runs]
    other = finetune(_pool(), X, y, seed=4, **GRID)
    assert [r["val_loss"] for r in other.runs] != [r["val_loss"] for r in first.runs]


def test_grid_choice_checkpoints_and_result_shape():
    X, y = _data()
    result = finetune(_pool(), X, y, dataset="toy", **GRID)
    assert len(result.runs) == 2 * 4
    for model, record in result.chosen.items():
        runs = [r for r in result.runs if r["model"] == model]
        assert record["val_accuracy"] == max(r["val_accuracy"] for r in runs)
        assert sorted(int(k) for k in record["curve"]) == [4, 8, 12]
        assert record["curve"]["12"] == record["test_accuracy"]
        assert 0.0 <= record["test_accuracy"] <= 1.0
    # Separable blobs: a 12-step fine-tune beats chance (1/3) by far.
    assert min(result.accuracies.values()) > 0.6


def test_callers_module_and_data_unchanged():
    X, y = _data()
    X_before, y_before = X.copy(), y.copy()
    model = _mlp()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    finetune({"m": model}, X, y, **GRID)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert isinstance(model[2], torch.nn.Linear) and model[2].out_features == 5
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_append_head_and_torch_dataset():
    X, y = _data()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    from_dataset = finetune({"f": _extractor}, dataset, head="append", seed=1, **GRID)
    from_arrays = finetune({"f": _extractor}, X, y, head={"f": "append"}, seed=1, **GRID)
    assert from_dataset.accuracies == from_arrays.accuracies


def test_resume_after_kill_redoes_nothing(tmp_path):
    X, y = _data()
    killed = Counting(_mlp, fail_after=1)
    with pytest.raises(KeyboardInterrupt, match="^killed$"):  # Counting's, not one of finetune's own
        finetune({"m": killed}, X, y, cache_dir=tmp_path, **GRID)
    assert len(list((tmp_path / "dataset").glob("*.json"))) == 1  # the finished run, nothing else
    assert not list((tmp_path / "dataset").glob(".*"))  # no temporary file left behind
    resumed = Counting(_mlp)
    result = finetune({"m": resumed}, X, y, cache_dir=tmp_path, **GRID)
    assert resumed.calls == 3  # 4 settings, 1 finished before the kill
    assert result.n_trained == 3
    again = Counting(_mlp)
    cached = finetune({"m": again}, X, y, cache_dir=tmp_path, **GRID)
    assert again.calls == 0 and cached.n_trained == 0
    assert cached.accuracies == result.accuracies
    fresh = finetune({"m": _mlp}, X, y, **GRID)  # no cache: the same numbers
    assert fresh.accuracies == result.accuracies


def test_cache_key_covers_settings_and_data(tmp_path):
    X, y = _data()
    finetune({"m": _mlp}, X, y, cache_dir=tmp_path, **GRID)
    counter = Counting(_mlp)
    finetune({"m": counter}, X, y, cache_dir=tmp_path, **{**GRID, "iterations": 13})
    assert counter.calls == 4
    counter = Counting(_mlp)
    X2 = X.copy()
    X2[0, 0] += 1.0
    finetune({"m": counter}, X2, y, cache_dir=tmp_path, **GRID)
    assert counter.calls == 4


def test_accuracies_csv_round_trip_through_evaluate(tmp_path):
    X, y = _data()
    pool = {"a": _mlp, "b": lambda: _mlp(hidden=2), "c": lambda: _mlp(hidden=32)}
    one = finetune(pool, X, y, dataset="toy", **GRID)
    two = finetune(pool, *_data(seed=1), dataset="toy2", **GRID)
    truth = write_accuracies(tmp_path / "acc.csv", [one, two])
    with truth.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["a", "b", "c"]
    assert {r["model"]: float(r["toy2"]) for r in rows} == pytest.approx(two.accuracies, abs=1e-6)
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps([{"model": m, "score": float(a)} for m, a in one.accuracies.items()]))
    done = run_cli("evaluate", scores, "--truth", truth, "--dataset", "toy", "--json", "-")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout[done.stdout.index("{"):])
    metrics = payload.get("metrics", payload)
    if len(set(one.accuracies.values())) == 3:  # scores equal to the truth rank it perfectly
        assert metrics["weighted_tau"] == pytest.approx(1.0)
    curves = write_curves(tmp_path / "curves.csv", [one, two])
    read = read_curves(curves)
    assert read["toy"] == one.curves and read["toy2"] == two.curves
    assert len(read_curves(curves, chosen_only=False)["toy"]["a"]) == 3


def test_score_table_round_trip(tmp_path):
    table = {("d", "a", "logme", False): 1.5, ("d", "a", "logme", True): 2.5, ("d", "b", "logme", False): -1.0}
    back = read_score_table(write_score_table(tmp_path / "s.csv", table))
    assert back == {"d": {"logme": {"a": 1.5, "b": -1.0}, "logme+PED": {"a": 2.5}}}


def test_stratified_split_is_seeded_and_stratified():
    y = np.repeat([0, 1, 2], [10, 20, 30])
    kept, held = stratified_split(y, 0.2, seed=5)
    assert np.bincount(y[held]).tolist() == [2, 4, 6]
    assert sorted(np.r_[kept, held].tolist()) == list(range(60))
    again = stratified_split(y, 0.2, seed=5)[1]
    assert np.array_equal(held, again)
    assert not np.array_equal(held, stratified_split(y, 0.2, seed=6)[1])


@pytest.mark.parametrize("case, match", [
    ("one_class", "labels: found 1 class"),
    ("no_head", "no torch.nn.Linear layer to replace"),
    ("empty_val", "val_size: the validation split is empty"),
    ("bad_fraction", "val_size: found 1.5"),
    ("bad_lr", "learning_rates: found"),
    ("bad_head", "head.*found 'middle'"),
    ("not_module", "factory returned int"),
    ("mismatch", "found 10 inputs and 9 labels"),
])
def test_errors_name_argument_value_and_expectation(case, match):
    X, y = _data(n=30)
    kwargs = dict(GRID)
    models = {"m": _mlp}
    if case == "one_class":
        y = np.zeros_like(y)
    elif case == "no_head":
        models = {"m": lambda: torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1))}
    elif case == "empty_val":
        X, y = X[:2], np.array([0, 1])  # one row per class: nothing to hold out
        kwargs["test_inputs"], kwargs["test_labels"] = X, y
    elif case == "bad_fraction":
        kwargs["val_size"] = 1.5
    elif case == "bad_lr":
        kwargs["learning_rates"] = (0.1, -1.0)
    elif case == "bad_head":
        kwargs["head"] = "middle"
    elif case == "not_module":
        models = {"m": lambda: 3}
    elif case == "mismatch":
        X, y = X[:10], y[:9]
    with pytest.raises(PedrankValueError, match=match):
        finetune(models, X, y, **kwargs)


def test_import_pedrank_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, pedrank, pedrank.finetune, pedrank.plot; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_diverged_setting_is_not_chosen_and_global_rng_untouched():
    X, y = _data()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    result = finetune({"m": _mlp}, X * 1e6, y, **{**GRID, "learning_rates": (1e6, 0.01)})
    after = torch.rand(3)
    assert torch.equal(before, after)  # the caller's global RNG state is as it was
    runs = result.runs
    assert any(r["diverged"] for r in runs)
    if not all(r["diverged"] for r in runs):
        assert not result.chosen["m"]["diverged"]


def test_a_cached_run_keeps_its_curve_in_checkpoint_order(tmp_path):
    # JSON stores the curve's keys sorted as text ("12" < "4"); a run read back from the cache gives them in
    # iteration order, as a trained run does, so a run file rewritten from the cache does not reorder them
    X, y = _data()
    grid = {**GRID, "iterations": 12, "checkpoints": 3}
    trained = finetune({"m": _mlp}, X, y, cache_dir=tmp_path, **grid)
    cached = finetune({"m": _mlp}, X, y, cache_dir=tmp_path, **grid)
    assert cached.n_trained == 0
    for fresh, stored in zip(trained.runs, cached.runs):
        assert [int(k) for k in stored["curve"]] == sorted(int(k) for k in stored["curve"])
        assert list(stored["curve"]) == list(fresh["curve"])


class _HeadFirst(torch.nn.Module):
    """Declares its classifier head before its body: the last nn.Linear declared is a body layer."""

    def __init__(self, d=6):
        super().__init__()
        self.head = torch.nn.Linear(4, 5)
        self.body = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4),
                                        torch.nn.ReLU())

    def forward(self, x):
        return self.head(self.body(x))


def test_replace_head_replaces_the_layer_the_forward_pass_runs_last():
    from pedrank.workflow.finetune.training import attach_head, last_linear

    model = _HeadFirst()
    sample = torch.zeros(2, 6)
    assert last_linear(model, sample) == "head"
    assert model.training  # the probe leaves the model's mode as it was
    replaced = attach_head("m", model, "replace", 3, sample)
    assert replaced.head.out_features == 3 and replaced.body[2].out_features == 4
    assert replaced(sample).shape == (2, 3)
    X, y = _data()
    result = finetune({"m": _HeadFirst}, X, y, seed=0, **GRID)
    assert 0.0 <= result.accuracies["m"] <= 1.0
