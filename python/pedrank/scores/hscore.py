"""H-score (Bao et al., ICIP 2019) and its Ledoit-Wolf regularised form
(Ibrahim et al., ICLR 2022).

Both are tr(S^+ cov(g(f))) with g(f) = E[f | y] the class-conditional mean, whose
covariance is the between-class scatter sum_c pi_c (mu_c - mu)(mu_c - mu)^T. Computed as
sum_c pi_c d_c^T S^+ d_c from one eigen-decomposition of the feature covariance S: true
matrix products (one public H-score multiplies the matrices elementwise).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from pedrank._engine.backend import to_numpy
from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import (
    SAFE_MAGNITUDE,
    DegenerateScoreWarning,
    check_classification,
    finite_score,
)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["h_score", "regularized_h_score", "PINV_RTOL", "ledoit_wolf_shrinkage"]

# Eigenvalues below PINV_RTOL * n_features * largest are treated as zero in the
# pseudo-inverse (numpy.linalg.matrix_rank's tolerance). The authors' rcond=1e-15 keeps
# rounding noise of a singular covariance (D > N, constant or duplicated columns) and
# inverts it into arbitrarily large numbers.
PINV_RTOL = np.finfo(np.float64).eps


def pinv_cutoff(eigenvalues):
    """Smallest eigenvalue a pseudo-inverse keeps: eps * n * max |eigenvalue|."""
    return PINV_RTOL * eigenvalues.shape[0] * np.max(np.abs(eigenvalues))


def between_class_quadratic(eigenvalues, eigenvectors, offsets, weights):
    """sum_c w_c d_c^T S^+ d_c for S = V diag(eigenvalues) V^T.

    Parameters
    ----------
    eigenvalues : ndarray of shape (n_features,)
    eigenvectors : ndarray of shape (n_features, n_features)
    offsets : ndarray of shape (n_classes, n_features)
        Class means minus the overall mean.
    weights : ndarray of shape (n_classes,)
        Class proportions n_c / N.
    """
    if not np.any(eigenvalues > 0):
        return 0.0
    kept = eigenvalues > pinv_cutoff(eigenvalues)
    projected = offsets @ eigenvectors[:, kept]  # C x k
    return float(weights @ (projected**2 @ (1.0 / eigenvalues[kept])))


#: Relative distance from C - 1 within which an H-score of N <= D + 1 samples counts as that degenerate value.
DEGENERATE_RTOL = 1e-9


def degenerate_message(value, n_samples, n_features, n_classes, rank=None):
    """Why an H-score of ``value`` cannot tell models apart, or None: it is C - 1 only because N <= D + 1.

    H = sum_c pi_c d_c^T S^+ d_c is tr(P G) with P the projection on the span of the centred samples and G the
    class averaging, which lies inside it; when the centred features have rank N - 1 (generically whenever
    N <= D + 1), P is the identity on the centred sample space and H = tr(G) = C - 1 for any features. Also
    degenerate: N <= D + 1 and a value within :data:`DEGENERATE_RTOL` of C - 1 at a lower rank (e.g. duplicated
    rows), which full-rank features of that shape would match. ``rank`` (the centred rank) may be unknown (None):
    the value alone decides (:attr:`ScoreEntry.degenerate`).
    """
    if n_samples > n_features + 1 or n_classes < 2:
        return None
    top = n_classes - 1
    if rank != n_samples - 1 and not abs(value - top) <= DEGENERATE_RTOL * top:
        return None
    return (f"h_score: found N = {n_samples} samples <= D + 1 = {n_features + 1} (D = {n_features} features): the "
            f"authors' H-score is C - 1 = {top} for any features of full rank (centred rank N - 1), so it cannot "
            "tell models apart; use regularized_h_score")


def warn_if_degenerate(value, n_samples, n_features, n_classes, rank, *, stacklevel=2):
    """:class:`~pedrank.DegenerateScoreWarning` with :func:`degenerate_message`, when there is one."""
    message = degenerate_message(value, n_samples, n_features, n_classes, rank)
    if message is not None:
        warnings.warn(DegenerateScoreWarning(message), stacklevel=stacklevel + 1)


def _moments(features, labels, backend):
    """Validated features' covariance and class offsets, through the kernels."""
    features, encoded, classes = check_classification(features, labels)
    kernels = select_kernels(features, backend)
    mean, covariance = kernels.covariance(features)
    counts, class_means = kernels.class_means(features, encoded, classes.shape[0])
    weights = counts / features.shape[0]
    return features, mean, covariance, class_means - mean, weights


