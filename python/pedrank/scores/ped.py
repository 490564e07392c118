"""PED: potential-energy decline (Li et al., ICCV 2023).

Class clusters are particles pushed apart by elastic forces wherever their spheres
overlap, imitating what fine-tuning does to features; the moved features are then
scored by any metric (see :func:`pedrank.score`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pedrank._engine.constants import PED_SCALE_FLOOR
from pedrank._engine.kernels import select_kernels
from pedrank._engine.memory import guard
from pedrank._engine.validation import (
    PedrankValueError,
    check_classification,
    check_features,
    check_fraction,
    check_int,
    check_positive,
    is_torch_tensor,
    to_numpy,
)

__all__ = ["PEDResult", "ped"]

#: Per-dimension standard deviations below this are raised to it before rescaling,
#: as in the authors' code (it keeps constant dimensions from dividing by zero).
SCALE_FLOOR = PED_SCALE_FLOOR


@dataclass
class PEDResult:
    """Outcome of a PED run.

    Attributes
    ----------
    features : ndarray or torch.Tensor of shape (n_samples, n_features)
        The moved features: float64 by default, as the authors' code returns them
        (``dtype="input"`` keeps the input's float dtype); for a tensor, on the input's
        device. A new array: the input is unchanged.
    steps : int
        Number of accepted steps (0 when no cluster overlaps).
    movements : list of float
        Movement of each accepted step: sum over classes and dimensions of
        ``|displacement|``, in rescaled units (standard deviations of the reference).
    energies : list of float
        Potential energy ``sum over overlapping pairs of k * overlap**2 / 2`` of each
        configuration: the initial one, then after each accepted step
        (``len(energies) == steps + 1``).
    coincident_pairs : int
        Overlapping class pairs whose means coincide in the last configuration
        examined: they have no direction to move in and were skipped.
    """

    features: Any
    steps: int
    movements: list = field(default_factory=list)
    energies: list = field(default_factory=list)
    coincident_pairs: int = 0


#: Values of PED's ``dtype`` option.
PED_DTYPES = ("float64", "input")


def check_ped_options(radius, elastic, time_step, exit_ratio, max_steps, dtype="float64") -> None:
    """Validate PED's scalar options (shared by every implementation)."""
    if not isinstance(dtype, str) or dtype not in PED_DTYPES:
        raise PedrankValueError(f"dtype: expected one of {list(PED_DTYPES)}, found {dtype!r}")
    check_positive(radius, name="radius", allow_zero=True)
    check_positive(elastic, name="elastic", allow_zero=True)
    check_positive(time_step, name="time_step", allow_zero=True)
    check_fraction(exit_ratio, name="exit_ratio")
    check_int(max_steps, name="max_steps", minimum=0)


def rescaling_statistics(reference: Any, features: Any, kernels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension centre and (floored) scale that PED rescales by.

    Parameters
    ----------
    reference : None, (mean, std) tuple, or array_like of shape (n_reference, n_features)
        ``None`` uses the target features' own mean and population standard
        deviation (the authors use the same model's features on 50,000 ImageNet
        images instead). A tuple or list of two 1-D arrays of length n_features is
        taken as (mean, std) (population std, as the authors compute it). Anything
        else is read as reference features.
    features : array_like of shape (n_samples, n_features)
        The validated target features.
    kernels : kernel set, optional
        Computes the statistics (``mean_std``) without a float64 copy; None uses
        plain NumPy (the reference).

    Returns
    -------
    center, scale : ndarray of shape (n_features,), float64
        ``scale = max(std, 1e-3)``.
    """
    n_features = features.shape[1]
    if isinstance(reference, (tuple, list)):
        if len(reference) != 2:
            raise PedrankValueError(
                f"reference: a tuple/list is read as (mean, std); found {len(reference)} items"
            )
        center, std = (to_numpy(part, np.float64) for part in reference)
        for part_name, part in (("reference mean", center), ("reference std", std)):
            if part.shape != (n_features,):
                raise PedrankValueError(
                    f"{part_name}: expected shape ({n_features},) to match the features, found {part.shape}"
                )
            if not np.isfinite(part).all():
                raise PedrankValueError(f"{part_name}: found non-finite values; expected finite numbers")
        if (std < 0).any():
            raise PedrankValueError(
                f"reference std: found {int((std < 0).sum())} negative value(s); expected std >= 0"
            )
    else:
        source = features if reference is None else check_features(reference, name="reference", informative=False)
        if source.shape[1] != n_features:
            raise PedrankValueError(
                f"reference: found {source.shape[1]} feature columns (shape {tuple(source.shape)}); "
                f"expected {n_features} to match the features"
            )
        if kernels is None:
            values = to_numpy(source, np.float64)
            center, std = values.mean(axis=0), values.std(axis=0)
        else:  # one pass on the features' own device, no float64 copy
            center, std = (to_numpy(part, np.float64) for part in kernels.mean_std(source))
    return center, np.maximum(std, SCALE_FLOOR)


def run_ped_loop(
    forces: Callable[[Any], tuple[Any, float, int]],
    advance: Callable[[Any, Any], Any],
    state: Any,
    *,
    exit_ratio: float,
    max_steps: int,
) -> PEDResult:
    """The PED phase loop shared by every implementation.

    ``forces(state)`` returns (displacement (C, D), energy, coincident pairs) of a
    configuration; ``advance(state, displacement)`` returns the configuration after
    the step. The state is whatever an implementation moves: the reference moves the
    features themselves, :func:`ped` only the class means. Steps are accepted while
    their movement divided by the first step's movement exceeds ``exit_ratio``, at
    most ``max_steps`` of them; a step that fails the test is never applied. When the
    first step moves nothing (no overlap) the state is returned unchanged (the
    authors' code divides 0 by 0 there). ``PEDResult.features`` holds the final state.
    """
    movements: list[float] = []
    energies: list[float] = []
    first_movement = None
    while True:
        displacement, energy, coincident = forces(state)
        energies.append(float(energy))
        if len(movements) >= max_steps:
            break
        movement = float(np.abs(to_numpy(displacement, np.float64)).sum())
        if first_movement is None:
            first_movement = movement
        if first_movement == 0 or movement / first_movement <= exit_ratio:
            break
        movements.append(movement)
        state = advance(state, displacement)
    return PEDResult(
        features=state,
        steps=len(movements),
        movements=movements,
        energies=energies,
        coincident_pairs=int(coincident),
    )


def ped(
    features: Any,
    labels: Any,
    *,
    reference: Any = None,
    radius: float = 0.6,
    elastic: float = 1.0,
    time_step: float = 0.1,
    exit_ratio: float = 0.5,
    max_steps: int = 6,
    dtype: str = "float64",
    backend: str = "auto",
) -> PEDResult:
    """Move class clusters apart by elastic repulsion (potential-energy decline).

    Each step rescales the features by the reference statistics, models every class
    as a sphere of radius ``radius * sqrt(sum of its per-dimension variances)``
    around its mean, and pushes every overlapping pair apart by
    ``min(0.5 * time_step**2 * elastic * overlap, overlap)`` each, along the line
    joining their means. Needs O(C * D) memory besides the moved copy.

    The features are read once and written once, however many steps are taken:
    moving a whole class shifts its mean and leaves its per-dimension variances as
    they are, so every step works on the C x D class statistics of one pass, and the
    summed displacements are applied at the end, in float64. The result equals
    :func:`pedrank.reference.ped`, which recomputes the statistics from the moved
    features at every step, to about 1e-13.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Frozen features of the target data.
    labels : array_like of shape (n_samples,)
        Class labels, any values (mapped to 0..C-1 in sorted order).
    reference : None, (mean, std) tuple or array_like of shape (n_reference, n_features)
        Statistics to rescale by; see :func:`rescaling_statistics`. Default: the
        target features' own statistics.
    radius : float, default 0.6
        Radius coefficient (``nsigma`` in the authors' code; they use 0.3 or 0.6).
        0 means no cluster overlaps and nothing moves.
    elastic : float, default 1.0
        Elastic coefficient k of the repulsive force ``F = k * overlap`` (unit mass).
    time_step : float, default 0.1
        Time step t of the phase update ``s = t**2 * F / 2``.
    exit_ratio : float in [0, 1], default 0.5
        Stop when a step moves less than this fraction of the first step's movement.
    max_steps : int, default 6
        Most steps accepted.
    dtype : {"float64", "input"}, default "float64"
        dtype of the moved features. "float64" is what the authors' code returns
        whatever the input (its arithmetic promotes float32 features), so scores after
        PED equal theirs to rounding. "input" keeps the input's float dtype (float16
        and float32 give float32): half the memory for float32 features, at one
        rounding of the moved values (scores after PED then move by ~1e-9-1e-8
        relative, measured on the authors' rank-deficient vectors).
    backend : {"auto", "numpy", "torch"}
        "auto" runs tensors on torch and arrays on the compiled core.

    Returns
    -------
    PEDResult
        ``.features`` (moved, same shape; dtype per ``dtype``), ``.steps``,
        ``.movements``, ``.energies``.
    """
    check_ped_options(radius, elastic, time_step, exit_ratio, max_steps, dtype)
    checked, encoded, classes = check_classification(features, labels)
    guard("ped", checked, classes.shape[0], backend=backend, output_dtype_size=8 if dtype == "float64" else None)
    kernels = select_kernels(checked, backend)
    n_classes = classes.shape[0]
    # The only pass that reads the features before the moved copy is written: moving a whole class shifts its
    # mean and leaves its variances as they are, so every step works on these C x D statistics.
    counts, means, variances = kernels.class_moments(checked, encoded, n_classes)
    if reference is None:
        center, scale = pooled_mean_std(counts, means, variances)
    else:
        center, scale = rescaling_statistics(reference, checked, kernels)
    rescaled_means = (means - center) / scale
    on_device = _device_placer(checked, kernels)
    radii = on_device(np.sqrt((variances / (scale * scale)).sum(axis=1)))

    def forces(state):
        class_means, _ = state
        return kernels.ped_pair_forces(on_device(class_means), radii, float(radius), float(elastic), float(time_step))

    def advance(state, displacement):
        class_means, total = state
        displacement = to_numpy(displacement, np.float64)
        return class_means + displacement, total + displacement

    result = run_ped_loop(
        forces, advance, (rescaled_means, np.zeros_like(rescaled_means)), exit_ratio=exit_ratio, max_steps=max_steps
    )
    _, total = result.features
    tensor = is_torch_tensor(checked)
    if dtype == "float64":
        out_dtype = _torch_float64() if tensor else np.float64
    else:
        out_dtype = checked.dtype
    if result.steps == 0:
        # Nothing moved: still hand back a new array, so callers may write to it.
        result.features = checked.to(out_dtype, copy=True) if tensor else np.array(checked, dtype=out_dtype)
    else:
        out = checked.new_empty(checked.shape, dtype=out_dtype) if tensor else np.empty(checked.shape, out_dtype)
        result.features = kernels.ped_apply(checked, encoded, total, scale, out)
    return result


def _torch_float64():
    import torch

    return torch.float64


def pooled_mean_std(counts, means, variances) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and floored population std of the whole set from its class moments (law of total variance)."""
    weights = np.asarray(counts, dtype=np.float64)[:, None] / float(np.sum(counts))
    center = (weights * means).sum(axis=0)
    spread = means - center
    variance = (weights * (variances + spread * spread)).sum(axis=0)
    return center, np.maximum(np.sqrt(variance), SCALE_FLOOR)


def _device_placer(features, kernels) -> Callable[[np.ndarray], Any]:
    """Small host arrays to the features' device, so torch kernels compute the pair forces there."""
    if not is_torch_tensor(features) or not hasattr(kernels, "kernels_for"):
        return lambda values: values
    import torch

    return lambda values: torch.as_tensor(values, device=features.device)
