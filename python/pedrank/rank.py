"""Rank a pool of models by a transferability score: the question "which checkpoint do I fine-tune?".

:func:`rank` scores every model of a pool on the same target data and returns a :class:`RankTable`, best
first, with each model's score, the seconds it took and the number of PED steps taken.
"""

from __future__ import annotations

import csv
import io as _stringio
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

from ._progress import progress as _progress
from ._validation import PedrankValueError, with_context
from .evaluate import BASELINE_PREFIX, check_baseline
from .scoring import ped_options as parse_ped_options

__all__ = ["RankRecord", "RankTable", "rank"]

PathLike = Union[str, "os.PathLike[str]"]



@dataclass(frozen=True)
class RankRecord:
    """One model's line of a :class:`RankTable`.

    Attributes
    ----------
    model : str
    score : float
        Higher is better for every pedrank metric. NaN if the score could not be computed.
    seconds : float
        Wall time of the score, PED included (loading the features from disk excluded).
    ped_steps : int or None
        PED's accepted steps; None when PED was not run.
    error : str or None
        Why the model has no score (its score is NaN), with :func:`rank`'s ``errors="row"``; None when scored.
    """

    model: str
    score: float
    seconds: float
    ped_steps: int | None = None
    error: str | None = None


def _format_score(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
        return f"{value:.6e}"
    return f"{value:.6f}"


class RankTable(list):
    """The ranking of a pool: a list of :class:`RankRecord`, best score first.

    Attributes
    ----------
    metric : str
        The score used.
    ped : bool
        Whether the features were moved by PED before scoring.
    dataset : str or None
        The target dataset's name, when known (for the records written to JSON/CSV).
    baselines : dict of str to dict of str to float
        Trivial rankers shown beside the score (``rank(..., baselines=)``): name to ``{model: value}``, higher =
        predicted better, e.g. ``params`` (parameter count) or ``source_accuracy`` (ImageNet top-1). Written as
        ``baseline_<name>`` columns, which ``pedrank evaluate`` judges beside the score.
    """

    def __init__(self, records=(), *, metric: str = "", ped: bool = False, dataset: str | None = None,
                 baselines: Mapping[str, Mapping[str, float]] | None = None):
        super().__init__(records)
        self.metric = metric
        self.ped = ped
        self.dataset = dataset
        self.baselines: dict[str, dict[str, float]] = {k: dict(v) for k, v in (baselines or {}).items()}

    @property
    def models(self) -> list[str]:
        """Model names, best first."""
        return [record.model for record in self]

    @property
    def scores(self) -> dict[str, float]:
        """``{model: score}``, best first: what :func:`pedrank.evaluate` takes."""
        return {record.model: record.score for record in self}

    @property
    def errors(self) -> dict[str, str]:
        """``{model: reason}`` of the models without a score (``rank(..., errors="row")``)."""
        return {r.model: r.error for r in self if getattr(r, "error", None)}

    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts, best first: ``rank``, ``model``, ``score``, ``seconds``, ``ped_steps``, ``metric`` and
        (when known) ``dataset``. NaN scores become None."""
        records = []
        for position, record in enumerate(self, start=1):
            row: dict[str, Any] = {"rank": position}
            row.update(asdict(record))
            if math.isnan(row["score"]):
                row["score"] = None
            if type(record) is RankRecord and record.error is None:
                del row["error"]  # plain rank rows keep their columns; failed ones say why
            row["metric"] = self.metric + ("+ped" if self.ped else "")
            if self.dataset is not None:
                row["dataset"] = self.dataset
            for name, values in self.baselines.items():
                row[BASELINE_PREFIX + name] = values.get(record.model)
            records.append(row)
        return records

    def to_json(self, path: PathLike | None = None, *, indent: int | None = 2) -> str:
        """The records as a JSON list (best first); also written to ``path`` when given."""
        text = json.dumps(self.to_records(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def _csv_columns(self) -> list[str]:
        columns = ["rank", "model", "score", "seconds", "ped_steps", "metric"]
        if self.dataset is not None:
            columns.append("dataset")
        columns += [BASELINE_PREFIX + name for name in self.baselines]
        if self.errors:
            columns.append("error")
        return columns

    def to_csv(self, path: PathLike | None = None) -> str:
        """The records as CSV with a header row (best first); also written to ``path`` when given."""
        records = self.to_records()
        columns = self._csv_columns()
        buffer = _stringio.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in records:
            writer.writerow({key: ("" if row.get(key) is None else row[key]) for key in columns})
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_string(self) -> str:
        """A fixed-width text table, best first (then one ``error: MODEL: REASON`` line per failed model)."""
        return "\n".join(self._table_lines() + [f"error: {name}: {reason}" for name, reason in self.errors.items()])

    def _table_lines(self) -> list[str]:
        header = ["rank", "model", "score", "seconds", "ped_steps", *self.baselines]
        rows = [
            [
                str(position),
                record.model,
                _format_score(record.score),
                f"{record.seconds:.3f}",
                "-" if record.ped_steps is None else str(record.ped_steps),
                *(_format_score(values[record.model]) if record.model in values else "-"
                  for values in self.baselines.values()),
            ]
            for position, record in enumerate(self, start=1)
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        left_aligned = {1}

        def line(cells):
            return "  ".join(
                cell.ljust(width) if i in left_aligned else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths))
            ).rstrip()

        title = f"metric: {self.metric}" + (" after PED" if self.ped else "")
        if self.dataset is not None:
            title += f", dataset: {self.dataset}"
        return [title, line(header), *(line(row) for row in rows)]

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"RankTable(metric={self.metric!r}, ped={self.ped!r}, models={self.models!r})"


def _resolve_entry(name: str, entry: Any, labels: Any) -> tuple[Any, Any, Any]:
    """``(features, labels, reference)`` for one pool entry; files are read here, lazily."""
    from .io import FeatureSource, load_features

    reference = None
    if isinstance(entry, FeatureSource):
        features, entry_labels = entry.load()
        return features, entry_labels, entry.load_reference()
    if isinstance(entry, (str, os.PathLike)):
        features, entry_labels = load_features(entry)
        return features, entry_labels, None
    if isinstance(entry, Mapping):
        if "features" not in entry:
            raise PedrankValueError(f"pool[{name!r}] is a mapping without a 'features' key; found keys {sorted(entry)}")
        features = entry["features"]
        entry_labels = entry.get("labels", labels)
        reference = entry.get("reference")
    elif isinstance(entry, tuple):
        if len(entry) != 2:
            raise PedrankValueError(f"pool[{name!r}] is a tuple of length {len(entry)}; expected (features, labels)")
        features, entry_labels = entry
    else:
        features, entry_labels = entry, labels
    if entry_labels is None:
        raise PedrankValueError(
            f"pool[{name!r}] has no labels: pass labels=, or give the model as a (features, labels) pair"
        )
    return features, entry_labels, reference


def _where(name: str, entry: Any, error: Exception) -> str:
    """Which pool entry failed: the model, and its file unless the error already names it."""
    from .io import FeatureFileError, FeatureSource

    path = entry.path if isinstance(entry, FeatureSource) else entry if isinstance(entry, (str, os.PathLike)) else None
    if path is None or isinstance(error, FeatureFileError):
        return f"model {name!r}"
    return f"model {name!r} ({path})"


ERRORS = ("raise", "row")


class _MetricCall:
    """``pedrank.score`` of one metric with fixed options: a picklable callable for executor tasks."""

    def __init__(self, metric: str, backend: str, options: dict[str, Any]):
        self.metric, self.backend, self.options = metric, backend, options

    def __call__(self, features: Any, labels: Any) -> float:
        import pedrank

        return float(pedrank.score(features, labels, self.metric, ped=False, backend=self.backend, **self.options))


def _evaluate_entry(name: str, entry: Any, labels: Any, ped_options: dict[str, Any] | None,
                    override: tuple[bool, Any], backend: str, compute: Any) -> tuple[Any, float, int | None]:
    """Read one pool entry (files here, where the task runs), move it with PED when asked, then
    ``compute(features, labels)``: ``(value, seconds, ped_steps)``. The one path from a pool entry to its number,
    for per-model scores and for the pool scores' raw terms alike."""
    import pedrank

    features, model_labels, file_reference = _resolve_entry(name, entry, labels)
    start = time.perf_counter()
    steps = None
    if ped_options is not None:
        options = dict(ped_options)
        reference = options.pop("reference", None)
        if file_reference is not None:
            reference = file_reference
        if override[0]:
            reference = override[1]
        result = pedrank.ped(features, model_labels, reference=reference, backend=backend, **options)
        features, steps = result.features, int(result.steps)
    value = compute(features, model_labels)
    return value, time.perf_counter() - start, steps


def _failure_reason(name: str, entry: Any, exc: Exception) -> str:
    """What a failed model's row says: the error, prefixed by the model (and its file)."""
    if isinstance(exc, ValueError):
        return str(with_context(exc, _where(name, entry, exc)))
    return f"{_where(name, entry, exc)}: {type(exc).__name__}: {exc}"


def _score_entry(name: str, entry: Any, labels: Any, metric: str, ped_options: dict[str, Any] | None,
                 override: tuple[bool, Any], backend: str, metric_options: dict[str, Any], errors: str) -> RankRecord:
    """One model of the pool: read its features, score them and return only its row. With ``errors="row"`` a
    failure becomes the row's ``error``; otherwise it raises (a ``ValueError`` named by model and file)."""
    start = time.perf_counter()
    try:
        value, seconds, steps = _evaluate_entry(name, entry, labels, ped_options, override, backend,
                                                _MetricCall(metric, backend, metric_options))
    except Exception as exc:
        if errors == "row":
            return RankRecord(str(name), float("nan"), time.perf_counter() - start, None,
                              error=_failure_reason(name, entry, exc))
        if isinstance(exc, ValueError):
            raise with_context(exc, _where(name, entry, exc)) from exc
        raise
    return RankRecord(str(name), float(value), seconds, steps)


def _check_executor(executor: Any) -> bool:
    """True for a dask.distributed Client (its submit takes ``pure=False``), False for an Executor."""
    if not callable(getattr(executor, "submit", None)):
        raise PedrankValueError(
            f"executor: found {type(executor).__name__}; expected a concurrent.futures.Executor (e.g. "
            "ProcessPoolExecutor, or a dask.distributed Client's get_executor()) or a dask.distributed Client"
        )
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "scheduler_info")


