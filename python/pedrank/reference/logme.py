"""Reference LogME (You et al., ICML 2021), fixed-point solver of the follow-up paper.

A direct port of the authors' algorithm, one target column at a time, kept as plain
as their code: it is the parity oracle and the benchmark baseline, not the fast path.
"""

from __future__ import annotations

import numpy as np

from pedrank._engine.constants import LOGME_EPSILON, LOGME_MAX_ITERATIONS, LOGME_RANK_TOLERANCE, LOGME_TOLERANCE
from pedrank._engine.memory import guard
from pedrank._engine.validation import check_classification, check_features, check_finite_score, check_targets
from pedrank.scores.logme import LOGME_DEGENERATE

MAX_ITERATIONS = LOGME_MAX_ITERATIONS
TOLERANCE = LOGME_TOLERANCE


def _factorise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-k factorisation X = u diag(s) vh of the features, as the authors do it."""
    n_samples, n_features = features.shape
    if n_samples > n_features:
        # Their "truncated SVD": an SVD of the D x D Gram matrix, null directions dropped.
        _, gram_singular, vh = np.linalg.svd(features.T @ features)
        singular = np.sqrt(gram_singular)
        # The authors keep s > 1e-10 only; on rank-deficient features (dead ReLUs, constant
        # pixels) the Gram's null eigenvalues come out as rounding noise ~1e-10 and pass
        # that test, and u = X v / s then divides noise by noise. Directions below the
        # Gram's rounding level are dropped too (identical on full-rank features).
        noise_level = gram_singular[0] * max(n_samples, n_features) * np.finfo(np.float64).eps
        kept = (singular > LOGME_RANK_TOLERANCE) & (gram_singular > noise_level)
        singular, vh = singular[kept], vh[kept]
        u = (features @ vh.T) / singular
    else:
        u, singular, vh = np.linalg.svd(features, full_matrices=False)
    return u, singular, vh


def _fit_target(u, singular, vh, target, n_features, exact_dimension):
    """Evidence maximisation for one target column; returns (evidence, alpha, beta, weights)."""
    n_samples = target.shape[0]
    sigma = singular**2
    x = u.T @ target
    x2 = x * x
    res_x2 = (target**2).sum() - x2.sum()
    # N > D: the authors keep the rounding-level directions of a rank-deficient X, each contributing
    # log(alpha) to the log-determinant, which cancels the D - rank surplus of their D/2 log(alpha); their
    # number is the rank-consistent evidence, so the kept count goes in the first term. N <= D: the thin SVD
    # has exactly N components and the authors' D is a genuine quirk, reproduced unless exact_dimension.
    rank_consistent = exact_dimension or n_samples > n_features
    dimension = sigma.shape[0] if rank_consistent else n_features
    alpha, beta = 1.0, 1.0
    for _ in range(MAX_ITERATIONS):
        lam = alpha / beta
        gamma = (sigma / (sigma + lam)).sum()
        m2 = (sigma * x2 / (lam + sigma) ** 2).sum()
        res2 = (x2 / (1 + sigma / lam) ** 2).sum() + res_x2
        alpha = gamma / (m2 + LOGME_EPSILON)
        beta = (n_samples - gamma) / (res2 + LOGME_EPSILON)
        new_lam = alpha / beta
        evidence = (
            dimension / 2.0 * np.log(alpha)
            + n_samples / 2.0 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - n_samples / 2.0 * np.log(2 * np.pi)
        ) / n_samples
        if abs(new_lam - lam) / lam <= TOLERANCE:
            break
    weights = vh.T @ (singular / (lam + sigma) * x)
    return evidence, alpha, beta, weights


def logme_fit(features, labels, *, regression=False, exact_dimension=False):
    """Fit LogME; returns (evidence, alphas, betas, weights) with one entry per target."""
    if regression:
        features = check_features(features)
        targets = check_targets(labels, features.shape[0])
    else:
        features, encoded, classes = check_classification(features, labels)
        targets = (encoded[:, None] == np.arange(classes.shape[0])[None, :]).astype(np.float64)
    guard("logme", features, targets.shape[1], implementation="reference")
    features = np.asarray(features, dtype=np.float64)
    u, singular, vh = _factorise(features)
    results = [
        _fit_target(u, singular, vh, targets[:, k], features.shape[1], exact_dimension)
        for k in range(targets.shape[1])
    ]
    evidence, alphas, betas, weights = (np.array(column) for column in zip(*results))
    return evidence, alphas, betas, weights.T


def logme(features, labels, *, regression=False, exact_dimension=False):
    """Reference LogME score (mean evidence per sample over the target columns).

    Parameters and result as :func:`pedrank.logme`.
    """
    evidence, _, _, _ = logme_fit(
        features, labels, regression=regression, exact_dimension=exact_dimension
    )
    return check_finite_score(float(np.mean(evidence)), metric="logme", hint=LOGME_DEGENERATE)
