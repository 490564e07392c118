"""Reference PED (Li et al., ICCV 2023): a direct port of the authors' algorithm.

Like the authors' code it materialises the C x C x D tensor of pairwise
displacements (2.6 GB at C=397, D=2048): it is the oracle and the baseline, not
the fast path (:func:`pedrank.ped` needs O(C*D) memory).
"""

from __future__ import annotations

import numpy as np

from pedrank._engine.constants import PED_SCALE_FLOOR
from pedrank._engine.memory import guard
from pedrank._engine.validation import PedrankValueError, check_classification, check_features, to_numpy
from pedrank.scores.ped import PEDResult, check_ped_options


def rescaling_statistics(reference, features):
    """Per-dimension centre m and scale max(sd, 1e-3) that PED rescales by (spec step 1).

    ``reference``: None (the target features' own mean and population std), a (mean, std) pair, or
    reference features (their mean and population std).
    """
    n_features = features.shape[1]
    if isinstance(reference, (tuple, list)):
        if len(reference) != 2:
            raise PedrankValueError(f"reference: a tuple/list is read as (mean, std); found {len(reference)} items")
        center, std = to_numpy(reference[0], np.float64), to_numpy(reference[1], np.float64)
        for name, part in (("reference mean", center), ("reference std", std)):
            if part.shape != (n_features,):
                raise PedrankValueError(
                    f"{name}: expected shape ({n_features},) to match the features, found {part.shape}"
                )
            if not np.isfinite(part).all():
                raise PedrankValueError(f"{name}: found non-finite values; expected finite numbers")
        if (std < 0).any():
            raise PedrankValueError(f"reference std: found {int((std < 0).sum())} negative value(s); expected std >= 0")
    else:
        source = features if reference is None else check_features(reference, name="reference", informative=False)
        if source.shape[1] != n_features:
            raise PedrankValueError(
                f"reference: found {source.shape[1]} feature columns (shape {tuple(source.shape)}); "
                f"expected {n_features} to match the features"
            )
        values = to_numpy(source, np.float64)
        center, std = values.mean(axis=0), values.std(axis=0)
    return center, np.maximum(std, PED_SCALE_FLOOR)


def ped_forces(features, encoded, n_classes, center, scale, radius, elastic, time_step):
    """Class displacements of one step; returns (displacement (C, D), energy, coincident pairs)."""
    rescaled = (features - center) / scale
    means = np.stack([rescaled[encoded == c].mean(axis=0) for c in range(n_classes)])
    radii = np.array(
        [np.sqrt(rescaled[encoded == c].var(axis=0).sum()) for c in range(n_classes)]
    )
    differences = means[:, None, :] - means[None, :, :]  # C x C x D, as the authors do
    distances = np.sqrt((differences**2).sum(axis=2))
    overlaps = np.maximum(radius * radii[:, None] + radius * radii[None, :] - distances, 0.0)
    np.fill_diagonal(overlaps, 0.0)
    coincident = (distances == 0) & (overlaps > 0)
    overlaps[coincident] = 0.0
    positions = np.minimum(0.5 * time_step**2 * elastic * overlaps, overlaps)
    with np.errstate(invalid="ignore", divide="ignore"):
        directions = np.where(distances[:, :, None] > 0, differences / distances[:, :, None], 0.0)
    displacement = (positions[:, :, None] * directions).sum(axis=1)
    energy = float(np.triu(elastic * overlaps**2 / 2, k=1).sum())
    return displacement, energy, int(np.triu(coincident, k=1).sum())


def ped_step(features, encoded, n_classes, center, scale, radius, elastic, time_step):
    """One step; returns (moved features, displacement (C, D), energy, coincident pairs)."""
    displacement, energy, coincident = ped_forces(
        features, encoded, n_classes, center, scale, radius, elastic, time_step
    )
    return features + displacement[encoded] * scale, displacement, energy, coincident


def ped(
    features,
    labels,
    *,
    reference=None,
    radius=0.6,
    elastic=1.0,
    time_step=0.1,
    exit_ratio=0.5,
    max_steps=6,
    dtype="float64",
):
    """Reference PED loop. Parameters and result as :func:`pedrank.ped`."""
    check_ped_options(radius, elastic, time_step, exit_ratio, max_steps, dtype)
    checked, encoded, classes = check_classification(features, labels)
    guard("ped", checked, classes.shape[0], implementation="reference")
    center, scale = rescaling_statistics(reference, checked)
    n_classes = classes.shape[0]

    # Spec step 5: a step is accepted while its movement over the first step's exceeds exit_ratio, at most
    # max_steps of them; a refused step is never applied. No overlap at the first step: features unchanged.
    moved = np.asarray(checked, dtype=np.float64)
    movements: list[float] = []
    energies: list[float] = []
    while True:
        displacement, energy, coincident = ped_forces(
            moved, encoded, n_classes, center, scale, radius, elastic, time_step
        )
        energies.append(energy)
        if len(movements) == max_steps:
            break
        movement = float(np.abs(displacement).sum())
        first_movement = movements[0] if movements else movement
        if first_movement == 0 or movement / first_movement <= exit_ratio:
            break
        movements.append(movement)
        moved = moved + displacement[encoded] * scale  # a new array each step, as the authors do
    result = PEDResult(
        features=moved, steps=len(movements), movements=movements, energies=energies, coincident_pairs=coincident
    )
    if dtype == "input":
        result.features = result.features.astype(np.result_type(checked.dtype, np.float32))
    elif np.may_share_memory(result.features, checked):  # float64 input and no step: still a new array
        result.features = result.features.copy()
    return result
