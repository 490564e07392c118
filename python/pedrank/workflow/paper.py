"""The PED paper's numbers, shipped with pedrank: ground-truth accuracies and the reported weighted tau.

Source: Li et al., "Exploring Model Transferability through the Lens of Potential Energy", ICCV 2023, and its
public evaluation code.

``data/ssl_finetune_accuracy.csv``
    Fine-tuned top-1 accuracy (%) of 12 self-supervised ResNet-50 models on 11 downstream datasets: the ground
    truth that transferability scores are ranked against. The values follow the paper's public evaluation
    code. The supplementary (Table 2) prints five of them differently, all typos on inspection:
    cifar10 moco-v1 84.15 (code: 94.15), cifar10 pcl-v1 86.42 (96.42), voc2007 pcl-v1 91.91 (81.91),
    dtd infomin 73.74 (73.47), dtd simclr-v2 94.71 (74.71). sun397 is only in the code.

``data/paper_weighted_tau_ssl.csv``
    The weighted Kendall tau (``scipy.stats.weightedtau`` with its defaults) that the paper reports between
    each metric's scores and that ground truth, per dataset. Variant ``default_k`` is the main result table
    (elastic coefficient k = 1.0); ``grid_k`` is the supplementary Table 1 (k grid-searched over 0.6, 0.8, 1.0,
    1.2, 1.5, 2.0). NLEEP, PARC and the three plain baselines are the same in both (variant ``baseline``).
"""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

from pedrank._engine.validation import PedrankValueError

__all__ = [
    "DATA_DIR",
    "GROUND_TRUTH_FILE",
    "REPORTED_TAU_FILE",
    "models",
    "datasets",
    "ground_truth",
    "reported_weighted_tau",
    "reported_methods",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
GROUND_TRUTH_FILE = DATA_DIR / "ssl_finetune_accuracy.csv"
REPORTED_TAU_FILE = DATA_DIR / "paper_weighted_tau_ssl.csv"


@functools.lru_cache(maxsize=None)
def _accuracy_table() -> dict[str, dict[str, float]]:
    with GROUND_TRUTH_FILE.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        model = row.pop("model")
        for dataset, value in row.items():
            table.setdefault(dataset, {})[model] = float(value)
    return table


@functools.lru_cache(maxsize=None)
def _tau_table() -> dict[tuple[str, str], dict[str, float]]:
    with REPORTED_TAU_FILE.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    table: dict[tuple[str, str], dict[str, float]] = {}
    for row in rows:
        key = (row.pop("method"), row.pop("variant"))
        table[key] = {dataset: float(value) for dataset, value in row.items()}
    return table


def models() -> tuple[str, ...]:
    """The 12 self-supervised models of the paper, in the ground-truth file's order."""
    first = next(iter(_accuracy_table().values()))
    return tuple(first)


def datasets() -> tuple[str, ...]:
    """The 11 datasets with ground truth (the paper reports weighted tau on 10 of them: not sun397)."""
    return tuple(_accuracy_table())


def ground_truth(dataset: str) -> dict[str, float]:
    """Fine-tuned top-1 accuracy (%) of each model on ``dataset``: ``{model: accuracy}``."""
    table = _accuracy_table()
    if dataset not in table:
        raise PedrankValueError(f"dataset={dataset!r} has no ground truth; expected one of {sorted(table)}")
    return dict(table[dataset])


def reported_methods() -> tuple[tuple[str, str], ...]:
    """The (method, variant) rows of the reported-tau table, e.g. ``("SFDA+PED", "default_k")``."""
    return tuple(_tau_table())


def reported_weighted_tau(method: str, dataset: str, *, variant: str = "default_k") -> float:
    """The weighted tau the paper reports for ``method`` (e.g. ``"LogME+PED"``) on ``dataset``.

    Plain methods (no PED) only have the ``baseline`` variant, which is returned whatever ``variant`` says.
    NaN when the paper reports nothing for that dataset (sun397).
    """
    table = _tau_table()
    row = table.get((method, variant)) or table.get((method, "baseline"))
    if row is None:
        known = sorted({name for name, _ in table})
        raise PedrankValueError(f"method={method!r} is not in the paper's table; expected one of {known}")
    return row.get(dataset, math.nan)
