"""Hierarchical bootstrap of the evidence: how sure is "score A ranks models better than score B"?

The mean weighted tau of a score over a benchmark moves with every choice behind it: which target datasets, which
models in each, which fine-tuning run gave each model's accuracy, which rows the score saw. A resample of the
scoring rows alone (evidence.csv's "+-") leaves out the first three, which decide. :func:`hierarchical_bootstrap`
resamples all four levels, nested, with the same draws for every variant (paired), so that

* each variant's mean weighted tau gets a percentile interval, and
* each pair gets P(A's mean > B's mean) over the draws.

One draw: the datasets with replacement; within each drawn dataset its models with replacement (at least two
distinct, or the draw of models is repeated); for each drawn model one of its fine-tuning seeds; for the dataset
one of its scoring-row resamples (the measured rows among them); then every variant's weighted tau between its
scores and the accuracies over the drawn models, averaged over the drawn datasets. A variant without a finite
score for a drawn model has no tau in that draw: it counts as a failure (``failures``), never as a tie.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from pedrank._engine.validation import PedrankValueError, check_int

__all__ = ["BootstrapResult", "hierarchical_bootstrap"]

#: Attempts at drawing two distinct models of a dataset before the dataset is left out of that draw.
_MODEL_DRAW_ATTEMPTS = 100


@dataclass
class BootstrapResult:
    """The bootstrap distribution of every variant's mean weighted tau.

    Attributes
    ----------
    variants : list of str
    measured : dict of str to float
        Mean weighted tau on all datasets, all models, the seed-mean accuracy and the measured scoring rows.
    draws : ndarray of shape (n_boot, n_variants)
        The mean weighted tau of each draw (nan where a variant failed in that draw).
    failures : dict of str to int
        Draws in which a variant had no finite score for a drawn model.
    """

    variants: list[str]
    measured: dict[str, float]
    draws: np.ndarray
    failures: dict[str, int] = field(default_factory=dict)

    def _column(self, variant: str) -> np.ndarray:
        if variant not in self.variants:
            raise PedrankValueError(f"variant: found {variant!r}; expected one of {self.variants}")
        return self.draws[:, self.variants.index(variant)]

    def interval(self, variant: str, level: float = 0.95) -> tuple[float, float]:
        """The percentile interval of ``variant``'s mean weighted tau (draws where it failed left out)."""
        column = self._column(variant)
        column = column[np.isfinite(column)]
        if column.size == 0:
            return (math.nan, math.nan)
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(column, [tail, 100 - tail])
        return float(low), float(high)

    def p_beats(self, a: str, b: str) -> float:
        """P(a's mean weighted tau > b's) over the paired draws; a draw where a failed counts against a, where
        only b failed for a; ties count half."""
        first, second = self._column(a), self._column(b)
        first = np.where(np.isfinite(first), first, -np.inf)
        second = np.where(np.isfinite(second), second, -np.inf)
        wins = (first > second).sum() + 0.5 * (first == second).sum()
        return float(wins / len(first))


