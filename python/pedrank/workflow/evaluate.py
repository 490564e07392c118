"""Judge a ranking: how well do a pool's scores order the models by their real (fine-tuned) accuracy?

Beside the score, :func:`evaluate` can judge trivial baselines the same way: a model property used as a score
(parameter count, source/ImageNet accuracy, a linear probe's accuracy, ...) and random rankings. A fixed,
size-ordered ranking has been reported to beat LogME on a standard benchmark (Singh et al., "How NOT to
benchmark your SITE metric"), so a score is only worth what it adds over such baselines.

Ground-truth files (:func:`read_truth`) are CSVs with a model column and either one accuracy column per dataset
or a single accuracy column under any name; the columns ``params``, ``source_accuracy`` and ``baseline_<name>``
hold baselines.

A ground truth must be able to judge a ranking, so :func:`evaluate` and :func:`read_truth` refuse accuracies on
mixed scales and :func:`evaluate` a constant one (:func:`check_accuracies` gives the rule).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.io import BASELINE_PREFIX, FeatureFileError, parse_float

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

#: Truth-file columns read as baselines, not accuracies: the model's parameter count and its accuracy on the
#: source task (e.g. ImageNet top-1). Higher values are taken as "predicted better".
BASELINE_COLUMNS = ("params", "source_accuracy")
#: Names the output uses for other rows; a baseline may not take them.
_RESERVED_NAMES = ("score", "random")


class TruthFileError(FeatureFileError):
    """A ground-truth or baseline CSV that cannot be used; the message starts with the file's path."""


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
    raise PedrankValueError(f"scores must map model names to scores, found {type(scores).__name__}")


def _metrics_of(x: np.ndarray, y: np.ndarray, ks: list[int]) -> tuple[float, float, float, dict, np.ndarray]:
    """Weighted tau, Kendall tau, Pearson, top-k relative accuracies and the best-first order of scores x."""
    from scipy import stats

    weighted_tau = float(stats.weightedtau(x, y).statistic)
    kendall_tau = float(stats.kendalltau(x, y).statistic)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        pearson = math.nan
    else:
        pearson = float(stats.pearsonr(x, y).statistic)
    # Stable sort: ties in score keep the caller's order.
    order = np.argsort(-x, kind="stable")
    best = float(y.max())
    top = {k: float(y[order[: min(k, len(y))]].max() / best) if best != 0 else math.nan for k in ks}
    return weighted_tau, kendall_tau, pearson, top, order


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


