"""What every file format of pedrank shares: the error that names the file, and how a number cell is read."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Union

from pedrank._engine.validation import PedrankValueError

__all__ = ["BASELINE_PREFIX", "FeatureFileError", "PathLike", "parse_float"]

#: A path given as text or as an ``os.PathLike``.
PathLike = Union[str, "os.PathLike[str]"]


class FeatureFileError(PedrankValueError):
    """A feature, label, reference, score or ground-truth file that cannot be used.

    Attributes
    ----------
    path : pathlib.Path
        The offending file (or directory).
    reason : str
        What is wrong with it.
    """

    def __init__(self, path: PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


#: A column named ``baseline_<name>`` (truth files, ``pedrank rank --baseline`` output) holds the baseline ``<name>``
#: (e.g. ``baseline_probe``): a trivial ranker judged beside the score, never an accuracy.
BASELINE_PREFIX = "baseline_"


def parse_float(text: str) -> float:
    """A table cell's number: empty, ``nan``, ``na``, ``none`` and ``null`` (any case) are NaN."""
    text = text.strip()
    return math.nan if text == "" or text.lower() in {"nan", "na", "none", "null"} else float(text)
