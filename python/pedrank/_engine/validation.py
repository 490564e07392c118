"""Input validation shared by every score, backend and the command line.

Every public entry point funnels its arrays through the helpers here, so that one
set of rules (and one wording of the error messages) applies everywhere:

* features are 2-D, numeric, real and finite; float32 and float64 are kept as they
  are (no copy), float16 and integer features are up-cast (a copy: the caller's
  array is never written to);
* labels are 1-D with one entry per sample, any values (ints, strings,
  non-contiguous), mapped to ``0..C-1`` in sorted order of their values;
* torch tensors are accepted without importing torch here: they are recognised by
  the module of their type.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from pedrank._engine.constants import SFDA_ZERO_SCATTER_FACTOR

__all__ = [
    "PedrankError",
    "PedrankValueError",
    "UninformativeFeaturesError",
    "NonFiniteScoreError",
    "MissingDependencyError",
    "PedLeakageWarning",
    "FeatureScaleWarning",
    "DegenerateScoreWarning",
    "with_context",
    "is_torch_tensor",
    "to_numpy",
    "feature_scale",
    "check_features",
    "check_informative",
    "check_labels",
    "check_classification",
    "check_targets",
    "check_positive",
    "check_fraction",
    "check_int",
    "check_bool",
    "check_finite_score",
    "finite_score",
    "rescaled_for_range",
    "LARGEST_FEATURE",
    "SMALLEST_FEATURE",
    "INFORMATIVE_RANGE_ULPS",
    "INFORMATIVE_RANGE_FLOOR",
    "IDENTICAL_ROWS_SHARE",
]

#: Largest |feature| accepted: sums of squares of larger float64 values overflow.
LARGEST_FEATURE = 1e150
#: Smallest largest-|feature| accepted (features that are all zero are refused as uninformative instead): squares of
#: smaller values approach float64's underflow (2.2e-308), and the distances and variances the scores compute lose
#: all their digits (k-NN, LEAD, ITM and H-score fell to chance level at 1e-200 and ranked a good model below
#: noise). Only float64 can get there (float32's smallest subnormal is 1.4e-45).
SMALLEST_FEATURE = 1e-150


class PedrankError(Exception):
    """Base of every error pedrank raises on purpose: catch this to catch them all.

    Subclasses: :class:`PedrankValueError` (invalid input, a ``ValueError``; file errors such as
    :class:`pedrank.workflow.io.FeatureFileError` derive from it), :class:`pedrank.InsufficientMemoryError` (a
    ``MemoryError``, raised before allocating) and :class:`MissingDependencyError` (an ``ImportError``: an
    optional dependency such as torch is not installed).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by class, message and attributes (not by calling __init__ again, whose signature varies):
        # an error raised in a worker process (pedrank.rank(executor=...), a Dask task) arrives whole.
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


