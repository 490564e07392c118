"""Pictures of a PED run and of a ranking (matplotlib, drawn off-screen with the Agg backend).

matplotlib is optional: it is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from ._kernels import select_kernels
from ._validation import check_labels, to_numpy

__all__ = ["plot_ped", "plot_scores"]

PathLike = Union[str, "os.PathLike[str]"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib (pip install matplotlib)") from exc
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
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(Path(path), format="png", dpi=100)
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
    from .evaluate import _as_score_mapping, evaluate

    evaluation = evaluate(scores, accuracies)
    score_map = _as_score_mapping(scores)
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
        fig.tight_layout()
        fig.savefig(Path(path), format="png", dpi=100)
    finally:
        plt.close(fig)
    return evaluation
