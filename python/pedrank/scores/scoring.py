"""One entry point for every score, optionally after PED."""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Mapping

from pedrank._engine.validation import FeatureScaleWarning, PedLeakageWarning, PedrankValueError
from pedrank.scores.ped import ped as run_ped
from pedrank.scores.registry import keyword_options, metric_names, refuse_unknown_options, resolve_metric, scores

__all__ = ["METRICS", "METRIC_NAMES", "FEATURE_METRICS", "build_score", "ped_options", "scale_dependence", "score",
           "warn_scale_dependence"]

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


#: Pool scales within this factor of each other (and of one width) are not warned about: a common factor moves
#: every model alike.
TOLERATED_SCALE_RATIO = 1.5


def scale_dependence(entry: Any, options: Mapping[str, Any], shapes: Mapping[str, tuple[float, int, int]],
                     label: str | None = None) -> str | None:
    """Why a ranking of these models by this score may follow their features' scale, or None.

    Parameters
    ----------
    entry : ScoreEntry
        The score (its ``scale_range``).
    options : mapping
        The metric's options, a form's included (LogME's ``exact_dimension`` changes its range).
    shapes : mapping of str to (float, int, int)
        Per scored model: ``(feature_scale, n_samples, n_features)`` of the features as given (before PED);
        see :func:`pedrank._engine.validation.feature_scale`.
    label : str, optional
        The metric's name in the message (``"logme:exact"``); default the score's.

    Returns
    -------
    str or None
        The warning's text when at least one model lies outside the score's scale-invariant range and the
        models differ in scale by more than :data:`TOLERATED_SCALE_RATIO` or in width; else None.
    """
    if entry.inputs == "predictions":
        return None
    known = {name: shape for name, shape in shapes.items() if math.isfinite(shape[0]) and shape[0] > 0}
    if len(known) < 2:
        return None
    low = min(known, key=lambda name: known[name][0])
    high = max(known, key=lambda name: known[name][0])
    ratio = known[high][0] / known[low][0]
    widths = sorted({shape[2] for shape in known.values()})
    if ratio <= TOLERATED_SCALE_RATIO and len(widths) == 1:
        return None

    def inside(range_: tuple[float, float] | None, scale: float) -> bool:
        return range_ is not None and range_[0] <= scale <= range_[1]

    outside = [name for name, (scale, n, d) in known.items() if not inside(entry.invariant_range(n, d, options), scale)]
    if not outside:
        return None
    alternatives = []
    own_first = sorted(metric_names(), key=lambda name: name.partition(":")[0] != entry.name)  # stable sort
    for name in own_first:
        other, other_options = resolve_metric(name)
        if other.inputs == "features" and all(inside(other.invariant_range(n, d, other_options), scale)
                                              for scale, n, d in known.values()):
            alternatives.append(name)
    differ = f"scale by x{ratio:.3g} ({low!r} {known[low][0]:.3g}, {high!r} {known[high][0]:.3g})"
    if len(widths) > 1:
        differ += f" and in width ({widths[0]} to {widths[-1]} dimensions)"
    shown = ", ".join(repr(name) for name in outside[:4])
    if len(outside) > 4:
        shown += f" and {len(outside) - 4} more"
    return (
        f"{label or entry.name} depends on the features' scale (the RMS of the centred features) at the scale of "
        f"{shown}, and the models differ in {differ}: its ranking may follow the scale rather than what the features "
        "encode. Rank with a score that does not depend on it here"
        + (f" ({', '.join(alternatives[:6])})" if alternatives else "")
        + ", or compare with the ranking of each model's features divided by its scale (RankTable.feature_scales): "
        "where the two disagree, the scale decides"
    )


def warn_scale_dependence(entry: Any, options: Mapping[str, Any], shapes: Mapping[str, tuple[float, int, int]],
                          label: str | None = None, stacklevel: int = 3) -> None:
    """Warn (:class:`pedrank.FeatureScaleWarning`) with :func:`scale_dependence`'s text, if any."""
    message = scale_dependence(entry, options, shapes, label)
    if message is not None:
        warnings.warn(FeatureScaleWarning(message), stacklevel=stacklevel)


def _refuse_unknown_options(metric: str, function: Callable, options: Mapping[str, Any]) -> None:
    """:func:`refuse_unknown_options` against what ``function`` takes besides the features and labels (nothing
    refused when it takes ``**kwargs``)."""
    import inspect

    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values()):
        return
    refuse_unknown_options(metric, options, keyword_options(function) - {"features", "labels"})


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
        _refuse_unknown_options(metric, metrics[metric], metric_options)
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
