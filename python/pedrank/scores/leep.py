"""LEEP: log expected empirical prediction (Nguyen et al., ICML 2020).

The source model's class probabilities on the target images, theta (N x Z), define an
empirical joint P(y, z) = 1/N sum_{i: y_i = y} theta_iz over target classes y and source
classes z. LEEP is the mean log-likelihood of the target labels under the "dummy"
classifier p(y | x_i) = sum_z P(y | z) theta_iz. It is <= 0; 0 means the source
predictions determine the target labels; uninformative (identical) rows give
sum_y pi_y log pi_y, i.e. ln(1/C) for balanced classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pedrank._engine.backend import to_numpy
from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import PedrankValueError, check_features, check_labels, finite_score
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["leep"]

# Largest |row sum - 1| accepted, by dtype: probabilities stored in float16 or float32 carry
# that dtype's rounding error (a float32 softmax over 1000 classes drifts by ~1e-6).
_ROW_SUM_TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-6}
_FLOAT16_ROW_SUM_TOLERANCE = 1e-2


def check_probabilities(probabilities, *, name="source_probabilities"):
    """Validate an N x Z matrix of per-sample probability rows.

    Parameters
    ----------
    probabilities : array_like of shape (n_samples, n_source_classes)
        Non-negative, finite, each row summing to 1 (within the rounding of its dtype).
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray of shape (n_samples, n_source_classes), float64
        A new array when a conversion is needed; the input is never written to.
    """
    stored_as_half = str(getattr(probabilities, "dtype", "")).endswith("float16")
    checked = check_features(probabilities, name=name)
    checked = to_numpy(checked)
    tolerance = (
        _FLOAT16_ROW_SUM_TOLERANCE
        if stored_as_half
        else _ROW_SUM_TOLERANCE.get(checked.dtype, 1e-6)
    )
    array = np.asarray(checked, dtype=np.float64)
    if array.min() < 0:
        row = int(np.flatnonzero((array < 0).any(axis=1))[0])
        raise PedrankValueError(
            f"{name}: found negative value {array.min():.3g} (first in row {row}); expected "
            "probabilities >= 0 (apply a softmax to logits first)"
        )
    row_sums = array.sum(axis=1)
    off = np.abs(row_sums - 1.0) > tolerance
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise PedrankValueError(
            f"{name}: {int(off.sum())} row(s) do not sum to 1 (row {row} sums to "
            f"{row_sums[row]:.6g}); expected each row to be a probability distribution over "
            f"the source classes (within {tolerance:g})"
        )
    return array


def expected_empirical_prediction(probabilities, encoded, n_classes, kernels):
    """p(y_i | x_i) of the LEEP dummy classifier, for every sample.

    Parameters
    ----------
    probabilities : ndarray of shape (n_samples, n_sources), float64
        Rows are p(z | x_i): source-class (LEEP) or mixture-component (NLEEP)
        probabilities.
    encoded : ndarray of shape (n_samples,), int64
        Target classes 0..C-1, every class present.
    n_classes : int
        C.
    kernels : module or object
        Implements ``class_means`` of the kernel contract.

    Returns
    -------
    ndarray of shape (n_samples,)
        sum_z P(y_i | z) p(z | x_i), strictly positive for probability rows.
    """
    n_samples = probabilities.shape[0]
    counts, means = kernels.class_means(probabilities, encoded, n_classes)
    joint = means * (counts[:, None] / n_samples)  # P(y, z): C x Z
    marginal = joint.sum(axis=0)  # P(z)
    # A source class no sample puts mass on has P(z) = 0 and no conditional; its
    # probability column is zero, so any finite value leaves the prediction unchanged.
    safe = np.where(marginal > 0, marginal, 1.0)
    conditional = joint / safe  # P(y | z)
    predictions = probabilities @ conditional.T  # N x C
    return predictions[np.arange(n_samples), encoded]


@finite_score("leep")
@follows_thread_policy
def leep(source_probabilities: Any, labels: Any, *, backend: str = "auto") -> float:
    """LEEP transferability score (Nguyen et al., ICML 2020).

    Parameters
    ----------
    source_probabilities : array_like of shape (n_samples, n_source_classes)
        The source model's class probabilities p(z | x_i) on the target samples (a
        softmax of its logits): non-negative rows summing to 1.
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the class sums of the probabilities.

    Returns
    -------
    float
        (1/N) sum_i log sum_z P(y_i | z) theta_iz, in (-inf, 0]. Higher is better:
        0 when the source predictions determine the target label; about ln(1/C) when they
        carry no information about it (balanced classes).

    Raises
    ------
    ValueError
        Invalid shapes, fewer than 2 classes, negative probabilities or rows that do not
        sum to 1.

    Notes
    -----
    The PED/SFDA authors' code returns the mean of p(y_i | x_i) without the log; this is
    the paper's log form. A source class with no probability mass on any sample is
    ignored (its conditional P(y | z) is undefined and never used).
    """
    probabilities = check_probabilities(source_probabilities)
    encoded, classes = check_labels(labels, probabilities.shape[0])
    kernels = select_kernels(probabilities, backend)
    predictions = expected_empirical_prediction(probabilities, encoded, classes.shape[0], kernels)
    return float(np.mean(np.log(predictions)))


register(ScoreEntry(name="leep", function=leep, reference="pedrank.reference.leep:leep", inputs="predictions",
                    order=8))
