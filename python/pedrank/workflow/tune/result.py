"""What :func:`pedrank.workflow.tune.tune` finds: the weighted taus of every setting, the leave-one-dataset-out
folds (:func:`choose` on the other datasets), the setting chosen on all of them and the recommendation
(:class:`TuneResult`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pedrank.workflow.io.config import write_ped_config
from pedrank.workflow.io.scores import write_json
from pedrank.workflow.tune.settings import CONFIG_FORMAT, PathLike, Setting, setting_label, setting_options

__all__ = ["Fold", "TuneResult", "choose", "weighted_tau"]


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
        return write_ped_config(path, self.config())

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
        return write_json(self.to_dict(), path, indent=1)

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


def choose(taus: Mapping[tuple[str, Setting], float], datasets: Sequence[str],
           settings: Sequence[Setting]) -> tuple[Setting, float]:
    """The setting with the highest mean weighted tau over ``datasets``; the earlier candidate wins a tie (PED
    off comes first). Only the taus of ``datasets`` are read.

    Parameters
    ----------
    taus : mapping
        ``{(dataset, setting): weighted tau}`` (NaN counts as 0).
    datasets : sequence of str
        The datasets the choice may look at.
    settings : sequence
        The candidates, in order.

    Returns
    -------
    tuple
        ``(setting, its mean weighted tau over datasets)``.
    """
    best, best_mean = None, -math.inf
    first = True
    for setting in settings:
        mean = _mean(_for_choice(taus[d, setting]) for d in datasets)
        if first or mean > best_mean + 1e-12:
            best, best_mean, first = setting, mean, False
    return best, best_mean


def weighted_tau(scores: Sequence[float], truth: Sequence[float]) -> float:
    """Weighted Kendall tau (SciPy's ``weightedtau``) between a pool's scores and its ground truth.

    Parameters
    ----------
    scores : sequence of float (M,)
        One score per model.
    truth : sequence of float (M,)
        The models' fine-tuned accuracies.

    Returns
    -------
    float
        NaN when a score is not finite.
    """
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    if not np.isfinite(x).all():
        return math.nan
    return float(stats.weightedtau(x, np.asarray(truth, dtype=float)).statistic)