def _rebuild_error(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class PedrankValueError(PedrankError, ValueError):
    """Invalid input: the message names the argument, what was found and what was expected."""


class UninformativeFeaturesError(PedrankValueError):
    """The features cannot tell any two samples apart (a dead model): every column is constant, or varies only
    at the rounding level of its own values, or almost every row is one identical row
    (:func:`check_informative`). Raised before any score runs, because each score would otherwise
    turn the rounding noise into a number, and some (H-score, PACTran, NCTI, LogME) would rank such a model
    above informative ones."""


class NonFiniteScoreError(PedrankValueError):
    """A score (or one of its terms) came out NaN or infinite on these features; the message says why."""


class PedLeakageWarning(UserWarning):
    """PED was combined with a score that measures held-out accuracy on the features' own rows (k-NN's
    leave-one-out, ITM's held-out split). PED moves every row by its class's displacement, so the held-out rows
    carry their own labels into the features the score then classifies: the accuracy is inflated (on pure noise
    features, 6 classes, k-NN rose from 0.15 to 0.24 and ITM from 0.22 to 0.39, chance 0.17) and a weak model
    gains the most. Judged against fine-tuned accuracy, ITM + PED is far below ITM (benchmarks/zoo/evidence.md)."""


class FeatureScaleWarning(UserWarning):
    """The models of a pool differ in feature scale (or width) and the score depends on the scale there: its
    ranking may follow the features' scale rather than what they encode. Measured on 600 x 64 features, a
    model's TransRate and ETran fall below those of a clearly worse model when its features are halved, and the
    authors' LogME with fewer samples than dimensions rises from 7.8 to 10.0 when 1,000 x 2,048 features are
    multiplied by 10 (its ``exact`` form stays at 1.238). Each score declares where it is scale-invariant
    (``ScoreEntry.scale_range``); docs/robustness.md lists them."""


class DegenerateScoreWarning(UserWarning):
    """A score came out at a value it takes for any features of this shape, so it cannot tell models apart
    (the value is still returned, as the authors' code computes it). The authors' H-score is exactly C - 1 for
    any features whose N centred samples are linearly independent, generically whenever N <= D + 1; SFDA is
    1.0 whenever its within-class scatter is singular (N - C < D) and its adaptive shrinkage is tiny, pure noise
    included. The message says what to use instead."""

class MissingDependencyError(PedrankError, ImportError):
    """An optional dependency (torch, matplotlib) that the call needs is not installed; the message says how to
    install it."""


def with_context(error: ValueError, prefix: str) -> PedrankValueError:
    """``error`` with its message prefixed by ``prefix`` (e.g. the model or file it concerns), keeping its class.

    A :class:`PedrankValueError` (or subclass, e.g. a file error with its ``path``) keeps its class and
    attributes; any other ``ValueError`` becomes a :class:`PedrankValueError`. Raise the result ``from error``.
    """
    message = f"{prefix}: {error}"
    if not isinstance(error, PedrankValueError):
        return PedrankValueError(message)
    cls = type(error)
    wrapped = cls.__new__(cls)
    wrapped.__dict__.update(error.__dict__)
    wrapped.args = (message,)
    return wrapped


def is_torch_tensor(value: Any) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch)."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return type(value).__name__


def _first_bad_row(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad.any(axis=1) if bad.ndim == 2 else bad)[0])


def _is_sparse(value: Any) -> bool:
    """True for a scipy.sparse matrix or array (checked without importing scipy.sparse)."""
    return type(value).__module__.startswith("scipy.sparse") and hasattr(value, "toarray")


def check_features(features: Any, *, name: str = "features", min_samples: int = 2,
                   informative: bool = True) -> Any:
    """Validate a feature matrix.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Real-valued features. float32/float64 NumPy arrays (C- or Fortran-ordered,
        strided views, memmaps) are returned as they are, without a copy; float16,
        integer and boolean arrays are up-cast to float32 / float64 (a copy).
    name : str
        Argument name used in error messages.
    min_samples : int
        Fewest rows accepted.
    informative : bool, default True
        Refuse features that cannot tell any two samples apart (see :func:`check_informative`): model features
        to be scored. False where a few rows are transformed by a fitted estimator (one row is fine there).

    Returns
    -------
    numpy.ndarray or torch.Tensor of shape (n_samples, n_features)
        float32 or float64; a torch tensor stays a tensor on its device.

    Raises
    ------
    PedrankValueError
        Not 2-D, not real-valued, too few samples, no feature columns, non-finite values (the message counts
        them and names the first row), a value beyond :data:`LARGEST_FEATURE` (1e150) in magnitude, or, with
        ``informative=True``, a largest magnitude below :data:`SMALLEST_FEATURE` (1e-150) that is not 0: the
        accepted range of the features' largest |value| is [1e-150, 1e150] (NumPy and torch alike). Rescale
        features outside it (e.g. divide by their standard deviation).
    UninformativeFeaturesError
        ``informative=True`` and the features cannot tell samples apart (:func:`check_informative`); all-zero
        and constant features get this error, not the range one.
    """
    if is_torch_tensor(features):
        return _check_torch_features(features, name=name, min_samples=min_samples, informative=informative)
    if _is_sparse(features):
        raise PedrankValueError(
            f"{name}: found a sparse {type(features).__name__}; sparse input is not supported, expected a dense "
            "2-D array (call .toarray() first)"
        )
    _refuse_masked(features, name)
    try:
        array = np.asarray(features)
    except Exception as exc:  # ragged lists and the like
        raise PedrankValueError(
            f"{name}: could not be read as a numeric array ({exc}); expected a 2-D array "
            "of shape (n_samples, n_features)"
        ) from None
    if array.ndim != 2:
        raise PedrankValueError(
            f"{name}: expected a 2-D array of shape (n_samples, n_features), found "
            f"{_describe(array)} with {array.ndim} dimension(s)"
        )
    if array.dtype.kind in "biu":
        array = array.astype(np.float64)
    elif array.dtype.kind == "f" and not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))  # the kernels read native floats: a native copy
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype.kind != "f" or array.dtype.itemsize > 8:
        raise PedrankValueError(
            f"{name}: expected real numbers (float16/32/64 or integers), found dtype {array.dtype}"
        )
    _check_counts(array.shape, name=name, min_samples=min_samples)
    if array.size:
        # Per-column min/max propagate NaN and expose inf without an N x D boolean temporary, and the same two
        # passes give each column's range for the informativeness test (no extra pass over the features).
        column_lowest, column_highest = array.min(axis=0), array.max(axis=0)
        lowest, highest = float(column_lowest.min()), float(column_highest.max())
        if not (np.isfinite(lowest) and np.isfinite(highest)):
            _raise_non_finite(~np.isfinite(array), name=name)
        _check_values(array, column_lowest, column_highest, np.finfo(array.dtype).eps, name=name,
                      informative=informative)
    return array


