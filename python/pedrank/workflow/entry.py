"""One model of a pool, from its entry to its number: the one path that :func:`pedrank.rank`, its bootstrap
(:mod:`pedrank.workflow.confidence`), the pool scores (NCTI's and ETran's pool forms, :mod:`pedrank.workflow.pool`)
and :func:`pedrank.workflow.tune.tune` all take.

A pool entry is an array, a ``(features, labels)`` pair, a mapping with ``"features"`` (and optionally ``"labels"``,
``"reference"``), a feature file's path or a :class:`pedrank.workflow.io.FeatureSource`. :func:`evaluate_entry` reads
it (files are read here, in the task that scores them), moves its features with PED when asked
(:func:`moved_features`), then computes one number; :func:`score_entry` turns that into the model's
:class:`RankRecord`, or, with ``errors="row"``, a failure into a row that says why.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pedrank._engine.validation import PedrankValueError, to_numpy, with_context

__all__ = ["ERRORS", "FeatureShape", "MetricCall", "RankRecord", "Target", "accepted_options", "check_executor",
           "check_model_names", "check_same_target", "describe_entry", "evaluate_entry", "failure_reason",
           "feature_shape", "moved_features", "resolve_entry", "score_entry", "target_of"]


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
    p_best : float or None
        ``rank(..., confidence=B)`` only: the share of the B resamples in which this model scores highest (a tie
        for first gives each tied model an equal share). None without a bootstrap, or for a model without a score.
    rank_low, rank_high : int or None
        The 5th and 95th percentiles of the model's rank over the resamples (1 = best; tied scores share the
        better rank; rounded outwards to whole ranks).
    score_low, score_high : float or None
        The 5th and 95th percentiles of the model's bootstrap scores (the spread of the score, not a corrected
        interval: see :mod:`pedrank.workflow.confidence` for scores that duplicated rows move).
    failed_resamples : int or None
        Resamples on which this model's score (or PED) failed, e.g. a class drawn as copies of one row; such a
        resample ranks the model below every model scored on it and is left out of its score interval.
    """

    model: str
    score: float
    seconds: float
    ped_steps: int | None = None
    error: str | None = None
    p_best: float | None = None
    rank_low: int | None = None
    rank_high: int | None = None
    score_low: float | None = None
    score_high: float | None = None
    failed_resamples: int | None = None



def resolve_entry(name: str, entry: Any, labels: Any) -> tuple[Any, Any, Any]:
    """``(features, labels, reference)`` for one pool entry; files are read here, lazily."""
    from pedrank.workflow.io import FeatureSource, load_features

    reference = None
    if isinstance(entry, FeatureSource):
        features, entry_labels = entry.load()
        return features, entry_labels, entry.load_reference()
    if isinstance(entry, (str, os.PathLike)):
        features, entry_labels = load_features(entry, default_labels=labels)
        return features, entry_labels, None
    if isinstance(entry, Mapping):
        if "features" not in entry:
            raise PedrankValueError(f"pool[{name!r}] is a mapping without a 'features' key; found keys {sorted(entry)}")
        unknown = sorted(map(str, set(entry) - {"features", "labels", "reference"}))
        if unknown:
            raise PedrankValueError(f"pool[{name!r}]: found the key(s) {unknown}; expected 'features' and optionally "
                                    "'labels' and 'reference' (a misspelt key would be ignored)")
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


def describe_entry(name: str, entry: Any, error: Exception) -> str:
    """Which pool entry failed: the model, and its file unless the error already names it."""
    from pedrank.workflow.io import FeatureFileError, FeatureSource

    path = entry.path if isinstance(entry, FeatureSource) else entry if isinstance(entry, (str, os.PathLike)) else None
    if path is None or isinstance(error, FeatureFileError):
        return f"model {name!r}"
    return f"model {name!r} ({path})"


ERRORS = ("raise", "row")


def check_model_names(pool: Mapping[Any, Any]) -> None:
    """Refuse a pool whose model names collide as text: the tables, files and :func:`pedrank.evaluate` name a model
    by ``str(name)``, so keys such as ``1`` and ``"1"`` would become one model, the other's score lost or shown
    twice."""
    seen: dict[str, Any] = {}
    for name in pool:
        text = str(name)
        if text in seen:
            raise PedrankValueError(
                f"pool: the model names {seen[text]!r} and {name!r} are both {text!r} as text; expected distinct "
                "names (a model is named by str(name) in the table and its files)"
            )
        seen[text] = name


