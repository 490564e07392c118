"""Recompute the PED paper's weighted-tau table from your own features of the paper's models.

Features must be in the authors' layout, ``{model}_{dataset}_feature.npy`` with ``{model}_{dataset}_label.npy``,
using the paper's model and dataset names (``byol``, ``moco-v1``, ..., ``cifar10``, ``dtd``, ...; see
:func:`pedrank.workflow.paper.models` and :func:`pedrank.workflow.paper.datasets`). A ``{model}_reference.npy``
(or ``.npz`` with ``mean``/``std``) beside them gives PED its rescaling statistics, as the authors' ImageNet
statistics did; without one PED uses the target features' own statistics.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from pedrank._engine.progress import progress as _progress
from pedrank._engine.validation import PedrankValueError
from pedrank.workflow import paper

__all__ = ["ReproduceResult", "reproduce", "DISPLAY_NAMES"]

PathLike = Union[str, "os.PathLike[str]"]

#: How the paper's table names each metric.
DISPLAY_NAMES = {
    "logme": "LogME",
    "sfda": "SFDA",
    "gbc": "GBC",
    "nleep": "NLEEP",
    "parc": "PARC",
}


def _display(metric: str) -> str:
    return DISPLAY_NAMES.get(metric, metric)


@dataclass
class ReproduceResult:
    """The recomputed table.

    Attributes
    ----------
    datasets : list of str
        The paper's datasets whose features were found, in the paper's order.
    methods : list of str
        Row names, e.g. ``["LogME", "LogME+PED", "SFDA", ...]``.
    models : dict of str to list of str
        The paper models found for each dataset.
    weighted_tau : dict of (method, dataset) to float
        Our weighted tau on the models found (NaN with fewer than 2 models).
    scores : dict of (method, dataset) to dict of str to float
        Every model's score.
    ped_steps : dict of (model, dataset) to int
    ignored : list of str
        Feature files that are not of a paper (model, dataset) pair.
    """

    datasets: list
    methods: list
    models: dict
    weighted_tau: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    ped_steps: dict = field(default_factory=dict)
    ignored: list = field(default_factory=list)

    def paper_value(self, method: str, dataset: str, variant: str = "default_k") -> float:
        """The paper's reported weighted tau for this cell (NaN when the paper has none)."""
        try:
            return paper.reported_weighted_tau(method, dataset, variant=variant)
        except ValueError:
            return math.nan

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per cell: method, dataset, n_models, weighted_tau, paper_default_k, paper_grid_k."""
        records = []
        for method in self.methods:
            for dataset in self.datasets:
                row = {
                    "method": method,
                    "dataset": dataset,
                    "n_models": len(self.models[dataset]),
                    "weighted_tau": self.weighted_tau[(method, dataset)],
                    "paper_default_k": self.paper_value(method, dataset, "default_k"),
                    "paper_grid_k": self.paper_value(method, dataset, "grid_k"),
                }
                records.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
        return records

    def to_string(self) -> str:
        def number(value: float) -> str:
            return "n/a" if math.isnan(value) else f"{value:.3f}"

        header = ["method", *self.datasets]
        counts = ["models", *(f"{len(self.models[d])}/{len(paper.models())}" for d in self.datasets)]
        rows = [
            [
                method,
                *(
                    f"{number(self.weighted_tau[(method, d)])} ({number(self.paper_value(method, d))})"
                    for d in self.datasets
                ),
            ]
            for method in self.methods
        ]
        # The paper's grid_k rows: k chosen per dataset on the truth it is judged on (in-sample), shown beside
        # the default_k numbers above; pedrank.tune gives the out-of-sample counterpart.
        in_sample = [
            [f"{method} grid_k", *(f"({number(self.paper_value(method, d, 'grid_k'))})"
                                                        for d in self.datasets)]
            for method in self.methods
            if method.endswith("+PED") and any(not math.isnan(self.paper_value(method, d, "grid_k"))
                                               for d in self.datasets)
        ]
        widths = [max(len(row[i]) for row in [header, counts, *rows, *in_sample]) for i in range(len(header))]

        def line(cells):
            return "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths))
            ).rstrip()

        lines = [
            "Weighted Kendall tau against fine-tuned accuracy; each cell: ours (paper, k=1.0)",
            line(header),
            line(counts),
            *(line(row) for row in rows),
        ]
        if in_sample:
            lines += ["", "The paper's grid_k rows beside them: k chosen per dataset on the truth it is judged on "
                          "(in-sample; pedrank.tune gives out-of-sample numbers)", *(line(row) for row in in_sample)]
        if any(len(self.models[d]) < len(paper.models()) for d in self.datasets):
            lines.append(
                "note: the paper's values rank all 12 models; cells computed on fewer models are not comparable"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()


def reproduce(
    feature_dir: PathLike,
    *,
    metrics: Iterable[str] = ("logme", "sfda", "gbc"),
    ped: Mapping[str, Any] | bool = True,
    datasets: Iterable[str] | None = None,
    progress: bool | None = None,
) -> ReproduceResult:
    """Score every paper (model, dataset) pair found in ``feature_dir`` and compute the weighted-tau table.

    Parameters
    ----------
    feature_dir : path
        A directory in the authors' layout.
    metrics : iterable of str, default ("logme", "sfda", "gbc")
        Metrics of :data:`pedrank.METRICS`; each is computed without and with PED.
    ped : bool or dict, default True
        PED options (``radius``, ``elastic``, ``time_step``, ``exit_ratio``, ``max_steps``); False skips the
        PED rows. PED runs once per (model, dataset) and its moved features are scored by every metric.
    datasets : iterable of str, optional
        Restrict to these datasets.
    progress : bool or None
        Progress bar over the (model, dataset) pairs.

    Raises
    ------
    ValueError
        An unknown metric, a bad feature file (naming it), or no paper pair in the directory.
    """
    import pedrank
    from pedrank.scores.scoring import ped_options as parse_ped_options
    from pedrank.workflow.evaluate import evaluate
    from pedrank.workflow.io import FeatureFileError, find_authors_layout

    metrics = list(metrics)
    unknown = [m for m in metrics if m not in pedrank.METRICS]
    if unknown or not metrics:
        raise PedrankValueError(f"metrics: unknown {unknown or 'none given'}; expected some of {list(pedrank.METRICS)}")
    ped_options = parse_ped_options(ped)
    wanted = None if datasets is None else set(datasets)

    paper_models, paper_datasets = paper.models(), paper.datasets()
    found = find_authors_layout(feature_dir)
    pairs = {}
    ignored = []
    for (model, dataset), source in found.items():
        if model not in paper_models or dataset not in paper_datasets:
            ignored.append(source.path.name)
        elif wanted is None or dataset in wanted:
            pairs[(model, dataset)] = source
    if not pairs:
        raise FeatureFileError(
            feature_dir,
            "no features of the paper's (model, dataset) pairs (expected names like byol_cifar10_feature.npy; "
            f"models {list(paper_models)}, datasets {list(paper_datasets)})",
        )

    present = [d for d in paper_datasets if any(d == ds for _, ds in pairs)]
    models = {d: [m for m in paper_models if (m, d) in pairs] for d in present}
    methods = []
    for metric in metrics:
        methods.append(_display(metric))
        if ped_options is not None:
            methods.append(_display(metric) + "+PED")

    scores: dict[tuple[str, str], dict[str, float]] = {(m, d): {} for m in methods for d in present}
    ped_steps: dict[tuple[str, str], int] = {}
    ordered_pairs = [(m, d) for d in present for m in models[d]]
    for model, dataset in _progress(ordered_pairs, desc="reproduce", enabled=progress):
        source = pairs[(model, dataset)]
        features, labels = source.load()
        try:
            for metric in metrics:
                scores[(_display(metric), dataset)][model] = float(pedrank.score(features, labels, metric))
            if ped_options is not None:
                options = dict(ped_options)
                reference = source.load_reference()
                if reference is not None:
                    options["reference"] = reference
                moved = pedrank.ped(features, labels, **options)
                ped_steps[(model, dataset)] = int(moved.steps)
                for metric in metrics:
                    value = pedrank.score(moved.features, labels, metric)
                    scores[(_display(metric) + "+PED", dataset)][model] = float(value)
        except ValueError as exc:
            raise FeatureFileError(source.path, str(exc)) from exc

    weighted_tau = {}
    for (method, dataset), by_model in scores.items():
        truth = paper.ground_truth(dataset)
        if len(by_model) < 2 or not all(math.isfinite(v) for v in by_model.values()):
            weighted_tau[(method, dataset)] = math.nan
        else:
            weighted_tau[(method, dataset)] = evaluate(by_model, truth).weighted_tau
    return ReproduceResult(present, methods, models, weighted_tau, scores, ped_steps, sorted(ignored))
