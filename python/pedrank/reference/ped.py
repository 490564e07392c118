"""Reference PED (Li et al., ICCV 2023): a direct port of the authors' algorithm.

Like the authors' code it materialises the C x C x D tensor of pairwise
displacements (2.6 GB at C=397, D=2048): it is the oracle and the baseline, not
the fast path (:func:`pedrank.ped` needs O(C*D) memory).
"""

from __future__ import annotations

import numpy as np

from .._memory import guard
from .._validation import check_classification
from ..ped import check_ped_options, rescaling_statistics, run_ped_loop


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

    def forces(current):
        return ped_forces(current, encoded, n_classes, center, scale, radius, elastic, time_step)

    def advance(current, displacement):
        return current + displacement[encoded] * scale  # a new array each step, as the authors do

    result = run_ped_loop(
        forces, advance, np.asarray(checked, dtype=np.float64), exit_ratio=exit_ratio, max_steps=max_steps
    )
    if dtype == "input":
        result.features = result.features.astype(np.result_type(checked.dtype, np.float32))
    elif np.may_share_memory(result.features, checked):  # float64 input and no step: still a new array
        result.features = result.features.copy()
    return result
