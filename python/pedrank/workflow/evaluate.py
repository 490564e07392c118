"""Judge a ranking: how well do a pool's scores order the models by their real (fine-tuned) accuracy?

Beside the score, :func:`evaluate` can judge trivial baselines the same way: a model property used as a score
(parameter count, source/ImageNet accuracy, a linear probe's accuracy, ...) and random rankings. A fixed,
size-ordered ranking has been reported to beat LogME on a standard benchmark (Singh et al., "How NOT to
benchmark your SITE metric"), so a score is only worth what it adds over such baselines.

Ground-truth files (:func:`read_truth`) are CSVs with a model column and either one accuracy column per dataset
or a single accuracy column (read for a dataset when named generically, ``accuracy``, or after that dataset; a
column named after another dataset is refused); the columns ``params``, ``source_accuracy`` and
``baseline_<name>`` hold baselines.

A ground truth must be able to judge a ranking, so :func:`evaluate` and :func:`read_truth` refuse accuracies on
mixed scales and :func:`evaluate` a constant one (:func:`check_accuracies` gives the rule).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.io.common import BASELINE_PREFIX as BASELINE_PREFIX
from pedrank.workflow.io.truth import BASELINE_COLUMNS as BASELINE_COLUMNS
from pedrank.workflow.io.truth import Truth as Truth
from pedrank.workflow.io.truth import TruthFileError as TruthFileError
from pedrank.workflow.io.truth import check_accuracies as check_accuracies
from pedrank.workflow.io.truth import read_baseline as read_baseline
from pedrank.workflow.io.truth import read_truth as read_truth

__all__ = [
    "BASELINE_COLUMNS",
    "BASELINE_PREFIX",
    "Evaluation",
    "RandomBaseline",
    "Truth",
    "TruthFileError",
    "check_accuracies",
    "evaluate",
    "read_baseline",
    "read_truth",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Names the output uses for other rows; a baseline may not take them.
_RESERVED_NAMES = ("score", "random")


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RandomBaseline:
    """The ranking metrics of random rankings: mean and standard deviation over seeded permutations.

    Attributes
    ----------
    permutations : int
        How many random rankings were drawn.
    seed : int
        The seed of ``numpy.random.default_rng`` that drew them.
    mean, std : dict of str to float
        Mean and standard deviation (over the permutations, ``ddof=0``) of ``weighted_tau``, ``kendall_tau`` and
        ``top{k}_relative_accuracy`` for each k.
    """

    permutations: int
    seed: int
    mean: dict = field(default_factory=dict)
    std: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``permutations``, ``seed``, then ``{metric}_mean`` and ``{metric}_std`` for each metric."""
        out: dict[str, Any] = {"permutations": self.permutations, "seed": self.seed}
        for key in self.mean:
            out[f"{key}_mean"] = _none_if_nan(self.mean[key])
            out[f"{key}_std"] = _none_if_nan(self.std[key])
        return out


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
    baselines : dict of str to Evaluation
        The same metrics with each baseline's values taken as the scores (empty unless baselines were given).
    random : RandomBaseline or None
        The metrics of random rankings (None unless asked for).
    """

    weighted_tau: float
    kendall_tau: float
    pearson: float
    top_k_relative_accuracy: dict = field(default_factory=dict)
    models: tuple = ()
    baselines: dict = field(default_factory=dict)
    random: RandomBaseline | None = None

    @property
    def n_models(self) -> int:
        return len(self.models)

    def _metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "weighted_tau": self.weighted_tau,
            "kendall_tau": self.kendall_tau,
            "pearson": self.pearson,
        }
        for k, value in self.top_k_relative_accuracy.items():
            out[f"top{k}_relative_accuracy"] = value
        return {key: _none_if_nan(value) for key, value in out.items()}

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: ``weighted_tau``, ``kendall_tau``, ``pearson``, ``top{k}_relative_accuracy`` for each
        k, and ``n_models``. NaN becomes None (JSON has no NaN).

        With baselines, ``baselines`` maps each name to the same flat dict of its metrics; with random rankings,
        ``random`` holds :meth:`RandomBaseline.to_dict`.
        """
        out = self._metrics()
        out["n_models"] = self.n_models
        if self.baselines:
            out["baselines"] = {name: baseline.to_dict() for name, baseline in self.baselines.items()}
        if self.random is not None:
            out["random"] = self.random.to_dict()
        return out

    def to_string(self) -> str:
        """The metrics as text: one row per metric; with baselines, one column for the score and one per
        baseline (random rankings as mean +- std)."""
        metrics = self._metrics()
        width = max(len(key) for key in metrics)
        lines = [f"{self.n_models} models"]
        if not self.baselines and self.random is None:
            lines += [f"{key.ljust(width)}  {_format(value)}" for key, value in metrics.items()]
            return "\n".join(lines)
        columns: list[tuple[str, dict[str, str]]] = [("score", {k: _format(v) for k, v in metrics.items()})]
        for name, baseline in self.baselines.items():
            columns.append((name, {k: _format(v) for k, v in baseline._metrics().items()}))
        if self.random is not None:
            cells = {
                key: f"{_format(self.random.mean[key])} +- {_format(self.random.std[key])}" for key in self.random.mean
            }
            columns.append((f"random ({self.random.permutations} rankings)", cells))
        widths = [max([len(title)] + [len(cell) for cell in cells.values()]) for title, cells in columns]
        header = " " * width + "".join(f"  {title.rjust(w)}" for (title, _), w in zip(columns, widths))
        lines.append(header)
        for key in metrics:
            row = key.ljust(width) + "".join(
                f"  {cells.get(key, '-').rjust(w)}" for (_, cells), w in zip(columns, widths)
            )
            lines.append(row)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _format(value: Any) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


