"""What :func:`pedrank.workflow.tune.tune` reads: benchmark pools on disk (:func:`find_datasets`) and their ground
truth (:func:`read_truths`)."""

from __future__ import annotations

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
    of them (each read with :func:`pedrank.workflow.evaluate.read_truth`; a CSV with one column per dataset
    serves all).

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
        No truth, or none for a dataset (with several files: no column named after it).
    """
    from pedrank.workflow.evaluate import read_truth

    if truth is None:
        raise PedrankValueError("truth: the ground truth of every dataset is needed (CSV paths or mappings)")
    out: dict[str, dict[str, float]] = {}
    if isinstance(truth, Mapping):
        for dataset in datasets:
            if dataset not in truth:
                raise PedrankValueError(f"truth: no ground truth for dataset {dataset!r}; truth has {sorted(truth)}")
            entry = truth[dataset]
            if isinstance(entry, (str, os.PathLike)):
                out[dataset] = dict(read_truth(entry, dataset).accuracies)
            else:
                out[dataset] = {str(k): float(v) for k, v in entry.items()}
        return out
    files = [truth] if isinstance(truth, (str, os.PathLike)) else list(truth)
    from pedrank.workflow.evaluate import TruthFileError

    for dataset in datasets:
        found = None
        errors = []
        for file in files:
            try:
                candidate = read_truth(file, dataset)
            except TruthFileError as exc:
                errors.append(str(exc))
                continue
            if candidate.column == dataset or len(files) == 1 or found is None:
                if found is None or candidate.column == dataset:
                    found = candidate
        if found is None:
            raise PedrankValueError(f"truth: no ground truth for dataset {dataset!r}: " + "; ".join(errors))
        if found.column != dataset and len(files) > 1:
            raise PedrankValueError(
                f"truth: no file has a column named {dataset!r} (files: {[str(f) for f in files]}); with several "
                "truth files each dataset needs its own column, or pass a mapping {dataset: CSV}"
            )
        out[dataset] = dict(found.accuracies)
    return out
