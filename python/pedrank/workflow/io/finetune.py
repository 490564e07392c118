"""The tables of fine-tuning: the ground-truth CSV, the learning curves, and the long score table.

``pedrank finetune`` writes them (:func:`pedrank.workflow.finetune.write_accuracies` and ``write_curves`` check
their results, then call the writers here); ``pedrank evaluate --truth`` reads the first with
:func:`pedrank.workflow.io.truth.read_truth`, ``pedrank plot finetune`` the others.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.io.common import FeatureFileError, PathLike

__all__ = [
    "CURVE_COLUMNS",
    "SCORE_COLUMNS",
    "read_curves",
    "read_finetune_data",
    "read_score_table",
    "score_label",
    "write_accuracy_table",
    "write_curve_table",
    "write_score_table",
]


def write_accuracy_table(path: PathLike, results: Sequence[Any], *,
                         extra_columns: Mapping[str, Mapping[str, float]] | None = None) -> Path:
    """Write the ground truth as the CSV that ``pedrank evaluate --truth`` reads.

    Layout: a ``model`` column and one column per dataset holding the chosen setting's test accuracy (empty
    where a model was not fine-tuned on that dataset).

    Parameters
    ----------
    path : path
    results : sequence of FinetuneResult
        One per dataset, checked by the caller (:func:`pedrank.workflow.finetune.write_accuracies`).
    extra_columns : mapping of str to mapping of str to float, optional
        More columns ``{column: {model: value}}`` (e.g. a parameter count).

    Returns
    -------
    Path
    """
    extra = dict(extra_columns or {})
    models = []
    for result in results:
        models += [m for m in result.chosen if m not in models]
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", *[r.dataset for r in results], *extra])
        for model in models:
            row = [model]
            row += [repr(r.accuracies[model]) if model in r.accuracies else "" for r in results]
            row += ["" if extra[c].get(model) is None else f"{extra[c][model]:.6g}" for c in extra]
            writer.writerow(row)
    return path


CURVE_COLUMNS = ("dataset", "model", "learning_rate", "weight_decay", "chosen", "iteration", "test_accuracy",
                 "val_accuracy")


def write_curve_table(path: PathLike, results: Sequence[Any]) -> Path:
    """Write every run's test accuracy at every checkpoint as a long CSV.

    Columns: ``dataset, model, learning_rate, weight_decay, chosen`` (1 for the setting chosen on the
    validation split), ``iteration, test_accuracy, val_accuracy`` (the latter at the end of the run). ``results``: one
    FinetuneResult per dataset, checked by the caller (:func:`pedrank.workflow.finetune.write_curves`).
    """
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CURVE_COLUMNS)
        for result in results:
            for record in result.runs:
                chosen = result.chosen[record["model"]]
                is_chosen = (record["learning_rate"], record["weight_decay"]) == (chosen["learning_rate"],
                                                                                  chosen["weight_decay"])
                for iteration, accuracy in sorted(record["curve"].items(), key=lambda kv: int(kv[0])):
                    writer.writerow([result.dataset, record["model"], f"{record['learning_rate']:g}",
                                     f"{record['weight_decay']:g}", int(is_chosen), int(iteration),
                                     repr(float(accuracy)), repr(float(record["val_accuracy"]))])
    return path


def read_curves(path: PathLike, *, chosen_only: bool = True) -> dict[str, dict[str, dict[int, float]]]:
    """Read :func:`write_curves`'s CSV as ``{dataset: {model: {iteration: test accuracy}}}``.

    With ``chosen_only`` (default) only the chosen setting's curve is returned.
    """
    path = Path(path)
    if not path.is_file():
        raise PedrankValueError(f"curves: found no file at {str(path)!r}; expected the CSV of write_curves")
    out: dict[str, dict[str, dict[int, float]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("dataset", "model", "chosen", "iteration", "test_accuracy")
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise PedrankValueError(f"{path}: found columns {reader.fieldnames}; expected also {missing}")
        for line, row in enumerate(reader, start=2):
            if chosen_only and row["chosen"].strip() not in ("1", "true", "True"):
                continue
            try:
                iteration, accuracy = int(row["iteration"]), float(row["test_accuracy"])
            except ValueError as exc:
                raise PedrankValueError(f"{path}: line {line}: found iteration {row['iteration']!r}, accuracy "
                                        f"{row['test_accuracy']!r}; expected an integer and a number") from exc
            out.setdefault(row["dataset"], {}).setdefault(row["model"], {})[iteration] = accuracy
    return out


SCORE_COLUMNS = ("dataset", "model", "metric", "ped", "score")


def score_label(metric: str, ped: bool) -> str:
    """The name of a score variant in tables and plots: ``logme`` or ``logme+PED``."""
    return f"{metric}+PED" if ped else metric


def write_score_table(path: PathLike, scores: Mapping[tuple, float]) -> Path:
    """Write ``{(dataset, model, metric, ped): score}`` as the long CSV that ``pedrank plot finetune`` reads."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCORE_COLUMNS)
        for (dataset, model, metric, ped), value in scores.items():
            writer.writerow([dataset, model, metric, int(bool(ped)), repr(float(value))])
    return path


def read_score_table(path: PathLike) -> dict[str, dict[str, dict[str, float]]]:
    """Read a long score CSV (columns ``dataset, model, metric, ped, score``).

    Returns
    -------
    dict
        ``{dataset: {label: {model: score}}}`` with label ``metric`` or ``metric+PED``
        (:func:`score_label`), in the file's order.
    """
    path = Path(path)
    if not path.is_file():
        raise PedrankValueError(f"scores: found no file at {str(path)!r}; expected a CSV with columns "
                                f"{list(SCORE_COLUMNS)}")
    out: dict[str, dict[str, dict[str, float]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in SCORE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PedrankValueError(f"{path}: found columns {reader.fieldnames}; expected also {missing}")
        for line, row in enumerate(reader, start=2):
            ped = row["ped"].strip().lower()
            if ped not in ("0", "1", "true", "false"):
                raise PedrankValueError(f"{path}: line {line}: ped is {row['ped']!r}; expected 0 or 1")
            try:
                value = float(row["score"])
            except ValueError as exc:
                raise PedrankValueError(f"{path}: line {line}: score is {row['score']!r}; expected a number") from exc
            label = score_label(row["metric"], ped in ("1", "true"))
            out.setdefault(row["dataset"], {}).setdefault(label, {})[row["model"]] = value
    return out


def read_finetune_data(path: PathLike) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` that ``pedrank finetune --data`` reads, by key.

    It holds ``inputs`` and ``labels`` (the training data), and optionally both ``test_inputs`` and ``test_labels``.

    Raises
    ------
    FeatureFileError
        No such file, not a readable ``.npz``, a key missing, or only one of the test arrays.
    """
    data_path = Path(path)
    if not data_path.is_file():
        raise FeatureFileError(data_path, "no such file")
    try:
        with np.load(data_path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise FeatureFileError(data_path, f"not a readable .npz ({exc})") from exc
    missing = [key for key in ("inputs", "labels") if key not in arrays]
    if missing:
        raise FeatureFileError(data_path, f"missing {missing}; found keys {sorted(arrays)}, expected 'inputs' and "
                                          "'labels' (and optionally 'test_inputs', 'test_labels')")
    if ("test_inputs" in arrays) != ("test_labels" in arrays):
        raise FeatureFileError(data_path, "found only one of 'test_inputs' and 'test_labels'; expected both or neither")
    return arrays