def _listing(items: list[tuple[str, str]], limit: int = 6) -> str:
    """``a: 0.8, b: 85`` for the first ``limit`` items, then how many there are in all."""
    shown = ", ".join(f"{model}: {text}" for model, text in items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"


def _value_text(model: str, value: float, percent: set[str]) -> str:
    return f"{value:g}%" if model in percent else f"{value:g}"


def check_accuracies(
    accuracies: Mapping[str, float],
    *,
    percent: Iterable[str] = (),
    name: str = "accuracies",
) -> None:
    """Refuse accuracies that are out of range or on mixed scales.

    The scale rule: every accuracy lies in [0, 100]; a value written with ``%`` (a model of ``percent``) or above 1
    is a percentage, a value strictly between 0 and 1 without ``%`` is a fraction, and 0 and 1 fit either scale.
    Fractions and percentages together are refused: ``0.80, 85, 0.9`` cannot be ranked as written (0.9 would rank
    below 85). A percentage below 1 must therefore be written with ``%`` (``0.5%``) when the others are bare
    percentages; bare ``1`` among percentages is read as 1 percent.

    Parameters
    ----------
    accuracies : mapping of str to float
        ``{model: accuracy}``, finite values.
    percent : iterable of str, optional
        The models whose accuracy was written with a ``%`` sign.
    name : str, default "accuracies"
        What the accuracies are, for the messages (e.g. the file and column).

    Raises
    ------
    PedrankValueError
        A value outside [0, 100], or fractions mixed with percentages; the message starts with ``name`` and lists
        the values with their models.
    """
    marked = set(percent)
    outside = [(m, _value_text(m, v, marked)) for m, v in accuracies.items() if not 0 <= v <= 100]
    if outside:
        raise PedrankValueError(
            f"{name}: {_listing(outside)} outside [0, 100]; expected accuracies as fractions in [0, 1] or "
            "percentages in [0, 100]"
        )
    fractions = [(m, _value_text(m, v, marked)) for m, v in accuracies.items() if m not in marked and 0 < v < 1]
    percentages = [(m, _value_text(m, v, marked)) for m, v in accuracies.items() if m in marked or v > 1]
    if fractions and percentages:
        raise PedrankValueError(
            f"{name}: mixes fractions ({_listing(fractions)}) and percentages ({_listing(percentages)}); use one "
            "scale for every model: fractions (0.85) or percentages (85 or 85%)"
        )


def _check_not_constant(accuracies: Mapping[str, float], name: str) -> None:
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
    top_k : iterable of int, default (1, 3)
        The k of the top-k relative accuracies (k larger than the pool counts the whole pool).
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
    truth = {str(k): float(v) for k, v in accuracies.items() if v is not None and not math.isnan(float(v))}
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
    top_k = list(top_k)
    ks = [int(k) for k in top_k]
    if any(k < 1 for k in ks):
        raise PedrankValueError(f"top_k must hold integers >= 1, found {top_k}")
    if isinstance(random_rankings, bool) or int(random_rankings) != random_rankings or random_rankings < 0:
        raise PedrankValueError(f"random_rankings must be an integer >= 0, found {random_rankings!r}")
    check_accuracies({m: v for m, v in truth.items() if math.isfinite(v)}, percent=percent, name=truth_name)
    _check_not_constant({m: truth[m] for m in score_map}, truth_name)

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


# ---------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class Truth:
    """A ground-truth CSV as read by :func:`read_truth`.

    Attributes
    ----------
    accuracies : dict of str to float
        ``{model: accuracy}`` from the chosen column; empty cells are left out.
    column : str
        The column the accuracies came from.
    baselines : dict of str to dict of str to float
        ``{name: {model: value}}`` from the baseline columns (``params``, ``source_accuracy``,
        ``baseline_<name>``); empty cells are left out.
    path : pathlib.Path
        The file.
    percent : frozenset of str
        The models whose accuracy was written with a ``%`` sign (``80%``, read as 80).
    """

    accuracies: dict
    column: str
    baselines: dict = field(default_factory=dict)
    path: Path = Path()
    percent: frozenset = frozenset()


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise TruthFileError(path, "no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = [c.strip() for c in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TruthFileError(path, f"not a readable CSV ({exc})") from exc
    rows = [{(k.strip() if isinstance(k, str) else k): v for k, v in row.items()} for row in rows]
    if len(columns) < 2:
        raise TruthFileError(path, f"expected a model column and at least one value column; found columns {columns}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise TruthFileError(path, f"column(s) {duplicated} appear more than once; found columns {columns}")
    return columns, rows


def _model_column(columns: list[str]) -> str:
    """``model`` when present, else the first column."""
    return "model" if "model" in columns else columns[0]


def _parse_cell(text: str) -> tuple[float, bool]:
    """A cell's number and whether it was written with a ``%`` sign (``80%`` is 80, on the percent scale)."""
    body = text.strip()
    if body.endswith("%"):
        body = body[:-1].strip()
        value = float(body)  # an empty or "nan" body before the % is no number
        if math.isnan(value):
            raise PedrankValueError(f"{text!r} is not a number")
        return value, True
    return parse_float(body), False


def _is_numeric(rows: list[dict[str, str]], column: str) -> bool:
    seen = False
    for row in rows:
        try:
            value, _ = _parse_cell(row.get(column) or "")
        except ValueError:
            return False
        seen = seen or not math.isnan(value)
    return seen


def _column_cells(path: Path, rows: list[dict[str, str]], model_column: str,
                  column: str) -> tuple[dict[str, float], set[str]]:
    """``({model: value}, models written with %)`` of one column; empty cells left out."""
    values: dict[str, float] = {}
    percent: set[str] = set()
    first_line: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        model = (row.get(model_column) or "").strip()
        text = row.get(column) or ""
        try:
            value, marked = _parse_cell(text)
        except ValueError as exc:
            raise TruthFileError(
                path, f"line {line}: {column} is not a number ({text!r}); expected a number such as 0.85, 85 or 85%"
            ) from exc
        if not model:
            if math.isnan(value):
                continue
            raise TruthFileError(path, f"line {line}: no model name in column {model_column!r}")
        if model in first_line:
            raise TruthFileError(path, f"line {line}: model {model!r} appears again "
                                       f"(first on line {first_line[model]})")
        first_line[model] = line
        if not math.isnan(value):
            values[model] = value
            if marked:
                percent.add(model)
    return values, percent


def _column_values(path: Path, rows: list[dict[str, str]], model_column: str, column: str) -> dict[str, float]:
    return _column_cells(path, rows, model_column, column)[0]


def _baseline_name(column: str) -> str | None:
    if column in BASELINE_COLUMNS:
        return column
    if column.startswith(BASELINE_PREFIX) and len(column) > len(BASELINE_PREFIX):
        return column[len(BASELINE_PREFIX):]
    return None


def read_truth(path: PathLike, dataset: str | None = None) -> Truth:
    """Read a ground-truth CSV in either of two layouts.

    - **Per dataset**: a ``model`` column and one accuracy column per dataset (the shipped
      ``ssl_finetune_accuracy.csv``); ``dataset`` picks the column.
    - **Plain**: a model column and exactly one numeric column, under any names (``model,accuracy``,
      ``name,top1``); it is the accuracy whatever ``dataset`` says.

    The model column is the one named ``model``, else the first. Columns named ``params`` (parameter count),
    ``source_accuracy`` (accuracy on the source task, e.g. ImageNet) or ``baseline_<name>`` are baselines
    (see :func:`evaluate`), never accuracies. Other non-numeric columns (notes, families) are ignored.

    Accuracies are fractions (``0.85``) or percentages (``85``, or ``85%``: a cell ending in ``%`` is that many
    percent, kept as 85), one scale for the whole column: :func:`check_accuracies` gives the rule, and a column
    mixing ``0.8`` with ``85`` or ``85%`` is refused.

    Parameters
    ----------
    path : path
        The CSV file.
    dataset : str, optional
        The accuracy column. Needed only when the file has several numeric accuracy columns; when no column has
        this name and the file has exactly one, that one is used.

    Returns
    -------
    Truth

    Raises
    ------
    TruthFileError
        A ``PedrankValueError`` (and ``pedrank.workflow.io.FeatureFileError``) whose message starts with the
        file's path: no such file, not a CSV, no numeric column, several numeric columns and ``dataset`` names
        none of them (the message lists the columns found), a non-number in a used column (with its line), a model
        listed twice, an accuracy outside [0, 100] or fractions mixed with percentages (the message names the
        column and lists the values with their models).
    """
    path = Path(path)
    columns, rows = _read_table(path)
    model_column = _model_column(columns)
    others = [c for c in columns if c != model_column]
    baseline_columns = {c: name for c in others if (name := _baseline_name(c)) is not None}
    candidates = [c for c in others if c not in baseline_columns]
    numeric = [c for c in candidates if _is_numeric(rows, c)]
    if dataset is not None and dataset in candidates:
        column = dataset
    elif len(numeric) == 1:
        column = numeric[0]
    elif not numeric:
        raise TruthFileError(
            path, f"no numeric accuracy column besides the model column {model_column!r}; found columns {columns} "
                  f"(baseline columns: {sorted(baseline_columns)})"
        )
    else:
        chosen = f"no column is named {dataset!r}" if dataset is not None else "no dataset was chosen"
        raise TruthFileError(
            path, f"several accuracy columns {numeric} and {chosen}; pick one with --dataset (Python: dataset=); "
                  f"found columns {columns}"
        )
    accuracies, percent = _column_cells(path, rows, model_column, column)
    try:
        check_accuracies(accuracies, percent=percent, name=f"column {column!r}")
    except PedrankValueError as exc:
        raise TruthFileError(path, str(exc)) from exc
    baselines = {name: _column_values(path, rows, model_column, c) for c, name in baseline_columns.items()}
    return Truth(accuracies, column, baselines, path, frozenset(percent))


def read_baseline(path: PathLike, name: str) -> dict[str, float]:
    """Read one baseline, ``{model: value}``, from a CSV.

    The model column is the one named ``model``, else the first; the value column is the one named ``name``
    (or ``baseline_<name>``), else the file's only numeric column.

    Raises
    ------
    TruthFileError
        No such file, not a CSV, no column ``name`` and not exactly one numeric column (the message lists the
        columns found), a non-number (with its line), a model listed twice.
    """
    path = Path(path)
    columns, rows = _read_table(path)
    model_column = _model_column(columns)
    others = [c for c in columns if c != model_column]
    for candidate in (name, BASELINE_PREFIX + name):
        if candidate in others:
            return _column_values(path, rows, model_column, candidate)
    numeric = [c for c in others if _is_numeric(rows, c)]
    if len(numeric) != 1:
        raise TruthFileError(
            path, f"baseline {name!r}: no column {name!r} and {len(numeric)} numeric columns {numeric} "
                  f"(expected exactly one); found columns {columns}"
        )
    return _column_values(path, rows, model_column, numeric[0])