@finite_score("h_score")
@follows_thread_policy
def h_score(features: Any, labels: Any, *, backend: str = "auto") -> float:
    """H-score (Bao et al., 2019): tr(cov(f)^+ cov(E[f | y])).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model.
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the covariance and class means (torch for a tensor under "auto").

    Returns
    -------
    float
        In [0, min(n_features, C - 1)]; higher is better. Near 0 for features unrelated
        to the labels.

    Notes
    -----
    Both covariances are population covariances (their common 1/N or 1/(N-1) factor
    cancels). The pseudo-inverse drops eigenvalues below ``eps * D * largest``
    (numpy's rank tolerance) instead of the authors' ``rcond=1e-15``: identical on
    well-conditioned features, finite and meaningful when the covariance is singular
    (D > N, constant or duplicated columns). Constant features give 0.

    With N <= D + 1 samples, features of full rank (centred rank N - 1: noise included)
    score exactly C - 1, the largest value, whatever they encode: the value is returned
    unchanged (the authors' number) with a :class:`~pedrank.DegenerateScoreWarning`;
    :func:`regularized_h_score` tells such models apart.
    """
    checked, _, covariance, offsets, weights = _moments(features, labels, backend)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    value = between_class_quadratic(eigenvalues, eigenvectors, offsets, weights)
    n_samples, n_features = checked.shape
    if n_samples <= n_features + 1:
        rank = int(np.count_nonzero(eigenvalues > pinv_cutoff(eigenvalues))) if np.any(eigenvalues > 0) else 0
        # h_score <- follows_thread_policy <- finite_score's wrapper <- the caller
        warn_if_degenerate(value, n_samples, n_features, weights.shape[0], rank, stacklevel=4)
    return value


def ledoit_wolf_shrinkage(features: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> float:
    """Ledoit-Wolf (2004) shrinkage intensity, as ``sklearn.covariance.ledoit_wolf``.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features) or torch.Tensor
    mean : ndarray of shape (n_features,)
    covariance : ndarray of shape (n_features, n_features)
        Population covariance of ``features`` (divide by N).

    Returns
    -------
    float
        alpha in [0, 1]: the shrunk covariance is (1 - alpha) S + alpha tr(S)/D I.
    """
    n_samples, n_features = features.shape
    if n_features == 1:
        return 0.0
    centred = np.asarray(to_numpy(features), dtype=np.float64) - mean
    covariance = np.asarray(to_numpy(covariance), dtype=np.float64)
    mu = float(np.trace(covariance)) / n_features
    if mu > 0 and not SAFE_MAGNITUDE[0] ** 2 <= mu <= SAFE_MAGNITUDE[1] ** 2:
        # alpha does not depend on the scale, but its fourth moments overflow (features near 1e80) or underflow
        # (near 1e-80): work at unit scale, by a power of two (exact, so ordinary scales keep their bits).
        exponent = -int(np.frexp(np.sqrt(mu))[1])
        centred, covariance = np.ldexp(centred, exponent), np.ldexp(covariance, 2 * exponent)
        mu = float(np.trace(covariance)) / n_features
    squared_norms = np.einsum("ij,ij->i", centred, centred)
    # beta: variance of the entries of x x^T around S; delta: distance of S from mu I.
    frobenius2 = float(np.sum(covariance**2))
    beta = (float(np.sum(squared_norms**2)) / n_samples - frobenius2) / (n_features * n_samples)
    delta = (frobenius2 - n_features * mu**2) / n_features
    beta = min(beta, delta)
    if beta <= 0 or delta <= 0:
        return 0.0
    return beta / delta


@finite_score("regularized_h_score")
@follows_thread_policy
def regularized_h_score(features: Any, labels: Any, *, backend: str = "auto") -> float:
    """Regularised H-score (Ibrahim et al., ICLR 2022).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model.
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the covariance and class means (torch for a tensor under "auto").

    Returns
    -------
    float
        tr(S_alpha^+ (1 - alpha) cov(E[f | y])), with S_alpha the Ledoit-Wolf shrunk
        feature covariance (1 - alpha) S + alpha tr(S)/D I and alpha its shrinkage
        intensity. Non-negative, at most min(n_features, C - 1); higher is better.

    Notes
    -----
    alpha is the Ledoit-Wolf intensity of ``sklearn.covariance.ledoit_wolf`` on the
    (centred) features. Both covariances are population covariances (1/N), the
    normalisation Ledoit-Wolf is defined with; a public implementation divides
    cov(E[f | y]) by N - 1 instead, which scales its score by N / (N - 1). The shrunk
    covariance is positive definite unless alpha = 0 (then the pseudo-inverse of
    :func:`h_score` applies). Features whose covariance Ledoit-Wolf cannot tell from
    isotropic (alpha = 1, typical of noise) score exactly 0.
    """
    features, mean, covariance, offsets, weights = _moments(features, labels, backend)
    alpha = ledoit_wolf_shrinkage(features, mean, covariance)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    mu = float(np.trace(covariance)) / covariance.shape[0]
    shrunk = (1.0 - alpha) * eigenvalues + alpha * mu
    return (1.0 - alpha) * between_class_quadratic(shrunk, eigenvectors, offsets, weights)


register(ScoreEntry(name="h_score", function=h_score, reference="pedrank.reference.hscore:h_score", order=5,
                    scale_range=(0.0, math.inf), degenerate=degenerate_message))
register(ScoreEntry(
    name="regularized_h_score",
    function=regularized_h_score,
    reference="pedrank.reference.hscore:regularized_h_score",
    order=6,
    scale_range=(0.0, math.inf),
))
