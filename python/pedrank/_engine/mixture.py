"""NLEEP's full-covariance Gaussian mixture: scikit-learn's EM, with the work it can skip skipped.

:func:`fit_gaussian_mixture` returns what ``sklearn.mixture.GaussianMixture(n_components=K,
covariance_type="full", random_state=random_state).fit(X)`` fits with its other defaults (``init_params="kmeans"``,
``n_init=1``, ``reg_covar=1e-6``, ``tol=1e-3``, ``max_iter=100``), and the ``predict_proba(X)`` of that fit: the
same k-means initialisation (scikit-learn's own ``KMeans``, seeded the same way), the same iterates and the same
stopping rule, so the two agree to rounding (tests/test_nleep_em.py). Three things make it faster
(BENCHMARKS.md, "NLEEP's mixture"):

* **Exact zeros are skipped.** A responsibility that underflows to 0 contributes nothing to the M-step's sums,
  so each component's mean and covariance are accumulated over the rows it actually holds. NLEEP's mixtures have
  ``N / K`` (samples per class / 5) rows per component, usually fewer than the PCA's dimension, so most
  responsibilities are exactly 0.
* **Pairs whose responsibility must be 0 are not evaluated** in the E-step. With ``P`` the precision's Cholesky
  factor and an orthonormal ``U`` (d x r, r = 8 << d), ``||(x - mu) P U||^2 <= ||(x - mu) P||^2`` (the Mahalanobis
  term) since ``U U^T <= I``, so one (N, d) x (d, K r) product bounds every pair's log-density from above. A pair
  whose bound lies more than :data:`PRUNE_MARGIN` below its sample's best exactly computed log-density has
  ``exp(log_resp) == 0`` in double precision whatever its exact value (``exp`` underflows to 0 below -745.13):
  scikit-learn computes it and gets 0; here it is left out and its responsibility is 0 too, and it adds exactly
  nothing to the log-sum-exp on either side. The surviving pairs are evaluated exactly, component by component.
  When the components overlap so much that most pairs survive, the fit's later E-steps evaluate every pair.
* **Triangular and symmetric BLAS**: the Mahalanobis terms by a triangular solve (``trsm``) with the covariance's
  Cholesky factor for the surviving pairs, or, where every pair is evaluated, by a triangular product (``trmm``,
  half a ``gemm``'s work) with its inverse; the covariances by ``syrk`` (half again). The last E-step is not
  repeated for ``predict_proba``.

This runs on NumPy/SciPy on the host. The per-component gathers and the BLAS calls on in-place Fortran views are
not written over the array namespace (``pedrank.backend``): torch tensors (features on a GPU, or ``backend="torch"``)
are fitted by :mod:`pedrank._engine.mixture_torch`, the same EM batched over blocks of components, which shares
this module's constants, initialisation, bound and stopping rule.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg.blas import dsyrk, dtrmm, dtrsm
from scipy.linalg.lapack import dpotrf, dtrtri

from pedrank._engine.validation import PedrankValueError

__all__ = [
    "BOUND_SHRINK", "GaussianMixtureFit", "LOG_2PI", "MAX_ITER", "MIN_DIM_TO_PRUNE", "MixtureFitError",
    "PRUNE_MARGIN", "REG_COVAR", "SKETCH_RANK", "TOL", "USELESS_SHARE", "checked_component_count",
    "fit_gaussian_mixture", "kmeans_labels", "sketch_basis", "warn_not_converged",
]

#: scikit-learn's GaussianMixture defaults, which NLEEP uses unchanged (n_init = 1, init_params = "kmeans").
REG_COVAR = 1e-6
TOL = 1e-3
MAX_ITER = 100

#: A pair is skipped when its upper bound is this far (in log-density) below the sample's best pair. exp underflows
#: to exactly 0 below -745.13; the 55 units of slack absorb the rounding of the bound and of the exact terms.
PRUNE_MARGIN = 800.0
#: The bound's Mahalanobis term is shrunk by this relative amount before use, far more than its rounding (~1e-13
#: relative at these magnitudes), so that the computed bound cannot exceed the exact term.
BOUND_SHRINK = 1e-6
#: Columns of the random sketch U; the bound costs about SKETCH_RANK / d of a dense E-step.
SKETCH_RANK = 8
#: Below this PCA dimension the sketch would cost a large share of a dense E-step: every pair is computed.
MIN_DIM_TO_PRUNE = 4 * SKETCH_RANK
#: A component holding more than this share of the rows is accumulated over all of them in the M-step (no gather).
_DENSE_SHARE = 0.5
#: A bounded E-step that still evaluates this share of the pairs costs about as much as a dense one (the bound and
#: the gathers on top): the later E-steps of the fit are dense.
USELESS_SHARE = 0.75
#: Rows per block in the dense passes: bounds the (rows, d) and (rows, K * r) temporaries to ~8 MiB.
_BLOCK_BYTES = 8 << 20

LOG_2PI = math.log(2.0 * math.pi)


class MixtureFitError(PedrankValueError):
    """A component's covariance is not positive definite (it collapsed onto too few samples): scikit-learn raises
    a ``ValueError`` at the same point."""


@dataclass(frozen=True)
class GaussianMixtureFit:
    """The fitted mixture, named as scikit-learn's attributes (K components, d dimensions, N samples).

    NumPy arrays from :func:`fit_gaussian_mixture`; float64 torch tensors on the features' device from
    :func:`pedrank._engine.mixture_torch.fit_gaussian_mixture_torch` (``lower_bound``, ``n_iter`` and
    ``converged`` are Python numbers either way).

    Attributes
    ----------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    cholesky_factors : ndarray of shape (K, d, d)
        Lower triangular ``L_k`` with ``L_k L_k^T = covariances[k]``.
    lower_bound : float
        Mean log-likelihood of the last E-step of the loop (scikit-learn's ``lower_bound_``).
    n_iter : int
    converged : bool
    posteriors : ndarray of shape (N, K)
        Responsibilities ``p(z | x_i)`` under the fitted parameters (``predict_proba`` of the training rows).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    cholesky_factors: np.ndarray
    lower_bound: float
    n_iter: int
    converged: bool
    posteriors: np.ndarray

    @property
    def precisions_cholesky(self):
        """ndarray (or torch.Tensor, for a fit on torch) of shape (K, d, d): scikit-learn's
        ``precisions_cholesky_``, upper triangular ``L_k^{-T}`` (computed on request: NLEEP needs only the
        posteriors)."""
        if not isinstance(self.cholesky_factors, np.ndarray):  # a torch fit (pedrank._engine.mixture_torch)
            import torch

            factors = self.cholesky_factors
            identity = torch.eye(factors.shape[-1], dtype=factors.dtype, device=factors.device)
            return torch.linalg.solve_triangular(factors, identity.expand_as(factors), upper=False).mT.contiguous()
        return np.ascontiguousarray(_inverse_factors(self.cholesky_factors).transpose(0, 2, 1))


def fit_gaussian_mixture(features: Any, n_components: int, *, random_state: Any = 0,
                         prune: bool | None = None) -> GaussianMixtureFit:
    """Fit NLEEP's Gaussian mixture as scikit-learn's ``GaussianMixture(covariance_type="full")`` does.

    Parameters
    ----------
    features : ndarray of shape (N, d)
        Read only (converted to C-ordered float64 if it is not).
    n_components : int
        K, between 1 and N.
    random_state : int, numpy.random.RandomState or None, default=0
        Passed through ``sklearn.utils.check_random_state`` to scikit-learn's ``KMeans`` initialisation, as
        ``GaussianMixture`` does (a ``RandomState`` is advanced, None uses NumPy's global state).
    prune : bool or None, default=None
        Skip the pairs whose responsibility is provably 0 in the E-step (None: when d >= 32). False evaluates
        every pair; both give the same fit to rounding.

    Returns
    -------
    GaussianMixtureFit

    Raises
    ------
    MixtureFitError
        A covariance is not positive definite or not finite (scikit-learn's ``ValueError``); the caller words it.
    PedrankValueError
        ``n_components`` outside 1..N.

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        After ``MAX_ITER`` iterations without convergence, with scikit-learn's message.
    """
    X = np.ascontiguousarray(features, dtype=np.float64)
    n_samples, n_features = X.shape
    n_components = checked_component_count(n_components, n_samples)
    if prune is None:
        prune = n_features >= MIN_DIM_TO_PRUNE and n_components > 1

    labels = kmeans_labels(X, n_components, random_state)
    # One-hot responsibilities, stored component-major (K, N) like every responsibility here.
    resp = np.zeros((n_components, n_samples))
    resp[labels, np.arange(n_samples)] = 1.0
    buffers = _Buffers(n_samples, n_components, n_features)
    params = _m_step(X, resp, buffers, normalise_weights=False)
    sketch = sketch_basis(n_features) if prune else None

    lower_bound = -np.inf
    converged = False
    for n_iter in range(1, MAX_ITER + 1):
        previous = lower_bound
        log_norm, resp, evaluated = _e_step(X, params, sketch, buffers)
        if evaluated > USELESS_SHARE:
            # The components overlap too much for the bound to skip pairs: it would only add its own cost.
            sketch = None
        params = _m_step(X, resp, buffers, normalise_weights=True)
        lower_bound = float(np.mean(log_norm))
        if abs(lower_bound - previous) < TOL:
            converged = True
            break
    if not converged:
        warn_not_converged(stacklevel=2)
    _, resp, _ = _e_step(X, params, sketch, buffers)
    weights, means, covariances, factors = params
    upper = np.triu_indices(n_features, 1)
    for covariance in covariances:
        covariance[upper] = covariance.T[upper]
    return GaussianMixtureFit(
        weights=weights,
        means=means,
        covariances=covariances,
        cholesky_factors=factors,
        lower_bound=lower_bound,
        n_iter=n_iter,
        converged=converged,
        posteriors=np.ascontiguousarray(resp.T),
    )


def checked_component_count(n_components: Any, n_samples: int) -> int:
    """``n_components`` as an int, refused (:class:`PedrankValueError`) outside 1..``n_samples``.

    Parameters
    ----------
    n_components : int
        K, the mixture's components.
    n_samples : int
        N, the rows the mixture is fitted on.

    Returns
    -------
    int
    """
    if not 1 <= int(n_components) <= n_samples:
        raise PedrankValueError(
            f"n_components: expected an integer between 1 and the {n_samples} samples, found {n_components!r}"
        )
    return int(n_components)


def kmeans_labels(features: np.ndarray, n_components: int, random_state: Any) -> np.ndarray:
    """scikit-learn's ``GaussianMixture`` initialisation (``init_params="kmeans"``): the labels of
    ``KMeans(n_clusters=K, n_init=1, random_state=check_random_state(random_state)).fit(features)``.

    Parameters
    ----------
    features : ndarray of shape (N, d), float64, on the host
    n_components : int
        K.
    random_state : int, numpy.random.RandomState or None
        As ``GaussianMixture`` takes it (a ``RandomState`` is advanced, None uses NumPy's global state).

    Returns
    -------
    ndarray of shape (N,), int
        Each sample's cluster, 0..K-1.
    """
    from sklearn.cluster import KMeans
    from sklearn.utils import check_random_state

    return KMeans(n_clusters=n_components, n_init=1, random_state=check_random_state(random_state)).fit(
        features).labels_


def warn_not_converged(stacklevel: int = 2) -> None:
    """scikit-learn's warning after ``MAX_ITER`` iterations, word for word, so that callers filtering it keep
    working.

    Parameters
    ----------
    stacklevel : int, default=2
        Counted from the caller of this function (2: the fit's caller).
    """
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(
        "Best performing initialization did not converge. Try different init parameters, or increase "
        "max_iter, tol, or check for degenerate data.",
        ConvergenceWarning,
        stacklevel=stacklevel + 1,
    )


def sketch_basis(n_features: int) -> np.ndarray:
    """The E-step bound's orthonormal U, fixed: which pairs are skipped never depends on the caller's random state
    (and the fit does not depend on U at all, only the time it takes).

    Parameters
    ----------
    n_features : int
        d, the PCA's dimension.

    Returns
    -------
    ndarray of shape (d, SKETCH_RANK), float64
    """
    gaussian = np.random.default_rng(0x5EED).standard_normal((n_features, SKETCH_RANK))
    return np.linalg.qr(gaussian)[0]


def _block_rows(n_columns):
    return max(64, _BLOCK_BYTES // (8 * max(1, n_columns)))


def _row_buffer(n_rows, n_columns):
    """A (rows, n_columns) scratch block, reused by every component and block instead of a fresh temporary each."""
    return np.empty((min(n_rows, _block_rows(n_columns)), n_columns))


class _Buffers:
    """The arrays every iteration rewrites, allocated once per fit: fresh (K, d, d) arrays per M-step (1.7 GB each
    at K = 500, d = 647) cost more in page faults than the arithmetic that fills them (at 10,000 x 1,024, C = 100,
    3.6 s per copy on the shared VM; the fit took 52 s with them, 31 s without, both under cProfile).

    Attributes
    ----------
    covariances, factors : ndarray of shape (K, d, d)
        The M-step's covariances (lower triangles; the upper ones stay 0 until the fit is returned) and their
        lower Cholesky factors.
    inverses : ndarray of shape (K, d, d) or None
        ``L_k^{-1}``, allocated by the first E-step that evaluates every pair.
    rows : ndarray of shape (B, d)
        Scratch rows, ``B = min(N, _block_rows(d))``.
    """

    def __init__(self, n_samples, n_components, n_features):
        self.covariances = np.zeros((n_components, n_features, n_features))
        self.factors = np.zeros((n_components, n_features, n_features))
        self.inverses = None
        self.rows = _row_buffer(n_samples, n_features)


def _m_step(X, resp, buffers, *, normalise_weights):
    """Weights (K,), means (K, d), covariances (K, d, d: lower triangles) and their lower Cholesky factors
    (K, d, d, in ``buffers``) from responsibilities ``resp`` (K, N).

    scikit-learn's ``_estimate_gaussian_parameters`` (counts plus 10 eps, centred weighted covariances plus
    ``reg_covar`` on the diagonal) and ``_compute_precision_cholesky``'s factorisation, accumulated over each
    component's rows with a non-zero responsibility, one component at a time while its d x d block is in cache.
    """
    n_components, n_samples = resp.shape
    n_features = X.shape[1]
    eps10 = 10 * np.finfo(np.float64).eps
    counts = np.empty(n_components)
    means = np.empty((n_components, n_features))
    step = buffers.rows.shape[0]
    for k in range(n_components):
        weight = resp[k]
        rows = np.flatnonzero(weight)
        if rows.size > _DENSE_SHARE * n_samples:
            held, weight_held = X, weight
        else:
            held, weight_held = X[rows], weight[rows]
        counts[k] = weight_held.sum() + eps10
        means[k] = (weight_held @ held) / counts[k]
        covariance = buffers.covariances[k]
        # syrk on the (d, n) Fortran view of sqrt(r) (x - mu) writes the upper triangle of the Fortran view of
        # ``covariance``, i.e. its lower triangle, which is all the Cholesky factorisation reads (the upper
        # triangles are filled in once, for the returned fit). beta = 0 on the first block overwrites last
        # iteration's values.
        gram = covariance.T
        if not held.shape[0]:  # an empty component: no scatter, only the floor (as in scikit-learn)
            covariance[...] = 0.0
        for start in range(0, held.shape[0], step):
            stop = min(start + step, held.shape[0])
            scaled = np.subtract(held[start:stop], means[k], out=buffers.rows[:stop - start])
            scaled *= np.sqrt(weight_held[start:stop])[:, None]
            result = dsyrk(1.0, scaled.T, beta=1.0 if start else 0.0, c=gram, trans=0, lower=0, overwrite_c=1)
            if not np.shares_memory(result, gram):
                gram[...] = result
        covariance /= counts[k]
        covariance.flat[:: n_features + 1] += REG_COVAR
        _cholesky_into(covariance, buffers.factors[k], k)
    weights = counts / counts.sum() if normalise_weights else counts / n_samples
    return weights, means, buffers.covariances, buffers.factors


def _cholesky_into(covariance, factor, component):
    """The lower Cholesky factor of ``covariance`` (d, d; its lower triangle is read) into ``factor``."""
    np.copyto(factor, covariance)
    if not np.isfinite(factor).all():
        raise MixtureFitError(f"the covariance of component {component} is not finite")
    # factor.T is a Fortran view whose upper triangle is the covariance's lower one: potrf factors it in place as
    # U^T U with U = L^T, and zeroes the rest.
    result, info = dpotrf(factor.T, lower=0, clean=1, overwrite_a=1)
    if info != 0:
        raise MixtureFitError(f"the covariance of component {component} is not positive definite")
    if not np.shares_memory(result, factor):
        factor[...] = result.T


def _inverse_factors(factors, out=None):
    """``L_k^{-1}`` (K, d, d), lower triangular, into ``out`` (a new array if None); scikit-learn's precision
    Cholesky factor is its transpose."""
    inverses = np.empty_like(factors) if out is None else out
    for k, inverse in enumerate(inverses):
        np.copyto(inverse, factors[k])
        # inverse.T is a Fortran view of L^T (upper): trtri inverts it in place.
        result, info = dtrtri(inverse.T, lower=0, overwrite_c=1)
        if info != 0:
            raise MixtureFitError(f"the Cholesky factor of component {k} is singular")
        if not np.shares_memory(result, inverse):
            inverse[...] = result.T
    return inverses


def _mahalanobis(X, rows, mean, factor, inverse, buffer):
    """``||L^{-1} (x_i - mean)||^2`` for ``i`` in ``rows`` (None: every row), a ``buffer`` of rows at a time.

    With ``inverse`` (``L^{-1}``) a triangular product (trmm), else a triangular solve with ``factor`` (trsm):
    the product is about twice as fast in OpenBLAS, the solve saves inverting ``L``, which pays only when few
    rows are evaluated.
    """
    count = X.shape[0] if rows is None else rows.size
    squared = np.empty(count)
    step = buffer.shape[0]
    for start in range(0, count, step):
        stop = min(start + step, count)
        centred = buffer[:stop - start]
        if rows is None:
            np.subtract(X[start:stop], mean, out=centred)
        else:
            np.take(X, rows[start:stop], axis=0, out=centred)
            centred -= mean
        squared[start:stop] = _whitened_norms(centred, factor, inverse)
    return squared


def _whitened_norms(centred, factor, inverse):
    """Squared norms of ``L^{-1} c`` for the rows ``c`` of ``centred`` (n, d), which is overwritten.

    ``.T`` of a C-ordered lower triangular matrix is a Fortran view of its (upper) transpose and ``centred.T`` a
    (d, n) Fortran view, so the BLAS reads both in place and writes ``L^{-1} c`` over the centred rows.
    """
    if inverse is not None:
        whitened = dtrmm(1.0, inverse.T, centred.T, lower=0, trans_a=1, overwrite_b=1)
    else:
        whitened = dtrsm(1.0, factor.T, centred.T, lower=0, trans_a=1, overwrite_b=1)
    return np.einsum("ij,ij->j", whitened, whitened)


def _e_step(X, params, sketch, buffers):
    """(log p(x_i) (N,), responsibilities (K, N), share of the K x N pairs evaluated) under ``params``, as
    scikit-learn's ``_estimate_log_prob_resp``.

    Without ``sketch`` every pair is evaluated. With ``sketch`` (d, r), pairs proven to have a zero
    responsibility get log-density -inf and are never evaluated; every other pair is evaluated exactly.
    """
    weights, means, _, factors = params
    n_components, n_features = means.shape
    n_samples = X.shape[0]
    # log det of scikit-learn's P_k = L_k^{-T}.
    log_det = -np.sum(np.log(factors.reshape(n_components, -1)[:, :: n_features + 1]), axis=1)
    log_weights = np.log(weights)
    constant = n_features * LOG_2PI
    if sketch is None:
        if buffers.inverses is None:
            buffers.inverses = np.empty_like(factors)
        inverses = _inverse_factors(factors, out=buffers.inverses)
    else:
        inverses = [None] * n_components
    buffer = buffers.rows

    def log_density(k, rows):
        squared = _mahalanobis(X, rows, means[k], factors[k], inverses[k], buffer)
        return -0.5 * (constant + squared) + log_det[k] + log_weights[k]

    log_prob = np.full((n_components, n_samples), -np.inf)
    evaluated = n_components * n_samples
    if sketch is None:
        for k in range(n_components):
            log_prob[k] = log_density(k, None)
    else:
        upper = _upper_bounds(X, means, factors, sketch, log_det + log_weights, constant)
        # Each sample's most promising component, evaluated exactly, sets the floor for the others.
        best = np.argmax(upper, axis=0)
        order = np.argsort(best, kind="stable")
        starts = np.searchsorted(best[order], np.arange(n_components + 1))
        for k in range(n_components):
            rows = order[starts[k]:starts[k + 1]]
            if rows.size:
                log_prob[k, rows] = log_density(k, rows)
        floor = log_prob[best, np.arange(n_samples)] - PRUNE_MARGIN
        survivors = upper >= floor
        survivors[best, np.arange(n_samples)] = False
        evaluated = n_samples
        for k in range(n_components):
            rows = np.flatnonzero(survivors[k])
            if rows.size:
                log_prob[k, rows] = log_density(k, rows)
                evaluated += rows.size
    log_norm = _logsumexp_columns(log_prob)
    with np.errstate(under="ignore"):
        resp = np.exp(log_prob - log_norm)
    return log_norm, resp, evaluated / (n_components * n_samples)


def _upper_bounds(X, means, factors, sketch, offsets, constant):
    """(K, N) upper bounds of every pair's log-density ``offsets[k] - (constant + m_ik) / 2``, where the
    Mahalanobis term ``m_ik`` is bounded below by its sketch ``||(x_i - mu_k) P_k U||^2``, ``P_k = L_k^{-T}``."""
    n_components, n_features = means.shape
    rank = sketch.shape[1]
    projected = np.empty((n_components, n_features, rank))
    for k, factor in enumerate(factors):
        # L^T Z = U, on the Fortran view of L^T.
        projected[k] = dtrsm(1.0, factor.T, sketch, lower=0)
    columns = np.ascontiguousarray(projected.transpose(1, 0, 2).reshape(n_features, n_components * rank))
    projected_means = np.einsum("kd,kdr->kr", means, projected)
    bounds = np.empty((n_components, X.shape[0]))
    step = _block_rows(n_components * rank)
    for start in range(0, X.shape[0], step):
        block = (X[start:start + step] @ columns).reshape(-1, n_components, rank)
        block -= projected_means
        bounds[:, start:start + step] = np.einsum("nkr,nkr->kn", block, block)
    bounds *= 1.0 - BOUND_SHRINK
    return offsets[:, None] - 0.5 * (constant + bounds)


def _logsumexp_columns(log_prob):
    """log sum_k exp(log_prob[k, i]) for every column, in scikit-learn's form (the maxima taken out, log1p of the
    rest) so that the rounding matches; -inf entries contribute exactly 0."""
    top = np.max(log_prob, axis=0)
    at_top = log_prob == top
    count = at_top.sum(axis=0).astype(np.float64)
    rest = np.where(at_top, -np.inf, log_prob)
    shift = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        total = np.exp(rest - shift).sum(axis=0)
    total = np.where(total == 0, total, total / count)
    return np.log1p(total) + np.log(count) + top
