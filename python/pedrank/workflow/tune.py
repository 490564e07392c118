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
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from pedrank._engine.validation import PedrankValueError

__all__ = [
    "DEFAULT_GRID",
    "PED_DEFAULTS",
    "TuneResult",
    "find_datasets",
    "read_ped_config",
    "tune",
]

PathLike = Union[str, "os.PathLike[str]"]

#: PED's defaults (:func:`pedrank.ped`): the "default setting" of the report.
PED_DEFAULTS: dict[str, Any] = {"radius": 0.6, "elastic": 1.0, "time_step": 0.1, "exit_ratio": 0.5, "max_steps": 6}
#: The options a grid may vary (PED's scalar options).
GRID_OPTIONS = tuple(PED_DEFAULTS)
#: The default grid: the supplementary's k values (Table 1) times the radius coefficients 0.3 and 0.6 the authors
#: use, and 1.0.
DEFAULT_GRID: dict[str, tuple] = {"elastic": (0.6, 0.8, 1.0, 1.2, 1.5, 2.0), "radius": (0.3, 0.6, 1.0)}
#: The metrics tuned when none are named.
DEFAULT_METRICS = ("logme", "sfda", "gbc", "nleep")
#: Marks the file :meth:`TuneResult.write_config` writes.
CONFIG_FORMAT = "pedrank-ped-config"

Setting = Union[None, tuple]  # None: PED off; else a tuple of (option, value) pairs in GRID_OPTIONS order


# ------------------------------------------------------------------------------------------------ settings


def _setting(options: Mapping[str, Any] | None) -> Setting:
    """The canonical key of a PED setting: every scalar option, defaults filled in; None for PED off."""
    if options is None:
        return None
    unknown = sorted(set(options) - set(GRID_OPTIONS))
    if unknown:
        raise PedrankValueError(f"grid: unknown PED option(s) {unknown}; expected some of {list(GRID_OPTIONS)}")
    merged = {**PED_DEFAULTS, **options}
    from pedrank.scores.ped import check_ped_options

    check_ped_options(**merged)
    return tuple((name, int(merged[name]) if name == "max_steps" else float(merged[name])) for name in GRID_OPTIONS)


def _grid_settings(grid: Any) -> list[Setting]:
    """A grid as a list of settings: a mapping of option -> values (their product) or a sequence of settings
    (dicts of options; False/None for PED off, True for the defaults)."""
    if grid is None:
        grid = DEFAULT_GRID
    settings: list[Setting] = []
    if isinstance(grid, Mapping):
        unknown = sorted(set(grid) - set(GRID_OPTIONS))
        if unknown:
            raise PedrankValueError(f"grid: unknown PED option(s) {unknown}; expected some of {list(GRID_OPTIONS)}")
        names = list(grid)
        values = []
        for name in names:
            candidates = grid[name]
            if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Iterable):
                candidates = [candidates]
            candidates = list(candidates)
            if not candidates:
                raise PedrankValueError(f"grid: no values for {name!r}")
            values.append(candidates)
        for combination in itertools.product(*values):
            settings.append(_setting(dict(zip(names, combination))))
    elif isinstance(grid, Iterable) and not isinstance(grid, (str, bytes)):
        for entry in grid:
            if entry is False or entry is None:
                settings.append(None)
            elif entry is True:
                settings.append(_setting({}))
            elif isinstance(entry, Mapping):
                settings.append(_setting(entry))
            else:
                raise PedrankValueError(f"grid: expected dicts of PED options, True or False, found {entry!r}")
    else:
        raise PedrankValueError(f"grid: expected a mapping of option -> values or a list of settings, found {grid!r}")
    unique: list[Setting] = []
    for setting in settings:
        if setting not in unique:
            unique.append(setting)
    if not unique:
        raise PedrankValueError("grid: no settings")
    return unique


def setting_label(setting: Setting) -> str:
    """``off``, ``default``, or the options that differ from PED's defaults (``radius=0.3 elastic=1.2``)."""
    if setting is None:
        return "off"
    changed = [f"{name}={value:g}" for name, value in setting if value != PED_DEFAULTS[name]]
    return " ".join(changed) if changed else "default"


def setting_options(setting: Setting) -> dict[str, Any] | bool:
    """The setting as ``ped=`` accepts it: False for PED off, else the dict of options."""
    return False if setting is None else dict(setting)


# ------------------------------------------------------------------------------------------------ inputs


def _zoo_name(path: Path) -> tuple[str, str] | None:
    if path.suffix != ".npz" or "__" not in path.stem:
        return None
    dataset, model = path.stem.split("__", 1)
    return (dataset, model) if dataset and model else None


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


