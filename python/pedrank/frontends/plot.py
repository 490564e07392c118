"""Pictures of a PED run and of a ranking (matplotlib, drawn off-screen with the Agg backend).

matplotlib is a dependency of pedrank (``pedrank demo`` draws plots); it is imported only when a plot is
drawn, so ``import pedrank`` stays fast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import MissingDependencyError, check_labels, to_numpy

__all__ = ["finetune_taus", "plot_finetune", "plot_ped", "plot_ranking", "plot_scores"]

PathLike = Union[str, "os.PathLike[str]"]


def _save(fig: Any, path: Any, title: str | None) -> None:
    """Title (when given), tight layout, then the PNG at ``path`` (100 dpi): every figure of this module ends so."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(Path(path), format="png", dpi=100)


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError("plotting needs matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_ped(
    features: Any,
    labels: Any,
    path: PathLike,
    *,
    reference: Any = None,
    result: Any = None,
    title: str | None = None,
    **ped_options: Any,
):
    """Draw a PED run: class means in 2-D before and after, with arrows, and the energy per step.

    The class means before and after PED are projected on the two leading principal components of the
    class means before PED (so both panels share one frame).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features)
    labels : array_like of shape (n_samples,)
    path : path
        Where the PNG goes.
    reference : optional
        PED's reference statistics (see :func:`pedrank.ped`).
    result : PEDResult, optional
        A PED run already made on these features; otherwise PED is run here with ``ped_options``.
    title : str, optional
    **ped_options
        Options of :func:`pedrank.ped` (radius, elastic, ...).

    Returns
    -------
    PEDResult
        The run drawn.
    """
    import pedrank

    if result is None:
        result = pedrank.ped(features, labels, reference=reference, **ped_options)
    before = to_numpy(features, np.float64)
    after = to_numpy(result.features, np.float64)
    encoded, classes = check_labels(labels, before.shape[0])
    kernels = select_kernels(before)
    _, means_before = kernels.class_means(before, encoded, classes.shape[0])
    _, means_after = kernels.class_means(after, encoded, classes.shape[0])

    centre = means_before.mean(axis=0)
    _, _, vt = np.linalg.svd(means_before - centre, full_matrices=False)
    axes_2d = vt[:2].T if vt.shape[0] >= 2 else np.pad(vt.T, ((0, 0), (0, 2 - vt.shape[0])))
    p_before = (means_before - centre) @ axes_2d
    p_after = (means_after - centre) @ axes_2d

    plt = _pyplot()
    fig, (ax_means, ax_energy) = plt.subplots(1, 2, figsize=(11, 4.8))
    try:
        colours = plt.cm.tab10(np.arange(classes.shape[0]) % 10)
        ax_means.scatter(p_before[:, 0], p_before[:, 1], facecolors="none", edgecolors=colours, s=60,
                         label="class mean before PED")
        ax_means.scatter(p_after[:, 0], p_after[:, 1], c=colours, s=60, label="class mean after PED")
        for start, end in zip(p_before, p_after):
            if np.linalg.norm(end - start) > 0:
                ax_means.annotate("", xy=end, xytext=start,
                                  arrowprops={"arrowstyle": "->", "color": "0.35", "lw": 1.0})
        if classes.shape[0] <= 20:
            for name, point in zip(classes, p_after):
                ax_means.annotate(str(name), point, textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax_means.set_xlabel("principal component 1 of the class means")
        ax_means.set_ylabel("principal component 2 of the class means")
        ax_means.set_title(f"class means, {result.steps} PED step(s)")
        ax_means.legend(loc="best", fontsize=8)

        energies = list(result.energies)
        ax_energy.plot(range(len(energies)), energies, marker="o")
        ax_energy.set_xlabel("PED step (0 = before PED)")
        ax_energy.set_ylabel("potential energy")
        ax_energy.set_title("potential energy per step")
        if energies:
            ax_energy.set_xticks(range(len(energies)))
        _save(fig, path, title)
    finally:
        plt.close(fig)
    return result


def plot_scores(
    scores: Any,
    accuracies: Mapping[str, float],
    path: PathLike,
    *,
    score_label: str = "transferability score",
    accuracy_label: str = "accuracy",
    title: str | None = None,
):
    """Scatter each model's score against its accuracy, labelled by model, with the weighted tau in the title.

    Parameters
    ----------
    scores : mapping of str to float, RankTable, or records
    accuracies : mapping of str to float
    path : path
        Where the PNG goes.

    Returns
    -------
    Evaluation
        The ranking metrics shown.
    """
    from pedrank.workflow.evaluate import as_score_mapping, evaluate

    evaluation = evaluate(scores, accuracies)
    score_map = as_score_mapping(scores)
    models = list(score_map)
    x = np.array([score_map[m] for m in models])
    y = np.array([accuracies[m] for m in models], dtype=float)

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    try:
        ax.scatter(x, y)
        for name, xi, yi in zip(models, x, y):
            ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=8)
        ax.set_xlabel(score_label)
        ax.set_ylabel(accuracy_label)
        tau = evaluation.weighted_tau
        summary = f"weighted tau {tau:.3f}" if not math.isnan(tau) else "weighted tau n/a"
        ax.set_title(f"{title}: {summary}" if title else summary)
        _save(fig, path, None)
    finally:
        plt.close(fig)
    return evaluation


