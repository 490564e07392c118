"""What :func:`pedrank.workflow.tune.tune` reads: benchmark pools on disk (:func:`find_datasets`) and their ground
truth (:func:`read_truths`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.tune.settings import PathLike

__all__ = ["find_datasets", "read_truths"]


def find_datasets(paths: PathLike | Iterable[PathLike]) -> dict[str, dict[str, Any]]:
    """Benchmark pools on disk: ``{dataset: {model: FeatureSource}}``.

    Each path is one of:

    - ``NAME=PATH``: the dataset NAME, its pool found by :func:`pedrank.workflow.io.find_features` in PATH (a
      folder or a feature file);
    - a folder in the authors' layout (``{model}_{dataset}_feature.npy`` + ``_label.npy``), one pool per dataset;
    - a folder of ``{dataset}__{model}.npz`` files (the model zoo's cache, ``benchmarks/zoo/cache``), one pool per
      dataset.
    """
    from pedrank.workflow.io import FeatureFileError, FeatureSource, find_authors_layout, find_features

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    datasets: dict[str, dict[str, Any]] = {}

    def add(dataset: str, model: str, source: Any, where: Any) -> None:
        pool = datasets.setdefault(dataset, {})
        if model in pool:
            raise FeatureFileError(where, f"model {model!r} of dataset {dataset!r} is given twice")
        pool[model] = source

    for raw in paths:
        text = os.fspath(raw)
        name, sep, rest = text.partition("=")
        if sep and name and rest and not Path(text).exists():
            for model, source in find_features(rest).items():
                add(name, model, source, rest)
            continue
        path = Path(text)
        if not path.is_dir():
            raise FeatureFileError(path, "expected a folder of pools (authors' layout or {dataset}__{model}.npz), "
                                         "or NAME=PATH for one dataset")
        zoo = sorted(p for p in path.glob("*.npz") if _zoo_name(p) is not None)
        authors = find_authors_layout(path)
        if not zoo and not authors:
            raise FeatureFileError(path, "no pools found: expected {model}_{dataset}_feature.npy files (authors' "
                                         "layout) or {dataset}__{model}.npz files (model-zoo cache)")
        for (model, dataset), source in authors.items():
            add(str(dataset), model, source, source.path)
        for file in zoo:
            dataset, model = _zoo_name(file)  # type: ignore[misc]
            add(dataset, model, FeatureSource(model, file, None, dataset, None), file)
    return {dataset: dict(sorted(pool.items())) for dataset, pool in datasets.items()}


def _zoo_name(path: Path) -> tuple[str, str] | None:
    if path.suffix != ".npz" or "__" not in path.stem:
        return None
    dataset, model = path.stem.split("__", 1)
    return (dataset, model) if dataset and model else None


def read_truths(truth: Any, datasets: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{dataset: {model: accuracy}}`` from a mapping of per-dataset mappings or CSV paths, a CSV path or a list
    of them (each read with :func:`pedrank.workflow.evaluate.read_truth`).

    One CSV serves several datasets only through one column per dataset (``model,cifar10,dtd``). A plain file's
    single column (``model,accuracy``) serves one dataset at most: read_truth accepts it for a dataset when its name
    is generic or names that dataset (:func:`pedrank.workflow.io.truth.column_serves`), and a column that would
    serve a second dataset is refused. With several files, each dataset's column must be named after it
    (``cifar10``, ``cifar10_acc``) in exactly one of them.

    Every dataset's accuracies follow the scale rule of :func:`pedrank.workflow.evaluate.check_accuracies` (one
    scale, in [0, 100]), mappings as well as files.

    Parameters
    ----------
    truth : mapping, path or list of paths
        ``{dataset: {model: accuracy} | CSV}``, or CSV file(s).
    datasets : sequence of str
        The datasets that need their truth.

    Returns
    -------
    dict
        ``{dataset: {model: accuracy}}`` for every dataset of ``datasets``.

    Raises
    ------
    PedrankValueError
        No truth, or none for a dataset (with several files: no column named after it, or one in several files),
        one file column for several datasets, a value that is no number, or accuracies out of range or on mixed
        scales (the message names the dataset and lists the values).
    """
    from pedrank.workflow.evaluate import Truth, TruthFileError, check_accuracies, read_truth
    from pedrank.workflow.io.truth import column_serves, is_generic_accuracy_name

    if truth is None:
        raise PedrankValueError("truth: the ground truth of every dataset is needed (CSV paths or mappings)")
    out: dict[str, dict[str, float]] = {}
    used: dict[tuple[str, str], str] = {}  # (file, column) -> the dataset it serves

    def claim(found: Any, dataset: str) -> None:
        key = (os.path.realpath(found.path), found.column)
        if key in used:
            raise PedrankValueError(
                f"truth: column {found.column!r} of {found.path} would serve both dataset {used[key]!r} and "
                f"{dataset!r}; each dataset needs its own accuracies: a column per dataset ('model,{used[key]},"
                f"{dataset}') or a file per dataset (NAME=CSV, or {{dataset: CSV}})"
            )
        used[key] = dataset

    if isinstance(truth, Mapping):
        for dataset in datasets:
            if dataset not in truth:
                raise PedrankValueError(f"truth: no ground truth for dataset {dataset!r}; truth has {sorted(truth)}")
            entry = truth[dataset]
            if isinstance(entry, (str, os.PathLike)):
                entry = read_truth(entry, dataset)
            if isinstance(entry, Truth):  # read_truth has checked its scale, with its cells written as 80%
                if entry.path != Path():
                    claim(entry, dataset)
                out[dataset] = dict(entry.accuracies)
                continue
            out[dataset] = _accuracies(entry, dataset)
            check_accuracies({m: v for m, v in out[dataset].items() if not math.isnan(v)},
                             name=f"truth[{dataset!r}]")
        return out
    files = [truth] if isinstance(truth, (str, os.PathLike)) else list(truth)
    for dataset in datasets:
        readable = []
        errors = []
        for file in files:
            try:
                readable.append(read_truth(file, dataset))
            except TruthFileError as exc:
                errors.append(str(exc))
        if len(files) == 1:
            if not readable:
                raise PedrankValueError(f"truth: no ground truth for dataset {dataset!r}: " + "; ".join(errors))
            found = readable[0]
        else:
            named = [t for t in readable if t.column == dataset or (
                column_serves(t.column, dataset) and not is_generic_accuracy_name(t.column))]
            if not named:
                raise PedrankValueError(
                    f"truth: no file has a column named {dataset!r} (files: {[str(f) for f in files]}); with several "
                    "truth files each dataset needs its own column, or pass a mapping {dataset: CSV}"
                    + (f" ({'; '.join(errors)})" if errors else "")
                )
            if len(named) > 1:
                raise PedrankValueError(
                    f"truth: dataset {dataset!r} has a column in several files "
                    f"({', '.join(f'{t.path} column {t.column!r}' for t in named)}); expected one"
                )
            found = named[0]
        claim(found, dataset)
        out[dataset] = dict(found.accuracies)
    return out


def _accuracies(entry: Any, dataset: str) -> dict[str, float]:
    """One dataset's ``{model: accuracy}`` given as a mapping, each value a number (None: no value)."""
    from pedrank.workflow.evaluate import named_numbers

    if not isinstance(entry, Mapping) and not hasattr(entry, "items"):
        raise PedrankValueError(
            f"truth[{dataset!r}]: expected a mapping of model to accuracy or a CSV path, found {type(entry).__name__}"
        )
    return named_numbers(entry.items(), f"truth[{dataset!r}]")