def _read_truths(truth: Any, datasets: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{dataset: {model: accuracy}}`` from a mapping of per-dataset mappings or CSV paths, a CSV path or a list
    of them (each read with :func:`pedrank.workflow.evaluate.read_truth`; a CSV with one column per dataset
    serves all)."""
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


# ------------------------------------------------------------------------------------------------ scoring


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
    """Scores on disk, one JSON file, keyed by the pool entry's content, the score and its options, the setting
    and pedrank's version."""

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


# ------------------------------------------------------------------------------------------------ result


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values else math.nan


def _for_choice(tau: float) -> float:
    """A tau as the choice counts it: undefined (a score that ties every model) counts as 0, no information."""
    return 0.0 if math.isnan(tau) else tau


@dataclass
class Fold:
    """One leave-one-dataset-out fold of one score."""

    held_out: str
    setting: Setting
    train_mean_tau: float
    tau: float


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    datasets : list of str
    metrics : list of str
    settings : list
        The candidate settings (None: PED off; else a tuple of (option, value) pairs); see :func:`setting_label`.
    default : tuple
        PED's default setting (reported whether or not it is a candidate).
    taus : dict
        ``{(metric, dataset, setting): weighted tau}`` for every candidate, the default and PED off.
    folds : dict
        ``{metric: [Fold per held-out dataset]}``.
    chosen : dict
        ``{metric: setting}`` chosen on all datasets (in-sample: the best mean weighted tau over them).
    recommended : dict
        ``{metric: setting}`` written to the config: the chosen setting when it carries over, i.e. when the
        leave-one-out mean tau beats PED off's mean tau; else None (PED off).
    seconds : dict
        ``total``, ``loading``, ``ped`` (class statistics, steps and moved copies), ``scoring``.
    calls : int
        Scores computed (not read from a cache).
    """

    datasets: list
    metrics: list
    settings: list
    default: Setting
    taus: dict
    folds: dict
    chosen: dict
    seconds: dict = field(default_factory=dict)
    calls: int = 0
    cached: int = 0
    shared: int = 0

    def tau(self, metric: str, dataset: str, setting: Setting) -> float:
        return self.taus[metric, dataset, setting]

    def in_sample(self, metric: str, dataset: str, *, ped_only: bool = True) -> tuple[Setting, float]:
        """The best candidate on this dataset's own truth (Table 1 style: over the PED settings only unless
        ``ped_only=False``)."""
        candidates = [s for s in self.settings if s is not None or not ped_only] or list(self.settings)
        best = max(candidates, key=lambda s: _for_choice(self.taus[metric, dataset, s]))
        return best, self.taus[metric, dataset, best]

    def rows(self, metric: str) -> dict[str, dict[str, float]]:
        """``{column: {dataset: tau, ..., "mean": ...}}`` for the columns in-sample best, leave-one-out, chosen on
        all (in-sample), default, off."""
        columns: dict[str, dict[str, float]] = {}
        folds = {fold.held_out: fold for fold in self.folds[metric]}
        makers = {
            "in-sample best": lambda d: self.in_sample(metric, d)[1],
            "leave-one-out": lambda d: folds[d].tau,
            "chosen on all": lambda d: self.taus[metric, d, self.chosen[metric]],
            "default": lambda d: self.taus[metric, d, self.default],
            "off": lambda d: self.taus[metric, d, None],
        }
        for column, make in makers.items():
            values = {d: make(d) for d in self.datasets}
            values["mean"] = _mean(values.values())
            columns[column] = values
        return columns

    @property
    def recommended(self) -> dict[str, Setting]:
        """``{metric: setting}``: the setting chosen on all datasets when tuning carries over (its leave-one-out
        mean weighted tau beats PED off's), else None: leave PED off."""
        out: dict[str, Setting] = {}
        for metric in self.metrics:
            rows = self.rows(metric)
            carries = _for_choice(rows["leave-one-out"]["mean"]) > _for_choice(rows["off"]["mean"]) + 1e-12
            out[metric] = self.chosen[metric] if carries else None
        return out

    def config(self) -> dict[str, Any]:
        """The recommended settings as the config file holds them."""
        def cell(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "format": CONFIG_FORMAT,
            "metrics": {m: setting_options(s) for m, s in self.recommended.items()},
            "chosen_on": list(self.datasets),
            "criterion": "the setting with the highest mean weighted tau over the datasets (PED off wins ties), "
                         "kept only when its leave-one-dataset-out mean tau beats PED off's; else false",
            "chosen_in_sample": {m: setting_options(self.chosen[m]) for m in self.metrics},
            "mean_tau": {m: {c: cell(v["mean"]) for c, v in self.rows(m).items()} for m in self.metrics},
        }

    def write_config(self, path: PathLike) -> Path:
        """Write the chosen settings as JSON for ``rank(..., ped=FILE)`` / ``pedrank rank --ped-config FILE``."""
        path = Path(path)
        path.write_text(json.dumps(self.config(), indent=2) + "\n")
        return path

    def to_dict(self) -> dict[str, Any]:
        def cell(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "datasets": list(self.datasets),
            "settings": [setting_label(s) for s in self.settings],
            "metrics": {
                m: {
                    "chosen": setting_label(self.chosen[m]),
                    "recommended": setting_label(self.recommended[m]),
                    "columns": {c: {d: cell(v) for d, v in values.items()} for c, values in self.rows(m).items()},
                    "folds": [{"held_out": f.held_out, "setting": setting_label(f.setting),
                               "train_mean_tau": cell(f.train_mean_tau), "tau": cell(f.tau)} for f in self.folds[m]],
                    "in_sample_settings": {d: setting_label(self.in_sample(m, d)[0]) for d in self.datasets},
                    "taus": {setting_label(s): {d: cell(self.taus[m, d, s]) for d in self.datasets}
                             for s in self.settings},
                }
                for m in self.metrics
            },
            "seconds": dict(self.seconds),
            "calls": self.calls,
            "cached": self.cached,
            "shared": self.shared,
        }

    def to_json(self, path: PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_string(self) -> str:
        lines = [f"PED tuned on {len(self.datasets)} datasets ({', '.join(self.datasets)}), "
                 f"{len(self.settings)} settings; weighted tau per dataset and mean"]
        header = ["score", "column", *self.datasets, "mean"]
        table = [header]
        for metric in self.metrics:
            for column, values in self.rows(metric).items():
                table.append([metric, column, *(f"{values[d]:+.3f}" for d in [*self.datasets, "mean"])])
            table.append([metric, "LOO setting", *(setting_label(f.setting) for f in self.folds[metric]), ""])
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        for metric in self.metrics:
            lines.append(f"{metric}: chosen on all datasets {setting_label(self.chosen[metric])}; recommended "
                         f"(written by write_config) {setting_label(self.recommended[metric])}")
        if self.seconds:
            s = self.seconds
            lines.append(f"time: {s.get('total', 0):.1f}s (loading {s.get('loading', 0):.1f}s, PED "
                         f"{s.get('ped', 0):.1f}s, scoring {s.get('scoring', 0):.1f}s); {self.calls} scores "
                         f"computed, {self.shared} shared between settings, {self.cached} from the disk cache")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()


# ------------------------------------------------------------------------------------------------ tune


def _weighted_tau(scores: Sequence[float], truth: Sequence[float]) -> float:
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    if not np.isfinite(x).all():
        return math.nan
    return float(stats.weightedtau(x, np.asarray(truth, dtype=float)).statistic)


def choose(taus: Mapping[tuple[str, Setting], float], datasets: Sequence[str],
           settings: Sequence[Setting]) -> tuple[Setting, float]:
    """The setting with the highest mean weighted tau over ``datasets`` (``taus[(dataset, setting)]``); the
    earlier candidate wins a tie (PED off comes first). Only the taus of ``datasets`` are read."""
    best, best_mean = None, -math.inf
    first = True
    for setting in settings:
        mean = _mean(_for_choice(taus[d, setting]) for d in datasets)
        if first or mean > best_mean + 1e-12:
            best, best_mean, first = setting, mean, False
    return best, best_mean


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
        :func:`pedrank.workflow.evaluate.read_truth` (one column per dataset). Every model of a pool needs a value.
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
        Keep the scores on disk (``tune_scores.json``) and reuse them in later runs.
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
    metric_options = {m: dict((metric_options or {}).get(m, {})) for m in metrics}
    unknown = sorted(set(metric_options) - set(metrics))
    if unknown:
        raise PedrankValueError(f"metric_options: for metric(s) {unknown} that are not tuned ({metrics})")
    candidates = _grid_settings(grid)
    if off and None not in candidates:
        candidates = [None, *candidates]
    elif None in candidates:  # PED off first, so it wins ties
        candidates = [None, *(s for s in candidates if s is not None)]
    default = _setting({})
    needed = list(dict.fromkeys([*candidates, default, None]))

    truths = _read_truths(truth, names)
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
                fingerprint = _fingerprint(np.asarray(features), labels) if disk.path is not None else ""
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
                taus[metric, dataset, setting] = _weighted_tau([scores[dataset, m, metric, setting] for m in models],
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


# ------------------------------------------------------------------------------------------------ config


def read_ped_config(path: PathLike, metric: str) -> dict[str, Any] | bool:
    """The ``ped=`` value a config file gives ``metric``: False (PED off), True (defaults) or a dict of options.

    The file is JSON: either what :meth:`TuneResult.write_config` writes (``{"metrics": {metric: false | {...}}}``;
    a metric it does not list is an error) or a plain dict of PED options used for every metric.
    """
    from pedrank.scores.scoring import ped_options
    from pedrank.workflow.io import FeatureFileError

    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(path, "no such PED config file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FeatureFileError(path, f"not a JSON PED config ({exc})") from exc
    if isinstance(data, Mapping) and "metrics" in data:
        table = data["metrics"]
        if not isinstance(table, Mapping):
            raise FeatureFileError(path, "'metrics' must map score names to false or a dict of PED options")
        if metric not in table:
            raise FeatureFileError(path, f"no PED setting for metric {metric!r}; it has {sorted(table)}")
        value = table[metric]
    else:
        value = data
    if value is None:
        value = False
    try:
        ped_options(value)
    except PedrankValueError as exc:
        raise FeatureFileError(path, f"metric {metric!r}: {exc}") from exc
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(GRID_OPTIONS))
        if unknown:
            raise FeatureFileError(path, f"metric {metric!r}: unknown PED option(s) {unknown}; expected some of "
                                         f"{list(GRID_OPTIONS)}")
        return dict(value)
    return bool(value)