def _check_values(features: Any, lowest: Any, highest: Any, eps: float, *, name: str, informative: bool) -> None:
    """The checks of finite features (NumPy or torch) given their per-column extremes, in this order: the largest
    |value| is at most LARGEST_FEATURE; with ``informative``, the features are informative (all-zero and
    constant ones get that error) and their largest |value| is not below SMALLEST_FEATURE (0 is left to the
    informativeness test). Without ``informative`` (a few rows through a fitted linear map, a PED reference's
    mean and std) tiny values are fine: nothing squares them into a score."""
    peak = max(float(highest.max()), -float(lowest.min()))
    if peak > LARGEST_FEATURE:  # only float64 can get there (float32 stops at 3.4e38)
        if is_torch_tensor(features):
            row = int(to_numpy((features.abs() > LARGEST_FEATURE).any(dim=1).nonzero())[0, 0])
        else:
            row = _first_bad_row(np.abs(features) > LARGEST_FEATURE)
        raise PedrankValueError(
            f"{name}: found |value| up to {peak:.3g} (first in row {row}); values "
            f"beyond {LARGEST_FEATURE:.0e} overflow float64 sums of squares. Rescale the features "
            "(e.g. divide by their standard deviation)"
        )
    if not informative:
        return
    _refuse_uninformative(features, to_numpy(lowest), to_numpy(highest), eps, name=name)
    if 0.0 < peak < SMALLEST_FEATURE:  # only float64 can get there (float32's subnormals stop at 1.4e-45)
        raise PedrankValueError(
            f"{name}: found |value| only up to {peak:.3g}; features whose largest |value| is below "
            f"{SMALLEST_FEATURE:.0e} underflow float64 squares, and the distances and variances the scores "
            "compute lose all their digits. Rescale the features (e.g. divide by their standard deviation)"
        )


#: A column carries information only when its range (max - min over the samples) exceeds this many rounding
#: units of its own magnitude: ``max - min > INFORMATIVE_RANGE_ULPS * eps * max(|max|, |min|)``, with eps that
#: of the features' dtype. Below that, the differences between samples are what rounding makes of one constant
#: value (a dead backbone, a frozen layer, the jitter of a batched GEMM), and the scores that normalise by the
#: features' variance invert that noise as if it were signal. Measured per column, so an informative column
#: beside a large constant one (a bias feature) still counts.
INFORMATIVE_RANGE_ULPS = 16
#: ... and never below this fraction of its magnitude, whatever the dtype: a float64 pipeline of a dead network
#: accumulates more than 16 ulps (1e-13 relative jitter scored above informative features under PACTran), and no
#: feature extractor resolves a change of 1e-10 of a value.
INFORMATIVE_RANGE_FLOOR = 1e-10
#: Rows that are bit-identical to one another, as a share of all rows, beyond which the features are a dead model
#: with a few exceptions (an image that broke the constant output): one or two differing rows out of 120 scored
#: above informative features under TransRate, PACTran and GBC's exact form.
IDENTICAL_ROWS_SHARE = 0.95
#: Rows drawn (seeded, so the decision is deterministic) to look for a dominant row before the full count.
_IDENTICAL_ROWS_SAMPLE = 64


