"""One model is one task: extract (or read the cache), then score, wherever an executor puts it (in this process,
a ``concurrent.futures.Executor``, or a Dask cluster); and the tasks' outputs gathered: the unreadable files they
left out in one warning, and the features of pool-relative metrics or of ``confidence=B`` scored together."""

from __future__ import annotations

import os
import traceback
import warnings
from pathlib import Path
from typing import Any

from pedrank._engine.validation import MissingDependencyError, PedrankValueError
from pedrank.workflow.select.common import short_reason
from pedrank.workflow.select.data import BadImageError, BadImageWarning, Data, load_data
from pedrank.workflow.select.extraction import extract_model
from pedrank.workflow.select.records import SelectRecord

__all__ = ["model_task", "score_rows", "executor_from", "is_dask", "warn_skipped", "score_pool"]


def model_task(name: str, spec: Any, data: Any, layers: Any, options: dict[str, Any],
               score_options: dict[str, Any] | None, data_options: dict[str, Any]) -> Any:
    """One model: extract (or read the cache), then score. Runs wherever the executor puts it.

    Parameters
    ----------
    name : str
        The model's name.
    spec : object
        Its spec (:func:`~pedrank.workflow.select.models.load_model`).
    data : path, (inputs, labels) or Data
        The data, read again where the task runs (:func:`~pedrank.workflow.select.data.load_data`).
    layers : None, list or "all"
        The layers (:func:`~pedrank.workflow.select.extraction.extract_model`).
    options : dict
        The extraction's options (``cache_dir`` as text or None, ``max_samples``, ...).
    score_options : dict or None
        :func:`pedrank.rank`'s arguments for one model; None: the layers are returned unscored (pool-relative
        metrics and ``confidence=B`` score the pool together afterwards).
    data_options : dict
        ``dataset``, ``text_column``, ``label_column`` for reading the data.

    Returns
    -------
    tuple
        ``(output, skipped)``: ``output`` a list of :class:`SelectRecord` (``score_options`` given) or the extracted
        layers (:func:`~pedrank.workflow.select.extraction.extract_model`'s dicts); ``skipped`` the sorted
        ``(file, reason)`` pairs left out of the data (``bad_images="skip"``), None when the model failed before
        reading it all. A model's own failure is a row saying why, not an exception.

    Raises
    ------
    BadImageError
        A bad file is the data's fault, the same for every model.
    KeyboardInterrupt
        Passed on.
    """
    try:
        data = load_data(data, **data_options)
        if options.get("max_samples"):
            data = data.subset(int(options["max_samples"]))
        options = dict(options)
        if options["cache_dir"] is not None:
            options["cache_dir"] = Path(options["cache_dir"])
        extracted = extract_model(name, spec, data, layers, options)
    except (KeyboardInterrupt, BadImageError):
        raise
    except Exception as exc:  # a model that cannot be loaded or run: its row says why
        if os.environ.get("PEDRANK_DEBUG"):
            traceback.print_exc()
        reason = short_reason(exc)
        return [SelectRecord(name, float("nan"), 0.0, None, error=reason)], None
    skipped = sorted({pair for item in extracted for pair in item["skipped"]})
    if score_options is None:
        return extracted, skipped
    return score_rows(extracted, score_options), skipped


def score_rows(extracted: list[dict[str, Any]], score_options: dict[str, Any]) -> list[SelectRecord]:
    """Score each extracted layer of one model on its own.

    Parameters
    ----------
    extracted : list of dict
        :func:`~pedrank.workflow.select.extraction.extract_model`'s layers (``features`` (N, D), ``labels`` (N,)).
    score_options : dict
        :func:`pedrank.rank`'s arguments (metric, PED, backend, dataset, ...).

    Returns
    -------
    list of SelectRecord
        One per layer; a layer whose score failed has a NaN score and ``error="scoring: ..."``.
    """
    from pedrank.workflow.rank import rank

    records = []
    for item in extracted:
        try:
            table = rank({item["name"]: (item["features"], item["labels"])}, **score_options)
            record = table[0]
            records.append(SelectRecord(item["name"], record.score, record.seconds, record.ped_steps,
                                        extract_seconds=item["extract_seconds"], cached=item["cached"],
                                        n_features=int(item["features"].shape[1])))
        except Exception as exc:  # one model's score failing leaves the others
            records.append(SelectRecord(item["name"], float("nan"), 0.0, None,
                                        extract_seconds=item["extract_seconds"], cached=item["cached"],
                                        n_features=int(item["features"].shape[1]),
                                        error=f"scoring: {short_reason(exc)}"))
    return records


