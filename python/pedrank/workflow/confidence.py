"""How sure is a ranking? A stratified bootstrap of the target rows, and the agreement between scores.

A transferability score is computed from a few thousand labelled target rows; another draw of those rows would
give other numbers, and when the top two models are close, perhaps another winner. :func:`pedrank.rank` with
``confidence=B`` measures that: it resamples the target rows B times (a stratified bootstrap: in each class, n_c
rows drawn with replacement, so every resample keeps the class sizes; the same rows for every model, so the
models are compared on equal footing) and rescores every model on each resample, PED included. Reported per
model: P(best) (the share of resamples in which it scores highest), its rank's 5th-95th percentile interval and
its score's; per ranking, P(top-1 stays top-1).

With several metrics (``rank(..., metric=["pactran", "sfda", "logme"])``) every model's features are read once
and scored by each; :class:`Agreement` holds the per-metric tables, the Kendall tau between the metrics'
rankings and a consensus by mean rank.

What the bootstrap does not say: it measures the noise of the *target sample* only, not whether the score
predicts fine-tuned accuracy at all (README, "Which score should I use?"). Its score intervals are the spread
of the bootstrap scores, not bias-corrected intervals: a resample holds about 63 % distinct rows, each repeated,
and a score that duplicated rows move sits off-centre there (k-NN's leave-one-out finds a row's copy as its
nearest neighbour, so its bootstrap accuracies run high; covariance-based scores see slightly tighter classes).
The ranks and P(best) compare models on the same resample, so such a shift, shared by every model, matters
less there than in the score interval.

Cost: B + 1 full scorings of every model (PED included), each on an N x D copy of the resampled rows; no score
here is cheaper to resample (BENCHMARKS.md, "How sure is the ranking?").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

import numpy as np

from pedrank._engine.progress import progress as _progress
from pedrank._engine.validation import PedrankValueError, check_labels, is_torch_tensor, to_numpy, with_context
from pedrank.scores.scoring import ped_options as parse_ped_options
from pedrank.workflow.entry import (
    FeatureShape,
    MetricCall,
    RankRecord,
    Target,
    accepted_options,
    check_executor,
    check_same_target,
    describe_entry,
    failure_reason,
    feature_shape,
    moved_features,
    resolve_entry,
    target_of,
    warn_degenerate_elsewhere,
)
from pedrank.workflow.io.scores import read_ranking_records, write_csv_rows, write_json
from pedrank.workflow.rank import SEPARATED_P_BEST, RankTable

__all__ = ["Agreement", "ConsensusRecord", "INTERVAL_PERCENTILES", "bootstrap_rank", "kendall_tau_matrix",
           "read_ranking", "stratified_bootstrap"]

PathLike = Union[str, "os.PathLike[str]"]

#: The percentiles of the rank and score intervals.
INTERVAL_PERCENTILES = (5.0, 95.0)


# ------------------------------------------------------------------------------------------ resampling


def stratified_bootstrap(encoded: np.ndarray, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The row indices of each resample: in every class, as many rows as it has, drawn with replacement.

    Parameters
    ----------
    encoded : ndarray of shape (n_samples,)
        Class index of each row, 0..C-1 with every class present (:func:`pedrank._engine.validation.check_labels`).
    n_resamples : int
    seed : int
        Resample b is drawn from ``numpy.random.default_rng([seed, b])``, so any resample can be redrawn alone
        (each task of an executor draws the same rows as the serial run).

    Yields
    ------
    ndarray of shape (n_samples,), int64
        Sorted row indices (rows keep their original order; repeats are adjacent).
    """
    encoded = np.asarray(encoded)
    order = np.argsort(encoded, kind="stable")
    counts = np.bincount(encoded)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # For the k-th row of class c in `order`, a draw is a uniform position within that class's block.
    block_start = np.repeat(starts, counts)
    block_size = np.repeat(counts, counts)
    for b in range(n_resamples):
        rng = np.random.default_rng([seed, b])
        yield np.sort(order[block_start + rng.integers(0, block_size)])


def _take(features: Any, rows: np.ndarray) -> Any:
    """The resampled rows, as a new array (the caller's features are only read)."""
    if is_torch_tensor(features):
        import torch

        return features[torch.as_tensor(rows, device=features.device)]
    return np.asarray(features)[rows]


def _n_rows(features: Any) -> int:
    shape = getattr(features, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) > 0 else len(features)


def _labels_key(encoded: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(encoded, dtype=np.int64).tobytes()).hexdigest()


#: Scores whose ``regression=True`` takes regression targets (continuous, or 2-D) instead of class labels.
_REGRESSION_TARGETS = ("logme", "knn")