def check_informative(features: Any, *, name: str = "features") -> None:
    """Refuse features that cannot tell any two samples apart.

    Parameters
    ----------
    features : ndarray or torch.Tensor of shape (n_samples, n_features)
        Finite features (already through :func:`check_features`).
    name : str
        Argument name used in error messages.

    Raises
    ------
    UninformativeFeaturesError
        Every column's range is at most max(``INFORMATIVE_RANGE_ULPS`` eps, ``INFORMATIVE_RANGE_FLOOR``) of the
        column's largest magnitude (identical rows, constant features, rounding-level jitter around constants),
        or more than ``IDENTICAL_ROWS_SHARE`` of the rows are one identical row.
    """
    if is_torch_tensor(features):
        import torch

        lowest, highest = to_numpy(features.amin(dim=0)), to_numpy(features.amax(dim=0))
        _refuse_uninformative(features, lowest, highest, torch.finfo(features.dtype).eps, name=name)
        return
    array = np.asarray(features)
    _refuse_uninformative(array, array.min(axis=0), array.max(axis=0), np.finfo(array.dtype).eps, name=name)


def _refuse_uninformative(features: Any, lowest: np.ndarray, highest: np.ndarray, eps: float, *, name: str) -> None:
    """Both tests of :func:`check_informative`, given the features' per-column extremes (which
    :func:`check_features` already has from its finiteness pass)."""
    _check_column_ranges(lowest, highest, eps, tuple(features.shape), name=name)
    _check_identical_rows(features, name=name)


def _check_identical_rows(features: Any, *, name: str) -> None:
    """Refuse features in which more than IDENTICAL_ROWS_SHARE of the rows are one and the same row.

    A few seeded rows are compared first (cheap); only when one of them repeats in most of that sample are all
    rows counted against it, a block at a time.
    """
    n_samples = features.shape[0]
    if n_samples < 20:
        return  # too few rows for a share to mean anything
    rows = np.sort(np.random.default_rng(0).choice(n_samples, size=min(_IDENTICAL_ROWS_SAMPLE, n_samples),
                                                   replace=False))
    sample = np.ascontiguousarray(to_numpy(features[rows]))
    keys, counts = np.unique(sample.view(np.dtype((np.void, sample.dtype.itemsize * sample.shape[1]))),
                             return_counts=True)
    if counts.max() < IDENTICAL_ROWS_SHARE * 0.8 * len(rows):
        return
    mode = sample[np.flatnonzero(sample.view(keys.dtype).ravel() == keys[counts.argmax()])[0]]
    same = 0
    for start in range(0, n_samples, 4096):
        block = to_numpy(features[start:start + 4096])
        same += int(np.count_nonzero((block == mode).all(axis=1)))
    if same > IDENTICAL_ROWS_SHARE * n_samples:
        raise UninformativeFeaturesError(
            f"{name}: carry no information: {same} of the {n_samples} rows are one identical row (more than "
            f"{IDENTICAL_ROWS_SHARE:.0%}), the others differ: a dead model with a few exceptions (an input that "
            "broke its constant output) gives this; no score can rank it. Expected features that vary between "
            "samples"
        )