# ---------------------------------------------------------------------------------------------- evaluate


def as_score_mapping(scores: Any) -> dict[str, float]:
    """``{model: score}`` from a mapping, a :class:`pedrank.RankTable` or records; a model named twice (two records,
    or keys such as ``1`` and ``"1"`` that are the same name as text) is refused rather than kept once."""
    if hasattr(scores, "scores") and not isinstance(scores, Mapping):  # a RankTable: its records, not .scores
        scores = list(scores) if isinstance(scores, list) else scores.scores
    if isinstance(scores, Mapping) or hasattr(scores, "items"):
        pairs = list(scores.items())
    elif isinstance(scores, Iterable) and not isinstance(scores, (str, bytes)):
        pairs = []
        for record in scores:
            if isinstance(record, Mapping) and "model" in record and "score" in record:
                pairs.append((record["model"], record["score"]))
            elif hasattr(record, "model") and hasattr(record, "score"):
                pairs.append((record.model, record.score))
            else:
                raise PedrankValueError(
                    f"scores: found an item {record!r} ({type(record).__name__}); expected a mapping of model "
                    "names to scores, a RankTable, or records with a model and a score"
                )
    else:
        raise PedrankValueError(f"scores must map model names to scores, found {type(scores).__name__}")
    return named_numbers(pairs, "scores")


def named_numbers(pairs: Iterable[tuple[Any, Any]], name: str) -> dict[str, float]:
    """``{str(model): float(value)}``, refusing a model named twice and a value that is not a number."""
    out: dict[str, float] = {}
    for model, value in pairs:
        key = str(model)
        if key in out:
            raise PedrankValueError(
                f"{name}: model {key!r} is given twice; expected one value per model (only one of them would be "
                "judged)"
            )
        try:
            out[key] = math.nan if value is None else float(value)
        except (TypeError, ValueError):
            raise PedrankValueError(f"{name}[{key!r}]: found {value!r}; expected a number") from None
    return out


def _metrics_of(x: np.ndarray, y: np.ndarray, ks: list[int]) -> tuple[float, float, float, dict, np.ndarray]:
    """Weighted tau, Kendall tau, Pearson, top-k relative accuracies and the best-first order of scores x."""
    from scipy import stats

    weighted_tau = float(stats.weightedtau(x, y).statistic)
    kendall_tau = float(stats.kendalltau(x, y).statistic)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        pearson = math.nan
    else:
        pearson = float(stats.pearsonr(x, y).statistic)
    # Stable sort: ties in score keep the caller's order in the reported order (the top-k figures do not use it).
    order = np.argsort(-x, kind="stable")
    best = float(y.max())
    top = {k: _expected_top_k(x, y, k) / best if best != 0 else math.nan for k in ks}
    return weighted_tau, kendall_tau, pearson, top, order