def plot_ranking(ranking: Any, path: PathLike, *, title: str | None = None) -> dict[str, Any]:
    """Draw a ranking best first, each score with its bootstrap interval; with several metrics, their taus too.

    One panel per metric: a row per model (best at the top), the measured score as a dot, the 5th-95th
    percentile of its bootstrap scores as a bar and P(best) written beside it (``rank(..., confidence=B)``;
    without a bootstrap only the dots). Metrics are on their own scales, so each has its own panel. With several
    metrics a last panel shows the Kendall tau between their rankings.

    Parameters
    ----------
    ranking : RankTable, Agreement or path
        What :func:`pedrank.rank` returned, or the JSON / CSV that ``pedrank rank`` wrote
        (:func:`pedrank.workflow.confidence.read_ranking`).
    path : path
        Where the PNG goes.
    title : str, optional
        Default: the dataset's name, when known.

    Returns
    -------
    dict
        What was drawn: ``tables`` ``{metric: RankTable}``, ``models`` (every model, consensus or table order)
        and ``kendall_tau`` (ndarray of shape (n_metrics, n_metrics), or None for one metric).
    """
    from pedrank.workflow.confidence import Agreement, read_ranking

    if isinstance(ranking, (str, os.PathLike)):
        ranking = read_ranking(ranking)
    if isinstance(ranking, Agreement):
        tables = dict(ranking.tables)
        models, tau = ranking.models, ranking.kendall_tau
        dataset = ranking.dataset
    else:
        tables = {ranking.metric or "score": ranking}
        models, tau, dataset = list(ranking.models), None, ranking.dataset
    title = title if title is not None else dataset

    plt = _pyplot()
    n_panels = len(tables) + (tau is not None)
    columns = min(n_panels, 3)  # wider rows would shrink each panel's model names and scores
    rows = math.ceil(n_panels / columns)
    height = max(1.6 + 0.38 * max(len(t) for t in tables.values()), 3.4)
    fig, axes = plt.subplots(rows, columns, figsize=(5.4 * columns, height * rows), squeeze=False)
    panels = list(axes.ravel())
    try:
        for ax, (metric, table) in zip(panels, tables.items()):
            _ranking_panel(ax, metric, table)
        for ax in panels[n_panels:]:
            ax.set_visible(False)
        if tau is not None:
            ax = panels[n_panels - 1]
            labels = list(tables)
            shown = np.ma.masked_invalid(tau)
            image = ax.imshow(shown, vmin=-1.0, vmax=1.0, cmap="RdBu")
            for i in range(len(labels)):
                for j in range(len(labels)):
                    finite = np.isfinite(tau[i, j])
                    text = f"{tau[i, j]:+.2f}" if finite else "n/a"
                    ax.text(j, i, text, ha="center", va="center", fontsize=8,
                            color="white" if finite and abs(tau[i, j]) > 0.6 else "black")
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
            ax.set_xlabel("metric")
            ax.set_ylabel("metric")
            ax.set_title("Kendall tau between rankings", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        _save(fig, path, title)
    finally:
        plt.close(fig)
    return {"tables": tables, "models": models, "kendall_tau": tau}


def _ranking_panel(ax: Any, metric: str, table: Any) -> None:
    """One metric's models, best at the top: the score, its bootstrap interval, and P(best)."""
    records = list(table)
    y = np.arange(len(records))[::-1]
    for row, record in zip(y, records):
        if math.isnan(record.score):
            ax.annotate("no score", (0.02, row), xycoords=("axes fraction", "data"), va="center", fontsize=8,
                        color="0.4")
            continue
        if record.score_low is not None and record.score_high is not None:
            ax.plot([record.score_low, record.score_high], [row, row], color="tab:blue", lw=2.5, alpha=0.45,
                    solid_capstyle="butt")
        ax.plot([record.score], [row], "o", color="tab:blue")
        if record.p_best:  # only the models that were ever best: zeros would bury the ones that matter
            ax.annotate(f"P(best) {record.p_best:.2f}", (record.score, row), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=7)
    ax.set_yticks(y, [r.model for r in records], fontsize=8)
    ax.set_ylim(-0.7, len(records) - 0.3)
    label = metric + (" after PED" if table.ped else "")
    ax.set_xlabel(f"{label} score" + (" (bar: 5th-95th percentile over the resamples)"
                                      if table.n_resamples is not None else ""), fontsize=8)
    ax.set_ylabel("model (best first)")
    heading = label
    if table.top1_stability is not None:
        heading += f": top-1 stable in {table.top1_stability:.0%} of {table.n_resamples} resamples"
    ax.set_title(heading, fontsize=9)
    ax.grid(axis="x", color="0.9")


def finetune_taus(curves: Mapping[str, Mapping[str, Mapping[int, float]]],
                  scores: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """Weighted tau of each score against the test accuracy after t fine-tuning iterations.

    Parameters
    ----------
    curves : mapping ``{dataset: {model: {iteration: test accuracy}}}``
        As :func:`pedrank.workflow.finetune.read_curves` returns (the chosen setting of each model).
    scores : mapping ``{dataset: {label: {model: score}}}``
        As :func:`pedrank.workflow.finetune.read_score_table` returns (labels ``metric`` / ``metric+PED``).

    Returns
    -------
    dict
        ``datasets`` (those in both, with at least 2 models scored and fine-tuned), ``x`` (the checkpoints:
        iterations when every dataset shares them, otherwise the fraction t / T of each run), ``x_label``,
        ``iterations`` (the x values, same as ``x``), ``weighted_tau`` ``{label: [mean over the datasets at
        each x]}`` and ``per_dataset`` ``{dataset: {label: [tau at each x]}}``. A tau that is undefined (ties)
        is NaN and left out of the mean.
    """
    from scipy import stats

    from pedrank._engine.validation import PedrankValueError

    datasets = [d for d in scores if d in curves]
    if not datasets:
        raise PedrankValueError(f"scores: found datasets {sorted(scores)}, curves {sorted(curves)}; expected at "
                                "least one dataset in both")
    points = {d: sorted(set.intersection(*[set(c) for c in curves[d].values()])) for d in datasets}
    shared = all(points[d] == points[datasets[0]] for d in datasets)
    n_points = min(len(points[d]) for d in datasets)
    if n_points == 0:
        raise PedrankValueError("curves: found no checkpoint shared by the models of a dataset; expected the "
                                "same checkpoints for every model of a dataset")
    labels = list(dict.fromkeys(label for d in datasets for label in scores[d]))
    per_dataset: dict[str, dict[str, list[float]]] = {}
    for d in datasets:
        # The last n_points checkpoints of each dataset (they end at the run's last iteration).
        chosen_points = points[d][-n_points:]
        per_dataset[d] = {}
        for label in labels:
            table = scores[d].get(label, {})
            models = [m for m in table if m in curves[d]]
            taus = []
            for t in chosen_points:
                if len(models) < 2:
                    taus.append(math.nan)
                    continue
                x = np.array([table[m] for m in models])
                y = np.array([curves[d][m][t] for m in models])
                taus.append(float(stats.weightedtau(x, y).statistic) if np.ptp(y) > 0 else math.nan)
            per_dataset[d][label] = taus
    if shared:
        x_values = [float(t) for t in points[datasets[0]]]
        x_label = "fine-tuning iterations t"
    else:
        x_values = [float(t) / points[datasets[0]][-1] for t in points[datasets[0]][-n_points:]]
        x_label = "fraction of the fine-tuning run, t / T"
    means = {}
    for label in labels:
        column = np.array([per_dataset[d][label] for d in datasets], dtype=float)
        with np.errstate(all="ignore"):
            counts = np.isfinite(column).sum(axis=0)
            sums = np.nansum(column, axis=0)
        means[label] = [float(s / c) if c else math.nan for s, c in zip(sums, counts)]
    return {"datasets": datasets, "x": x_values, "iterations": x_values, "x_label": x_label,
            "weighted_tau": means, "per_dataset": per_dataset}


def plot_finetune(
    curves: Mapping[str, Mapping[str, Mapping[int, float]]],
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    path: PathLike,
    *,
    scatter_metric: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Draw ranking quality along fine-tuning (the PED paper's supp. Fig. 3) and scores against fine-tuned accuracy.

    Left panel: for each score label (``metric`` solid, ``metric+PED`` dashed, same colour), the weighted tau
    between its scores and the test accuracy after t iterations, averaged over the datasets. Right panel: for
    ``scatter_metric``, every (dataset, model)'s score, standardised within the dataset (z-score over its
    models), against its final fine-tuned accuracy; hollow markers without PED, filled with PED, one colour per
    dataset.

    Parameters
    ----------
    curves : mapping ``{dataset: {model: {iteration: accuracy}}}``
    scores : mapping ``{dataset: {label: {model: score}}}``
    path : path
        Where the PNG goes.
    scatter_metric : str, optional
        The metric of the scatter (without "+PED"); default: the first label's.
    title : str, optional

    Returns
    -------
    dict
        :func:`finetune_taus`'s numbers, the ones drawn.
    """
    from pedrank._engine.validation import PedrankValueError

    taus = finetune_taus(curves, scores)
    labels = list(taus["weighted_tau"])
    metrics = list(dict.fromkeys(label.split("+PED")[0] for label in labels))
    metric = scatter_metric or metrics[0]
    if metric not in metrics:
        raise PedrankValueError(f"scatter_metric: found {metric!r}; expected one of {metrics}")

    plt = _pyplot()
    fig, (ax_tau, ax_scatter) = plt.subplots(1, 2, figsize=(12, 4.8))
    try:
        colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(metrics)}
        for label in labels:
            base = label.split("+PED")[0]
            ax_tau.plot(taus["x"], taus["weighted_tau"][label], marker="o", color=colours[base],
                        linestyle="--" if label.endswith("+PED") else "-", label=label)
        ax_tau.axhline(0.0, color="0.7", lw=0.8)
        ax_tau.set_xlabel(taus["x_label"])
        ax_tau.set_ylabel(f"weighted tau (mean over {len(taus['datasets'])} dataset(s))")
        ax_tau.set_title("ranking quality along fine-tuning")
        ax_tau.legend(fontsize=8, ncol=2)

        dataset_colours = {d: plt.cm.Set1(i % 9) for i, d in enumerate(taus["datasets"])}
        for d in taus["datasets"]:
            final = {m: c[max(c)] for m, c in curves[d].items() if c}
            for ped in (False, True):
                table = scores[d].get(f"{metric}+PED" if ped else metric, {})
                models = [m for m in table if m in final]
                if not models:
                    continue
                x = np.array([table[m] for m in models], dtype=float)
                spread = x.std()
                z = (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)
                y = np.array([final[m] for m in models])
                ax_scatter.scatter(z, y, s=40, label=f"{d}{' +PED' if ped else ''}",
                                   facecolors=dataset_colours[d] if ped else "none",
                                   edgecolors=dataset_colours[d])
        ax_scatter.set_xlabel(f"{metric} score, standardised within each dataset")
        ax_scatter.set_ylabel("fine-tuned test accuracy")
        ax_scatter.set_title(f"{metric} (hollow) and {metric}+PED (filled)")
        ax_scatter.legend(fontsize=7)
        _save(fig, path, title)
    finally:
        plt.close(fig)
    return taus
