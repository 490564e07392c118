"""Ground-truth (accuracy) CSVs and baseline columns: reading them, and the scale rule their accuracies follow.

:func:`read_truth` reads a CSV with a model column and either one accuracy column per dataset or a single numeric
column (named generically, e.g. ``accuracy``, or after its dataset: :func:`column_serves`); :func:`check_accuracies`
refuses accuracies out of range or on mixed scales. The fine-tuning tables that ``pedrank finetune`` writes are in
:mod:`pedrank.workflow.io.finetune`.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.io.common import BASELINE_PREFIX, FeatureFileError, PathLike, parse_float

__all__ = [
    "BASELINE_COLUMNS",
    "MISSING_CELLS",
    "Truth",
    "TruthFileError",
    "check_accuracies",
    "column_serves",
    "is_generic_accuracy_name",
    "read_accuracies",
    "read_baseline",
    "read_truth",
]

#: Truth-file columns read as baselines, not accuracies: the model's parameter count and its accuracy on the
#: source task (e.g. ImageNet top-1). Higher values are taken as "predicted better".
BASELINE_COLUMNS = ("params", "source_accuracy")

#: Cells read as "no value for this model" besides the empty cell and ``nan``/``na``/``none``/``null`` (any case):
#: the placeholders spreadsheets and papers' tables use for a model not run on a dataset.
MISSING_CELLS = frozenset({"-", "--", "\u2013", "\u2014", "n/a", "?"})

#: The words a generic accuracy column's name is made of (``accuracy``, ``acc``, ``top1``, ``test_accuracy``,
#: ``Top-1 acc``, ``finetuned_accuracy``, ``ground_truth``, ...): such a column serves any dataset.
_GENERIC_WORDS = frozenset({
    "accuracy", "accuracies", "acc", "truth", "gt", "top", "1", "5", "test", "val", "valid", "validation", "eval",
    "target", "transfer", "fine", "finetune", "finetuned", "tune", "tuned", "ft", "mean", "best", "final", "ground",
})
#: At least one of these (or ``top`` with a number) makes a name generic: ``test`` alone or ``mean`` alone does not.
_ACCURACY_WORDS = frozenset({"accuracy", "accuracies", "acc", "truth", "gt"})


def _words(name: str) -> list[str]:
    """A column or dataset name as lower-case words and numbers: ``Top-1 acc`` -> ``['top', '1', 'acc']``."""
    return re.findall(r"[a-z]+|[0-9]+", name.lower())


def is_generic_accuracy_name(column: str) -> bool:
    """Whether a column name says "accuracy" without naming a dataset: ``accuracy``, ``acc``, ``top1``,
    ``test_accuracy``, ``Top-1 accuracy``, ``finetuned_acc``, ``ground_truth``, ... (every word of the name from a
    fixed vocabulary, one of them ``accuracy``, ``acc``, ``truth``, ``gt``, or ``top`` with a number)."""
    words = _words(column)
    if not words or any(word not in _GENERIC_WORDS for word in words):
        return False
    return any(word in _ACCURACY_WORDS for word in words) or (
        "top" in words and any(word.isdigit() for word in words))


def column_serves(column: str, dataset: str | None) -> bool:
    """Whether the only accuracy column of a plain truth file may be read as ``dataset``'s accuracies.

    Yes when no dataset is asked for, when the column's name is generic (:func:`is_generic_accuracy_name`), or when
    it names that dataset: equal up to case and punctuation, or that dataset's name with generic words around it
    (``cifar10_acc`` serves ``cifar10``). A column named otherwise is taken to be another dataset's accuracies
    (``model,cifar10`` does not serve ``dtd``).
    """
    if dataset is None or column == dataset or is_generic_accuracy_name(column):
        return True
    wanted = _words(dataset)
    if not wanted:
        return False
    words = _words(column)
    for start in range(len(words) - len(wanted) + 1):
        if words[start:start + len(wanted)] == wanted and all(
                word in _GENERIC_WORDS for word in words[:start] + words[start + len(wanted):]):
            return True
    return False


class TruthFileError(FeatureFileError):
    """A ground-truth or baseline CSV that cannot be used; the message starts with the file's path."""


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
    """A cell's number and whether it was written with a ``%`` sign (``80%`` is 80, on the percent scale); an empty
    cell or a placeholder (:data:`MISSING_CELLS`, ``nan``, ``na``, ...) is NaN, "no value"."""
    body = text.strip()
    if body.lower() in MISSING_CELLS:
        return math.nan, False
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


