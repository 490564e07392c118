"""Ground truth by fine-tuning: fine-tune a pool of torch models on a labelled dataset, the field's way.

The protocol follows the one LogME and SFDA published (and the PED paper reuses): every model gets a fresh
linear head, all its weights are trained with SGD and momentum for a fixed number of iterations, once per
setting of a grid of learning rate x weight decay; the setting is chosen on a validation split carved
(stratified, seeded) from the training part, and **that setting's test accuracy is the model's ground
truth**. Test accuracy is also recorded at checkpoints along training (the PED paper's supplementary Fig. 3:
ranking quality against fine-tuning iterations).

Every finished run (one model, one dataset, one setting) is written at once, atomically, as one JSON file
in ``cache_dir``, keyed by the model's name, a fingerprint of the data and every setting that changes the
result; a restarted job reads those files and redoes nothing, so a killed job loses at most the run in
progress.

torch is optional for pedrank: it is imported only when this module's functions run.

Defaults: learning rates {1e-1, 1e-2, 1e-3, 1e-4} x weight decays {1e-3, 1e-4, 1e-5, 1e-6, 0}, 5,000
iterations of batch 48, momentum 0.9, cosine decay of the learning rate to 0, 20 % of the training part for
validation. The setting is chosen by validation accuracy at the end of training (ties: lower validation loss,
then the grid's order; a run whose loss became infinite or NaN stops and is chosen only when every setting
diverged). The chosen setting is *not* retrained on training + validation: its test accuracy
after training on the training part minus the validation split is the ground truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from pedrank._engine.progress import progress as _progress
from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.finetune.training import as_tensors, torch_module, train_one
from pedrank.workflow.finetune.training import attach_head as attach_head
from pedrank.workflow.finetune.training import fingerprint as data_fingerprint
from pedrank.workflow.finetune.training import last_linear as last_linear
from pedrank.workflow.io.finetune import CURVE_COLUMNS as CURVE_COLUMNS
from pedrank.workflow.io.finetune import SCORE_COLUMNS as SCORE_COLUMNS
from pedrank.workflow.io.finetune import read_curves as read_curves
from pedrank.workflow.io.finetune import read_score_table as read_score_table
from pedrank.workflow.io.finetune import score_label as score_label
from pedrank.workflow.io.finetune import write_accuracy_table, write_curve_table
from pedrank.workflow.io.finetune import write_score_table as write_score_table

__all__ = [
    "FinetuneResult",
    "DEFAULT_LEARNING_RATES",
    "DEFAULT_WEIGHT_DECAYS",
    "finetune",
    "read_curves",
    "read_score_table",
    "score_label",
    "stratified_split",
    "write_accuracies",
    "write_curves",
    "write_score_table",
]

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_LEARNING_RATES = (1e-1, 1e-2, 1e-3, 1e-4)
DEFAULT_WEIGHT_DECAYS = (1e-3, 1e-4, 1e-5, 1e-6, 0.0)
_CACHE_FORMAT = 1
_SCHEDULES = ("cosine", "constant")




# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class FinetuneResult:
    """The fine-tuning runs of a pool on one dataset, and the ground truth they give.

    Attributes
    ----------
    dataset : str
        The dataset's name (a column of the accuracies CSV).
    runs : tuple of dict
        One record per (model, setting), in the grid's order. Keys: ``model``, ``dataset``,
        ``learning_rate``, ``weight_decay``, ``val_accuracy``, ``val_loss``, ``test_accuracy`` (at the end),
        ``curve`` (``{iteration: test accuracy}`` at the checkpoints), ``train_loss`` (mean of the last 10 %
        of iterations; None when the loss became infinite or NaN), ``diverged`` (such a run stops there and is
        chosen only when every setting of the model diverged), ``seconds``, ``cached`` (read from the cache, not
        trained in this call), and the protocol's settings (``iterations``, ``batch_size``, ``momentum``,
        ``schedule``, ``seed``, ...).
    chosen : dict of str to dict
        For each model, the record of the setting chosen on the validation split.
    """

    dataset: str
    runs: tuple = ()
    chosen: dict = field(default_factory=dict)

    @property
    def accuracies(self) -> dict[str, float]:
        """``{model: test accuracy of the chosen setting}``: the ground truth."""
        return {model: float(record["test_accuracy"]) for model, record in self.chosen.items()}

    @property
    def curves(self) -> dict[str, dict[int, float]]:
        """``{model: {iteration: test accuracy}}`` of the chosen setting, at the checkpoints."""
        return {model: {int(k): float(v) for k, v in record["curve"].items()}
                for model, record in self.chosen.items()}

    @property
    def n_trained(self) -> int:
        """How many runs were trained in this call (the others came from the cache)."""
        return sum(not record["cached"] for record in self.runs)

    def to_string(self) -> str:
        lines = [f"{self.dataset}: {len(self.chosen)} models, {len(self.runs)} runs "
                 f"({self.n_trained} trained, {len(self.runs) - self.n_trained} cached)"]
        width = max((len(m) for m in self.chosen), default=5)
        for model, record in sorted(self.chosen.items(), key=lambda kv: -kv[1]["test_accuracy"]):
            lines.append(f"  {model.ljust(width)}  test {record['test_accuracy']:.4f}  "
                         f"(val {record['val_accuracy']:.4f}, lr {record['learning_rate']:g}, "
                         f"wd {record['weight_decay']:g})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()


# ------------------------------------------------------------------------------------------ data


def stratified_split(labels: Any, fraction: float, seed: int, *,
                     name: str = "fraction") -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out) with ``fraction`` of each class held out, seeded.

    Parameters
    ----------
    labels : array_like of shape (n_samples,)
    fraction : float in (0, 1)
    seed : int
    name : str
        The argument's name in error messages.

    Returns
    -------
    kept, held : ndarray of int, sorted
        Each class contributes ``round(fraction * n_class)`` rows to ``held`` (at least 1 when the class
        has 2 rows or more, and never all of them).
    """
    labels = np.asarray(labels)
    if not 0.0 < float(fraction) < 1.0:
        raise PedrankValueError(f"{name}: found {fraction!r}; expected a fraction strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        n_held = int(round(fraction * len(rows)))
        if len(rows) >= 2:
            n_held = min(max(n_held, 1), len(rows) - 1)
        else:
            n_held = 0
        held.append(rng.permutation(rows)[:n_held])
    held_rows = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_rows)
    return kept, held_rows


