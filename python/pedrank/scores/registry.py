"""The score registry: every score is declared once, by the module that implements it.

A score module (``pedrank/scores/<module>.py``) ends with one :func:`register` call per score it defines, giving
the public function, where its pure-NumPy reference lives, the compiled kernels it owns (with the argument
kinds the fuzz harness generates for them), any array-API (torch) kernels it adds, and its memory estimate.
Everything that lists scores reads this registry: :data:`pedrank.METRICS` and :func:`pedrank.score`,
``pedrank.reference`` (its functions and its ``score``), the CLI, the memory guard's table and
``fuzz/fuzz_core.py``.

Score modules are found by convention, without a list to keep in step: a score module has a reference port of
the same module name in ``pedrank/reference/``. :func:`discover` imports ``pedrank.scores.<name>`` for every
``pedrank/reference/<name>.py``; a module with a reference but no score (``ped``) registers nothing.

Adding a score therefore touches five files (three without a compiled kernel): the C++ header with its kernel,
the binding in ``cpp/bindings.cpp`` (both only for a compiled kernel), ``pedrank/scores/<name>.py`` (the
function and its ``register`` call), ``pedrank/reference/<name>.py`` and the export line in ``pedrank/__init__.py``.
docs/architecture.md ("Adding a score") walks through one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pedrank._engine.validation import PedrankValueError

__all__ = ["ScoreEntry", "discover", "kernel_arguments", "metric_names", "register", "registered_array_kernel",
           "resolve_metric", "scores"]

#: Argument kinds the fuzz harness knows how to generate (and how to break), each a tuple
#: ``(kind, name, *details)``: ``("X",)`` features, ``("labels",)``, ``("n_classes",)``, ``("targets",)`` LogME's
#: regression targets or None, ``("flag", name)``, ``("real", name, typical)``, ``("integer", name, typical)``,
#: ``("vector", name, typical)`` of length D, ``("class_vector", name, typical)`` of length C,
#: ``("class_matrix", name)`` C x D, ``("out",)`` a destination array for X.
ARGUMENT_KINDS = ("X", "labels", "n_classes", "targets", "flag", "real", "integer", "vector", "class_vector",
                  "class_matrix", "out")

ArgumentSpec = tuple


@dataclass(frozen=True)
class ScoreEntry:
    """One score, as its module declares it.

    Attributes
    ----------
    name : str
        The metric name (``pedrank.score(..., metric=name)``, ``pedrank.<name>``).
    function : callable
        The public function ``function(features, labels, **options) -> float``.
    reference : str
        ``"module:attribute"`` of the pure-NumPy reference with the same signature.
    inputs : {"features", "predictions"}
        "predictions": the score reads a source model's outputs, so PED does not apply.
    kernels : mapping of str to tuple of argument specs
        The compiled kernels (``pedrank._core`` functions) this score owns, with the fuzz harness's argument
        kinds (see :data:`ARGUMENT_KINDS`). Shared kernels (class statistics, PED) are declared in
        :mod:`pedrank._engine.kernels`.
    array_kernels : mapping of str to callable
        Array-API implementations ``f(kernels, X, ...)`` of kernels that are not methods of
        :class:`pedrank._engine.array_kernels.ArrayKernels`; the torch backend finds them here by name.
    memory : callable or None
        ``memory(n_samples, n_features, n_classes, *, dtype_size, implementation) -> bytes``, the peak the
        score allocates besides the features (None: not estimated).
    forms : mapping of str to mapping
        Named forms of the score: options that turn the authors' quirks off (``{"exact": {"exact_dimension":
        True}}``). ``"<name>:<form>"`` names the form wherever a metric is named (:func:`resolve_metric`).
    pool : callable or None
        For scores whose authors scale each model's terms over the pool being ranked (NCTI, ETran):
        ``pool(models, labels, *, ped, backend, references, dataset, **options) -> RankTable``.
        :func:`pedrank.rank` then ranks with it, so it gives the authors' numbers; ``function`` gives one model's
        unscaled value.
    order : int
        Position in listings such as :data:`pedrank.METRICS` (ties broken by name).
    held_out : bool
        The score is an accuracy on held-out rows of the features it is given (k-NN's leave-one-out, ITM's
        split): PED, which moves each row by its own class's displacement, leaks those rows' labels into it, so
        combining the two warns (:class:`pedrank.PedLeakageWarning`).
    scale_range : (float, float), callable or None
        Where the score does not depend on the features' scale: the range of :func:`feature_scale` (the RMS of
        the centred features) within which multiplying the features by 2 moves the value by at most 1 % of
        itself, as measured (tests/test_feature_scale.py checks each bound on both sides). ``(0, inf)``:
        scale-invariant; None: it depends on the scale everywhere; a callable ``(n_samples, n_features,
        options) -> range or None`` where that depends on the shape or the form (LogME's authors' form with
        fewer samples than dimensions). :func:`pedrank.rank` warns (:class:`pedrank.FeatureScaleWarning`) when
        a model lies outside it and the pool's models differ in scale or width. Not used for scores of
        predictions.
    degenerate : callable or None
        ``degenerate(value, n_samples, n_features, n_classes) -> str or None``: why ``value`` is one the score
        takes for any features of this shape (H-score's C - 1 with N <= D + 1), or None. The score itself warns
        (:class:`pedrank.DegenerateScoreWarning`); :func:`pedrank.rank` asks this for the models scored in other
        processes, whose warnings do not come back.
    """

    name: str
    function: Callable[..., Any]
    reference: str
    inputs: str = "features"
    kernels: Mapping[str, tuple] = field(default_factory=dict)
    array_kernels: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    memory: Callable[..., int] | None = None
    forms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pool: Callable[..., Any] | None = None
    order: int = 1000
    held_out: bool = False
    scale_range: tuple[float, float] | Callable[..., tuple[float, float] | None] | None = None
    degenerate: Callable[[float, int, int, int], str | None] | None = None

    def invariant_range(self, n_samples: int, n_features: int,
                        options: Mapping[str, Any] | None = None) -> tuple[float, float] | None:
        """:attr:`scale_range` for features of this shape, with these options (a form's included)."""
        if callable(self.scale_range):
            return self.scale_range(n_samples, n_features, dict(options or {}))
        return self.scale_range

    def reference_function(self) -> Callable[..., Any]:
        """The reference implementation (imported on first use)."""
        module, _, attribute = self.reference.partition(":")
        return getattr(importlib.import_module(module), attribute)


def keyword_options(function: Callable[..., Any]) -> set[str]:
    """The names of the parameters ``function`` takes by keyword (``**kwargs`` not counted)."""
    import inspect

    return {name for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)}


def refuse_unknown_options(metric: str, options: Mapping[str, Any], accepted: set[str]) -> None:
    """A :class:`PedrankValueError` naming the ``options`` that ``metric`` does not take (not Python's TypeError
    from deep inside the call), with the ones it does (``accepted``)."""
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise PedrankValueError(f"{', '.join(unknown)}: not an option of {metric!r}; expected one of "
                                f"{sorted(accepted)}")


_SCORES: dict[str, ScoreEntry] = {}
_DISCOVERED = False


def register(entry: ScoreEntry) -> ScoreEntry:
    """Add a score to the registry (called once per score, at the end of its module)."""
    if entry.inputs not in ("features", "predictions"):
        raise PedrankValueError(f"inputs: expected 'features' or 'predictions', found {entry.inputs!r}")
    for kernel, arguments in entry.kernels.items():
        for spec in arguments:
            if not spec or spec[0] not in ARGUMENT_KINDS:
                raise PedrankValueError(f"kernel {kernel!r}: unknown argument kind {spec!r}; expected {ARGUMENT_KINDS}")
    previous = _SCORES.get(entry.name)
    if previous is not None and previous.function is not entry.function:
        raise PedrankValueError(f"score {entry.name!r} is registered twice (by {previous.function.__module__} and "
                         f"{entry.function.__module__})")
    _SCORES[entry.name] = entry
    return entry


def score_module_names() -> tuple[str, ...]:
    """Modules of pedrank that may define scores: those with a reference port of the same name."""
    folder = Path(__file__).resolve().parents[1] / "reference"
    return tuple(sorted(path.stem for path in folder.glob("*.py") if not path.stem.startswith("_")))


def discover() -> None:
    """Import every score module once, so that each registers its scores."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    for module in score_module_names():
        importlib.import_module(f"pedrank.scores.{module}")
    _DISCOVERED = True


def scores() -> dict[str, ScoreEntry]:
    """All registered scores, in listing order."""
    discover()
    return dict(sorted(_SCORES.items(), key=lambda item: (item[1].order, item[0])))


def kernel_arguments() -> dict[str, tuple]:
    """Every compiled kernel with its fuzz argument kinds: the shared ones, then each score's."""
    from pedrank._engine.kernels import SHARED_KERNEL_ARGUMENTS

    arguments = dict(SHARED_KERNEL_ARGUMENTS)
    for entry in scores().values():
        arguments.update(entry.kernels)
    return arguments


def registered_array_kernel(name: str) -> Callable[..., Any] | None:
    """The array-API implementation a score registered under ``name``, if any."""
    for entry in scores().values():
        if name in entry.array_kernels:
            return entry.array_kernels[name]
    return None


def metric_names() -> tuple[str, ...]:
    """Every name a metric can be given by: each score, then ``"<score>:<form>"`` for each of its forms."""
    entries = scores()
    return tuple(entries) + tuple(f"{name}:{form}" for name, entry in entries.items() for form in entry.forms)


def resolve_metric(metric: str, options: Mapping[str, Any] | None = None) -> tuple[ScoreEntry, dict[str, Any]]:
    """The entry and the options that a metric name stands for, merged with the caller's options.

    ``"logme"`` is the authors' form; ``"logme:exact"`` adds the form's options (``exact_dimension=True``).
    An option that the caller also gives with another value is refused, so a name never silently means two
    things.
    """
    if not isinstance(metric, str):
        raise PedrankValueError(f"metric: expected a name such as 'logme' or 'logme:exact', found {metric!r}")
    name, _, form = metric.partition(":")
    entries = scores()
    if name not in entries:
        raise PedrankValueError(f"metric: expected one of {list(metric_names())}, found {metric!r}")
    entry = entries[name]
    merged = dict(options or {})
    if form:
        if form not in entry.forms:
            known = [f"{name}:{other}" for other in entry.forms] or ["none"]
            raise PedrankValueError(f"metric: {name!r} has no form {form!r}; its forms: {known}")
        for key, value in entry.forms[form].items():
            if key in merged and merged[key] != value:
                raise PedrankValueError(
                    f"{key}={merged[key]!r} contradicts the form {metric!r}, which sets {key}={value!r}"
                )
            merged[key] = value
    return entry, merged