def _has_numbers(rows: list[dict[str, str]], column: str) -> bool:
    """Whether a column holds at least one number: then it is a value column, whatever else it holds (a cell that is
    no number is refused, with its line, when the column is used), never a notes column that is passed over."""
    for row in rows:
        try:
            value, _ = _parse_cell(row.get(column) or "")
        except ValueError:
            continue
        if not math.isnan(value):
            return True
    return False


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
      ``ssl_finetune_accuracy.csv``); ``dataset`` picks the column, and a dataset without a column is refused
      (never another dataset's column).
    - **Plain**: a model column and exactly one numeric column (``model,accuracy``, ``name,top1``). With no
      ``dataset`` it is the accuracy whatever its name; for a ``dataset`` its name must be generic (``accuracy``,
      ``acc``, ``top1``, ``test_accuracy``, ...) or name that dataset (``dtd``, ``dtd_acc``): ``model,cifar10``
      holds cifar10's accuracies and is refused for ``dtd`` (:func:`column_serves` gives the rule).

    The model column is the one named ``model``, else the first. Columns named ``params`` (parameter count),
    ``source_accuracy`` (accuracy on the source task, e.g. ImageNet) or ``baseline_<name>`` are baselines
    (see :func:`evaluate`), never accuracies. Other columns without a single number (notes, families) are ignored;
    a column with at least one number is an accuracy column, so a placeholder cell never hides it. Empty cells and
    the placeholders ``-``, ``--``, ``n/a``, ``na``, ``nan``, ``none``, ``null`` and ``?`` leave the model without a
    value (:func:`evaluate` then refuses to score it); any other text in the column used is refused with its line.

    Accuracies are fractions (``0.85``) or percentages (``85``, or ``85%``: a cell ending in ``%`` is that many
    percent, kept as 85), one scale for the whole column: :func:`check_accuracies` gives the rule, and a column
    mixing ``0.8`` with ``85`` or ``85%`` is refused.

    Parameters
    ----------
    path : path
        The CSV file.
    dataset : str, optional
        The accuracy column. Needed only when the file has several numeric accuracy columns; when no column has
        this name and the file has exactly one, that one is used if its name is generic or names this dataset.

    Returns
    -------
    Truth

    Raises
    ------
    TruthFileError
        A ``PedrankValueError`` (and ``pedrank.workflow.io.FeatureFileError``) whose message starts with the
        file's path: no such file, not a CSV, no numeric column, several numeric columns and ``dataset`` names
        none of them (the message lists the columns found), a single column named after another dataset than
        ``dataset`` (the message names the column and the dataset), a non-number in a used column (with its
        line), a model listed twice, an accuracy outside [0, 100] or fractions mixed with percentages (the
        message names the column and lists the values with their models).
    """
    path = Path(path)
    columns, rows = _read_table(path)
    model_column = _model_column(columns)
    others = [c for c in columns if c != model_column]
    baseline_columns = {c: name for c in others if (name := _baseline_name(c)) is not None}
    candidates = [c for c in others if c not in baseline_columns]
    numeric = [c for c in candidates if _has_numbers(rows, c)]
    if dataset is not None and dataset in candidates:
        column = dataset
    elif len(numeric) == 1:
        column = numeric[0]
        if not column_serves(column, dataset):
            raise TruthFileError(
                path, f"no column is named {dataset!r}, and the only accuracy column, {column!r}, is named after "
                      f"something else (another dataset?), so it is not read as the accuracies of {dataset!r}; if "
                      f"it holds them, rename the column to {dataset!r} or to a generic name such as 'accuracy'; "
                      f"found columns {columns}"
            )
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


def read_accuracies(path: PathLike, dataset: str | None = None) -> dict[str, float]:
    """Read a ground-truth CSV: ``{model: accuracy}``, empty cells left out.

    The same reader as :func:`read_truth` (this returns its ``accuracies``), so the two accept
    the same files: a ``model`` column and one accuracy column per dataset (``dataset`` picks it; it may be
    omitted when there is a single one), or a plain layout, a model column and exactly one numeric column
    (``model,accuracy``), used for ``dataset`` when its name is generic or names that dataset
    (:func:`column_serves`). The baseline columns ``params``, ``source_accuracy`` and ``baseline_<name>`` are never
    accuracies.

    Raises
    ------
    TruthFileError
        A :class:`FeatureFileError` whose message starts with the file's path: no such file, not a CSV, no
        numeric column, several and ``dataset`` names none of them (the columns found are listed), a single column
        named after another dataset, a non-number (with its line), a model listed twice.
    """
    return read_truth(path, dataset).accuracies
