"""TransRate (Huang et al., ICML 2022): coding-rate estimate of the mutual information
between features and labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from pedrank._engine.backend import to_numpy
from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import PedrankValueError, check_classification, check_positive, finite_score
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["transrate", "log_det_identity_plus"]

NORMALIZATIONS = ("paper", "authors")


def log_det_identity_plus(gram: np.ndarray, scale: float) -> float:
    """log det(I + scale * gram) for a symmetric positive semi-definite ``gram``.

    Cholesky first; when rounding leaves the matrix numerically indefinite (features of
    huge magnitude), the eigenvalues of ``gram``, clipped at 0, give the same quantity.
    """
    matrix = scale * gram
    matrix[np.diag_indices_from(matrix)] += 1.0
    try:
        factor = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
        return float(np.sum(np.log1p(scale * eigenvalues)))
    return float(2.0 * np.sum(np.log(np.diagonal(factor))))


def coding_rate_scale(n_rows, n_features, eps, normalization):
    """The factor a of R(Z) = 1/2 log det(I + a Z^T Z)."""
    if normalization == "paper":
        return n_features / (n_rows * eps)
    return 1.0 / (n_rows * eps)


def _gram(kernels, rows, offset):
    """Z^T Z or Z Z^T, whichever is smaller, for Z = rows - offset."""
    n_rows, n_features = rows.shape
    if n_rows < n_features:
        centred = np.asarray(to_numpy(rows), dtype=np.float64) - offset
        return centred @ centred.T
    mean, covariance = kernels.covariance(rows)
    shift = mean - offset
    # sum_i (x_i - o)(x_i - o)^T = n (S + (m - o)(m - o)^T)
    return n_rows * (covariance + np.outer(shift, shift))


def check_normalization(normalization):
    if normalization not in NORMALIZATIONS:
        raise PedrankValueError(
            f"normalization: expected one of {NORMALIZATIONS}, found {normalization!r}"
        )


@finite_score("transrate")
@follows_thread_policy
def transrate(features: Any, labels: Any, *, eps: float = 1e-4, normalization: str = "paper",
              backend: str = "auto") -> float:
    """TransRate transferability score (Huang et al., ICML 2022).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model.
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    eps : float, default=1e-4
        Distortion of the coding rate (> 0).
    normalization : {"paper", "authors"}, default="paper"
        "paper": R(Z) = 1/2 log det(I + d/(n eps) Z^T Z) and the class term
        sum_c (n_c/N) R(Z_c). "authors": the code printed in the paper's appendix,
        R(Z) = 1/2 log det(I + 1/(n eps) Z^T Z) and the class term (1/C) sum_c R(Z_c).
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the d x d covariances (torch for a tensor under "auto").

    Returns
    -------
    float
        R(Z) - R(Z | Y), higher is better. Z are the features centred by their overall
        mean; Z_c are the rows of class c (not re-centred); n is the number of rows of
        the matrix a rate is taken of. Zero when every class has the same second moments
        as the whole set.

    Notes
    -----
    Not invariant to feature scale (eps is absolute). Log-determinants come from a
    Cholesky factor of the d x d or n x n Gram matrix, whichever is smaller; a class
    with a single sample is allowed.
    """
    eps = check_positive(eps, name="eps")
    check_normalization(normalization)
    features, encoded, classes = check_classification(features, labels)
    kernels = select_kernels(features, backend)
    n_samples, n_features = features.shape
    n_classes = classes.shape[0]
    mean = to_numpy(features).mean(axis=0, dtype=np.float64)

    def rate(rows):
        scale = coding_rate_scale(rows.shape[0], n_features, eps, normalization)
        return 0.5 * log_det_identity_plus(_gram(kernels, rows, mean), scale)

    order = np.argsort(encoded, kind="stable")
    boundaries = np.searchsorted(encoded[order], np.arange(n_classes + 1))
    class_rates = np.array(
        [rate(features[order[start:stop]]) for start, stop in zip(boundaries[:-1], boundaries[1:])]
    )
    if normalization == "paper":
        weights = np.diff(boundaries) / n_samples
    else:
        weights = np.full(n_classes, 1.0 / n_classes)
    return float(rate(features) - weights @ class_rates)


register(ScoreEntry(name="transrate", function=transrate, reference="pedrank.reference.transrate:transrate",
                    order=7,
                    # log det(I + c Z^T Z) with an absolute eps: it moves with log(scale) where a class has fewer
                    # rows than dimensions (the class terms no longer cancel the whole's), and at small scales
                    scale_range=None))
