"""Scores whose value depends on the whole pool of models (NCTI, ETran as their authors combine them).

The authors of NCTI and ETran compute raw terms per model, then min-max scale each term across the pool
(``(t - min) / (max - min)``) and add them with weights. :func:`pool_scores` does that for any such score:
raw terms per model first (optionally after PED), then the pool step, returned as a :class:`RankTable`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pedrank._engine.validation import NonFiniteScoreError, PedrankValueError, with_context

__all__ = ["min_max_combine", "pool_scores"]


def min_max_combine(terms: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Min-max scale each column of ``terms`` over the pool, then weight and add.

    Parameters
    ----------
    terms : ndarray of shape (n_models, n_terms)
    weights : sequence of n_terms floats

    Returns
    -------
    ndarray of shape (n_models,)
        A column that is constant over the pool (one model, or equal terms) scales to 0 (the authors' code
        divides 0 by 0 there).
    """
    terms = np.asarray(terms, dtype=np.float64)
    low = terms.min(axis=0)
    spread = terms.max(axis=0) - low
    safe = np.where(spread > 0, spread, 1.0)
    scaled = np.where(spread > 0, (terms - low) / safe, 0.0)
    return scaled @ np.asarray(weights, dtype=np.float64)


class _TermsCall:
    """A pool score's raw terms with fixed options, checked finite: a picklable callable."""

    def __init__(self, metric: str, terms: Callable[..., Sequence[float]], backend: str, options: dict[str, Any]):
        self.metric, self.terms, self.backend, self.options = metric, terms, backend, options

    def __call__(self, features: Any, labels: Any) -> np.ndarray:
        values = np.asarray(self.terms(features, labels, backend=self.backend, **self.options), dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise NonFiniteScoreError(
                f"{self.metric}: its raw terms are {values.tolist()} on features of shape "
                f"{tuple(getattr(features, 'shape', ()))}; a non-finite term cannot be min-max scaled over the pool "
                "(it would turn every model's score into NaN). The features may be at an extreme scale "
                "(standardise them) or degenerate"
            )
        return values


def pool_scores(pool: Mapping[str, Any], labels: Any, *, metric: str, terms: Callable[..., Sequence[float]],
                weights: Sequence[float], ped: Any = False, backend: str = "auto",
                references: Mapping[str, Any] | None = None, dataset: str | None = None, errors: str = "raise",
                progress: bool | None = None, metric_name: str | None = None, executor: Any = None,
                **options: Any):
    """Raw terms per model (after PED when asked), then the pool's min-max combination, best first.

    Parameters
    ----------
    pool, labels, ped, backend, references, dataset, progress
        As :func:`pedrank.rank`.
    metric : str
        The score's name (in error messages).
    terms : callable
        ``terms(features, labels, *, backend, **options) -> sequence of floats``, one model's raw terms.
    weights : sequence of float
        The weight of each scaled term.
    errors : {"raise", "row"}, default "raise"
        As :func:`pedrank.rank`: with "row", a model whose terms fail (or are not finite) gets a NaN row with
        its reason and the others are scaled over the pool without it.
    metric_name : str, optional
        The name the table carries (``"etran:exact"`` for a named form); default ``metric``.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        As :func:`pedrank.rank`: one task per model computes its raw terms (PED included) where it runs; only the
        terms come back, and the pool step runs here. The table is the serial one.
    **options
        Passed to ``terms``.
    """
    from pedrank._engine.progress import progress as show_progress
    from pedrank.scores.scoring import ped_options as parse_ped_options
    from pedrank.workflow.entry import (
        ERRORS,
        RankRecord,
        check_executor,
        check_model_names,
        check_same_target,
        describe_entry,
        evaluate_entry,
        failure_reason,
    )
    from pedrank.workflow.rank import RankTable

    if not isinstance(pool, Mapping) or len(pool) == 0:
        raise PedrankValueError(f"pool: expected a non-empty mapping of model names to features, found {pool!r:.80}")
    check_model_names(pool)
    if errors not in ERRORS:
        raise PedrankValueError(f"errors: found {errors!r}; expected 'raise' or 'row'")
    ped_options = parse_ped_options(ped)
    references = dict(references or {})
    compute = _TermsCall(metric, terms, backend, dict(options))
    label = metric_name or metric
    scored: list[tuple[str, np.ndarray, float, int | None]] = []
    targets: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    failed: list[RankRecord] = []
    description = label + ("+PED" if ped_options is not None else "")

    def arguments(name: Any, entry: Any) -> tuple[Any, ...]:
        return (name, entry, labels, ped_options, (name in references, references.get(name)), backend, compute)

    futures = None
    if executor is not None:
        extra = {"pure": False} if check_executor(executor) else {}
        futures = [executor.submit(evaluate_entry, *arguments(name, entry), **extra) for name, entry in pool.items()]
    try:
        for index, (name, entry) in enumerate(show_progress(pool.items(), total=len(pool), desc=description,
                                                            enabled=progress)):
            start = time.perf_counter()
            try:
                if futures is None:
                    row, seconds, steps, target, shape = evaluate_entry(*arguments(name, entry))
                else:
                    row, seconds, steps, target, shape = futures[index].result()
            except Exception as exc:
                if errors == "row":
                    failed.append(RankRecord(str(name), math.nan, time.perf_counter() - start, None,
                                             error=failure_reason(name, entry, exc)))
                    continue
                if isinstance(exc, ValueError):
                    raise with_context(exc, describe_entry(name, entry, exc)) from exc
                raise
            scored.append((str(name), row, seconds, steps))
            targets[str(name)], shapes[str(name)] = target, shape
            check_same_target(targets)  # refused at the first model of other data, not after scoring the rest
    except BaseException:
        for future in futures or ():
            future.cancel()
        raise
    records = list(failed)
    if scored:
        combined = min_max_combine(np.stack([row for _, row, _, _ in scored]), weights)
        records = [RankRecord(n, float(v), s, p) for (n, _, s, p), v in zip(scored, combined)] + records
    order = sorted(range(len(records)), key=lambda i: (math.isnan(records[i].score),
                                                        0.0 if math.isnan(records[i].score) else -records[i].score, i))
    return RankTable([records[i] for i in order], metric=label, ped=ped_options is not None, dataset=dataset,
                     feature_shapes=shapes)
