"""NCTI (Wang et al., CVPR 2023): neural-collapse transferability, three terms normalised over the pool.

The authors' ``NCTI_Score`` (BUserName/NCTI, metrics.py) reduces the features to 64 principal components,
fits scikit-learn's LDA (shrinkage ``max(exp(-sum of the top-32 PCA variances), 1e-10)`` with the eigen
solver, or the SVD solver when that floor is hit) and returns three raw terms:

- ``seli``: the nuclear norm of the centred LDA projections (class separability);
- ``ncc``: E[p(y | x)] of the LDA posteriors, without a log (nearest-centre classifier fit);
- ``vc``: log of the sum over classes of the nuclear norms of the class's posterior rows (within-class
  variability collapse; lower is better).

Their evaluation script min-max scales each term across the model pool and ranks by
``ncc + seli - vc`` (scaled): :func:`ncti_pool`. :func:`ncti` for one model returns the unscaled
``seli + ncc - vc``, which is *not* that number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg
import scipy.special

from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import PedrankValueError, check_classification, check_int, finite_score, to_numpy
from pedrank.scores.registry import ScoreEntry, register

if TYPE_CHECKING:
    from pedrank.workflow.rank import RankTable

__all__ = ["ncti", "ncti_terms", "ncti_pool", "lda_posteriors_and_projection"]

#: The pool weights of the scaled (seli, ncc, vc) terms in the authors' evaluation script.
POOL_WEIGHTS = (1.0, 1.0, -1.0)
#: Rows per block of the PCA projection (a 4,096 x D float64 block: 64 MiB at D = 2,048).
_PCA_BLOCK_ROWS = 4096
#: scikit-learn's LinearDiscriminantAnalysis tolerance (SVD solver), which the authors' calls leave as is.
LDA_SVD_TOL = 1e-4


def _eigen_solver(Z, encoded, counts, means, shrinkage):
    """scikit-learn's shrinkage LDA (solver='eigen'): posteriors and the projections on the top C-1 axes."""
    n, q = Z.shape
    priors = counts / n

    def shrunk(cov):
        return (1.0 - shrinkage) * cov + shrinkage * np.trace(cov) / q * np.eye(q)

    centred = Z - means[encoded]
    within = shrunk(centred.T @ centred / n)  # sum_c pi_c cov_c (1/n_c each) = pooled scatter / N
    total = shrunk(np.cov(Z.T, bias=True).reshape(q, q))
    evals, evecs = scipy.linalg.eigh(total - within, within)
    top = evecs[:, np.argsort(evals)[::-1][: min(means.shape[0] - 1, q)]]
    coef = scipy.linalg.solve(within, means.T, assume_a="pos").T  # means @ Sw^-1 = means @ V V^T
    logits = Z @ coef.T - 0.5 * np.einsum("cd,cd->c", means, coef) + np.log(priors)
    return scipy.special.softmax(logits, axis=1), Z @ top


def _svd_solver(Z, encoded, counts, means):
    """scikit-learn's LDA without shrinkage (solver='svd', tol=1e-4), as scikit-learn 1.9 computes it.

    The within-class scaling divides by N (scikit-learn before the change divided by N - C, which sharpens the
    posteriors and scales seli by sqrt(N / (N - C))).
    """
    n, q = Z.shape
    n_classes = means.shape[0]
    priors = counts / n
    centred = Z - means[encoded]
    std = centred.std(axis=0)
    std[std == 0] = 1.0
    _, s, vt = np.linalg.svd(np.sqrt(1.0 / n) * (centred / std), full_matrices=False)
    rank = int(np.sum(s > LDA_SVD_TOL))
    scalings = (vt[:rank] / std).T / s[:rank]
    xbar = priors @ means
    fac = 1.0 if n_classes == 1 else 1.0 / (n_classes - 1)
    centers = (np.sqrt(n * priors * fac) * (means - xbar).T).T @ scalings
    _, s2, vt2 = np.linalg.svd(centers, full_matrices=False)
    rank2 = int(np.sum(s2 > LDA_SVD_TOL * s2[0]))
    axes = scalings @ vt2.T[:, :rank2]
    coef = (means - xbar) @ axes
    intercept = -0.5 * np.sum(coef**2, axis=1) + np.log(priors)
    coef = coef @ axes.T
    intercept -= xbar @ coef.T
    posteriors = scipy.special.softmax(Z @ coef.T + intercept, axis=1)
    return posteriors, (Z - xbar) @ axes[:, : min(n_classes - 1, q)]