class MetricCall:
    """``pedrank.score`` of one metric with fixed options: a picklable callable for executor tasks."""

    def __init__(self, metric: str, backend: str, options: dict[str, Any]):
        self.metric, self.backend, self.options = metric, backend, options

    def __call__(self, features: Any, labels: Any) -> float:
        import pedrank

        return float(pedrank.score(features, labels, self.metric, ped=False, backend=self.backend, **self.options))


#: What a model was scored on, for :func:`check_same_target`: its number of rows and its class sizes, sorted.
Target = tuple[int, tuple[int, ...]]

#: A model's features as a scale-dependent score sees them: ``(feature_scale, n_samples, n_features)`` of the
#: features as given, before PED (:func:`pedrank.scores.scoring.scale_dependence`).
FeatureShape = tuple[float, int, int]


def feature_shape(features: Any) -> FeatureShape:
    """:data:`FeatureShape` of features that a score has accepted (read in blocks; never modified). A score of
    predictions may take a 1-D array (source labels): its scale is NaN (never compared)."""
    from pedrank._engine.validation import feature_scale

    if not hasattr(features, "shape"):
        features = np.asarray(features)
    if len(features.shape) != 2:
        return math.nan, int(features.shape[0]) if len(features.shape) else 0, 0
    return feature_scale(features), int(features.shape[0]), int(features.shape[1])


def evaluate_entry(name: str, entry: Any, labels: Any, ped_options: dict[str, Any] | None,
                    override: tuple[bool, Any], backend: str,
                    compute: Any) -> tuple[Any, float, int | None, Target, FeatureShape]:
    """Read one pool entry (files here, where the task runs), move it with PED when asked, then
    ``compute(features, labels)``: ``(value, seconds, ped_steps, target, shape)``, ``target`` being
    :func:`target_of` its labels and ``shape`` :func:`feature_shape` of its features as given. The one path from
    a pool entry to its number, for per-model scores and for the pool scores' raw terms alike."""
    given, model_labels, file_reference = resolve_entry(name, entry, labels)
    target = target_of(model_labels)
    start = time.perf_counter()
    features, steps = moved_features(given, model_labels, file_reference, ped_options, override, backend)
    value = compute(features, model_labels)
    seconds = time.perf_counter() - start
    return value, seconds, steps, target, feature_shape(given)  # after the score: it has validated them


def target_of(labels: Any) -> Target:
    """The target data a model's labels describe, as far as a ranking must agree on it: ``(N, class sizes in
    increasing order)``. The rows' order and the class names do not count (two extractions of the same images in
    another order, or labelled 0..C-1 and 1..C, describe the same target). 1-D regression targets
    (``regression=True``) give the counts of their distinct values, 2-D ones and labels that cannot be sorted
    ``(N, ())``: only their number of rows is compared. It never refuses: the score validates its own labels."""
    array = to_numpy(labels)
    n_rows = int(array.shape[0]) if array.ndim else 0
    if array.ndim != 1:
        return n_rows, ()
    try:
        _, counts = np.unique(array, return_counts=True)
    except TypeError:  # values of mixed types: the score refuses them with its own message
        return n_rows, ()
    return n_rows, tuple(sorted(counts.tolist()))


def _describe_target(target: Target) -> str:
    n_rows, sizes = target
    shown = ", ".join(str(size) for size in sizes[:8]) + (", ..." if len(sizes) > 8 else "")
    return f"{n_rows} rows in {len(sizes)} classes (sizes {shown})"


def check_same_target(targets: Mapping[str, Target | None]) -> None:
    """Refuse a pool whose models were scored on different target data (``None``: a model without a score).

    A score depends on the target's size and classes (LogME, TransRate and H-score grow as N falls towards D), so
    models scored on different rows cannot be ranked against each other: the table would order the data sets, not
    the models. Raised whatever ``errors`` is, since no single model is at fault.
    """
    known = {name: target for name, target in targets.items() if target is not None}
    if len(set(known.values())) <= 1:
        return
    first = next(iter(known))
    other = next(name for name, target in known.items() if target != known[first])
    raise PedrankValueError(
        f"pool: models {first!r} and {other!r} were scored on different target data: {first!r} on "
        f"{_describe_target(known[first])}, {other!r} on {_describe_target(known[other])}. Scores of different "
        "data cannot be ranked against each other; expected every model's labels to be those of the same target "
        "rows (their order may differ). Check each model's label file, or rank the data sets separately"
    )