def _check_column_ranges(lowest: np.ndarray, highest: np.ndarray, eps: float, shape: tuple, *, name: str) -> None:
    lowest = np.asarray(lowest, dtype=np.float64)
    highest = np.asarray(highest, dtype=np.float64)
    spread = highest - lowest
    magnitude = np.maximum(np.abs(lowest), np.abs(highest))
    if np.any(spread > max(INFORMATIVE_RANGE_ULPS * eps, INFORMATIVE_RANGE_FLOOR) * magnitude):
        return
    n_samples, n_features = shape
    if not np.any(spread > 0):
        cause = (f"all {n_samples} rows are identical (each of the {n_features} column(s) is constant)")
    else:
        relative = float(np.max(spread / np.where(magnitude > 0, magnitude, 1.0)))
        cause = (f"each of the {n_features} column(s) varies only at the rounding level of its own values "
                 f"(largest range {relative:.3g} of the column's magnitude; at most "
                 f"max({INFORMATIVE_RANGE_ULPS} x eps, {INFORMATIVE_RANGE_FLOOR:g}) = "
                 f"{max(INFORMATIVE_RANGE_ULPS * eps, INFORMATIVE_RANGE_FLOOR):.3g} is rounding)")
    raise UninformativeFeaturesError(
        f"{name}: carry no information: {cause}. A dead model, a frozen layer or a broken extraction gives "
        "this; no score can rank it. Expected features that vary between samples"
    )


def _check_counts(shape: tuple, *, name: str, min_samples: int) -> None:
    n_samples, n_features = shape
    if n_samples < min_samples:
        raise PedrankValueError(
            f"{name}: found {n_samples} sample(s) (shape {shape}); at least {min_samples} are needed"
        )
    if n_features < 1:
        raise PedrankValueError(f"{name}: found 0 feature columns (shape {shape}); expected at least 1")


def _raise_non_finite(bad: np.ndarray, *, name: str) -> None:
    raise PedrankValueError(
        f"{name}: found {int(bad.sum())} non-finite value(s) (NaN or inf); the first is in "
        f"row {_first_bad_row(bad)}. Expected finite features: drop or repair those samples"
    )


def check_finite_score(value: float, *, metric: str, hint: str) -> float:
    """Return ``value`` if finite; otherwise raise an error that explains the degenerate input."""
    if not np.isfinite(value):
        raise NonFiniteScoreError(f"{metric}: the score is {value} on these features: {hint}")
    return value


