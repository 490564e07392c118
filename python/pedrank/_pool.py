"""Scores whose value depends on the whole pool of models (NCTI, ETran as their authors combine them).

The authors of NCTI and ETran compute raw terms per model, then min-max scale each term across the pool
(``(t - min) / (max - min)``) and add them with weights. :func:`pool_scores` does that for any such score:
raw terms per model first (optionally after PED), then the pool step, returned as a :class:`RankTable`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._validation import PedrankValueError, with_context

__all__ = ["min_max_combine", "pool_scores"]


def min_max_combine(terms: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Min-max scale each column of ``terms`` over the pool, then weight and add.

    Parameters
    ----------
    terms : ndarray of shape (n_models, n_terms)
    weights : sequence of n_terms floats

    Returns
    -------
    ndarray of shape (n_models,)
        A column that is constant over the pool (one model, or equal terms) scales to 0 (the authors' code
        divides 0 by 0 there).
    """
    terms = np.asarray(terms, dtype=np.float64)
    low = terms.min(axis=0)
    spread = terms.max(axis=0) - low
    safe = np.where(spread > 0, spread, 1.0)
    scaled = np.where(spread > 0, (terms - low) / safe, 0.0)
    return scaled @ np.asarray(weights, dtype=np.float64)


def pool_scores(pool: Mapping[str, Any], labels: Any, *, metric: str, terms: Callable[..., Sequence[float]],
                weights: Sequence[float], ped: Any = False, backend: str = "auto",
                references: Mapping[str, Any] | None = None, dataset: str | None = None,
                **options: Any):
    """Raw terms per model (after PED when asked), then the pool's min-max combination, best first."""
    import pedrank

    from .rank import RankRecord, RankTable, _resolve_entry, _where
    from .scoring import ped_options as parse_ped_options

    if not isinstance(pool, Mapping) or len(pool) == 0:
        raise PedrankValueError(f"pool: expected a non-empty mapping of model names to features, found {pool!r:.80}")
    ped_options = parse_ped_options(ped)
    references = dict(references or {})
    names, rows, seconds, steps = [], [], [], []
    for name, entry in pool.items():
        try:
            features, model_labels, file_reference = _resolve_entry(name, entry, labels)
            start = time.perf_counter()
            step_count = None
            if ped_options is not None:
                options_ped = dict(ped_options)
                reference = references.get(name, file_reference if file_reference is not None
                                           else options_ped.pop("reference", None))
                options_ped.pop("reference", None)
                result = pedrank.ped(features, model_labels, reference=reference, backend=backend, **options_ped)
                features, step_count = result.features, int(result.steps)
            rows.append(np.asarray(terms(features, model_labels, backend=backend, **options), dtype=np.float64))
            seconds.append(time.perf_counter() - start)
        except ValueError as exc:
            raise with_context(exc, _where(name, entry, exc)) from exc
        names.append(str(name))
        steps.append(step_count)
    combined = min_max_combine(np.stack(rows), weights)
    records = [RankRecord(n, float(v), s, p) for n, v, s, p in zip(names, combined, seconds, steps)]
    order = sorted(range(len(records)), key=lambda i: (math.isnan(records[i].score), -records[i].score, i))
    return RankTable([records[i] for i in order], metric=metric, ped=ped_options is not None, dataset=dataset)
