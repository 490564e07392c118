"""Score and ranking tables: what ``pedrank rank --json/--csv`` writes, and reading it back.

The writers here serialise rows already built (:meth:`pedrank.RankTable.to_records`, an agreement's rows); the
readers return plain records, so that :func:`pedrank.workflow.confidence.read_ranking` builds its tables from them.
"""

from __future__ import annotations

import csv
import io as _stringio
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pedrank.workflow.io.common import BASELINE_PREFIX, FeatureFileError, PathLike, parse_float

__all__ = ["read_ranking_records", "read_scores", "write_json", "write_csv_records", "write_csv_rows"]


def write_json(value: Any, path: PathLike | None = None, *, indent: int | None = 2) -> str:
    """``value`` as JSON text; also written to ``path`` (with a final newline) when given."""
    text = json.dumps(value, indent=indent)
    if path is not None:
        Path(path).write_text(text + "\n")
    return text


def write_csv_records(records: Iterable[Mapping[str, Any]], columns: Sequence[str],
                      path: PathLike | None = None) -> str:
    """Records as CSV under a header row of ``columns`` (None written as an empty cell); also written to ``path``."""
    buffer = _stringio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in records:
        writer.writerow({key: ("" if row.get(key) is None else row[key]) for key in columns})
    text = buffer.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text


def write_csv_rows(header: Sequence[Any], rows: Iterable[Sequence[Any]], path: PathLike | None = None) -> str:
    """Rows as CSV under ``header``; also written to ``path`` when given."""
    buffer = _stringio.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    text = buffer.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text


def read_scores(path: PathLike) -> tuple[dict[str, float], dict[str, Any]]:
    """Read the scores that ``pedrank rank --json/--csv`` wrote.

    Accepts a JSON list of records (each with ``model`` and ``score``), a JSON object ``{model: score}``, or a
    CSV with ``model`` and ``score`` columns.

    Returns
    -------
    scores : dict
        ``{model: score}`` in file order.
    info : dict
        ``metric`` and ``dataset`` when every record agrees on them; ``baselines`` ``{name: {model: value}}`` when
        the records have ``baseline_<name>`` columns (``pedrank rank --baseline``).
    """
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(path, "no such file")
    records: list[Mapping[str, Any]]
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                records = list(csv.DictReader(handle))
        else:
            content = json.loads(path.read_text())
            if isinstance(content, Mapping):
                records = [{"model": key, "score": value} for key, value in content.items()]
            elif isinstance(content, list):
                records = content
            else:
                raise FeatureFileError(path, f"expected a list of records or an object, found {type(content).__name__}")
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise FeatureFileError(path, f"not a readable scores file ({exc})") from exc
    scores: dict[str, float] = {}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or "model" not in record or "score" not in record:
            raise FeatureFileError(path, f"record {index} has no 'model' and 'score': {record!r}")
        value = record["score"]
        if str(record["model"]) in scores:
            raise FeatureFileError(path, f"record {index}: model {str(record['model'])!r} appears again; expected "
                                         "one score per model (only one of them would be judged)")
        try:
            scores[str(record["model"])] = math.nan if value is None else parse_float(str(value))
        except ValueError as exc:
            raise FeatureFileError(path, f"record {index}: score is not a number ({value!r})") from exc
    info: dict[str, Any] = {}
    for key in ("metric", "dataset"):
        values = {record.get(key) for record in records if isinstance(record, Mapping)}
        if len(values) == 1 and None not in values and values != {""}:
            info[key] = values.pop()
    # `pedrank rank --baseline NAME=CSV` writes baseline_NAME columns: trivial rankers to judge beside the score.
    baselines: dict[str, dict[str, float]] = {}
    names = [key for key in (records[0] if records and isinstance(records[0], Mapping) else {})
             if str(key).startswith(BASELINE_PREFIX) and len(str(key)) > len(BASELINE_PREFIX)]
    for key in names:
        column: dict[str, float] = {}
        for index, record in enumerate(records):
            value = record.get(key)
            if value is None or value == "":
                continue
            try:
                column[str(record["model"])] = parse_float(str(value))
            except ValueError as exc:
                raise FeatureFileError(path, f"record {index}: {key} is not a number ({value!r})") from exc
        baselines[str(key)[len(BASELINE_PREFIX):]] = column
    if baselines:
        info["baselines"] = baselines
    return scores, info


def read_ranking_records(path: PathLike) -> list[Mapping[str, Any]] | Mapping[str, Any]:
    """The records of what ``pedrank rank --json`` (or ``--csv``, for one metric) wrote, unbuilt.

    Returns
    -------
    list or dict
        A one-metric file's records (its CSV rows, or its JSON list, never empty), or a several-metric JSON object
        with a non-empty ``tables`` mapping (:meth:`pedrank.workflow.confidence.Agreement.to_json`).

    Raises
    ------
    FeatureFileError
        No such file, not readable, an agreement CSV, no records, or neither layout.
    """
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(path, "no such file")
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                rows: list[Mapping[str, Any]] = list(csv.DictReader(handle))
            if rows and "score" not in rows[0] and "mean_rank" in rows[0]:
                raise FeatureFileError(path, "an agreement CSV (several metrics) has no intervals' layout to plot; "
                                             "expected the JSON that `pedrank rank --metric a,b --json` writes")
            return rows
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise FeatureFileError(path, f"not a readable ranking file ({exc})") from exc
    if isinstance(content, list):
        if not content:
            raise FeatureFileError(path, "found no records; expected at least one model")
        return content
    if isinstance(content, Mapping) and isinstance(content.get("tables"), Mapping) and content["tables"]:
        return content
    raise FeatureFileError(path, "expected a JSON list of records or an object with 'tables' (pedrank rank --json)")