def _resampling_strata(labels: Any, n_rows: int, scorers: tuple[_Scorer, ...]) -> tuple[np.ndarray, str]:
    """(the strata of :func:`stratified_bootstrap`, a key that says whether two models share their target).

    Class labels: their classes (each resample keeps every class's size). Regression targets (a metric of
    :data:`_REGRESSION_TARGETS` with ``regression=True``): one stratum, a plain bootstrap of the rows; taken as
    classes, each distinct value would be a stratum of one row and every resample the identity."""
    regression = any(s.call.options.get("regression") and s.call.metric.partition(":")[0] in _REGRESSION_TARGETS
                     for s in scorers)
    if regression:
        array = np.ascontiguousarray(to_numpy(labels))
        return np.zeros(n_rows, dtype=np.int64), hashlib.sha256(array.tobytes()).hexdigest()
    encoded, _ = check_labels(labels, n_rows)
    return encoded, _labels_key(encoded)


# ------------------------------------------------------------------------------------------ one model's task


@dataclass(frozen=True)
class _Scorer:
    """One metric of the run: its label, the index of its PED setting, and the call that scores features."""

    label: str
    group: int
    call: MetricCall


@dataclass
class _ModelOutcome:
    """What one model's task sends back: per scorer, the full-data score and the resampled ones (no features)."""

    name: str
    scores: list[float]
    seconds: list[float]
    steps: list[int | None]
    errors: list[str | None]
    resampled: np.ndarray  # (n_scorers, n_resamples)
    failures: np.ndarray  # (n_scorers,)
    labels_key: str | None = None
    target: Target | None = None
    shape: FeatureShape | None = None


def _failed(name: str, entry: Any, exc: Exception, errors: str) -> str:
    """The row's reason with ``errors="row"``; with "raise", the error (a ``ValueError`` named by model and file)."""
    if errors == "row":
        return failure_reason(name, entry, exc)
    if isinstance(exc, ValueError):
        raise with_context(exc, describe_entry(name, entry, exc)) from exc
    raise exc


def _score_model(name: str, entry: Any, labels: Any, scorers: tuple[_Scorer, ...],
                 groups: tuple[dict[str, Any] | None, ...], override: tuple[bool, Any], backend: str,
                 n_resamples: int, seed: int, errors: str) -> _ModelOutcome:
    """Read one model once; PED once per PED setting; every metric on the full data, then on each resample."""
    k = len(scorers)
    outcome = _ModelOutcome(str(name), [math.nan] * k, [0.0] * k, [None] * k, [None] * k,
                            np.full((k, n_resamples), math.nan), np.zeros(k, dtype=np.int64))
    start = time.perf_counter()
    try:
        features, model_labels, file_reference = resolve_entry(name, entry, labels)
    except Exception as exc:
        reason = _failed(name, entry, exc, errors)
        outcome.errors = [reason] * k
        outcome.seconds = [time.perf_counter() - start] * k
        return outcome

    members = {g: [i for i, s in enumerate(scorers) if s.group == g] for g in range(len(groups))}
    for g, ped_options in enumerate(groups):
        if not members[g]:
            continue
        begin = time.perf_counter()
        try:
            moved, steps = moved_features(features, model_labels, file_reference, ped_options, override, backend)
        except Exception as exc:
            reason = _failed(name, entry, exc, errors)
            for i in members[g]:
                outcome.errors[i], outcome.seconds[i] = reason, time.perf_counter() - begin
            continue
        ped_seconds = time.perf_counter() - begin
        for i in members[g]:
            begin = time.perf_counter()
            try:
                value = float(scorers[i].call(moved, model_labels))
            except Exception as exc:
                outcome.errors[i] = _failed(name, entry, exc, errors)
                outcome.seconds[i] = ped_seconds + time.perf_counter() - begin
                continue
            outcome.scores[i], outcome.steps[i] = value, steps
            outcome.seconds[i] = ped_seconds + time.perf_counter() - begin

    live = [i for i in range(k) if outcome.errors[i] is None]
    if live:
        outcome.target, outcome.shape = target_of(model_labels), feature_shape(features)
    if n_resamples == 0 or not live:
        return outcome
    encoded, outcome.labels_key = _resampling_strata(model_labels, _n_rows(features), scorers)
    label_array = to_numpy(model_labels)
    for b, rows in enumerate(stratified_bootstrap(encoded, n_resamples, seed)):
        resampled, resampled_labels = _take(features, rows), label_array[rows]
        for g, ped_options in enumerate(groups):
            scored_here = [i for i in members[g] if i in live]
            if not scored_here:
                continue
            # A resample can be degenerate where the full data is not (a small class drawn as copies of one row):
            # the score's refusal is that resample's outcome for this model, not the model's failure.
            try:
                moved, _ = moved_features(resampled, resampled_labels, file_reference, ped_options, override, backend)
            except ValueError:
                outcome.failures[scored_here] += 1
                continue
            for i in scored_here:
                try:
                    outcome.resampled[i, b] = float(scorers[i].call(moved, resampled_labels))
                except ValueError:
                    outcome.failures[i] += 1
    return outcome


