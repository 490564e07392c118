"""Choose PED's options the way a user can: on benchmark datasets with ground truth, judged on held-out ones.

The PED paper's Table 1 picks the elastic coefficient k per dataset on the very ground truth it then reports: an
in-sample best case that a user with a new dataset cannot reproduce. :func:`tune` instead

1. scores every pool (one per benchmark dataset) at every setting of a grid of PED options, plus "PED off";
2. for each dataset, chooses the setting with the highest mean weighted tau over the **other** datasets and
   scores the held-out one with it (leave-one-dataset-out): the out-of-sample number a user can expect;
3. chooses the setting on all datasets, and recommends it when tuning carries over (the leave-one-out mean
   tau beats PED off's), else "leave PED off"; :meth:`TuneResult.write_config` writes the recommendation as a
   file that ``pedrank.rank(..., ped=FILE)`` and ``pedrank rank --ped-config FILE`` read (``false``: PED off).

Each (dataset, model, score, setting) is scored once and reused across folds (and, with ``cache=DIR``, across
runs). PED works on class statistics: the class moments of a pool entry are computed once for the whole grid,
each setting's steps run on the C x D statistics, and settings whose steps end in the same class displacements
(e.g. every setting where no cluster overlaps) share one score.

The package: ``settings`` (PED's options, the grid, the config file :func:`read_ped_config` reads), ``inputs``
(:func:`find_datasets` and the ground truth), ``result`` (:class:`TuneResult`, the leave-one-dataset-out choice);
:func:`tune` itself, with the scoring it plans (one pass of class statistics per pool entry, a disk cache), is here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pedrank._engine.validation import PedrankValueError
from pedrank.scores.scoring import warn_ped_on_held_out
from pedrank.workflow.tune.inputs import find_datasets, read_truths
from pedrank.workflow.tune.result import Fold, TuneResult, choose, weighted_tau
from pedrank.workflow.tune.settings import CONFIG_FORMAT as CONFIG_FORMAT
from pedrank.workflow.tune.settings import (
    DEFAULT_GRID,
    PED_DEFAULTS,
    PathLike,
    Setting,
    grid_settings,
    read_ped_config,
    setting_key,
)
from pedrank.workflow.tune.settings import GRID_OPTIONS as GRID_OPTIONS
from pedrank.workflow.tune.settings import setting_label as setting_label
from pedrank.workflow.tune.settings import setting_options as setting_options

__all__ = [
    "DEFAULT_GRID",
    "PED_DEFAULTS",
    "TuneResult",
    "find_datasets",
    "read_ped_config",
    "tune",
]

#: The metrics tuned when none are named.
DEFAULT_METRICS = ("logme", "sfda", "gbc", "nleep")


def _score(features: Any, labels: Any, metric: str, options: Mapping[str, Any]) -> float:
    """One score (module level so tests can count the calls)."""
    import pedrank

    return float(pedrank.score(features, labels, metric, **options))


def _fingerprint(features: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in (features, labels):
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _reference_digest(reference: Any) -> str:
    """The content digest of a pool entry's PED reference (``none`` without one): reference features and a
    ``(mean, std)`` pair hash apart, so adding, changing or removing a ``{model}_reference`` file changes the key."""
    from pedrank._engine.validation import to_numpy

    if reference is None:
        return "none"
    digest = hashlib.blake2b(digest_size=16)
    parts = reference if isinstance(reference, (tuple, list)) else (reference,)
    digest.update(f"{type(reference).__name__}:{len(parts)}".encode())
    for part in parts:
        array = np.ascontiguousarray(to_numpy(part))
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class _PEDPlanner:
    """PED of one pool entry at many settings from one pass of class statistics (what :func:`pedrank.ped` does
    per call, with its class moments and rescaling computed once)."""

    def __init__(self, features: Any, labels: Any, reference: Any, backend: str):
        from pedrank._engine.kernels import select_kernels
        from pedrank._engine.validation import check_classification
        from pedrank.scores.ped import pooled_mean_std, rescaling_statistics

        self.checked, self.encoded, classes = check_classification(features, labels)
        self.kernels = select_kernels(self.checked, backend)
        counts, means, variances = (np.asarray(v, dtype=np.float64) if not hasattr(v, "cpu") else v.cpu().numpy()
                                    for v in self.kernels.class_moments(self.checked, self.encoded, classes.shape[0]))
        if reference is None:
            center, scale = pooled_mean_std(counts, means, variances)
        else:
            center, scale = rescaling_statistics(reference, self.checked, self.kernels)
        self.scale = scale
        self.means = (means - center) / scale
        self.radii = np.sqrt((variances / (scale * scale)).sum(axis=1))

    def displacement(self, setting: Setting) -> tuple[np.ndarray, int]:
        """The summed class displacement (C x D, rescaled units) and the steps taken."""
        from pedrank._engine.validation import to_numpy
        from pedrank.scores.ped import run_ped_loop

        options = dict(setting or ())
        kernels = self.kernels

        def forces(state):
            class_means, _ = state
            return kernels.ped_pair_forces(class_means, self.radii, options["radius"], options["elastic"],
                                           options["time_step"])

        def advance(state, step):
            class_means, total = state
            step = to_numpy(step, np.float64)
            return class_means + step, total + step

        result = run_ped_loop(forces, advance, (self.means, np.zeros_like(self.means)),
                              exit_ratio=options["exit_ratio"], max_steps=options["max_steps"])
        return result.features[1], int(result.steps)

    def moved(self, total: np.ndarray, steps: int) -> np.ndarray:
        """The moved features, float64 (as :func:`pedrank.ped` returns them)."""
        if steps == 0:
            return np.array(self.checked, dtype=np.float64)
        out = np.empty(self.checked.shape, np.float64)
        return self.kernels.ped_apply(self.checked, self.encoded, total, self.scale, out)


class _DiskCache:
    """Scores on disk, one JSON file, keyed by the pool entry's content (features, labels and PED reference), the
    score and its options, the setting and pedrank's version."""

    def __init__(self, folder: PathLike | None):
        self.path = None if folder is None else Path(folder) / "tune_scores.json"
        self.values: dict[str, float] = {}
        self.dirty = False
        if self.path is not None and self.path.is_file():
            try:
                self.values = {k: float(v) if v is not None else math.nan
                               for k, v in json.loads(self.path.read_text()).items()}
            except (OSError, ValueError):
                self.values = {}

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def put(self, key: str, value: float) -> None:
        if self.path is not None:
            self.values[key] = value
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({k: (None if math.isnan(v) else v) for k, v in self.values.items()}))
        temporary.replace(self.path)
        self.dirty = False