def _expected_top_k(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """The best accuracy ``y`` among the k highest scores ``x``, averaged over every order of the tied scores.

    Models whose scores tie across the k-th place are drawn into the top k uniformly at random, so the figure
    does not depend on the order in which the caller listed them (a constant score gets the expectation of a
    random pick, not the accuracy of whichever model came first).
    """
    k = min(k, x.shape[0])
    threshold = np.sort(x)[::-1][k - 1]
    above = x > threshold
    sure = float(y[above].max()) if above.any() else -math.inf
    tied = np.sort(y[x == threshold])[::-1]  # the group straddling place k, best accuracy first
    drawn = k - int(above.sum())  # how many of the tied group enter the top k
    if drawn == tied.shape[0]:
        return max(sure, float(tied[0]))
    # P(the best drawn member is the i-th best of the group) = C(g - 1 - i, drawn - 1) / C(g, drawn)
    g = tied.shape[0]
    weights = np.array([math.comb(g - 1 - i, drawn - 1) for i in range(g)], dtype=float) / math.comb(g, drawn)
    return float(np.sum(weights * np.maximum(sure, tied)))


def _random_baseline(y: np.ndarray, ks: list[int], permutations: int, seed: int) -> RandomBaseline:
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"weighted_tau": [], "kendall_tau": []}
    draws.update({f"top{k}_relative_accuracy": [] for k in ks})
    for _ in range(permutations):
        x = rng.permutation(y.shape[0]).astype(float)  # distinct scores: a random strict ranking
        weighted_tau, kendall_tau, _, top, _ = _metrics_of(x, y, ks)
        draws["weighted_tau"].append(weighted_tau)
        draws["kendall_tau"].append(kendall_tau)
        for k in ks:
            draws[f"top{k}_relative_accuracy"].append(top[k])
    mean = {key: float(np.mean(values)) for key, values in draws.items()}
    std = {key: float(np.std(values)) for key, values in draws.items()}
    return RandomBaseline(permutations, seed, mean, std)


def check_not_constant(accuracies: Mapping[str, float], name: str) -> None:
    """Refuse a ground truth that is the same for every scored model: every ranking ties against it, so weighted
    and Kendall tau are NaN and top-k relative accuracy is 1 whatever the scores."""
    values = set(accuracies.values())
    if len(values) == 1:
        models = list(accuracies)
        shown = ", ".join(models[:6]) + (f", ... ({len(models)} in all)" if len(models) > 6 else "")
        raise PedrankValueError(
            f"{name}: all {len(models)} values of the scored models ({shown}) equal {values.pop():g}, so no "
            "ranking can be judged; expected at least two different accuracies"
        )


def _check_top_k(top_k: Any) -> list[int]:
    """``top_k`` as a list of ints >= 1 (one int is taken as a list of one); anything else is refused."""
    values = [top_k] if isinstance(top_k, (int, np.integer)) else top_k
    try:
        values = list(values)
    except TypeError:
        raise PedrankValueError(f"top_k: found {top_k!r}; expected integers >= 1, e.g. (1, 3)") from None
    if not values or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in values):
        raise PedrankValueError(f"top_k: found {top_k!r}; expected integers >= 1, e.g. (1, 3)")
    return [int(k) for k in values]