def lda_posteriors_and_projection(Z: np.ndarray, encoded: np.ndarray, counts: np.ndarray, means: np.ndarray,
                                  shrinkage: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The authors' LDA on PCA scores Z (n_samples, q): ``(posteriors (n, C), projections (n, <= C-1))``.

    ``shrinkage`` None: the SVD solver; a float: the eigen solver with that shrinkage.
    """
    if shrinkage is None:
        return _svd_solver(Z, encoded, counts, means)
    return _eigen_solver(Z, encoded, counts, means, shrinkage)


def _nuclear(matrix):
    return float(np.sum(np.linalg.svd(matrix, compute_uv=False)))


@follows_thread_policy
def ncti_terms(features: Any, labels: Any, *, n_components: int = 64,
               backend: str = "auto") -> tuple[float, float, float]:
    """NCTI's three raw terms for one model.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
    labels : array_like of shape (n_samples,)
        Any values; mapped to 0..C-1 in sorted order.
    n_components : int, default=64
        Principal components kept (the authors' 64), at most min(N, D) (the authors' code fails there).
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the feature covariance (torch for a tensor); the PCA scores, the LDA and the nuclear norms
        are then computed on the host in float64.

    Returns
    -------
    tuple of float
        ``(seli, ncc, vc)``; higher seli and ncc and lower vc are better.

    Notes
    -----
    PCA is exact (eigen-decomposition of the covariance). The authors' ``PCA(n_components=64)`` lets
    scikit-learn choose the solver: exact below 500 rows and columns or for N > 10 D with D < 1000, but an
    unseeded randomized SVD otherwise (e.g. N = 900, D = 256), whose scores differ from the exact ones by a
    little and from run to run.
    """
    n_components = check_int(n_components, name="n_components", minimum=1)
    features, encoded, classes = check_classification(features, labels)
    kernels = select_kernels(features, backend)
    mean, covariance = kernels.covariance(features)
    X = to_numpy(features)
    n, d = X.shape
    q = min(n_components, n, d)
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(to_numpy(covariance), dtype=np.float64))
    order = np.argsort(eigenvalues)[::-1][:q]
    components = np.ascontiguousarray(eigenvectors[:, order])
    # The PCA scores in float64, as scikit-learn's transform forms them (X @ V - mean @ V), a block of rows at a
    # time: no N x D float64 copy and no centred copy (1.6 GB at 50,000 x 2,048), only N x q.
    Z = np.empty((n, q))
    shift = np.asarray(to_numpy(mean), dtype=np.float64) @ components
    for start in range(0, n, _PCA_BLOCK_ROWS):
        block = np.asarray(X[start:start + _PCA_BLOCK_ROWS], dtype=np.float64)
        np.subtract(block @ components, shift, out=Z[start:start + _PCA_BLOCK_ROWS])
    explained = Z.var(axis=0, ddof=1)  # scikit-learn's explained_variance_ (N - 1)
    temp = max(np.exp(-explained[:32].sum()), 1e-10)
    n_classes = classes.shape[0]
    counts = np.bincount(encoded, minlength=n_classes).astype(np.float64)
    if counts.max() < 2:
        raise PedrankValueError(
            f"labels: every one of the {n_classes} classes has a single sample (features of shape {(n, d)}), so "
            "NCTI's LDA has no within-class scatter; expected at least one class with 2 or more samples"
        )
    means = np.zeros((n_classes, q))
    np.add.at(means, encoded, Z)
    means /= counts[:, None]
    try:
        posteriors, projection = lda_posteriors_and_projection(Z, encoded, counts, means,
                                                               None if temp == 1e-10 else float(temp))
    except np.linalg.LinAlgError as exc:
        raise PedrankValueError(
            f"ncti: the LDA on the {q} principal components of features of shape {(n, d)} failed ({exc}): the "
            "within-class scatter of the components is singular, i.e. the features barely vary within classes "
            "(values at the rounding level of their scale, or a subnormal scale). Check the extraction, or "
            "standardise the features"
        ) from exc
    seli = _nuclear(projection - projection.mean(axis=0, keepdims=True))
    ncc = float(np.mean(posteriors[np.arange(n), encoded]))
    vc = float(np.log(sum(_nuclear(posteriors[encoded == c]) for c in range(n_classes))))
    return seli, ncc, vc


@finite_score("ncti")
def ncti(features: Any, labels: Any, *, n_components: int = 64, backend: str = "auto") -> float:
    """NCTI for one model, unnormalised: ``seli + ncc - vc`` of :func:`ncti_terms`.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
    labels : array_like of shape (n_samples,)
    n_components, backend
        As :func:`ncti_terms`.

    Returns
    -------
    float
        Not the authors' NCTI: theirs min-max scales each term across the models compared, so a model's
        score depends on the pool (:func:`ncti_pool`). This raw sum is dominated by seli, a nuclear norm that
        grows with N and with the number of LDA axes; higher is better.
    """
    seli, ncc, vc = ncti_terms(features, labels, n_components=n_components, backend=backend)
    return float(seli + ncc - vc)


def ncti_pool(pool: Mapping[str, Any], labels: Any = None, *, ped: Any = False, backend: str = "auto",
              references: Mapping[str, Any] | None = None, dataset: str | None = None, n_components: int = 64,
              errors: str = "raise", progress: bool | None = None, metric_name: str | None = None,
              executor: Any = None) -> RankTable:
    """NCTI as its authors rank a pool: ``scaled(ncc) + scaled(seli) - scaled(vc)``, each min-max over the pool.

    Parameters
    ----------
    pool : mapping of str to model features
        As :func:`pedrank.rank`.
    labels : array_like of shape (n_samples,), optional
    ped : bool or dict, default=False
        Move each model's features with PED before its terms are computed.
    backend, references, dataset, errors, progress, executor
        As :func:`pedrank.rank` (``errors="row"``: a failing model gets a NaN row, the others are scaled
        without it).
    n_components : int, default=64
    metric_name : str, optional
        The name the table carries; default ``"ncti"``.

    Returns
    -------
    pedrank.RankTable
        Best first; scores in [-1, 2]. Adding or removing a model can change every other model's score (and
        the order). A term equal for every model (or a pool of one) scales to 0.
    """
    from pedrank.workflow.pool import pool_scores

    return pool_scores(pool, labels, metric="ncti", terms=ncti_terms, weights=POOL_WEIGHTS, ped=ped,
                       backend=backend, references=references, dataset=dataset, n_components=n_components,
                       errors=errors,
                       progress=progress, metric_name=metric_name, executor=executor)


register(ScoreEntry(name="ncti", function=ncti, reference="pedrank.reference.ncti:ncti", pool=ncti_pool, order=13,
                    scale_range=(0.35, math.inf)))  # LDA shrinkage exp(-PCA variance), in the features' units
