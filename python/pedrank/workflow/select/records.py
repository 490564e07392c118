"""What :func:`pedrank.select` returns: :class:`SelectRecord` rows (a rank row with the extraction's bookkeeping)
in a :class:`SelectTable`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pedrank.workflow.entry import RankRecord
from pedrank.workflow.rank import RankTable

__all__ = ["SelectRecord", "SelectTable"]


@dataclass(frozen=True)
class SelectRecord(RankRecord):
    """A :class:`pedrank.workflow.rank.RankRecord` with the extraction's bookkeeping.

    Attributes
    ----------
    extract_seconds : float
        Wall time of the feature extraction (0 when the features came from the cache).
    cached : bool
        The features were read from the cache.
    n_features : int or None
    error : str or None
        Why the model has no score (its score is NaN); None when it was scored.
    """

    extract_seconds: float = 0.0
    cached: bool = False
    n_features: int | None = None
    error: str | None = None


class SelectTable(RankTable):
    """The ranking written by :func:`select`: a :class:`pedrank.RankTable` of :class:`SelectRecord`, best first
    (models that failed last, with their reason).

    Attributes
    ----------
    skipped : list of str
        The image files left out (``bad_images="skip"``), relative to the data folder; empty otherwise.
    """

    def __init__(self, records=(), *, skipped: Sequence[str] = (), **options: Any):
        super().__init__(records, **options)
        self.skipped = list(skipped)

    @property
    def errors(self) -> dict[str, str]:
        """``{model: reason}`` of the models without a score."""
        return {r.model: r.error for r in self if getattr(r, "error", None)}

    def _csv_columns(self) -> list[str]:
        columns = ["rank", "model", "score"]
        if self.n_resamples is not None:
            columns += ["p_best", "rank_low", "rank_high", "score_low", "score_high"]
        columns += ["seconds", "ped_steps", "metric", "extract_seconds", "cached", "n_features", "error"]
        if self.n_resamples is not None:
            columns += ["resamples", "top1_stability", "failed_resamples"]
        if self.dataset is not None:
            columns.append("dataset")
        return columns

    def to_string(self) -> str:
        lines = self._table_lines()
        extra = ["extract_s  cached"] + [
            f"{getattr(r, 'extract_seconds', 0.0):9.3f}  {'yes' if getattr(r, 'cached', False) else 'no':>6}"
            for r in self
        ]
        width = max(len(line) for line in lines[1:])
        body = [line.ljust(width) + "  " + more for line, more in zip(lines[1:], extra)]
        out = [lines[0], *body, *self._confidence_lines()]
        for name, reason in self.errors.items():
            out.append(f"error: {name}: {reason}")
        return "\n".join(out)