def evaluate(
    scores: Any,
    accuracies: Mapping[str, float] | Truth,
    *,
    top_k: Iterable[int] = (1, 3),
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    random_rankings: int = 0,
    seed: int = 0,
) -> Evaluation:
    """Compare a pool's transferability scores with its models' accuracies, and optionally trivial baselines.

    Parameters
    ----------
    scores : mapping of str to float, RankTable, or iterable of records
        Each model's score (higher = predicted better).
    accuracies : mapping of str to float, or Truth
        Ground truth, e.g. fine-tuned accuracy, as fractions in [0, 1] or percentages in [0, 100] (one scale for
        every model; see :func:`check_accuracies`). May hold more models than ``scores``: the pool evaluated is
        the scored models. A :class:`Truth` from :func:`read_truth` is named by its file and column in errors,
        and its values written with ``%`` count as percentages whatever their size.
    top_k : int or iterable of int, default (1, 3)
        The k of the top-k relative accuracies (k larger than the pool counts the whole pool). Models whose scores
        tie across the k-th place count as drawn at random among themselves (the expected best accuracy), so the
        figure never depends on the order of ``scores``.
    baselines : mapping of str to mapping of str to float, optional
        Named baselines, each a value per model used as a score (higher = predicted better), e.g.
        ``{"params": {"resnet50": 25.6e6, ...}, "source_accuracy": {...}}``. Every scored model needs a finite
        value. Each is judged with the same metrics, in ``Evaluation.baselines``.
    random_rankings : int, default 0
        When positive, also judge this many random rankings of the scored models (seeded permutations) and
        report the mean and standard deviation of each metric in ``Evaluation.random``. 1000 gives the means to
        about +-0.01.
    seed : int, default 0
        Seed of the random rankings (``numpy.random.default_rng``): the same seed gives the same numbers.

    Returns
    -------
    Evaluation

    Raises
    ------
    PedrankValueError
        A scored model has no accuracy (the message lists them and the models that do), a score or accuracy is
        not finite, fewer than 2 models, a k below 1, a baseline missing or not finite for a scored model, a
        baseline named ``score`` or ``random``, or a negative ``random_rankings``. Also when the accuracies
        cannot judge a ranking: an accuracy outside [0, 100], fractions mixed with percentages (the message lists
        both, with their models), or the same accuracy for every scored model (a constant ground truth ties every
        ranking; the message gives the value and the count).
    """
    score_map = as_score_mapping(scores)
    if isinstance(accuracies, Truth):
        truth_name = f"accuracies ({accuracies.path}, column {accuracies.column!r})"
        percent: Iterable[str] = accuracies.percent
        accuracies = accuracies.accuracies
    else:
        truth_name, percent = "accuracies", ()
    truth = {k: v for k, v in named_numbers(accuracies.items(), truth_name).items() if not math.isnan(v)}
    missing = [model for model in score_map if model not in truth]
    if missing:
        raise PedrankValueError(
            f"accuracies has no value for {len(missing)} scored model(s): {missing}; "
            f"models with an accuracy: {sorted(truth)}"
        )
    bad = [model for model, value in score_map.items() if not math.isfinite(value)]
    if bad:
        raise PedrankValueError(f"scores are not finite for model(s) {bad}; expected finite numbers")
    bad = [model for model in score_map if not math.isfinite(truth[model])]
    if bad:
        raise PedrankValueError(f"accuracies are not finite for model(s) {bad}; expected finite numbers")
    if len(score_map) < 2:
        raise PedrankValueError(f"scores holds {len(score_map)} model(s); ranking needs at least 2")
    ks = _check_top_k(top_k)
    if isinstance(random_rankings, bool) or int(random_rankings) != random_rankings or random_rankings < 0:
        raise PedrankValueError(f"random_rankings must be an integer >= 0, found {random_rankings!r}")
    check_accuracies({m: v for m, v in truth.items() if math.isfinite(v)}, percent=percent, name=truth_name)
    check_not_constant({m: truth[m] for m in score_map}, truth_name)

    models = list(score_map)
    x = np.array([score_map[m] for m in models], dtype=float)
    y = np.array([truth[m] for m in models], dtype=float)
    weighted_tau, kendall_tau, pearson, top, order = _metrics_of(x, y, ks)

    judged: dict[str, Evaluation] = {}
    for name, values in (baselines or {}).items():
        judged[str(name)] = _judge_baseline(str(name), values, models, y, ks)
    random = _random_baseline(y, ks, int(random_rankings), int(seed)) if random_rankings else None
    return Evaluation(
        weighted_tau, kendall_tau, pearson, top, tuple(models[i] for i in order), baselines=judged, random=random
    )


def _judge_baseline(name: str, values: Mapping[str, float], models: list[str], y: np.ndarray,
                    ks: list[int]) -> Evaluation:
    given = check_baseline(name, values, models)
    x = np.array([given[m] for m in models], dtype=float)
    weighted_tau, kendall_tau, pearson, top, order = _metrics_of(x, y, ks)
    return Evaluation(weighted_tau, kendall_tau, pearson, top, tuple(models[i] for i in order))


def check_baseline(name: str, values: Mapping[str, float], models: list[str]) -> dict[str, float]:
    """One baseline as ``{model: value}``, checked: a finite number for every model of ``models`` (evaluate's and
    rank's baselines)."""
    if name in _RESERVED_NAMES or not name:
        raise PedrankValueError(f"baselines: the name {name!r} is reserved or empty; expected another name")
    if not isinstance(values, Mapping) and not hasattr(values, "items"):
        raise PedrankValueError(
            f"baselines[{name!r}]: expected a mapping of model to value, found {type(values).__name__}"
        )
    given = {}
    for key, value in values.items():
        try:
            given[str(key)] = math.nan if value is None else float(value)
        except (TypeError, ValueError):
            raise PedrankValueError(f"baselines[{name!r}][{key!r}]: found {value!r}; expected a number") from None
    missing = [model for model in models if model not in given or math.isnan(given[model])]
    if missing:
        raise PedrankValueError(
            f"baselines[{name!r}] has no value for {len(missing)} scored model(s): {missing}; "
            "every scored model needs one (models with a value: "
            f"{sorted(m for m in given if not math.isnan(given[m]))})"
        )
    bad = [model for model in models if not math.isfinite(given[model])]
    if bad:
        raise PedrankValueError(f"baselines[{name!r}] is not finite for model(s) {bad}; expected finite numbers")
    return {model: given[model] for model in models}
