"""NCE: negative conditional entropy of the target labels given the source labels
(Tran et al., ICCV 2019)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import PedrankValueError, check_labels, finite_score
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["nce"]


def encode_label_pair(source_labels, labels):
    """Validate and encode (source labels, target labels) of the same samples.

    Returns
    -------
    source : ndarray of shape (n_samples,), int64
        Source classes 0..Z-1 (one source class is allowed).
    target : ndarray of shape (n_samples,), int64
        Target classes 0..C-1, C >= 2.
    n_source, n_target : int
    """
    if np.ndim(source_labels) != 1:
        raise PedrankValueError(
            f"source_labels: expected a 1-D array of shape (n_samples,), found shape "
            f"{np.shape(source_labels)}"
        )
    n_samples = np.shape(source_labels)[0]
    if n_samples < 2:
        raise PedrankValueError(f"source_labels: found {n_samples} sample(s); at least 2 are needed")
    source, source_classes = check_labels(
        source_labels, n_samples, name="source_labels", min_classes=1
    )
    target, target_classes = check_labels(labels, n_samples)
    if source_classes.shape[0] == n_samples:
        # Each sample alone in its source class determines its target label: NCE is 0, its maximum, whatever the
        # labels (continuous values, such as the top probability or a logit, passed instead of class ids do this).
        shown = ", ".join(repr(c) for c in source_classes.tolist()[:3])
        raise PedrankValueError(
            f"source_labels: found {n_samples} distinct values ({shown}, ...) for {n_samples} samples: every sample "
            "is a source class of its own, so NCE would be 0 (its maximum) whatever the labels; expected the "
            "source model's hard predictions (class ids, e.g. probabilities.argmax(axis=1)), some of them shared"
        )
    return source, target, source_classes.shape[0], target_classes.shape[0]


@finite_score("nce")
@follows_thread_policy
def nce(source_labels: Any, labels: Any, *, backend: str = "auto") -> float:
    """NCE transferability score (Tran et al., ICCV 2019).

    Parameters
    ----------
    source_labels : array_like of shape (n_samples,)
        The source model's hard predictions on the target samples (e.g. the argmax of its
        class probabilities), any values.
    labels : array_like of shape (n_samples,)
        Target labels, any values.
    backend : {"auto", "numpy", "torch"}, default "auto"
        Accepted so that every metric takes the same options (``pedrank.score``,
        ``pedrank.rank``); NCE only counts label pairs, on the host, whatever the backend.

    Returns
    -------
    float
        -H(Y | Z) = sum_{z,y} P(z, y) log P(y | z) with the empirical joint of source
        labels z and target labels y, in [-ln C, 0]. Higher is better: 0 when the source
        label determines the target label, -H(Y) when it says nothing about it.

    Raises
    ------
    PedrankValueError
        Invalid labels, or ``source_labels`` with as many distinct values as samples (every sample its own
        source class: NCE would be 0 whatever the labels, e.g. for continuous values passed as predictions).

    Notes
    -----
    Exact empirical entropy (0 log 0 = 0); some public implementations add 1e-5 to
    every joint probability, which shifts the value slightly.
    """
    select_kernels(source_labels, backend)  # same backend errors as every other score
    source, target, n_source, n_target = encode_label_pair(source_labels, labels)
    n_samples = source.shape[0]
    joint = np.bincount(source * n_target + target, minlength=n_source * n_target)
    joint = joint.reshape(n_source, n_target).astype(np.float64)
    per_source = joint.sum(axis=1, keepdims=True)
    present = joint > 0
    ratio = np.where(present, joint, 1.0) / np.where(per_source > 0, per_source, 1.0)
    return float(np.sum(joint[present] * np.log(ratio[present])) / n_samples)


register(ScoreEntry(name="nce", function=nce, reference="pedrank.reference.nce:nce", inputs="predictions",
                    order=9))