def moved_features(features: Any, labels: Any, file_reference: Any, ped_options: dict[str, Any] | None,
           override: tuple[bool, Any], backend: str) -> tuple[Any, int | None]:
    """``(features after PED, steps)``, or the features as they are and None without PED. PED's reference: the
    ``references=`` override, else the one found beside the features, else ``ped["reference"]``."""
    if ped_options is None:
        return features, None
    import pedrank

    options = dict(ped_options)
    reference = options.pop("reference", None)
    if file_reference is not None:
        reference = file_reference
    if override[0]:
        reference = override[1]
    result = pedrank.ped(features, labels, reference=reference, backend=backend, **options)
    return result.features, int(result.steps)


def failure_reason(name: str, entry: Any, exc: Exception) -> str:
    """What a failed model's row says: the error, prefixed by the model (and its file)."""
    if isinstance(exc, ValueError):
        return str(with_context(exc, describe_entry(name, entry, exc)))
    return f"{describe_entry(name, entry, exc)}: {type(exc).__name__}: {exc}"


def score_entry(name: str, entry: Any, labels: Any, metric: str, ped_options: dict[str, Any] | None,
                 override: tuple[bool, Any], backend: str, metric_options: dict[str, Any],
                 errors: str) -> tuple[RankRecord, Target | None, FeatureShape | None]:
    """One model of the pool: read its features, score them and return only its row, its target
    (:func:`target_of` its labels, for :func:`check_same_target`) and its :func:`feature_shape` (both None for a
    failed row). With ``errors="row"`` a failure becomes the row's ``error``; otherwise it raises (a
    ``ValueError`` named by model and file)."""
    start = time.perf_counter()
    try:
        value, seconds, steps, target, shape = evaluate_entry(name, entry, labels, ped_options, override, backend,
                                                               MetricCall(metric, backend, metric_options))
    except Exception as exc:
        if errors == "row":
            return RankRecord(str(name), float("nan"), time.perf_counter() - start, None,
                              error=failure_reason(name, entry, exc)), None, None
        if isinstance(exc, ValueError):
            raise with_context(exc, describe_entry(name, entry, exc)) from exc
        raise
    return RankRecord(str(name), float(value), seconds, steps), target, shape


def warn_degenerate_elsewhere(entry: Any, scores: Mapping[str, float], shapes: Mapping[str, Any],
                              targets: Mapping[str, Any], executor: Any, *, stacklevel: int = 3) -> None:
    """:class:`pedrank.DegenerateScoreWarning` for each model whose score an ``executor`` computed in another
    process, where the score's own warning stayed (:attr:`ScoreEntry.degenerate` decides it again here, from the
    value and the shape). Nothing for a thread pool: its tasks' warnings already reached the caller.
    ``stacklevel`` as :func:`warnings.warn`'s, counted from this function's caller."""
    from concurrent.futures import ThreadPoolExecutor

    if executor is None or isinstance(executor, ThreadPoolExecutor) or getattr(entry, "degenerate", None) is None:
        return
    import warnings

    from pedrank._engine.validation import DegenerateScoreWarning

    for name, value in scores.items():
        shape, target = shapes.get(name), targets.get(name)
        if shape is None or target is None or not math.isfinite(value) or not target[1]:
            continue
        message = entry.degenerate(value, shape[1], shape[2], len(target[1]))
        if message is not None:
            warnings.warn(DegenerateScoreWarning(f"model {name!r}: {message}"), stacklevel=stacklevel + 1)


def check_executor(executor: Any) -> bool:
    """True for a dask.distributed Client (its submit takes ``pure=False``), False for an Executor."""
    if not callable(getattr(executor, "submit", None)):
        raise PedrankValueError(
            f"executor: found {type(executor).__name__}; expected a concurrent.futures.Executor (e.g. "
            "ProcessPoolExecutor, or a dask.distributed Client's get_executor()) or a dask.distributed Client"
        )
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "scheduler_info")


def accepted_options(entry: Any) -> set[str]:
    """The options a registered score takes by keyword (its pool step's, for a pool score), besides the ones
    :func:`rank` itself passes."""
    from pedrank.scores.registry import keyword_options

    function = entry.pool if entry.pool is not None else entry.function
    own = {"pool", "labels", "features", "ped", "backend", "references", "dataset", "errors", "progress",
           "metric_name", "executor"}
    return keyword_options(function) - own