def executor_from(client: Any, executor: Any, scheduler: str | None) -> tuple[Any, bool]:
    """The executor the tasks go to, from :func:`pedrank.select`'s ``client``, ``executor`` and ``scheduler``.

    Parameters
    ----------
    client : dask.distributed.Client or None
    executor : concurrent.futures.Executor or None
    scheduler : str or None
        The address of a Dask scheduler to connect to.

    Returns
    -------
    tuple
        ``(executor or None, owned)``: None runs the tasks in this process; ``owned`` is True for a client made
        here from ``scheduler``, which the caller closes.

    Raises
    ------
    PedrankValueError
        Both ``client`` and ``executor``, or an object without ``submit``.
    MissingDependencyError
        ``scheduler`` without dask.distributed installed.
    """
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError as exc:
            raise MissingDependencyError("scheduler: a Dask cluster needs dask.distributed "
                                         "(pip install dask distributed, or pip install 'pedrank[dask]')") from exc
        return Client(scheduler), True
    if client is not None and executor is not None:
        raise PedrankValueError("client/executor: give one of them, not both")
    chosen = client if client is not None else executor
    if chosen is None:
        return None, False
    if not callable(getattr(chosen, "submit", None)):
        raise PedrankValueError(f"executor: expected a concurrent.futures.Executor or a dask.distributed Client, "
                                f"found {type(chosen).__name__}")
    return chosen, False


def is_dask(executor: Any) -> bool:
    """Whether ``executor`` is a ``dask.distributed.Client`` (its tasks then get unique keys, ``pure=False``).

    Parameters
    ----------
    executor : object

    Returns
    -------
    bool
    """
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "scheduler_info")


def warn_skipped(names: list[str], found: list[list[tuple[str, str]] | None], data: Data,
                 max_samples: int | None) -> list[str]:
    """One :class:`BadImageWarning` for the files the tasks left out (each task found them on its own, or in
    its cache entry).

    Parameters
    ----------
    names : list of str
        The models, in the order of ``found``.
    found : list
        Each task's ``(file, reason)`` pairs; None for a task that failed before reading the data.
    data : Data
        The data (its size and folder are in the message).
    max_samples : int or None
        The samples read.

    Returns
    -------
    list of str
        The files left out, sorted (empty, and no warning, when there are none).
    """
    reasons: dict[str, str] = {}
    for pairs in found:
        for name, reason in pairs or ():
            reasons.setdefault(name, reason)  # keyed by file: workers' PIL versions may word a reason apart
    union = sorted(reasons.items())
    if not union:
        return []
    total = len(data) if not max_samples else min(len(data), int(max_samples))
    shown = [f"{name} ({reason})" for name, reason in union[:10]]
    if len(union) > 10:
        shown.append(f"and {len(union) - 10} more")
    where = f" in {str(data.root)!r}" if data.root is not None else ""
    message = (f"data: skipped {len(union)} unreadable image file(s) of {total}{where} (bad_images='skip'), "
               f"with their labels: {'; '.join(shown)}")
    # Every task reads the same files, so they agree unless a file changed or failed to read only once.
    differing = [name for name, pairs in zip(names, found)
                 if pairs is not None and {file for file, _ in pairs} != set(reasons)]
    if differing:
        message += f"; not the same files for every model: {', '.join(differing)} skipped fewer"
    warnings.warn(message, BadImageWarning, stacklevel=3)
    return [name for name, _ in union]


def score_pool(outputs: list[Any], metric: str, ped: Any, backend: str, dataset: str,
               metric_options: dict[str, Any], confidence: int | None = None, random_state: Any = None,
               bootstrap: dict[str, Any] | None = None) -> list[SelectRecord]:
    """The extracted features of every model scored together: pool-relative metrics (NCTI, ETran) and
    ``confidence=B``.

    Parameters
    ----------
    outputs : list
        The tasks' outputs: extracted layers (dicts with ``features`` (N, D) and ``labels`` (N,)) or the
        :class:`SelectRecord` of a model that failed.
    metric, ped, backend, dataset, metric_options
        As :func:`pedrank.rank` takes them.
    confidence : int, optional
        B bootstrap resamples.
    random_state : optional
        The bootstrap's seed.
    bootstrap : dict, optional
        Receives the table's ``n_resamples``, ``seed`` and ``top1_stability`` (with ``confidence``).

    Returns
    -------
    list of SelectRecord
        The scored rows, then the failed ones; if the pool's score fails, every row says why.
    """
    from pedrank.workflow.rank import rank

    failed, pool, info = [], {}, {}
    for output in outputs:
        for item in output:
            if isinstance(item, SelectRecord):
                failed.append(item)
            else:
                pool[item["name"]] = (item["features"], item["labels"])
                info[item["name"]] = item
    records = []
    if pool:
        try:
            table = rank(pool, metric=metric, ped=ped, backend=backend, dataset=dataset, progress=False,
                         confidence=confidence, random_state=random_state, errors="row", **metric_options)
            by_name = {r.model: r for r in table}
            for name, item in info.items():
                r = by_name[name]
                records.append(SelectRecord(name, r.score, r.seconds, r.ped_steps, error=r.error, p_best=r.p_best,
                                            rank_low=r.rank_low, rank_high=r.rank_high, score_low=r.score_low,
                                            score_high=r.score_high, failed_resamples=r.failed_resamples,
                                            extract_seconds=item["extract_seconds"], cached=item["cached"],
                                            n_features=int(item["features"].shape[1])))
            if bootstrap is not None and confidence is not None:
                bootstrap.update(n_resamples=table.n_resamples, seed=table.seed,
                                 top1_stability=table.top1_stability)
        except Exception as exc:  # the pool's score failed: every row says why
            records = [SelectRecord(name, float("nan"), 0.0, None, extract_seconds=item["extract_seconds"],
                                    cached=item["cached"], error=f"scoring: {short_reason(exc)}")
                       for name, item in info.items()]
    return records + failed
