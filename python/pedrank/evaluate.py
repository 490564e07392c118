"""Judge a ranking: how well do a pool's scores order the models by their real (fine-tuned) accuracy?"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Agreement between a pool's scores and its models' accuracies.

    Attributes
    ----------
    weighted_tau : float
        ``scipy.stats.weightedtau(scores, accuracies)`` with scipy's defaults (hyperbolic weights, ranks from
        both orders averaged): the number the transferability papers report. In [-1, 1].
    kendall_tau : float
        ``scipy.stats.kendalltau`` (tau-b).
    pearson : float
        Pearson correlation of the raw values (NaN when either side is constant).
    top_k_relative_accuracy : dict of int to float
        For each k: the best accuracy among the k best-scored models divided by the best accuracy of the pool
        (1.0 means the best model is among the top k).
    models : tuple of str
        The models evaluated, best score first.
    """

    weighted_tau: float
    kendall_tau: float
    pearson: float
    top_k_relative_accuracy: dict = field(default_factory=dict)
    models: tuple = ()

    @property
    def n_models(self) -> int:
        return len(self.models)

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: ``weighted_tau``, ``kendall_tau``, ``pearson``, ``top{k}_relative_accuracy`` for each
        k, and ``n_models``. NaN becomes None (JSON has no NaN)."""
        out: dict[str, Any] = {
            "weighted_tau": self.weighted_tau,
            "kendall_tau": self.kendall_tau,
            "pearson": self.pearson,
        }
        for k, value in self.top_k_relative_accuracy.items():
            out[f"top{k}_relative_accuracy"] = value
        out = {key: (None if isinstance(v, float) and math.isnan(v) else v) for key, v in out.items()}
        out["n_models"] = self.n_models
        return out

    def to_string(self) -> str:
        rows = [(key, "nan" if value is None else f"{value:.4f}") for key, value in self.to_dict().items()
                if key != "n_models"]
        width = max(len(key) for key, _ in rows)
        lines = [f"{self.n_models} models"]
        lines += [f"{key.ljust(width)}  {value}" for key, value in rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()


def _as_score_mapping(scores: Any) -> dict[str, float]:
    if hasattr(scores, "scores") and not isinstance(scores, Mapping):  # a RankTable
        scores = scores.scores
    if isinstance(scores, Mapping) or hasattr(scores, "items"):
        return {str(k): float(v) for k, v in scores.items()}
    if isinstance(scores, Iterable):
        out = {}
        for record in scores:
            if isinstance(record, Mapping):
                out[str(record["model"])] = float(record["score"])
            else:
                out[str(record.model)] = float(record.score)
        return out
    raise ValueError(f"scores must map model names to scores, found {type(scores).__name__}")


def evaluate(
    scores: Any,
    accuracies: Mapping[str, float],
    *,
    top_k: Iterable[int] = (1, 3),
) -> Evaluation:
    """Compare a pool's transferability scores with its models' accuracies.

    Parameters
    ----------
    scores : mapping of str to float, RankTable, or iterable of records
        Each model's score (higher = predicted better).
    accuracies : mapping of str to float
        Ground truth, e.g. fine-tuned accuracy. May hold more models than ``scores``: the pool evaluated is
        the scored models.
    top_k : iterable of int, default (1, 3)
        The k of the top-k relative accuracies (k larger than the pool counts the whole pool).

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        A scored model has no accuracy (the message lists them and the models that do), a score or accuracy is
        not finite, fewer than 2 models, or a k below 1.
    """
    from scipy import stats

    score_map = _as_score_mapping(scores)
    truth = {str(k): float(v) for k, v in accuracies.items() if v is not None and not math.isnan(float(v))}
    missing = [model for model in score_map if model not in truth]
    if missing:
        raise ValueError(
            f"accuracies has no value for {len(missing)} scored model(s): {missing}; "
            f"models with an accuracy: {sorted(truth)}"
        )
    bad = [model for model, value in score_map.items() if not math.isfinite(value)]
    if bad:
        raise ValueError(f"scores are not finite for model(s) {bad}; expected finite numbers")
    if len(score_map) < 2:
        raise ValueError(f"scores holds {len(score_map)} model(s); ranking needs at least 2")
    ks = [int(k) for k in top_k]
    if any(k < 1 for k in ks):
        raise ValueError(f"top_k must hold integers >= 1, found {list(top_k)}")

    models = list(score_map)
    x = np.array([score_map[m] for m in models], dtype=float)
    y = np.array([truth[m] for m in models], dtype=float)

    weighted_tau = float(stats.weightedtau(x, y).statistic)
    kendall_tau = float(stats.kendalltau(x, y).statistic)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        pearson = math.nan
    else:
        pearson = float(stats.pearsonr(x, y).statistic)

    # Stable sort: ties in score keep the caller's order.
    order = np.argsort(-x, kind="stable")
    best = float(y.max())
    top = {k: float(y[order[: min(k, len(models))]].max() / best) if best != 0 else math.nan for k in ks}
    return Evaluation(weighted_tau, kendall_tau, pearson, top, tuple(models[i] for i in order))