# ------------------------------------------------------------------------------------------ pool scores


class _Resampled(Mapping):
    """A pool entry whose features are the resampled rows, taken when the pool step reads them (one model's copy
    at a time, not the whole pool's)."""

    def __init__(self, item: Mapping[str, Any], rows: np.ndarray):
        self._values = {
            "features": lambda: _take(item["features"], rows),
            "labels": lambda: to_numpy(item["labels"])[rows],
            "reference": lambda: item["reference"],
        }

    def __getitem__(self, key: str) -> Any:
        return self._values[key]()  # an unknown key raises KeyError, as the Mapping protocol expects

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _read_pool(pool: Mapping[str, Any], labels: Any, errors: str,
               progress: bool | None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every model's features, read once and kept (a pool score needs the whole pool on every resample)."""
    loaded: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for name, entry in _progress(pool.items(), total=len(pool), desc="reading", enabled=progress):
        try:
            features, model_labels, reference = resolve_entry(name, entry, labels)
        except Exception as exc:
            failed[str(name)] = _failed(name, entry, exc, errors)
            continue
        loaded[str(name)] = {"features": features, "labels": model_labels, "reference": reference}
    return loaded, failed


def _same_labels(keys: Mapping[str, str | None]) -> None:
    """Refuse a bootstrap over models whose labels differ: the resamples must be the same rows for all."""
    known = {name: key for name, key in keys.items() if key is not None}
    if len(set(known.values())) > 1:
        first = next(iter(known))
        other = next(name for name, key in known.items() if key != known[first])
        raise PedrankValueError(
            f"confidence: models {first!r} and {other!r} have different labels; expected every model's labels "
            "to be those of the same target rows (the bootstrap draws the same rows for every model)"
        )


# ------------------------------------------------------------------------------------------ summaries


def _summaries(scores: np.ndarray) -> dict[str, Any]:
    """P(best), rank and score intervals of each model from its resampled scores.

    Parameters
    ----------
    scores : ndarray of shape (n_models, n_resamples)
        NaN where a model failed on a resample.

    Returns
    -------
    dict
        ``p_best`` (n_models,), ``rank_low``/``rank_high`` (n_models,) ints, ``score_low``/``score_high``
        (n_models,) floats (NaN when every resample failed).
    """
    n_models, n_resamples = scores.shape
    finite = np.isfinite(scores)
    masked = np.where(finite, scores, -np.inf)
    best = masked.max(axis=0)
    is_best = finite & (masked == best)
    ties = is_best.sum(axis=0)
    share = np.divide(is_best, ties, out=np.zeros(scores.shape), where=ties > 0)
    p_best = share.sum(axis=1) / n_resamples
    # Competition ranks (tied scores share the better rank); a failed model ranks below every scored one.
    ranks = 1 + (masked[None, :, :] > masked[:, None, :]).sum(axis=1)
    low, high = INTERVAL_PERCENTILES
    rank_low = np.percentile(ranks, low, axis=1, method="lower").astype(np.int64)
    rank_high = np.percentile(ranks, high, axis=1, method="higher").astype(np.int64)
    score_low = np.full(n_models, math.nan)
    score_high = np.full(n_models, math.nan)
    for i in range(n_models):
        if finite[i].any():
            score_low[i], score_high[i] = np.percentile(scores[i, finite[i]], [low, high])
    return {"p_best": p_best, "rank_low": rank_low, "rank_high": rank_high, "score_low": score_low,
            "score_high": score_high}


def _best_first(records: Sequence[RankRecord]) -> list[RankRecord]:
    """Sorted as :func:`pedrank.rank` sorts: by score, NaN last, ties in the given (pool) order."""
    order = sorted(range(len(records)), key=lambda i: (math.isnan(records[i].score),
                                                        0.0 if math.isnan(records[i].score) else -records[i].score, i))
    return [records[i] for i in order]


def _table(records: list[RankRecord], resampled: Mapping[str, np.ndarray], failures: Mapping[str, int], *,
           label: str, ped: bool, dataset: str | None, baselines: Mapping[str, Mapping[str, float]],
           n_resamples: int, seed: int, shapes: Mapping[str, FeatureShape]) -> RankTable:
    """The metric's table, best first; after a bootstrap its records carry the intervals."""
    scored_shapes = {r.model: shapes[r.model] for r in records
                     if r.error is None and not math.isnan(r.score) and r.model in shapes}
    if n_resamples == 0:
        return RankTable(_best_first(records), metric=label, ped=ped, dataset=dataset, baselines=baselines,
                         feature_shapes=scored_shapes)
    scored = [r.model for r in records if r.error is None and not math.isnan(r.score)]
    summary = _summaries(np.stack([resampled[m] for m in scored])) if scored else None
    position = {model: i for i, model in enumerate(scored)}
    filled = []
    for record in records:
        i = position.get(record.model)
        if i is None or summary is None:
            filled.append(record)
            continue
        low, high = summary["score_low"][i], summary["score_high"][i]
        filled.append(replace(
            record, p_best=float(summary["p_best"][i]), rank_low=int(summary["rank_low"][i]),
            rank_high=int(summary["rank_high"][i]), score_low=None if math.isnan(low) else float(low),
            score_high=None if math.isnan(high) else float(high), failed_resamples=int(failures.get(record.model, 0)),
        ))
    ordered = _best_first(filled)
    stability = ordered[0].p_best if ordered and ordered[0].p_best is not None else None
    return RankTable(ordered, metric=label, ped=ped, dataset=dataset, baselines=baselines, n_resamples=n_resamples,
                     seed=seed, top1_stability=stability,
                     bootstrap_scores={m: resampled[m].copy() for m in scored}, feature_shapes=scored_shapes)


# ------------------------------------------------------------------------------------------ the run


@dataclass(frozen=True)
class _Metric:
    label: str
    entry: Any
    options: dict[str, Any]  # as the caller gave them (forms resolved by pedrank.score / the pool step)
    form_options: dict[str, Any]
    ped: Any  # this metric's ped= value (a PED config file gives each metric its own)


def _plan(metric: str | Sequence[str], metric_options: Mapping[str, Any], metric_seed: int | None,
          ped: Any) -> tuple[list[_Metric], bool]:
    """Each metric with its options, and whether one metric was asked for (a RankTable, not an Agreement)."""
    from pedrank.scores.registry import resolve_metric

    single = isinstance(metric, str)
    names = [metric] if isinstance(metric, str) else list(metric)
    if not names or not all(isinstance(n, str) for n in names):
        raise PedrankValueError(f"metric: found {metric!r}; expected a metric name or a non-empty list of names")
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise PedrankValueError(f"metric: found {repeated} more than once in {names}; expected distinct metrics")
    plans: list[_Metric] = []
    used: set[str] = set()
    for name in names:
        entry, _ = resolve_metric(name, {})
        accepted = accepted_options(entry)
        # With several metrics an option belongs to the metrics that take it (shrinkage= to SFDA only).
        options = dict(metric_options) if single else {k: v for k, v in metric_options.items() if k in accepted}
        used.update(options)
        if metric_seed is not None and "random_state" in accepted:
            options["random_state"] = metric_seed
        _, form_options = resolve_metric(name, options)
        value = ped
        if isinstance(ped, (str, os.PathLike)):
            from pedrank.workflow.tune import read_ped_config

            value = read_ped_config(ped, name)
        plans.append(_Metric(name, entry, options, form_options, value))
    unknown = sorted(set(metric_options) - used)
    if unknown:
        raise PedrankValueError(f"{', '.join(unknown)}: not an option of any of the metrics {names}; expected "
                                "options that at least one of them takes")
    return plans, single


def bootstrap_rank(pool: Mapping[str, Any], labels: Any, *, metric: str | Sequence[str], ped: Any, backend: str,
                   references: Mapping[str, Any] | None, dataset: str | None, progress: bool | None, executor: Any,
                   errors: str, baselines: Mapping[str, Mapping[str, float]], n_resamples: int, seed: int,
                   metric_seed: int | None, metric_options: Mapping[str, Any]) -> RankTable | Agreement:
    """:func:`pedrank.rank` with ``confidence=`` or several metrics (its arguments, already checked there).

    Returns
    -------
    RankTable or Agreement
        A :class:`pedrank.RankTable` for one metric, an :class:`Agreement` for several.
    """
    plans, single = _plan(metric, metric_options, metric_seed, ped)
    references = dict(references or {})
    dask = False if executor is None else check_executor(executor)
    per_model = [p for p in plans if p.entry.pool is None]
    pooled = [p for p in plans if p.entry.pool is not None]

    failed_reads: dict[str, str] = {}
    source: Mapping[str, Any] = pool
    if pooled:
        # A pool score needs every model's features on every resample: read each model once, keep them all.
        source, failed_reads = _read_pool(pool, labels, errors, progress)

    # PED settings: one group per distinct setting, so metrics that share PED share its run (and its moved copy).
    groups: list[dict[str, Any] | None] = []
    keys: list[str] = []
    scorers = []
    for plan in per_model:
        options = parse_ped_options(plan.ped)
        key = "shared" if not isinstance(ped, (str, os.PathLike)) else json.dumps(options, sort_keys=True)
        if key not in keys:
            keys.append(key)
            groups.append(options)
        scorers.append(_Scorer(plan.label, keys.index(key), MetricCall(plan.label, backend, plan.options)))

    outcomes: dict[str, _ModelOutcome] = {}
    if scorers:
        def arguments(name: Any, entry: Any) -> tuple[Any, ...]:
            override = (name in references, references.get(name))
            return (name, entry, None if pooled else labels, tuple(scorers), tuple(groups), override, backend,
                    n_resamples, seed, errors)

        description = ",".join(s.label for s in scorers) + (f" x{n_resamples + 1}" if n_resamples else "")
        if executor is None:
            for name, entry in _progress(source.items(), total=len(source), desc=description, enabled=progress):
                outcomes[str(name)] = _score_model(*arguments(name, entry))
                # refused at the first model of other data, not after scoring the rest
                check_same_target({name: o.target for name, o in outcomes.items()})
        else:
            extra = {"pure": False} if dask else {}
            futures = [executor.submit(_score_model, *arguments(name, entry), **extra)
                       for name, entry in source.items()]
            try:
                for future in _progress(futures, total=len(futures), desc=description, enabled=progress):
                    outcome = future.result()
                    outcomes[outcome.name] = outcome
                    check_same_target({name: o.target for name, o in outcomes.items()})
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        if n_resamples:
            _same_labels({name: o.labels_key for name, o in outcomes.items()})

    tables: dict[str, RankTable] = {}
    for index, plan in enumerate(per_model):
        records, resampled, failures = [], {}, {}
        for name in pool:
            name = str(name)
            if name in failed_reads:
                records.append(RankRecord(name, math.nan, 0.0, None, error=failed_reads[name]))
                continue
            outcome = outcomes[name]
            records.append(RankRecord(name, outcome.scores[index], outcome.seconds[index], outcome.steps[index],
                                      error=outcome.errors[index]))
            resampled[name] = outcome.resampled[index]
            failures[name] = int(outcome.failures[index])
        ped_on = groups[scorers[index].group] is not None
        shapes = {name: o.shape for name, o in outcomes.items() if o.shape is not None}
        warn_degenerate_elsewhere(plan.entry, {r.model: r.score for r in records}, shapes,
                                  {name: o.target for name, o in outcomes.items()}, executor, stacklevel=3)
        tables[plan.label] = _table(records, resampled, failures, label=plan.label, ped=ped_on, dataset=dataset,
                                    baselines=baselines, n_resamples=n_resamples, seed=seed, shapes=shapes)

    for plan in pooled:
        tables[plan.label] = _pool_table(plan, source, failed_reads, pool, backend=backend, references=references,
                                         dataset=dataset, errors=errors, progress=progress, baselines=baselines,
                                         n_resamples=n_resamples, seed=seed)

    ordered = {plan.label: tables[plan.label] for plan in plans}
    if single:
        return ordered[plans[0].label]
    return Agreement(ordered, models=[str(name) for name in pool], dataset=dataset)


def _pool_table(plan: _Metric, loaded: Mapping[str, Mapping[str, Any]], failed_reads: Mapping[str, str],
                pool: Mapping[str, Any], *, backend: str, references: Mapping[str, Any], dataset: str | None,
                errors: str, progress: bool | None, baselines: Mapping[str, Mapping[str, float]], n_resamples: int,
                seed: int) -> RankTable:
    """A pool score's table: its pool step on the full data, then on each resample of the whole pool."""
    common = dict(ped=plan.ped, backend=backend, references=references, metric_name=plan.label,
                  **plan.form_options)
    point = plan.entry.pool(loaded, None, dataset=dataset, errors=errors, progress=progress, **common)
    by_model = {r.model: r for r in point}
    records = []
    for name in pool:
        name = str(name)
        if name in failed_reads:
            records.append(RankRecord(name, math.nan, 0.0, None, error=failed_reads[name]))
        else:
            record = by_model[name]
            records.append(RankRecord(record.model, record.score, record.seconds, record.ped_steps,
                                      error=record.error))
    scored = [r.model for r in records if r.error is None and not math.isnan(r.score)]
    resampled = {m: np.full(n_resamples, math.nan) for m in scored}
    failures = dict.fromkeys(scored, 0)
    if n_resamples and scored:
        encoded = {}
        for m in scored:
            item = loaded[m]
            encoded[m], _ = check_labels(item["labels"], _n_rows(item["features"]))
        _same_labels({m: _labels_key(e) for m, e in encoded.items()})
        draws = stratified_bootstrap(encoded[scored[0]], n_resamples, seed)
        for b, rows in enumerate(_progress(draws, total=n_resamples, desc=f"{plan.label} resamples",
                                           enabled=progress)):
            # Every resample is its own pool: the min-max scaling is redone over the resampled models.
            table = plan.entry.pool({m: _Resampled(loaded[m], rows) for m in scored}, None, dataset=dataset,
                                    errors="row", progress=False, **common)
            for r in table:
                if r.error is None and not math.isnan(r.score):
                    resampled[r.model][b] = r.score
                else:
                    failures[r.model] += 1
    ped_on = parse_ped_options(plan.ped) is not None
    return _table(records, resampled, failures, label=plan.label, ped=ped_on, dataset=dataset,
                  baselines=baselines, n_resamples=n_resamples, seed=seed, shapes=point.feature_shapes)


# ------------------------------------------------------------------------------------------ agreement


def kendall_tau_matrix(tables: Mapping[str, RankTable]) -> np.ndarray:
    """Kendall's tau-b between every two metrics' scores of the models both scored.

    Parameters
    ----------
    tables : mapping of str to RankTable
        One table per metric, over the same pool.

    Returns
    -------
    ndarray of shape (n_metrics, n_metrics)
        1 on the diagonal; NaN where fewer than two models were scored by both or one metric gives them all
        the same score.
    """
    from scipy import stats

    labels = list(tables)
    scores = [tables[m].scores for m in labels]
    matrix = np.eye(len(labels))
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            common = [m for m in scores[i] if m in scores[j] and np.isfinite(scores[i][m])
                      and np.isfinite(scores[j][m])]
            tau = math.nan
            if len(common) >= 2:
                x = np.array([scores[i][m] for m in common])
                y = np.array([scores[j][m] for m in common])
                if np.ptp(x) > 0 and np.ptp(y) > 0:
                    tau = float(stats.kendalltau(x, y).statistic)
            matrix[i, j] = matrix[j, i] = tau
    return matrix


@dataclass(frozen=True)
class ConsensusRecord:
    """One model's line of the consensus ranking.

    Attributes
    ----------
    model : str
    mean_rank : float
        The mean over the metrics of the model's rank (1 = best; tied scores share the mean of their ranks),
        ranks taken among the models that every metric scored. NaN for a model some metric could not score.
    ranks : dict of str to float
        The model's rank by each metric (NaN where unscored).
    tied_with : tuple of str
        The other models with exactly the same mean rank.
    """

    model: str
    mean_rank: float
    ranks: Mapping[str, float] = field(default_factory=dict)
    tied_with: tuple[str, ...] = ()


def _consensus(tables: Mapping[str, RankTable], models: Sequence[str]) -> list[ConsensusRecord]:
    from scipy import stats

    labels = list(tables)
    scores = {m: tables[m].scores for m in labels}
    common = [model for model in models if all(np.isfinite(scores[m].get(model, math.nan)) for m in labels)]
    ranks: dict[str, dict[str, float]] = {model: {m: math.nan for m in labels} for model in models}
    if common:
        for m in labels:
            # Average ranks within a metric (ties share the mean rank): multiples of 1/2, so sums compare exactly.
            for model, r in zip(common, stats.rankdata([-scores[m][model] for model in common], method="average")):
                ranks[model][m] = float(r)
    totals = {model: sum(ranks[model].values()) for model in common}
    order = sorted(common, key=lambda model: (totals[model], common.index(model)))
    records = [ConsensusRecord(model, totals[model] / len(labels), dict(ranks[model]),
                               tuple(other for other in order if other != model and totals[other] == totals[model]))
               for model in order]
    records += [ConsensusRecord(model, math.nan, dict(ranks[model])) for model in models if model not in totals]
    return records


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


class Agreement:
    """Several scores of one pool: their tables, how well their rankings agree, and a consensus.

    Returned by :func:`pedrank.rank` given a list of metrics.

    Attributes
    ----------
    metrics : list of str
        The metrics, in the order given.
    tables : dict of str to RankTable
        Each metric's ranking (with the bootstrap's columns when ``confidence=`` was given).
    kendall_tau : ndarray of shape (n_metrics, n_metrics)
        Kendall's tau-b between the metrics' scores of the models both scored (:func:`kendall_tau_matrix`).
    consensus : list of ConsensusRecord
        The models by mean rank over the metrics, best first; models that some metric could not score last.
    dataset : str or None
    """

    def __init__(self, tables: Mapping[str, RankTable], *, models: Sequence[str] | None = None,
                 dataset: str | None = None):
        self.tables = dict(tables)
        self.metrics = list(self.tables)
        pool = list(models) if models is not None else list(dict.fromkeys(
            m for table in self.tables.values() for m in table.models))
        self.kendall_tau = kendall_tau_matrix(self.tables)
        self.consensus = _consensus(self.tables, pool)
        self.dataset = dataset

    @property
    def models(self) -> list[str]:
        """Model names in consensus order, best first."""
        return [record.model for record in self.consensus]

    @property
    def top_models(self) -> dict[str, str | None]:
        """``{metric: its best model}`` (None where the metric scored no model)."""
        return {m: (t[0].model if len(t) and not math.isnan(t[0].score) else None) for m, t in self.tables.items()}

    @property
    def ties(self) -> list[tuple[str, ...]]:
        """Groups of models with the same mean rank, in consensus order."""
        groups: list[tuple[str, ...]] = []
        seen: set[str] = set()
        for record in self.consensus:
            if record.tied_with and record.model not in seen:
                group = (record.model, *record.tied_with)
                seen.update(group)
                groups.append(group)
        return groups

    def separation_warning(self, threshold: float = SEPARATED_P_BEST) -> str | None:
        """One line when the scores disagree on the best model, or (after a bootstrap) a metric's best model is
        best in fewer than ``threshold`` of the resamples; None otherwise.

        Returns
        -------
        str or None
            ``"A (first by pactran, sfda) and B (first by logme): not separated; fine-tune both"``, or a table's
            own :meth:`RankTable.separation_warning` with its metric named.
        """
        tops = {m: top for m, top in self.top_models.items() if top is not None}
        distinct = list(dict.fromkeys(tops.values()))
        if len(distinct) > 1:
            position = {record.model: i for i, record in enumerate(self.consensus)}
            first, runner = sorted(distinct, key=lambda model: position.get(model, len(position)))[:2]

            def by(model: str) -> str:
                return ", ".join(m for m, top in tops.items() if top == model)

            return f"{first} (first by {by(first)}) and {runner} (first by {by(runner)}): not separated; fine-tune both"
        for m, table in self.tables.items():
            line = table.separation_warning(threshold)
            if line is not None:
                return f"{m}: {line}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able values: ``metrics``, ``dataset``, ``kendall_tau`` (``{a: {b: tau}}``),
        ``consensus`` (records ``rank``, ``model``, ``mean_rank``, ``ranks``, ``tied_with``) and ``tables``
        (``{metric: RankTable.to_records()}``). NaN becomes None."""
        return {
            "metrics": self.metrics,
            "dataset": self.dataset,
            "kendall_tau": {a: {b: _number(float(self.kendall_tau[i, j])) for j, b in enumerate(self.metrics)}
                            for i, a in enumerate(self.metrics)},
            "consensus": [{"rank": position, "model": r.model, "mean_rank": _number(r.mean_rank),
                           "ranks": {m: _number(v) for m, v in r.ranks.items()}, "tied_with": list(r.tied_with)}
                          for position, r in enumerate(self.consensus, start=1)],
            "tables": {m: table.to_records() for m, table in self.tables.items()},
        }

    def to_json(self, path: PathLike | None = None, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON object; also written to ``path`` when given (``pedrank plot ranking`` reads
        it)."""
        return write_json(self.to_dict(), path, indent=indent)

    def to_csv(self, path: PathLike | None = None) -> str:
        """One row per model in consensus order: ``rank``, ``model``, ``mean_rank``, ``tied_with`` (``;``
        between names), then per metric ``score_<metric>`` and ``rank_<metric>`` (and after a bootstrap
        ``p_best_<metric>``, ``score_low_<metric>``, ``score_high_<metric>``). The correlations are in the JSON
        and the text. There is deliberately no ``score`` column: ``pedrank evaluate`` takes one metric's file."""
        columns = ["rank", "model", "mean_rank", "tied_with"]
        extra = ("p_best", "score_low", "score_high")
        for m, table in self.tables.items():
            columns += [f"score_{m}", f"rank_{m}"]
            if table.n_resamples is not None:
                columns += [f"{key}_{m}" for key in extra]
        records = {m: {r.model: r for r in table} for m, table in self.tables.items()}
        rows: list[list[Any]] = []
        for position, consensus in enumerate(self.consensus, start=1):
            row: list[Any] = [position, consensus.model, _blank(consensus.mean_rank), ";".join(consensus.tied_with)]
            for m, table in self.tables.items():
                record = records[m].get(consensus.model)
                row += [_blank(record.score if record else None), _blank(consensus.ranks.get(m))]
                if table.n_resamples is not None:
                    row += [_blank(getattr(record, key, None)) for key in extra]
            rows.append(row)
        return write_csv_rows(columns, rows, path)

    def to_string(self) -> str:
        """The consensus table (with each metric's rank), its ties, the Kendall tau matrix, then every metric's
        own table."""
        title = f"metrics: {', '.join(self.metrics)}" + (f", dataset: {self.dataset}" if self.dataset else "")
        header = ["rank", "model", "mean_rank", *self.metrics]
        rows = [[str(position), r.model, "nan" if math.isnan(r.mean_rank) else f"{r.mean_rank:.2f}",
                 *(_rank_text(r.ranks.get(m, math.nan)) for m in self.metrics)]
                for position, r in enumerate(self.consensus, start=1)]
        lines = [title, f"consensus: mean rank over {len(self.metrics)} metric(s) (1 = best)",
                 *_aligned(header, rows, left=1)]
        for group in self.ties:
            mean = next(r.mean_rank for r in self.consensus if r.model == group[0])
            lines.append(f"tied: {' = '.join(group)} (mean rank {mean:.2f})")
        lines.append("Kendall tau between the metrics' rankings:")
        tau_rows = [[a, *("nan" if math.isnan(v) else f"{v:+.3f}" for v in self.kendall_tau[i])]
                    for i, a in enumerate(self.metrics)]
        lines += _aligned(["", *self.metrics], tau_rows, left=0)
        for table in self.tables.values():
            lines += ["", table.to_string()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"Agreement(metrics={self.metrics!r}, consensus={self.models!r})"


def _blank(value: Any) -> Any:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _rank_text(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:g}"


def _aligned(header: list[str], rows: list[list[str]], *, left: int) -> list[str]:
    """Fixed-width lines; column ``left`` (the names) left-aligned, the numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) if i == left else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in [header, *rows]]


# ------------------------------------------------------------------------------------------ reading back


_RECORD_FIELDS = ("model", "score", "seconds", "ped_steps", "error", "p_best", "rank_low", "rank_high", "score_low",
                  "score_high", "failed_resamples")


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(float(value))


def _table_from_records(records: Sequence[Mapping[str, Any]], where: str) -> RankTable:
    """A :class:`pedrank.RankTable` back from :meth:`RankTable.to_records` (JSON) or its CSV rows."""
    from pedrank.workflow.io import FeatureFileError

    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or "model" not in record or "score" not in record:
            raise FeatureFileError(where, f"record {index}: expected 'model' and 'score', found {record!r:.120}")
        try:
            score = _float_or_none(record["score"])
            rows.append(RankRecord(
                str(record["model"]), math.nan if score is None else score,
                _float_or_none(record.get("seconds")) or 0.0, _int_or_none(record.get("ped_steps")),
                error=record.get("error") or None, p_best=_float_or_none(record.get("p_best")),
                rank_low=_int_or_none(record.get("rank_low")), rank_high=_int_or_none(record.get("rank_high")),
                score_low=_float_or_none(record.get("score_low")), score_high=_float_or_none(record.get("score_high")),
                failed_resamples=_int_or_none(record.get("failed_resamples")),
            ))
        except (TypeError, ValueError) as exc:
            raise FeatureFileError(where, f"record {index}: not a number where one was expected ({exc})") from exc
    first = records[0] if records else {}
    label = str(first.get("metric") or "score")
    ped = label.endswith("+ped")
    resamples = _int_or_none(first.get("resamples"))
    stability = _float_or_none(first.get("top1_stability"))
    dataset = first.get("dataset") or None
    return RankTable(rows, metric=label[:-4] if ped else label, ped=ped, dataset=dataset, n_resamples=resamples,
                     top1_stability=stability)


def read_ranking(path: PathLike) -> RankTable | Agreement:
    """Read back what ``pedrank rank --json`` (or ``--csv``, for one metric) wrote.

    Parameters
    ----------
    path : path
        A JSON list of records (one metric, :meth:`RankTable.to_json`), a JSON object (several metrics,
        :meth:`Agreement.to_json`) or a one-metric CSV.

    Returns
    -------
    RankTable or Agreement
        With the bootstrap's fields when the file has them (``bootstrap_scores`` is not stored, so it is empty).
    """
    content = read_ranking_records(path)
    if not isinstance(content, Mapping):
        return _table_from_records(content, str(Path(path)))
    tables = {str(m): _table_from_records(records, f"{Path(path)} (metric {m})")
              for m, records in content["tables"].items()}
    models = [str(r["model"]) for r in content.get("consensus", []) if isinstance(r, Mapping) and "model" in r]
    return Agreement(tables, models=models or None, dataset=content.get("dataset"))