def rank(
    pool: Mapping[str, Any],
    labels: Any = None,
    *,
    metric: str = "sfda",
    ped: bool | Mapping[str, Any] | PathLike = False,
    backend: str = "auto",
    references: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    progress: bool | None = None,
    executor: Any = None,
    errors: str = "raise",
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    **metric_options: Any,
) -> RankTable:
    """Score every model of a pool on the same target data and rank them, best first.

    Parameters
    ----------
    pool : mapping of str to model features
        Model name to one of: an array (n_samples, n_features) scored with ``labels``; a
        ``(features, labels)`` tuple; a dict with ``features``, optional ``labels`` and ``reference``; a path
        to a feature file (see :mod:`pedrank.io`); a :class:`pedrank.io.FeatureSource` (as returned by
        :func:`pedrank.io.find_features`). Files are read one model at a time.
    labels : array-like of shape (n_samples,), optional
        Target labels shared by the models given as bare arrays.
    metric : str, default "sfda"
        One of :data:`pedrank.METRICS`.
    ped : bool or dict, default False
        Move the features with PED before scoring: True for PED's defaults, or a dict of options of
        :func:`pedrank.ped` (``radius``, ``elastic``, ``time_step``, ``exit_ratio``, ``max_steps``,
        ``reference``), or the path of a PED config file written by :func:`pedrank.tune` (its setting for
        ``metric``: ``false`` there means no PED; see :func:`pedrank.tune.read_ped_config`).
    backend : {"auto", "numpy", "torch"}, default "auto"
    references : mapping of str to reference, optional
        PED's reference per model (reference features M x D or a ``(mean, std)`` pair); overrides a reference
        file found beside the features and ``ped["reference"]``.
    dataset : str, optional
        The target dataset's name, recorded in the table.
    progress : bool or None, default None
        A progress bar over the models: None shows one on a terminal when the work takes more than a second.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Spread the pool: one task per model, which reads its features, scores them (PED included) and returns
        only its row, so a pool of paths or :class:`pedrank.io.FeatureSource` never sends features over the
        network (the files must be readable where the tasks run; bare arrays travel with their task). Any
        ``concurrent.futures.Executor`` (``ProcessPoolExecutor``, ``ThreadPoolExecutor``, a Dask client's
        ``client.get_executor()``) or a ``dask.distributed.Client``. The table is the serial one (same
        models, scores, steps and order; only ``seconds`` differ). Pool-relative scores (registry entries with
        a pool step: ``ncti``, ``etran``) need every model's features at once and stay serial: the executor
        is not used for them.
    errors : {"raise", "row"}, default "raise"
        "raise": a model whose features or score fail raises (the first failing model in the pool's order,
        with or without an executor; with one, the tasks not yet started are cancelled). "row": that model
        gets a NaN score and its ``error`` (see :attr:`RankTable.errors`), ranked last; the others are
        scored.
    baselines : mapping of str to mapping of str to float, optional
        Trivial rankers to show beside the score, e.g. ``{"params": {model: parameter count}, "source_accuracy":
        {model: ImageNet top-1}}`` (higher = predicted better): a value for every model of the pool, finite.
        They are not used to rank; the table carries them (:attr:`RankTable.baselines`, ``baseline_<name>``
        columns) so that :func:`pedrank.evaluate` / ``pedrank evaluate`` judge them beside the score.
    **metric_options
        Passed to the metric (e.g. ``shrinkage=`` for SFDA).

    Returns
    -------
    RankTable
        One :class:`RankRecord` per model, sorted by score, best first (NaN scores last; ties keep the pool's
        order).

    Raises
    ------
    PedrankValueError
        Empty pool, unknown metric, bad PED options, a bad ``executor`` or ``errors``, or (``errors="raise"``)
        bad features/labels; the message names the model and, for files, the file.
    """
    if not isinstance(pool, Mapping):
        raise PedrankValueError(
            f"pool must be a mapping of model names to features, found {type(pool).__name__}; "
            "for files on disk use pedrank.io.find_features(paths)"
        )
    if len(pool) == 0:
        raise PedrankValueError("pool is empty; expected at least one model")
    if errors not in ERRORS:
        raise PedrankValueError(f"errors: found {errors!r}; expected 'raise' or 'row'")
    dask = False if executor is None else _check_executor(executor)
    checked_baselines = check_baselines(baselines, list(pool))
    from ._registry import resolve_metric

    entry, form_options = resolve_metric(metric, metric_options)
    if isinstance(ped, (str, os.PathLike)):
        from .tune import read_ped_config

        ped = read_ped_config(ped, metric)
    if entry.pool is not None:
        # The authors' number depends on the whole pool (each term scaled over the models): their pool step.
        table = entry.pool(pool, labels, ped=ped, backend=backend, references=references, dataset=dataset,
                           errors=errors, progress=progress, metric_name=metric, **form_options)
        table.baselines = checked_baselines
        return table
    ped_options = parse_ped_options(ped)
    references = dict(references or {})

    records: list[RankRecord] = []
    description = metric + ("+PED" if ped_options is not None else "")

    def arguments(name: Any, entry: Any) -> tuple[Any, ...]:
        override = (name in references, references.get(name))
        return (name, entry, labels, metric, ped_options, override, backend, metric_options, errors)

    if executor is None:
        for name, entry in _progress(pool.items(), total=len(pool), desc=description, enabled=progress):
            records.append(_score_entry(*arguments(name, entry)))
    else:
        extra = {"pure": False} if dask else {}
        futures = [executor.submit(_score_entry, *arguments(name, entry), **extra) for name, entry in pool.items()]
        try:
            for future in _progress(futures, total=len(futures), desc=description, enabled=progress):
                records.append(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def best_first(i: int) -> tuple[bool, float, int]:
        value = records[i].score
        return (math.isnan(value), 0.0 if math.isnan(value) else -value, i)

    order = sorted(range(len(records)), key=best_first)
    return RankTable([records[i] for i in order], metric=metric, ped=ped_options is not None, dataset=dataset,
                     baselines=checked_baselines)


def check_baselines(baselines: Mapping[str, Mapping[str, float]] | None,
                    models: list[str]) -> dict[str, dict[str, float]]:
    """``baselines`` as ``{name: {model: float}}``, each with a finite value for every model of ``models``; names
    fit a ``baseline_<name>`` column."""
    if baselines is None:
        return {}
    if not isinstance(baselines, Mapping):
        raise PedrankValueError(f"baselines: found {type(baselines).__name__}; expected a mapping of names to "
                                "{model: value} mappings")
    checked = {}
    for name, values in baselines.items():
        if not isinstance(name, str) or "," in name or name.startswith(BASELINE_PREFIX):
            raise PedrankValueError(f"baselines: name {name!r}: expected a string without commas and without the "
                                    f"{BASELINE_PREFIX!r} prefix (e.g. 'params', 'source_accuracy')")
        checked[name] = check_baseline(name, values, models)
    return checked