def finite_score(metric: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a public score function so that it returns a finite float or raises :class:`NonFiniteScoreError`.

    The last line of defence: each score refuses the inputs it knows to be degenerate with its own reason; this
    catches what slips through (underflow, overflow in its arithmetic), so that no NaN or inf reaches a ranking.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> float:
            value = float(function(*args, **kwargs))
            if not math.isfinite(value):
                shape = tuple(getattr(args[0], "shape", ())) if args else ()
                raise NonFiniteScoreError(
                    f"{metric}: the score is {value} on features of shape {shape}: its arithmetic over- or "
                    "underflowed on these values (they may be at an extreme scale: standardise them), or the "
                    "features are degenerate. No ranking can use it"
                )
            return value

        return wrapper

    return decorate


#: Scale-invariant steps that square or multiply features (PCA, Ledoit-Wolf's fourth moments) over- or underflow
#: float64 when the features' largest magnitude lies outside this range; :func:`rescaled_for_range` brings them in.
SAFE_MAGNITUDE = (1e-50, 1e50)


def rescaled_for_range(array: np.ndarray) -> np.ndarray:
    """``array`` times a power of two that brings its largest magnitude near 1, when it lies outside
    :data:`SAFE_MAGNITUDE`; otherwise ``array`` itself (same object, same bits).

    For steps whose result does not depend on the features' scale: multiplying by a power of two is exact, so a
    scale-invariant result is the same number it would be at an ordinary scale, where squares and fourth powers
    neither overflow nor underflow. Never writes to ``array``.
    """
    peak = float(np.max(np.abs(array))) if array.size else 0.0
    if peak == 0.0 or SAFE_MAGNITUDE[0] <= peak <= SAFE_MAGNITUDE[1]:
        return array
    _, exponent = np.frexp(peak)
    return np.ldexp(array, -int(exponent))


def _check_torch_features(tensor: Any, *, name: str, min_samples: int, informative: bool = True) -> Any:
    if tensor.ndim != 2:
        raise PedrankValueError(
            f"{name}: expected a 2-D tensor of shape (n_samples, n_features), found "
            f"{_describe(tensor)}"
        )
    if tensor.is_complex():
        raise PedrankValueError(f"{name}: expected real numbers, found dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.double()
    elif tensor.element_size() < 4:  # float16 / bfloat16
        tensor = tensor.float()
    _check_counts(tuple(tensor.shape), name=name, min_samples=min_samples)
    finite = tensor.isfinite()
    if not bool(finite.all()):
        _raise_non_finite((~finite).cpu().numpy(), name=name)
    if tensor.numel():
        import torch

        # per-column extremes on the tensor's own device: only 2 x D values come to the host
        _check_values(tensor, tensor.amin(dim=0), tensor.amax(dim=0), torch.finfo(tensor.dtype).eps, name=name,
                      informative=informative)
    return tensor


def feature_scale(features: Any, *, block_rows: int = 4096) -> float:
    """The scale of a feature matrix: the root mean square of its centred entries, ``sqrt(trace(cov) / D)``
    (population covariance; 1.0 for standardised features, about ``1 / sqrt(D)`` for L2-normalised ones).

    Parameters
    ----------
    features : array_like or torch.Tensor of shape (n_samples, n_features)
        Any array the scores accept (NumPy, memmap, torch, SciPy sparse); read in blocks of ``block_rows``
        rows, so no full float64 copy is made. Never modified.

    Returns
    -------
    float
        The scale, in the features' own units; NaN for non-finite features.
    """
    n_rows, n_columns = int(features.shape[0]), int(features.shape[1])
    if not n_rows or not n_columns:
        return 0.0
    shift = np.zeros(n_columns)
    total = np.zeros(n_columns)
    squares = np.zeros(n_columns)
    for start in range(0, n_rows, block_rows):
        block = features[start:start + block_rows]
        block = np.asarray(block.toarray() if _is_sparse(block) else to_numpy(block), dtype=np.float64)
        if start == 0:
            shift = block.mean(axis=0)  # sums of shifted values keep their precision when |mean| >> std
        block = block - shift
        total += block.sum(axis=0)
        squares += np.einsum("ij,ij->j", block, block)
    mean = total / n_rows
    variance = np.maximum(squares / n_rows - mean * mean, 0.0)
    return float(np.sqrt(variance.mean()))


def _refuse_masked(values: Any, name: str) -> None:
    """A NumPy masked array with masked entries: NumPy's conversions drop the mask and keep the values under it."""
    if isinstance(values, np.ma.MaskedArray) and np.ma.count_masked(values):
        raise PedrankValueError(
            f"{name}: found a masked array with {int(np.ma.count_masked(values))} masked value(s); pedrank does not "
            "read masks (the values under them would be used); expected a plain array: fill or drop them first"
        )


def _refuse_mixed_types(values: Any, name: str) -> None:
    """A list or tuple mixing text with other values: NumPy would turn ``1`` into ``"1"`` and merge the two."""
    if isinstance(values, (list, tuple)):
        kinds = {isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in values}
        if len(kinds) > 1:
            example = next(v for v in values if not isinstance(v, (str, bytes, np.str_, np.bytes_)))
            raise PedrankValueError(
                f"{name}: found text mixed with other values (e.g. {example!r} of type {type(example).__name__}); "
                "expected labels of one type (NumPy would read every one as text, so 1 and '1' would be one class)"
            )


def to_numpy(values: Any, dtype: Any = None) -> np.ndarray:
    """``values`` as a NumPy array (of ``dtype`` when given); a torch tensor is detached and
    copied to the host."""
    if is_torch_tensor(values):
        tensor = values.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()  # NumPy has no bfloat16
        values = tensor.numpy()
    return np.asarray(values, dtype=dtype)


def check_labels(
    labels: Any, n_samples: int, *, name: str = "labels", min_classes: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Validate class labels and map them to ``0..C-1``.

    Parameters
    ----------
    labels : array_like of shape (n_samples,)
        Any hashable, sortable values: integers (any range, gaps allowed), strings,
        booleans. A torch tensor is moved to the host.
    n_samples : int
        Number of feature rows the labels must match.
    name : str
        Argument name used in error messages.
    min_classes : int
        Fewest distinct classes accepted.

    Returns
    -------
    encoded : ndarray of shape (n_samples,), int64
        Class index of each sample, in sorted order of the label values.
    classes : ndarray of shape (n_classes,)
        The distinct label values; ``classes[encoded]`` gives the labels back.
    """
    _refuse_masked(labels, name)
    _refuse_mixed_types(labels, name)
    array = to_numpy(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        raise PedrankValueError(
            f"{name}: found shape {array.shape}; expected a 1-D array of shape ({n_samples},) "
            "(flatten the column vector, or use regression=True for targets)"
        )
    if array.ndim != 1:
        raise PedrankValueError(
            f"{name}: expected a 1-D array of shape ({n_samples},), found shape {array.shape}"
        )
    if array.shape[0] != n_samples:
        raise PedrankValueError(
            f"{name}: found {array.shape[0]} labels but the features have {n_samples} rows; "
            "expected one label per sample"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise PedrankValueError(f"{name}: found {bad} NaN/inf label(s); expected a class for every sample")
    if array.dtype.kind == "c":
        raise PedrankValueError(f"{name}: found complex dtype {array.dtype}; expected class labels")
    try:
        classes, encoded = np.unique(array, return_inverse=True)
    except TypeError as exc:
        _refuse_missing_labels(array, name)  # strings with a NaN (a pandas column's missing value) do not sort
        raise PedrankValueError(
            f"{name}: label values could not be sorted ({exc}); expected values of one type"
        ) from None
    if _missing_labels(classes).any():  # looked for among the C distinct values, not the N labels
        _refuse_missing_labels(array, name)
    if classes.shape[0] < min_classes:
        found = ", ".join(repr(c) for c in classes.tolist()[:3])
        raise PedrankValueError(
            f"{name}: found {classes.shape[0]} distinct class(es) ({found}); a transferability "
            f"score needs at least {min_classes} classes"
        )
    if array.dtype.kind == "f" and 2 * classes.shape[0] > n_samples and not np.all(classes == np.round(classes)):
        # Fractional values, most of them unique: regression targets passed as classes. Every score would treat
        # each value as a class of (about) one sample and return a number that measures nothing.
        raise PedrankValueError(
            f"{name}: found {classes.shape[0]} distinct non-integer float values among {n_samples} labels (e.g. "
            f"{', '.join(repr(c) for c in classes.tolist()[:3])}): these look like continuous values, not classes; "
            "expected class labels (integers or strings, several samples a class)"
            + {"labels": ", or, for regression targets, regression=True where the score takes them (logme, knn)",
               "source_labels": ": the source model's predicted classes (the argmax), not a probability"}.get(name, "")
        )
    return encoded.reshape(-1).astype(np.int64, copy=False), classes


def _refuse_missing_labels(array: np.ndarray, name: str) -> None:
    """Raise when an object or datetime array holds missing values (NaN/inf/NaT, None, pandas.NA), which would
    otherwise sort as a class of their own (an object column of pandas, a list of mixed floats, a datetime column)
    or stop the sort with a message about types."""
    missing = _missing_labels(array)
    if missing.any():
        raise PedrankValueError(
            f"{name}: found {int(missing.sum())} missing label(s) (NaN/inf/NaT/None/NA, first at index "
            f"{int(np.flatnonzero(missing)[0])}) in an array of dtype {array.dtype}; expected a class for every "
            "sample"
        )


def _missing_labels(array: np.ndarray) -> np.ndarray:
    """Mask of the labels that mark a missing value in an object or datetime array: float NaN/inf (Python or
    NumPy), NaT, None, pandas.NA. Other dtypes have none (a float array is checked for NaN/inf on its own)."""
    if array.dtype.kind in "mM":
        return np.isnat(array)
    if array.dtype.kind != "O":
        return np.zeros(array.shape, dtype=bool)

    def missing(value: Any) -> bool:
        if value is None or type(value).__name__ in ("NAType", "NaTType"):  # None, pandas.NA, pandas.NaT
            return True
        if isinstance(value, (float, np.floating)):
            return not math.isfinite(value)
        return isinstance(value, (np.datetime64, np.timedelta64)) and bool(np.isnat(value))

    return np.fromiter((missing(value) for value in array), dtype=bool, count=array.shape[0])


def check_classification(
    features: Any, labels: Any, *, min_classes: int = 2
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Validate a (features, labels) pair; see :func:`check_features` and :func:`check_labels`."""
    checked = check_features(features)
    encoded, classes = check_labels(labels, checked.shape[0], min_classes=min_classes)
    return checked, encoded, classes


def check_targets(targets: Any, n_samples: int, *, name: str = "labels") -> np.ndarray:
    """Validate regression targets: shape (n_samples,) or (n_samples, n_targets), finite, of a magnitude whose
    squares neither overflow nor underflow, and not every column constant (a constant column beside varying
    ones is kept: a label absent from these rows of a multi-label matrix).

    Returns a float64 array of shape (n_samples, n_targets) (a new array when a
    conversion is needed; the input is never written to).
    """
    _refuse_masked(targets, name)
    array = to_numpy(targets)
    if array.dtype.kind not in "biuf":
        raise PedrankValueError(f"{name}: regression targets must be numeric, found dtype {array.dtype}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n_samples:
        raise PedrankValueError(
            f"{name}: expected regression targets of shape ({n_samples},) or ({n_samples}, K), "
            f"found shape {array.shape}"
        )
    if array.shape[1] < 1:
        raise PedrankValueError(f"{name}: found 0 target columns; expected at least 1")
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        bad = ~np.isfinite(array)
        raise PedrankValueError(
            f"{name}: found {int(bad.sum())} non-finite target value(s); the first is in row "
            f"{_first_bad_row(bad)}"
        )
    peak = float(np.abs(array).max()) if array.size else 0.0
    if peak > LARGEST_FEATURE or 0.0 < peak < SMALLEST_FEATURE:
        raise PedrankValueError(
            f"{name}: found regression targets of magnitude up to {peak:.3g}; expected magnitudes between "
            f"{SMALLEST_FEATURE:.0e} and {LARGEST_FEATURE:.0e} (their squares overflow or underflow float64 "
            "beyond). Rescale the targets"
        )
    if (array.min(axis=0) == array.max(axis=0)).all():
        raise PedrankValueError(
            f"{name}: every regression target is constant (shape {array.shape}, first value {array[0, 0]:g}), so "
            "there is nothing to predict and every model would score the same way; expected targets that vary"
        )
    return array


def check_positive(value: Any, *, name: str, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PedrankValueError(f"{name}: expected a number, found {value!r}") from None
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise PedrankValueError(f"{name}: expected a finite number {bound}, found {value!r}")
    return number


def check_fraction(value: Any, *, name: str) -> float:
    """A number in [0, 1]."""
    number = check_positive(value, name=name, allow_zero=True)
    if number > 1:
        raise PedrankValueError(f"{name}: expected a number in [0, 1], found {value!r}")
    return number


def check_bool(value: Any, *, name: str) -> bool:
    """True or False (NumPy's bool too); anything else is refused rather than read by its truth value (the string
    ``"False"`` is true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise PedrankValueError(f"{name}: expected True or False, found {value!r}")
    return bool(value)


def check_int(value: Any, *, name: str, minimum: int) -> int:
    """An integer >= minimum (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PedrankValueError(f"{name}: expected an integer >= {minimum}, found {value!r}")
    if value < minimum:
        raise PedrankValueError(f"{name}: expected an integer >= {minimum}, found {value!r}")
    return int(value)


#: The within-class scatter counts as zero when its trace is at most (ZERO_SCATTER_FACTOR * N * eps)^2 times the
#: samples' mean squared norm: the class means of identical samples carry rounding noise of up to ~N eps of their
#: magnitude, so an exact test passes or refuses constant classes by chance (cpp/constants.hpp).
ZERO_SCATTER_FACTOR = SFDA_ZERO_SCATTER_FACTOR


def within_scatter_is_zero(trace, counts, means, n_samples):
    """True when the within-class scatter's trace is at the rounding level of the data (see ZERO_SCATTER_FACTOR).

    Parameters
    ----------
    trace : float
        Trace of the within-class scatter (sum of the priors times the class variances).
    counts : array of shape (n_classes,)
    means : array of shape (n_classes, n_features)
    n_samples : int
    """
    counts = np.asarray(counts, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    second_moment = trace + float((counts / n_samples * (means * means).sum(axis=1)).sum())
    rounding = ZERO_SCATTER_FACTOR * n_samples * np.finfo(np.float64).eps
    return not trace > rounding * rounding * second_moment

