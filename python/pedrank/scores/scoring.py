"""One entry point for every score, optionally after PED."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

from pedrank._engine.validation import PedLeakageWarning, PedrankValueError
from pedrank.scores.ped import ped as run_ped
from pedrank.scores.registry import metric_names, resolve_metric, scores

__all__ = ["METRICS", "METRIC_NAMES", "FEATURE_METRICS", "build_score", "ped_options", "score"]

_SCORES = scores()  # every score module registers itself (pedrank._registry)

#: Scores of a source model's outputs rather than of features: PED has nothing to move.
SOURCE_OUTPUT_METRICS = tuple(name for name, entry in _SCORES.items() if entry.inputs == "predictions")

PED_OPTIONS = ("reference", "radius", "elastic", "time_step", "exit_ratio", "max_steps", "dtype")


def ped_options(ped: Any) -> dict | None:
    """Read a ``ped=`` argument: None for no PED, else the dict of PED options."""
    if ped is False or ped is None:
        return None
    if ped is True:
        return {}
    if isinstance(ped, Mapping):
        unknown = sorted(set(ped) - set(PED_OPTIONS))
        if unknown:
            raise PedrankValueError(f"ped: unknown option(s) {unknown}; expected some of {list(PED_OPTIONS)}")
        return dict(ped)
    raise PedrankValueError(f"ped: expected True, False or a dict of PED options, found {ped!r}")


def refuse_ped_on_predictions(entry: Any) -> None:
    """Refuse PED for a score that reads a source model's predictions (its registry entry's ``inputs``)."""
    if entry.inputs == "predictions":
        raise PedrankValueError(
            f"ped: {entry.name} scores the source model's predictions, not features, so PED "
            "(which moves feature clusters) does not apply; use ped=False"
        )


def warn_ped_on_held_out(entry: Any, stacklevel: int = 3) -> None:
    """Warn (:class:`pedrank.PedLeakageWarning`) when PED is combined with a score that measures held-out
    accuracy on the rows PED moves (the registry entry's ``held_out``): PED moves each row by its own class's
    displacement, so the held-out rows' labels leak into the features the score classifies."""
    if getattr(entry, "held_out", False):
        warnings.warn(PedLeakageWarning(
            f"ped: {entry.name} measures accuracy on held-out rows of the features, and PED moves every row by "
            "its own class's displacement, so those rows' labels leak into them: the value is inflated, most for "
            f"weak models (pure noise features gain 10-17 accuracy points). Rank with {entry.name} without PED, or "
            "use an in-sample score with PED"), stacklevel=stacklevel)


def build_score(metrics: Mapping[str, Callable], run_ped: Callable) -> Callable:
    """Make a ``score`` function over a metric table (shared by pedrank and pedrank.reference)."""

    def score(features: Any, labels: Any, metric: str | None = None, *, ped: Any = False,
              **metric_options: Any) -> float:
        """Score features with any metric, optionally after PED.

        Parameters
        ----------
        features : array_like of shape (n_samples, n_features) or torch.Tensor
        labels : array_like of shape (n_samples,)
        metric : str or None, default None
            None: the recommended score (:data:`pedrank.RECOMMENDED`'s ``metric``, as :func:`pedrank.rank` and
            the command line). One of ``METRICS`` (the authors' form), or ``"<metric>:<form>"`` for a named form
            of it, e.g. ``"logme:exact"`` (``METRIC_NAMES`` lists them all).
        ped : bool or dict, default False
            True runs PED with its defaults before scoring; a dict gives PED options
            (reference, radius, elastic, time_step, exit_ratio, max_steps, dtype).
        **metric_options
            Passed to the metric (e.g. ``shrinkage`` for sfda, ``backend``).

        Returns
        -------
        float
        """
        if metric is None:
            from pedrank.workflow.recommendation import RECOMMENDED

            metric = RECOMMENDED.metric
        entry, metric_options = resolve_metric(metric, metric_options)
        metric = entry.name
        if metric not in metrics:
            raise PedrankValueError(f"metric: expected one of {sorted(metrics)}, found {metric!r}")
        options = ped_options(ped)
        if options is not None:
            refuse_ped_on_predictions(entry)
            warn_ped_on_held_out(entry)
            backend = metric_options.get("backend")
            extra = {} if backend is None else {"backend": backend}
            features = run_ped(features, labels, **options, **extra).features
        return metrics[metric](features, labels, **metric_options)

    return score


_METRIC_FUNCTIONS: dict[str, Callable] = {name: entry.function for name, entry in _SCORES.items()}

#: Names of the metrics :func:`score` accepts.
METRICS: tuple[str, ...] = tuple(_METRIC_FUNCTIONS)
#: Every metric name :func:`score`, :func:`pedrank.rank` and the CLI accept: each metric, then its named forms
#: (``"logme:exact"``, ...).
METRIC_NAMES: tuple[str, ...] = metric_names()
#: The metrics that score features (and so can run after PED).
FEATURE_METRICS: tuple[str, ...] = tuple(m for m in METRICS if m not in SOURCE_OUTPUT_METRICS)

score = build_score(_METRIC_FUNCTIONS, run_ped)