def _metric_entry(metric: str) -> Any:
    """The registry entry of a metric name (forms such as ``logme:exact`` included)."""
    from pedrank.scores import registry as _registry

    if not isinstance(metric, str):
        raise PedrankValueError(f"metrics: expected names such as 'logme', found {metric!r}")
    resolve = getattr(_registry, "resolve_metric", None)
    if resolve is not None:
        try:
            return resolve(metric)[0]
        except PedrankValueError as exc:
            raise PedrankValueError(f"metrics: {metric!r} is not known ({exc})") from exc
    entries = _registry.scores()
    if metric not in entries:
        raise PedrankValueError(f"metrics: {metric!r} is not known; expected some of {list(entries)}")
    return entries[metric]


def tune(
    datasets: Any,
    truth: Any,
    *,
    metrics: Sequence[str] | str | None = None,
    grid: Any = None,
    off: bool = True,
    backend: str = "auto",
    cache: PathLike | None = None,
    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | None = None,
) -> TuneResult:
    """Choose PED's options per score on benchmark datasets, with leave-one-dataset-out numbers.

    Parameters
    ----------
    datasets : mapping of str to pool, or path(s)
        ``{dataset: pool}``, each pool as :func:`pedrank.rank` takes it (``{model: features | (features, labels) |
        path | FeatureSource}``), or paths read by :func:`find_datasets`. At least two datasets.
    truth : mapping or path(s)
        ``{dataset: {model: accuracy}}`` or ``{dataset: CSV}``, or CSV path(s) in the layouts of
        :func:`pedrank.workflow.evaluate.read_truth` (one column per dataset; :func:`read_truths` gives the rule).
        Every model of a pool needs a value; each dataset's accuracies are fractions or percentages, one scale
        (:func:`pedrank.workflow.evaluate.check_accuracies`), and no file column serves two datasets.
    metrics : sequence of str, "all" or None
        Scores to tune; None: logme, sfda, gbc, nleep; "all": every feature score.
    grid : mapping or sequence, optional
        A mapping ``{option: values}`` (the product of the values; options: radius, elastic, time_step,
        exit_ratio, max_steps, the others at PED's defaults) or a list of settings (dicts of options; False for PED
        off). Default :data:`DEFAULT_GRID` (18 settings).
    off : bool, default True
        Add "PED off" to the candidates (first, so it wins ties).
    backend : {"auto", "numpy", "torch"}
    cache : folder, optional
        Keep the scores on disk (``tune_scores.json``) and reuse them in later runs; a score is reused only for the
        same features, labels and PED reference (``{model}_reference`` file), score options, backend, setting and
        pedrank version.
    metric_options : mapping, optional
        ``{metric: {option: value}}`` passed to the score.
    progress : bool or None
        A progress bar over the pool entries.

    Returns
    -------
    TuneResult
    """
    import pedrank
    from pedrank._engine.progress import progress as _progress
    from pedrank.scores.scoring import FEATURE_METRICS
    from pedrank.workflow.entry import describe_entry, resolve_entry

    started = time.perf_counter()
    if isinstance(datasets, (str, os.PathLike)) or (
        not isinstance(datasets, Mapping) and isinstance(datasets, Iterable)
    ):
        datasets = find_datasets(datasets)
    if not isinstance(datasets, Mapping):
        raise PedrankValueError(f"datasets: expected {{dataset: pool}} or paths, found {type(datasets).__name__}")
    names = [str(d) for d in datasets]
    if len(names) < 2:
        raise PedrankValueError(
            f"datasets: found {len(names)} ({names}); leave-one-dataset-out needs at least 2 datasets with ground truth"
        )
    if metrics is None:
        metrics = list(DEFAULT_METRICS)
    elif metrics == "all":  # every feature score that is computed per model (not the pool-normalised ones)
        metrics = [m for m in FEATURE_METRICS if getattr(_metric_entry(m), "pool", None) is None]
    elif isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(dict.fromkeys(metrics))
    for metric in metrics:
        entry = _metric_entry(metric)
        if entry.name not in FEATURE_METRICS:
            raise PedrankValueError(f"metrics: {metric} scores a source model's predictions; PED does not apply")
        if getattr(entry, "pool", None) is not None:
            raise PedrankValueError(
                f"metrics: {metric}'s number is normalised over the pool (the authors' pool step), which tune "
                "does not run; tune scores each model on its own"
            )
        warn_ped_on_held_out(entry)
    metric_options = {m: dict((metric_options or {}).get(m, {})) for m in metrics}
    unknown = sorted(set(metric_options) - set(metrics))
    if unknown:
        raise PedrankValueError(f"metric_options: for metric(s) {unknown} that are not tuned ({metrics})")
    candidates = grid_settings(grid)
    if off and None not in candidates:
        candidates = [None, *candidates]
    elif None in candidates:  # PED off first, so it wins ties
        candidates = [None, *(s for s in candidates if s is not None)]
    default = setting_key({})
    needed = list(dict.fromkeys([*candidates, default, None]))

    from pedrank.workflow.evaluate import check_not_constant

    truths = read_truths(truth, names)
    pools: dict[str, dict[str, Any]] = {}
    for dataset in names:
        pool = datasets[dataset]
        if not isinstance(pool, Mapping) or len(pool) < 2:
            raise PedrankValueError(f"dataset {dataset!r}: expected a pool of at least 2 models, found {pool!r:.80}")
        missing = [str(m) for m in pool if str(m) not in truths[dataset] or not math.isfinite(truths[dataset][str(m)])]
        if missing:
            raise PedrankValueError(
                f"truth: dataset {dataset!r} has no accuracy for model(s) {missing}; models with one: "
                f"{sorted(truths[dataset])}"
            )
        # the same accuracy for every model ties every ranking: its taus would be NaN, the dataset silently out
        check_not_constant({str(m): truths[dataset][str(m)] for m in pool}, f"truth[{dataset!r}]")
        pools[dataset] = dict(pool)

    disk = _DiskCache(cache)
    version = getattr(pedrank, "__version__", "")
    scores: dict[tuple[str, str, str, Setting], float] = {}
    seconds = {"loading": 0.0, "ped": 0.0, "scoring": 0.0}
    calls = cached = shared = 0
    entries = [(d, m) for d in names for m in pools[d]]
    try:
        for dataset, model in _progress(entries, total=len(entries), desc="tune", enabled=progress):
            entry = pools[dataset][model]
            try:
                start = time.perf_counter()
                features, labels, reference = resolve_entry(str(model), entry, None)
                features = np.asarray(features) if not hasattr(features, "device") else features
                labels = np.asarray(labels)
                fingerprint = ""
                if disk.path is not None:  # the reference too: PED's scores depend on it
                    fingerprint = _fingerprint(np.asarray(features), labels) + "+ref:" + _reference_digest(reference)
                seconds["loading"] += time.perf_counter() - start
                planner = None
                by_motion: dict[tuple[str, str], float] = {}
                for setting in needed:
                    moved = None
                    motion = "off"
                    if setting is not None:
                        start = time.perf_counter()
                        if planner is None:
                            planner = _PEDPlanner(features, labels, reference, backend)
                        total, steps = planner.displacement(setting)
                        # No step: the float64 copy PED returns, the same features as "off" for float64 input.
                        unmoved = "off" if np.asarray(features).dtype == np.float64 else "unmoved"
                        motion = unmoved if steps == 0 else hashlib.blake2b(
                            np.ascontiguousarray(total).tobytes(), digest_size=16).hexdigest()
                        seconds["ped"] += time.perf_counter() - start
                    for metric in metrics:
                        if (metric, motion) in by_motion:
                            scores[dataset, str(model), metric, setting] = by_motion[metric, motion]
                            shared += 1
                            continue
                        key = "|".join([version, fingerprint, metric, json.dumps(metric_options[metric],
                                        sort_keys=True, default=str), backend,
                                        "off" if setting is None else json.dumps(setting)])
                        value = disk.get(key) if disk.path is not None else None
                        if value is None:
                            if setting is not None and moved is None:
                                start = time.perf_counter()
                                moved = planner.moved(total, steps)  # type: ignore[union-attr]
                                seconds["ped"] += time.perf_counter() - start
                            start = time.perf_counter()
                            value = _score(features if setting is None else moved, labels, metric,
                                           {"backend": backend, **metric_options[metric]}
                                           if backend != "auto" else metric_options[metric])
                            seconds["scoring"] += time.perf_counter() - start
                            calls += 1
                            disk.put(key, value)
                        else:
                            cached += 1
                        by_motion[metric, motion] = value
                        scores[dataset, str(model), metric, setting] = value
                disk.save()  # after each pool entry: an interrupted run keeps what it computed
            except ValueError as exc:
                from pedrank._engine.validation import with_context

                raise with_context(exc, f"dataset {dataset!r}, " + describe_entry(str(model), entry, exc)) from exc
    finally:
        disk.save()

    taus: dict[tuple[str, str, Setting], float] = {}
    for metric in metrics:
        for dataset in names:
            models = [str(m) for m in pools[dataset]]
            accuracy = [truths[dataset][m] for m in models]
            for setting in needed:
                taus[metric, dataset, setting] = weighted_tau([scores[dataset, m, metric, setting] for m in models],
                                                               accuracy)
    folds: dict[str, list[Fold]] = {}
    chosen: dict[str, Setting] = {}
    for metric in metrics:
        view = {(d, s): taus[metric, d, s] for d in names for s in candidates}
        folds[metric] = []
        for held_out in names:
            others = [d for d in names if d != held_out]
            setting, train_mean = choose({k: v for k, v in view.items() if k[0] != held_out}, others, candidates)
            folds[metric].append(Fold(held_out, setting, train_mean, taus[metric, held_out, setting]))
        chosen[metric] = choose(view, names, candidates)[0]
    seconds["total"] = time.perf_counter() - started
    return TuneResult(names, metrics, candidates, default, taus, folds, chosen, seconds, calls, cached, shared)