def _checkpoint_list(checkpoints: Any, iterations: int) -> list[int]:
    if isinstance(checkpoints, (int, np.integer)):
        if checkpoints < 1:
            raise PedrankValueError(f"checkpoints: found {checkpoints}; expected a count >= 1 or a list of "
                                    "iterations")
        grid = np.unique(np.round(np.linspace(0, iterations, int(checkpoints) + 1)[1:]).astype(int))
        return [int(p) for p in grid if p >= 1]
    points = sorted({int(p) for p in checkpoints})
    bad = [p for p in points if not 1 <= p <= iterations]
    if bad:
        raise PedrankValueError(f"checkpoints: found iterations {bad}; expected values in [1, {iterations}]")
    if iterations not in points:
        points.append(iterations)
    return points


def _write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def choose_run(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Best validation accuracy among the runs that did not diverge (all of them if every run diverged);
    ties: lower validation loss, then the first in the grid's order."""
    def diverged(record):
        return bool(record.get("diverged", record.get("train_loss") is None))

    def key(indexed):
        index, record = indexed
        loss = record["val_loss"]
        return (diverged(record), -record["val_accuracy"], math.inf if loss is None else loss, index)

    return min(enumerate(records), key=key)[1]


def finetune(
    models: Mapping[str, Any],
    inputs: Any,
    labels: Any = None,
    *,
    test_inputs: Any = None,
    test_labels: Any = None,
    dataset: str = "dataset",
    test_size: float = 0.3,
    val_size: float = 0.2,
    learning_rates: Iterable[float] = DEFAULT_LEARNING_RATES,
    weight_decays: Iterable[float] = DEFAULT_WEIGHT_DECAYS,
    iterations: int = 5000,
    batch_size: int = 48,
    momentum: float = 0.9,
    schedule: str = "cosine",
    checkpoints: Any = 10,
    head: str | Mapping[str, str] = "replace",
    seed: int = 0,
    device: Any = "cpu",
    cache_dir: PathLike | None = None,
    eval_batch_size: int = 256,
    progress: bool | None = None,
) -> FinetuneResult:
    """Fine-tune every model of a pool on a labelled dataset and return its fine-tuned (ground-truth) accuracy.

    Parameters
    ----------
    models : mapping of str to torch.nn.Module or zero-argument callable
        The pool. A module is deep-copied for every run (the caller's is never trained); a callable is called
        once per run and must return a fresh module (cheaper for big pools). A model takes a batch of
        ``inputs`` (batch, ...) and returns logits or features (batch, ...); it does its own preprocessing.
    inputs : array_like or torch.Tensor of shape (n_samples, ...), or torch.utils.data.Dataset
        The labelled data (the training part when ``test_inputs`` is given). A Dataset of (input, label)
        pairs is read in full into memory (pass ``labels=None``).
    labels : array_like of shape (n_samples,), optional
        Integer class labels 0..C-1 (any integers: they are used as given, so C = max + 1 must cover them).
    test_inputs, test_labels : optional
        A separate test part. Without it, ``test_size`` of each class is held out (stratified, ``seed``).
    dataset : str, default "dataset"
        The dataset's name: the cache key and the accuracies CSV's column.
    test_size : float, default 0.3
        Share of each class held out for testing when no test part is given.
    val_size : float, default 0.2
        Share of each class of the training part held out to choose the setting.
    learning_rates, weight_decays : iterable of float
        The grid (default LogME/SFDA's {1e-1, 1e-2, 1e-3, 1e-4} x {1e-3, 1e-4, 1e-5, 1e-6, 0}).
    iterations : int, default 5000
        SGD steps per run (the same for every setting).
    batch_size : int, default 48
    momentum : float, default 0.9
    schedule : {"cosine", "constant"}, default "cosine"
        Learning rate over the run: cosine decay to 0, or constant.
    checkpoints : int or iterable of int, default 10
        Where test accuracy is recorded: a count of evenly spaced iterations, or the iterations themselves
        (the last iteration is always included).
    head : {"replace", "append"} or mapping of str to those, default "replace"
        "replace": the model's last ``torch.nn.Linear`` (in module order) becomes a fresh ``nn.Linear`` with
        C outputs. "append": the model is a feature extractor; its output is flattened and a fresh
        ``nn.Linear`` is added after it. A mapping gives it per model (missing models: "replace").
    seed : int, default 0
        Seeds the splits, the head's (and a factory's) initialisation and the batch order. The same seed gives
        the same accuracies on the CPU.
    device : str or torch.device, default "cpu"
        Where training runs ("cuda" on a GPU machine); data is moved there one batch at a time.
    cache_dir : path, optional
        Directory of finished runs (one JSON per run, written atomically). Runs found there are read, not
        retrained; the key covers the model's name, the dataset's name and a fingerprint of its data and
        splits, and every setting above except ``progress``, ``device`` and ``eval_batch_size``. It does not
        see a model's weights or code: rename the model or clear the cache when they change.
    eval_batch_size : int, default 256
    progress : bool or None
        A progress bar over the runs (see pedrank's other functions).

    Returns
    -------
    FinetuneResult
        ``.accuracies`` is ``{model: test accuracy}`` of each model's chosen setting.

    Raises
    ------
    PedrankValueError
        Fewer than 2 classes, an empty training/validation/test split, a model without a ``nn.Linear`` to
        replace, a factory not returning a module, a bad grid or setting (each message names the argument, the
        value found and what was expected).
    ImportError
        torch is not installed.
    """
    torch = torch_module()
    if not isinstance(models, Mapping) or not models:
        raise PedrankValueError(f"models: found {type(models).__name__} of size "
                                f"{len(models) if hasattr(models, '__len__') else '?'}; expected a non-empty "
                                "mapping of name to torch module or factory")
    learning_rates = [float(v) for v in learning_rates]
    weight_decays = [float(v) for v in weight_decays]
    if not learning_rates or any(not (math.isfinite(v) and v > 0) for v in learning_rates):
        raise PedrankValueError(f"learning_rates: found {learning_rates}; expected one or more positive numbers")
    if not weight_decays or any(not (math.isfinite(v) and v >= 0) for v in weight_decays):
        raise PedrankValueError(f"weight_decays: found {weight_decays}; expected one or more numbers >= 0")
    for argname, value, low in (("iterations", iterations, 1), ("batch_size", batch_size, 1),
                                ("eval_batch_size", eval_batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise PedrankValueError(f"{argname}: found {value!r}; expected an integer >= {low}")
    if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
        raise PedrankValueError(f"momentum: found {momentum!r}; expected a number in [0, 1)")
    if schedule not in _SCHEDULES:
        raise PedrankValueError(f"schedule: found {schedule!r}; expected one of {list(_SCHEDULES)}")
    heads = {name: (head.get(name, "replace") if isinstance(head, Mapping) else head) for name in models}
    for name, choice in heads.items():
        if choice not in ("replace", "append"):
            raise PedrankValueError(f"head[{name!r}]: found {choice!r}; expected 'replace' or 'append'")
    points = _checkpoint_list(checkpoints, int(iterations))

    x, y = as_tensors(inputs, labels, "inputs")
    if test_inputs is not None or test_labels is not None:
        if test_inputs is None or (test_labels is None and not hasattr(test_inputs, "__getitem__")):
            raise PedrankValueError("test_inputs/test_labels: found only one of them; expected both or neither")
        x_test, y_test = as_tensors(test_inputs, test_labels, "test_inputs")
        if tuple(x_test.shape[1:]) != tuple(x.shape[1:]):
            raise PedrankValueError(f"test_inputs: found samples of shape {tuple(x_test.shape[1:])}; expected "
                                    f"{tuple(x.shape[1:])} like inputs")
    else:
        x_test = y_test = None
    classes = torch.unique(y)
    if len(classes) < 2:
        raise PedrankValueError(f"labels: found {len(classes)} class(es) {classes.tolist()}; expected at least 2 "
                                "to fine-tune a classifier")
    if int(y.min()) < 0:
        raise PedrankValueError(f"labels: found the negative label {int(y.min())}; expected class indices >= 0")
    if x_test is None:
        kept, held = stratified_split(y.numpy(), test_size, seed, name="test_size")
        x_test, y_test = x[held], y[held]
        x, y = x[kept], y[kept]
    train, val = stratified_split(y.numpy(), val_size, seed + 1, name="val_size")
    for argname, part, rows in (("test_size", "test", len(y_test)), ("val_size", "validation", len(val)),
                                ("val_size", "training", len(train))):
        if rows == 0:
            raise PedrankValueError(f"{argname}: the {part} split is empty ({len(y)} training rows, classes "
                                    f"{classes.tolist()}); expected at least one row per split: give more samples "
                                    "per class or another fraction")
    n_classes = int(max(int(y.max()), int(y_test.max()))) + 1
    data = (x[train], y[train], x[val], y[val], x_test, y_test, n_classes)
    fingerprint = data_fingerprint(*data[:6])

    protocol = {"iterations": int(iterations), "batch_size": int(batch_size), "momentum": float(momentum),
                "schedule": schedule, "checkpoints": points, "seed": int(seed), "val_size": float(val_size),
                "eval_batch_size": int(eval_batch_size)}
    grid = [(lr, wd) for lr in learning_rates for wd in weight_decays]
    work = [(name, setting) for name in models for setting in grid]
    cache = None if cache_dir is None else Path(cache_dir) / _safe(dataset)
    records: dict[str, list] = {name: [] for name in models}
    all_runs = []
    for name, setting in _progress(work, total=len(work), desc=f"fine-tuning on {dataset}", enabled=progress):
        key = {"format": _CACHE_FORMAT, "model": name, "dataset": dataset, "data": fingerprint,
               "learning_rate": setting[0], "weight_decay": setting[1], "head": heads[name],
               "n_classes": n_classes,
               **{k: v for k, v in protocol.items() if k != "eval_batch_size"}}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        path = None if cache is None else cache / f"{_safe(name)}__lr{setting[0]:g}__wd{setting[1]:g}__{digest}.json"
        record = None
        if path is not None and path.is_file():
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
                if stored.get("key") == key:
                    record = {**stored["result"], "cached": True}
                    if isinstance(record.get("curve"), Mapping):  # JSON keys come back sorted as text: "100" < "50"
                        record["curve"] = dict(sorted(record["curve"].items(), key=lambda item: int(item[0])))
            except (OSError, ValueError, KeyError, TypeError):
                record = None  # unreadable: train again and overwrite
        if record is None:
            result = train_one(name, models[name], data, setting, {**protocol, "head": heads[name]},
                                torch.device(device))
            if path is not None:
                _write_json_atomically(path, {"key": key, "result": result, "device": str(device),
                                              "torch": torch.__version__})
            record = {**result, "cached": False}
        record = {"model": name, "dataset": dataset, "learning_rate": setting[0], "weight_decay": setting[1],
                  **{k: v for k, v in protocol.items() if k != "eval_batch_size"}, **record}
        records[name].append(record)
        all_runs.append(record)
    chosen = {name: dict(choose_run(runs)) for name, runs in records.items()}
    return FinetuneResult(dataset=dataset, runs=tuple(all_runs), chosen=chosen)


# ------------------------------------------------------------------------------------------ CSV files


def _as_results(results: Any) -> list[FinetuneResult]:
    if isinstance(results, FinetuneResult):
        return [results]
    results = list(results)
    if not results or not all(isinstance(r, FinetuneResult) for r in results):
        raise PedrankValueError("results: expected a FinetuneResult or a non-empty list of them")
    names = [r.dataset for r in results]
    if len(set(names)) != len(names):
        raise PedrankValueError(f"results: found the datasets {names}; expected each dataset once")
    return results


def write_accuracies(path: PathLike, results: Any, *,
                     extra_columns: Mapping[str, Mapping[str, float]] | None = None) -> Path:
    """Write the ground truth as the CSV that ``pedrank evaluate --truth`` reads.

    Layout: a ``model`` column and one column per dataset holding the chosen setting's test accuracy (empty
    where a model was not fine-tuned on that dataset).

    Parameters
    ----------
    path : path
    results : FinetuneResult or iterable of FinetuneResult (one per dataset)
    extra_columns : mapping of str to mapping of str to float, optional
        More columns ``{column: {model: value}}`` (e.g. a parameter count).

    Returns
    -------
    Path
    """
    return write_accuracy_table(path, _as_results(results), extra_columns=extra_columns)


def write_curves(path: PathLike, results: Any) -> Path:
    """Write every run's test accuracy at every checkpoint as a long CSV.

    Columns: ``dataset, model, learning_rate, weight_decay, chosen`` (1 for the setting chosen on the
    validation split), ``iteration, test_accuracy, val_accuracy`` (the latter at the end of the run).
    """
    return write_curve_table(path, _as_results(results))