def _lexicographic_weights(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Per row, the hyperbolic weight ``1 / (r + 1)`` of each element's rank r in the decreasing lexicographic
    order by (primary, secondary): SciPy's ``weightedtau`` ranks (``np.lexsort``, reversed; equal pairs keep the
    later element first)."""
    order = np.lexsort((secondary, primary), axis=-1)[..., ::-1]
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[-1]), axis=-1)
    return 1.0 / (rank + 1.0)


def _weighted_taus(scores: np.ndarray, accuracies: np.ndarray) -> np.ndarray:
    """SciPy's ``weightedtau(row, accuracies)`` (its defaults) of each row of ``scores`` (n_variants, n_models),
    finite, against ``accuracies`` (n_models,), in one pass; 0 where the row or the accuracies tie every model (they
    rank nothing: no information).

    SciPy's statistic (Vigna's weighted tau: additive hyperbolic weights ``w_ij = 1/(r_i + 1) + 1/(r_j + 1)``,
    tau-b's treatment of ties, the mean of the values with ranks by (scores, accuracies) and by (accuracies,
    scores)) as sums over every pair: ``sum w s_x s_y / sqrt(sum w |s_x| * sum w |s_y|)`` with ``s`` the pair's
    sign. O(n^2) per row where SciPy's is O(n log n), but without SciPy's ~0.1 ms of overhead a call, which the
    bootstrap's millions of calls on 2-48 models spent most of its time in. Equal to SciPy to rounding
    (tests/test_bootstrap_evidence.py).
    """
    n_variants, n_models = scores.shape
    tied = (np.ptp(scores, axis=1) == 0) | (np.ptp(accuracies) == 0)
    sign_x = np.sign(scores[:, :, None] - scores[:, None, :])  # (V, n, n)
    sign_y = np.sign(accuracies[:, None] - accuracies[None, :])  # (n, n)
    truth = np.broadcast_to(accuracies, scores.shape)
    taus = np.zeros(n_variants)
    for weights in (_lexicographic_weights(scores, truth), _lexicographic_weights(truth, scores)):
        pair = weights[:, :, None] + weights[:, None, :]
        numerator = np.einsum("vij,vij,ij->v", pair, sign_x, sign_y)
        untied_x = np.einsum("vij,vij->v", pair, np.abs(sign_x))
        untied_y = np.einsum("vij,ij->v", pair, np.abs(sign_y))
        with np.errstate(invalid="ignore", divide="ignore"):
            taus += numerator / np.sqrt(untied_x) / np.sqrt(untied_y)
    taus /= 2
    taus[tied] = 0.0
    return taus


def hierarchical_bootstrap(scores: Iterable[Mapping[str, Any]], accuracies: Iterable[Mapping[str, Any]], *,
                           n_boot: int = 1000, random_state: int = 0,
                           variants: Iterable[str] | None = None,
                           strata: Mapping[str, str] | None = None) -> BootstrapResult:
    """Bootstrap every variant's mean weighted tau over datasets, models, fine-tuning seeds and scoring rows.

    Parameters
    ----------
    scores : iterable of mappings
        One per (dataset, resample, model, variant): keys ``dataset``, ``resample`` (``"measured"`` or a
        resample id), ``model``, ``variant``, ``score`` (NaN: the variant failed on that model).
    accuracies : iterable of mappings
        One per (dataset, model, seed): keys ``dataset``, ``model``, ``seed``, ``accuracy``.
    n_boot : int, default 1000
        Draws.
    random_state : int, default 0
        Seeds the draws: the same seed gives the same result.
    variants : iterable of str, optional
        The variants to bootstrap (default: every variant of ``scores``).
    strata : mapping of str to str, optional
        Dataset -> stratum (e.g. the family of truth it belongs to). Given, the mean weighted tau is the mean over
        strata of each stratum's mean over its datasets, and a draw resamples the datasets within each stratum, so
        that every stratum weighs the same however many datasets it has. Default: one stratum, every dataset
        weighs the same. Every dataset must be named.

    Returns
    -------
    BootstrapResult

    Raises
    ------
    PedrankValueError
        No dataset with at least two models that have both scores and an accuracy.
    """
    n_boot = check_int(n_boot, name="n_boot", minimum=1)
    rng = np.random.default_rng(random_state)
    truth: dict[str, dict[str, list[float]]] = {}
    for row in accuracies:
        truth.setdefault(str(row["dataset"]), {}).setdefault(str(row["model"]), []).append(float(row["accuracy"]))
    table: dict[tuple[str, str, str], dict[str, float]] = {}
    resamples: dict[str, set[str]] = {}
    names: list[str] = []
    for row in scores:
        dataset, variant = str(row["dataset"]), str(row["variant"])
        resample = str(row["resample"])
        table.setdefault((dataset, resample, variant), {})[str(row["model"])] = float(row["score"])
        resamples.setdefault(dataset, set()).add(resample)
        if variant not in names:
            names.append(variant)
    chosen = list(variants) if variants is not None else names
    missing = [v for v in chosen if v not in names]
    if missing:
        raise PedrankValueError(f"variants: {missing} have no scores; expected some of {names}")

    # Per dataset: its models (with an accuracy and a score), their seeds' accuracies, its resamples, and one
    # (n_resamples, n_variants, n_models) score array, so that a draw is indexing.
    datasets = []
    for dataset in sorted(resamples):
        models = sorted(m for m in truth.get(dataset, {})
                        if any(m in table.get((dataset, r, v), {}) for r in resamples[dataset] for v in chosen))
        if len(models) < 2:
            continue
        order = sorted(resamples[dataset], key=lambda r: (r != "measured", r))
        values = np.full((len(order), len(chosen), len(models)), np.nan)
        for i, resample in enumerate(order):
            for j, variant in enumerate(chosen):
                entry = table.get((dataset, resample, variant), {})
                values[i, j] = [entry.get(m, np.nan) for m in models]
        seeds = [np.asarray(truth[dataset][m]) for m in models]
        datasets.append((dataset, models, seeds, values))
    if not datasets:
        raise PedrankValueError("scores/accuracies: no dataset has two models with both a score and an accuracy")
    if strata is None:
        groups = [np.arange(len(datasets))]
    else:
        named = {str(dataset): str(stratum) for dataset, stratum in strata.items()}  # datasets are read as text
        unnamed = [item[0] for item in datasets if item[0] not in named]
        if unnamed:
            raise PedrankValueError(f"strata: datasets {unnamed} have no stratum; expected every dataset named")
        labels = [named[item[0]] for item in datasets]
        groups = [np.flatnonzero(np.array(labels) == label) for label in sorted(set(labels))]
    stratum_of = np.empty(len(datasets), dtype=int)
    for g, members in enumerate(groups):
        stratum_of[members] = g

    def mean_taus(picks: list[tuple[int, np.ndarray, np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
        taus = np.zeros((len(picks), len(chosen)))
        failed = np.zeros(len(chosen), dtype=bool)
        for k, (d, models, accuracy, resample) in enumerate(picks):
            values = datasets[d][3][resample][:, models]
            finite = np.all(np.isfinite(values), axis=1)
            taus[k, ~finite] = np.nan
            failed |= ~finite
            taus[k, finite] = _weighted_taus(values[finite], accuracy)
        if len(groups) == 1:
            return taus.mean(axis=0), failed
        # each stratum's picks weigh 1 / (strata x its picks); a stratum without a pick leaves the others' mean
        which = stratum_of[[d for d, *_ in picks]]
        counts = np.bincount(which, minlength=len(groups))
        weights = 1.0 / (np.count_nonzero(counts) * counts[which])
        return weights @ taus, failed

    full = [(d, np.arange(len(item[1])), np.array([s.mean() for s in item[2]]), 0)
            for d, item in enumerate(datasets)]
    measured_means, _ = mean_taus(full)
    draws = np.empty((n_boot, len(chosen)))
    failures = np.zeros(len(chosen), dtype=int)
    for b in range(n_boot):
        picks = []
        for d in np.concatenate([members[rng.integers(0, len(members), size=len(members))] for members in groups]):
            _, models, seeds, values = datasets[d]
            for _ in range(_MODEL_DRAW_ATTEMPTS):
                drawn = rng.integers(0, len(models), size=len(models))
                if np.unique(drawn).size >= 2:
                    break
            else:
                continue
            accuracy = np.array([seeds[m][rng.integers(0, len(seeds[m]))] for m in drawn])
            picks.append((int(d), drawn, accuracy, int(rng.integers(0, values.shape[0]))))
        means, failed = mean_taus(picks)
        draws[b] = means
        failures += failed
    return BootstrapResult(variants=chosen, measured=dict(zip(chosen, measured_means.tolist())), draws=draws,
                           failures={v: int(f) for v, f in zip(chosen, failures) if f})
