"""The kernel contract written once against :class:`pedrank._engine.backend.Backend` (NumPy or torch, any device).

:class:`ArrayKernels` has the same methods and signatures as the compiled core ``pedrank._core``, so a public
score can hold ``kernels = _core`` or ``kernels = ArrayKernels(backend)`` and call either. Inputs follow the
contract: ``X`` is 2-D float (N x D), ``labels`` int64 in 0..C-1 with every class present, already validated.
Results are Python floats and small NumPy arrays, except the moved features of :meth:`ArrayKernels.ped_step`,
which stay a native array on the input's device, in the input's dtype.

Algorithms (same numbers as the authors' code, much less work):

- LogME eigen-decomposes the Gram matrix X^T X (N > D) or X X^T (N <= D) once and projects all targets at
  once: for classification u^T t_c is a class sum, so the N x k matrix u is never formed when N > D. The
  fixed point runs for every target together, each target frozen at its own stopping iteration.
- SFDA's generalised eigenproblem Sb v = l Sw' v is replaced by a Cholesky solve: coef = M Sw'^-1.
- GBC's PCA is an eigen-decomposition of the covariance (or of the centred Gram matrix when N < D).
- PED works from class means and variances and visits pairs of classes in row blocks, so memory stays
  O(block * C * D) instead of the authors' C x C x D. The step is split like the compiled core:
  ``class_moments`` (counts, means, variances from one shifted pass), ``ped_pair_forces`` (the pairwise
  displacements from rescaled means and radii alone), ``ped_forces`` (the two composed) and ``ped_apply``
  (writes the moved features into a caller-given array, possibly X itself); ``ped_step`` is forces then apply.

Precision: ``dtype="float64"`` (default) matches the reference to about 1e-8 relative. ``dtype="float32"``
runs the O(N) passes (Gram matrices, projections, class sums) in float32 and every D x D factorisation in
float64; on the parity vectors the scores then stay within 1e-4 relative of float64 (measured: LogME 5e-7,
LogME regression 7e-5, SFDA 7e-7, GBC 1e-5, PED movement 2e-7), ample for ranking models but not for parity
checks. Tests assert 1e-3.

Determinism: on CUDA the class sums use ``index_add_`` (atomic adds), so results may differ run to run in the
last bits (~1e-16 relative); ``torch.use_deterministic_algorithms(True)`` makes them reproducible.
"""

from __future__ import annotations

import math

import numpy as np

from pedrank._engine.backend import Backend, NumpyBackend, get_backend, is_torch_tensor
from pedrank._engine.constants import (
    GBC_VARIANCE_FLOOR,
    LOGME_EPSILON,
    LOGME_MAX_ITERATIONS,
    LOGME_RANK_TOLERANCE,
    LOGME_TOLERANCE,
    SFDA_MIN_SHRINKAGE,
    SFDA_POWER_ROUNDS,
)
from pedrank._engine.kernels import KERNEL_NAMES
from pedrank._engine.validation import PedrankValueError, within_scatter_is_zero

__all__ = ["CONTRACT", "LOGME_MAX_ITER", "PAIR_BLOCK_ELEMENTS", "ArrayKernels", "TorchKernels", "check_dtype"]

LOGME_MAX_ITER = LOGME_MAX_ITERATIONS
LOGME_TOL = LOGME_TOLERANCE
LOGME_EPS = LOGME_EPSILON
LOGME_RANK_TOL = LOGME_RANK_TOLERANCE
# Gram eigenvalues below lambda_max * max(N, D) * eps are rounding noise (see reference/logme.py).
GRAM_EPSILON = float(np.finfo(np.float64).eps)
# Elements of one (rows x C x D) block of pairwise mean differences in PED (and x n_components in GBC):
# 2**24 float64 values are 128 MiB.
PAIR_BLOCK_ELEMENTS = 1 << 24

_DTYPES = ("float64", "float32")


def check_dtype(dtype) -> str:
    """Normalise a compute-precision option to ``"float64"`` or ``"float32"``."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in _DTYPES:
        raise PedrankValueError(f"dtype must be one of {_DTYPES}; got {dtype!r}")
    return name


class ArrayKernels:
    """Kernel contract on an array backend.

    Parameters
    ----------
    backend : Backend, optional
        Where to compute; defaults to :class:`~pedrank._engine.backend.NumpyBackend`.
    dtype : {"float64", "float32"}, default "float64"
        Precision of the passes over the N samples. D x D factorisations always run in float64.
    """

    def __init__(self, backend: Backend | None = None, dtype="float64"):
        self.backend = backend if backend is not None else NumpyBackend()
        self.dtype = check_dtype(dtype)
        nx = self.backend
        self._work = nx.float64 if self.dtype == "float64" else nx.float32

    @classmethod
    def for_features(cls, features, backend="auto", dtype="float64"):
        """Kernels on the backend that :func:`~pedrank._engine.backend.get_backend` picks for ``features``."""
        return cls(get_backend(features, backend), dtype=dtype)

    def __repr__(self):
        return f"ArrayKernels({self.backend!r}, dtype={self.dtype!r})"

    def __getattr__(self, name):
        # Kernels a score registered with its entry (pedrank._registry) rather than as a method here.
        if name.startswith("_"):
            raise AttributeError(name)
        from pedrank.scores.registry import registered_array_kernel

        implementation = registered_array_kernel(name)
        if implementation is None:
            raise AttributeError(f"{type(self).__name__} has no kernel {name!r}")
        return lambda *args, **kwargs: implementation(self, *args, **kwargs)

    # ------------------------------------------------------------------ helpers (native arrays)
    def _features(self, X):
        return self.backend.asarray(X, dtype=self._work)

    def _f64(self, x):
        return self.backend.asarray(x, dtype=self.backend.float64)

    def _numpy(self, x):
        return np.asarray(self.backend.to_numpy(x), dtype=np.float64)

    def _class_stats(self, X, labels, n_classes):
        nx = self.backend
        counts = nx.bincount(labels, n_classes)
        sums = nx.index_add(labels, X, n_classes)
        means = sums / self.backend.asarray(counts, dtype=X.dtype).reshape(-1, 1)
        return counts, means

    def _class_variances(self, X, labels, n_classes, counts, means):
        """Per-class population variance of every column, from the within-class residuals (no cancellation)."""
        nx = self.backend
        residual = X - means[labels]
        sq = nx.index_add(labels, residual * residual, n_classes)
        return sq / nx.asarray(counts, dtype=X.dtype).reshape(-1, 1)

    # ------------------------------------------------------------------ contract
    def class_means(self, X, labels, n_classes):
        """Class sizes and means.

        Returns
        -------
        counts : ndarray of int64, shape (C,)
        means : ndarray of float64, shape (C, D)
        """
        nx = self.backend
        counts, means = self._class_stats(self._features(X), nx.asindex(labels), int(n_classes))
        return np.asarray(nx.to_numpy(counts), dtype=np.int64), self._numpy(means)

    def covariance(self, X):
        """Column means and population covariance (divided by N).

        Returns
        -------
        mean : ndarray of float64, shape (D,)
        cov : ndarray of float64, shape (D, D)
        """
        nx = self.backend
        Xw = self._features(X)
        mean = nx.mean(Xw, axis=0)
        centred = Xw - mean
        cov = (centred.T @ centred) / Xw.shape[0]
        return self._numpy(mean), self._numpy(cov)

    def mean_std(self, X):
        """Column means and population standard deviations (PED's rescaling statistics), f64[D] each."""
        nx = self.backend
        Xw = self._features(X)
        mean = nx.mean(Xw, axis=0)
        centred = Xw - mean
        std = nx.sqrt(nx.mean(centred * centred, axis=0))
        return self._numpy(mean), self._numpy(std)

    def logme(self, X, labels, n_classes, targets=None, exact_dimension=False):
        """LogME evidence per target with the authors' fixed-point solver.

        Parameters
        ----------
        X : array, shape (N, D)
        labels : int64 array, shape (N,), or None for regression
        n_classes : int
        targets : array of float, shape (N, K), or None
            None: classification, one 0/1 indicator target per class (K = C).
        exact_dimension : bool
            Only matters when N <= D: False gives the authors' D/2 log(alpha) term, True N/2 log(alpha). When
            N > D the first term always counts the kept components (the numerical rank), which is what the
            authors' code computes there (see :func:`pedrank.logme`).

        Returns
        -------
        evidence, alpha, beta : ndarray of float64, shape (K,)
        weights : ndarray of float64, shape (D, K)
            Posterior mean V diag(s / (lam + sigma)) x, with lam the ratio alpha/beta used in the last
            iteration (the one that produced the final m2 and res2).
        """
        nx = self.backend
        Xw = self._features(X)
        N, D = Xw.shape
        classification = targets is None
        if classification:
            labels = nx.asindex(labels)
            counts = nx.bincount(labels, int(n_classes))
        else:
            Y = self._features(targets)
            if Y.ndim == 1:
                Y = Y.reshape(-1, 1)

        if N > D:
            sigma, V = nx.eigh(self._f64(Xw.T @ Xw))
            s = nx.sqrt(nx.maximum(sigma, 0.0))
            keep = (s > LOGME_RANK_TOL) & (sigma > nx.item(sigma.max()) * max(N, D) * GRAM_EPSILON)
            sigma, s, V = sigma[keep], s[keep], V[:, keep]
            if classification:
                class_sums = nx.index_add(labels, Xw, int(n_classes))
                x = (self._f64(class_sums) @ V).T / s.reshape(-1, 1)
            else:
                x = (V.T @ self._f64(Xw.T @ Y)) / s.reshape(-1, 1)
        else:
            # Thin SVD through the N x N Gram matrix; the authors keep all min(N, D) components here.
            sigma, U = nx.eigh(self._f64(Xw @ Xw.T))
            sigma = nx.maximum(sigma, 0.0)
            if classification:
                x = nx.index_add(labels, U, int(n_classes)).T
            else:
                x = U.T @ self._f64(Y)
        k = sigma.shape[0]

        if classification:
            target_sq = nx.asarray(counts, dtype=nx.float64)
        else:
            Y64 = self._f64(Y)
            target_sq = nx.sum(Y64 * Y64, axis=0)
        x2 = x * x
        if self.dtype == "float64":
            res_x2 = target_sq - nx.sum(x2, axis=0)
        else:
            # |t|^2 - |x|^2 cancels catastrophically in float32 when a target is nearly in the span of X;
            # the explicit least-squares residual stays accurate.
            res_x2 = self._logme_residual(Xw, U if N <= D else None, V if N > D else None, s if N > D else None,
                                          x, labels if classification else None, None if classification else Y)
        n_targets = x2.shape[1]
        sig = sigma.reshape(-1, 1)

        alpha = nx.asarray(np.ones(n_targets), dtype=nx.float64)
        beta = nx.asarray(np.ones(n_targets), dtype=nx.float64)
        m2 = nx.zeros(n_targets)
        res2 = nx.zeros(n_targets)
        lam_last = nx.zeros(n_targets)
        active = alpha > 0
        for _ in range(LOGME_MAX_ITER):
            lam = alpha / beta
            gamma = nx.sum(sig / (sig + lam), axis=0)
            m2_new = nx.sum(sig * x2 / ((lam + sig) ** 2), axis=0)
            res2_new = nx.sum(x2 / ((1 + sig / lam) ** 2), axis=0) + res_x2
            alpha_new = gamma / (m2_new + LOGME_EPS)
            beta_new = (N - gamma) / (res2_new + LOGME_EPS)
            alpha = nx.where(active, alpha_new, alpha)
            beta = nx.where(active, beta_new, beta)
            m2 = nx.where(active, m2_new, m2)
            res2 = nx.where(active, res2_new, res2)
            lam_last = nx.where(active, lam, lam_last)
            converged = nx.abs(alpha_new / beta_new - lam) / lam <= LOGME_TOL
            active = active & ~converged

        # N > D: the authors' s > 1e-10 test keeps the Gram's rounding-level directions, each adding log(alpha)
        # to the log-determinant and so cancelling the D - rank surplus of their D/2 log(alpha): their number is
        # the rank-consistent evidence. We drop those directions, so the rank goes in the first term.
        dim_term = k if (exact_dimension or N > D) else D
        evidence = (dim_term / 2.0 * nx.log(alpha) + N / 2.0 * nx.log(beta)
                    - 0.5 * nx.sum(nx.log(alpha + beta * sig), axis=0)
                    - beta / 2.0 * res2 - alpha / 2.0 * m2 - N / 2.0 * math.log(2 * math.pi)) / N

        shrink = x / (lam_last + sig)
        if N > D:
            weights = V @ (s.reshape(-1, 1) * shrink)
        else:
            weights = self._f64(Xw.T @ self._cast(U, Xw)) @ shrink
        return self._numpy(evidence), self._numpy(alpha), self._numpy(beta), self._numpy(weights)

    def _logme_residual(self, Xw, U, V, s, x, labels, Y):
        """Squared norm of each target's residual after least squares on X (float32 path of :meth:`logme`)."""
        nx = self.backend
        if U is not None:
            fitted = self._cast(U, Xw) @ self._cast(x, Xw)
        else:
            fitted = Xw @ self._cast(V @ (x / s.reshape(-1, 1)), Xw)
        if Y is not None:
            residual = self._f64(Y - fitted)
            return nx.sum(residual * residual, axis=0)
        # One-hot targets: |t_c - f_c|^2 = |f_c|^2 - 2 sum_{i in c} f_ic + n_c.
        fitted = self._f64(fitted)
        C = fitted.shape[1]
        own = nx.index_add(labels, fitted, C)
        own = nx.sum(own * nx.eye(C), axis=0)
        counts = nx.asarray(nx.bincount(labels, C), dtype=nx.float64)
        return nx.maximum(nx.sum(fitted * fitted, axis=0) - 2 * own + counts, 0.0)

    # ------------------------------------------------------------------ SFDA
    def _sfda_fit(self, Xw, labels, n_classes, shrinkage):
        """Native (coef^T D x C, intercept C, shrinkage, means C x D) of the shrunk FDA classifier."""
        nx = self.backend
        N, D = Xw.shape
        counts, means = self._class_stats(Xw, labels, n_classes)
        residual = Xw - means[labels]
        within = self._f64(residual.T @ residual) / N
        eye = nx.eye(D)
        trace = nx.item(nx.sum(within * eye))
        if not math.isfinite(trace):
            raise PedrankValueError(
                "sfda: the within-class scatter has non-finite entries: the features hold inf or NaN, or values "
                "so large that their squares overflow float64; remove them or rescale the features"
            )
        if within_scatter_is_zero(trace, self._numpy(counts), self._numpy(self._f64(means)), N):
            raise PedrankValueError(
                "sfda: the within-class scatter is zero (every class's samples are identical, e.g. one "
                "sample per class); the Fisher discriminant is undefined. Expected at least one class "
                "with two different samples"
            )
        if shrinkage is None or math.isnan(shrinkage):
            shrinkage = max(math.exp(-5.0 * self._power_iteration_lmax(within)), SFDA_MIN_SHRINKAGE)
        shrinkage = float(shrinkage)
        shrunk = (1.0 - shrinkage) * within + (shrinkage * trace / D) * eye
        means64 = self._f64(means)
        try:
            coef_t = nx.cholesky_solve(means64.T, nx.cholesky(shrunk))
        except (np.linalg.LinAlgError, RuntimeError):
            coef_t = nx.solve(shrunk, means64.T)
        priors = nx.asarray(counts, dtype=nx.float64) / N
        intercept = -0.5 * nx.sum(means64 * coef_t.T, axis=1) + nx.log(priors)
        return coef_t, intercept, shrinkage, means

    def _power_iteration_lmax(self, within):
        """The authors' 3-round power-iteration estimate of the largest eigenvalue; 0 when the iterate vanishes."""
        nx = self.backend
        v = nx.sum(within, axis=1)
        w = v
        for _ in range(SFDA_POWER_ROUNDS):
            t = within @ v
            norm = nx.item(nx.sqrt(nx.sum(t * t)))
            if not norm > 0:  # no spread left to measure (the authors divide 0 by 0 here)
                return 0.0
            w = t / norm
            t = within @ w
            norm = nx.item(nx.sqrt(nx.sum(t * t)))
            if not norm > 0:
                return 0.0
            v = t / norm
        return nx.item(nx.sum(v * (within @ w)))

    def _predict_proba(self, Xw, coef_t, intercept):
        nx = self.backend
        logits = self._f64(Xw @ self._cast(coef_t, Xw))
        return nx.softmax(logits + intercept, axis=1)

    def sfda_fit(self, X, labels, n_classes, shrinkage=float("nan")):
        """Shrunk FDA classifier: p(c|x) = softmax(x coef^T + intercept).

        Returns
        -------
        coef : ndarray of float64, shape (C, D)
        intercept : ndarray of float64, shape (C,)
        shrinkage : float
            The one given, or the adaptive one when ``shrinkage`` is NaN or None.
        """
        nx = self.backend
        coef_t, intercept, shrinkage, _ = self._sfda_fit(self._features(X), nx.asindex(labels), int(n_classes),
                                                         shrinkage)
        return self._numpy(coef_t).T.copy(), self._numpy(intercept), shrinkage

    def sfda_score(self, X, labels, n_classes, shrinkage=float("nan")):
        """SFDA score with ConfMix (the caller's X is never modified).

        Returns
        -------
        score : float
        shrinkage : float
        """
        nx = self.backend
        Xw = self._features(X)
        labels = nx.asindex(labels)
        C = int(n_classes)
        coef_t, intercept, shrinkage, means = self._sfda_fit(Xw, labels, C, shrinkage)
        first = self._predict_proba(Xw, coef_t, intercept)
        softened = nx.softmax(first, axis=1)
        confidence = nx.take_along_rows(softened, labels).reshape(-1, 1)
        confidence = self._cast(confidence, Xw)
        others = (nx.sum(means, axis=0) - means) / (C - 1)
        mixed = confidence * Xw + (1 - confidence) * others[labels]
        coef_t, intercept, _, _ = self._sfda_fit(mixed, labels, C, shrinkage)
        second = self._predict_proba(mixed, coef_t, intercept)
        score = nx.item(nx.mean(nx.take_along_rows(second, labels)))
        return score, shrinkage

    # ------------------------------------------------------------------ GBC
    def gbc(self, X, labels, n_classes, n_components=64, diagonal=False, exact_logdet=False):
        """Gaussian Bhattacharyya coefficient score (higher is better, in [-C(C-1), 0]).

        PCA to min(n_components, D, N) components, per-class means and floored variances, then minus the
        sum over ordered pairs i != j of exp(-DB(i, j)). ``exact_logdet=False`` keeps the authors' spherical
        quirk (log-determinant of the scalar variance taken once, not once per component).
        """
        nx = self.backend
        Xw = self._features(X)
        labels = nx.asindex(labels)
        C = int(n_classes)
        N, D = Xw.shape
        p = int(min(n_components, D, N))
        centred = Xw - nx.mean(Xw, axis=0)
        if N >= D:
            _, V = nx.eigh(self._f64(centred.T @ centred) / N)
            top = V[:, D - p:]
            Z = self._f64(centred @ self._cast(top, Xw))
        else:
            # Scores of the top components straight from the centred Gram matrix: Z = U sqrt(eigenvalue).
            eig, U = nx.eigh(self._f64(centred @ centred.T))
            Z = U[:, N - p:] * nx.sqrt(nx.maximum(eig[N - p:], 0.0))
        counts, mu = self._class_stats(Z, labels, C)
        var = nx.maximum(self._class_variances(Z, labels, C, counts, mu), GBC_VARIANCE_FLOOR)
        if not diagonal:
            var = nx.mean(var, axis=1, keepdims=True)
        log_var = nx.log(var)
        total = 0.0
        block = max(1, PAIR_BLOCK_ELEMENTS // max(1, C * p))
        for start in range(0, C, block):
            stop = min(C, start + block)
            diff = mu[start:stop, None, :] - mu[None, :, :]
            avg = (var[start:stop, None, :] + var[None, :, :]) / 2
            first = nx.sum(diff * diff / avg, axis=2) / 8
            half_logdet = 0.5 * (log_var[start:stop, None, :] + log_var[None, :, :])
            logdet = nx.sum(nx.log(avg) - half_logdet, axis=2)
            if not diagonal and exact_logdet:
                logdet = logdet * p
            coefficient = nx.exp(-(first + 0.5 * logdet))
            rows = nx.arange(stop - start).reshape(-1, 1) + start
            cols = nx.arange(C).reshape(1, -1)
            total += nx.item(nx.sum(nx.where(rows != cols, coefficient, 0.0)))
        return -total

    def _cast(self, x, like):
        nx = self.backend
        return nx.astype(x, like.dtype)

    # ------------------------------------------------------------------ PED
    def _shifted_class_stats(self, Xw, labels, n_classes):
        """Class counts, means and per-column population variances from one shifted pass.

        Every row is shifted by its class's first sample, which lies within about one class deviation of the
        class mean, so sum of squares minus squared sum does not cancel.
        """
        nx = self.backend
        host_labels = np.asarray(nx.to_numpy(labels))
        _, first = np.unique(host_labels, return_index=True)
        pivot = Xw[nx.asindex(first)]
        counts = nx.bincount(labels, n_classes)
        deviation = Xw - pivot[labels]
        sums = self._f64(nx.index_add(labels, deviation, n_classes))
        squares = self._f64(nx.index_add(labels, deviation * deviation, n_classes))
        del deviation
        n = nx.asarray(counts, dtype=nx.float64).reshape(-1, 1)
        shift = sums / n
        variances = nx.maximum(squares / n - shift * shift, 0.0)
        return counts, self._f64(pivot) + shift, variances

    def class_moments(self, X, labels, n_classes):
        """Class sizes, means and per-column population variances, from one shifted pass.

        Returns
        -------
        counts : ndarray of int64, shape (C,)
        means, variances : ndarray of float64, shape (C, D)
        """
        nx = self.backend
        counts, means, variances = self._shifted_class_stats(self._features(X), nx.asindex(labels), int(n_classes))
        return np.asarray(nx.to_numpy(counts), dtype=np.int64), self._numpy(means), self._numpy(variances)

    def ped_pair_forces(self, means, radii, radius=0.6, elastic=1.0, time_step=0.1):
        """Class displacements of one PED step from the classes' rescaled means and radii alone.

        Parameters
        ----------
        means : array, shape (C, D)
            Class means in rescaled units ``(mean - center) / scale``.
        radii : array, shape (C,)
            ``sqrt(sum_d variance_d / scale_d**2)`` of every class.
        radius, elastic, time_step : float
            Radius coefficient (lambda), elastic coefficient k, time step t.

        Returns
        -------
        displacement : ndarray of float64, shape (C, D)
            Class displacements in rescaled units; the step's movement is ``abs(displacement).sum()``.
        energy : float
            Sum over overlapping unordered pairs of elastic * overlap**2 / 2, before the step.
        n_coincident : int
            Overlapping unordered pairs of classes whose rescaled means coincide (skipped: no direction).
        """
        nx = self.backend
        mu = self._f64(means)
        reach = radius * self._f64(radii)
        C, D = mu.shape
        pieces = []
        energy = 0.0
        coincident = 0
        block = max(1, PAIR_BLOCK_ELEMENTS // max(1, C * D))
        for start in range(0, C, block):
            stop = min(C, start + block)
            diff = mu[start:stop, None, :] - mu[None, :, :]
            dist = nx.sqrt(nx.sum(diff * diff, axis=2))
            overlap = nx.maximum(reach[start:stop, None] + reach[None, :] - dist, 0.0)
            step = nx.minimum(0.5 * time_step ** 2 * (elastic * overlap), overlap)
            apart = dist > 0
            # Coincident overlapping pairs have no direction: the reference skips and counts them.
            coincident_block = (~apart) & (overlap > 0)
            weight = nx.where(apart, step / nx.where(apart, dist, 1.0), 0.0)
            pieces.append(nx.einsum("bc,bcd->bd", weight, diff))
            energy += nx.item(nx.sum(nx.where(apart, elastic * overlap * overlap / 2, 0.0)))
            rows = nx.arange(stop - start).reshape(-1, 1) + start
            cols = nx.arange(C).reshape(1, -1)
            coincident += nx.count_nonzero(coincident_block & (rows != cols))
        displacement = nx.concatenate(pieces, axis=0)
        # Every unordered pair was seen twice, once from each side.
        energy /= 2
        coincident //= 2
        return self._numpy(displacement), float(energy), int(coincident)

    def ped_forces(self, X, labels, n_classes, center, scale, radius=0.6, elastic=1.0, time_step=0.1):
        """Class displacements of one PED step from the features: :meth:`class_moments` (one pass), rescaled,
        then :meth:`ped_pair_forces`.

        Parameters
        ----------
        X : array, shape (N, D), float32 or float64
        labels : int64 array, shape (N,)
        n_classes : int
        center, scale : float64 arrays, shape (D,)
            Rescaling statistics; ``scale`` already clamped to >= 1e-3.
        radius, elastic, time_step : float

        Returns
        -------
        displacement, energy, n_coincident
            As :meth:`ped_pair_forces`.
        """
        nx = self.backend
        Xw = self._features(X)
        center = self._f64(center)
        scale = self._f64(scale)
        _, means, variances = self._shifted_class_stats(Xw, nx.asindex(labels), int(n_classes))
        mu = (means - center) / scale
        radii = nx.sqrt(nx.sum(variances / (scale * scale), axis=1))
        return self.ped_pair_forces(mu, radii, radius, elastic, time_step)

    def ped_apply(self, X, labels, displacement, scale, out):
        """Write ``X + displacement[labels] * scale`` into ``out`` and return ``out``.

        Parameters
        ----------
        X : array, shape (N, D), float32 or float64
        labels : int64 array, shape (N,)
        displacement : float64 array, shape (C, D)
            Class displacements in rescaled units (from :meth:`ped_forces`).
        scale : float64 array, shape (D,)
        out : native array, shape (N, D), writable
            Destination, any float dtype; may be ``X`` itself for an in-place update.

        Returns
        -------
        out
        """
        nx = self.backend
        original = nx.asarray(X)
        N, D = original.shape
        if tuple(out.shape) != (N, D):
            raise PedrankValueError(f"out: expected X's shape ({N}, {D}), found {tuple(out.shape)}")
        expected = "torch tensor" if nx.name == "torch" else "numpy array"
        if is_torch_tensor(out) != (nx.name == "torch"):
            raise PedrankValueError(f"out: expected a writable {expected} like X, found {type(out).__name__}")
        if not nx.is_writable(out):
            raise PedrankValueError(f"out: expected a writable {expected}, found a read-only one")
        labels = nx.asindex(labels)
        shift = self._f64(displacement) * self._f64(scale)
        # Row chunks keep the float64 temporary small; each chunk is read before it is written (in-place safe).
        rows = max(1, PAIR_BLOCK_ELEMENTS // max(1, D))
        for start in range(0, N, rows):
            stop = min(N, start + rows)
            nx.copy_into(out[start:stop], self._f64(original[start:stop]) + shift[labels[start:stop]])
        return out

    def ped_step(self, X, labels, n_classes, center, scale, radius=0.6, elastic=1.0, time_step=0.1):
        """One PED step: :meth:`ped_forces`, then :meth:`ped_apply` into a new array.

        Returns
        -------
        moved : native array, shape (N, D)
            X + displacement[labels] * scale, a new array on X's device in X's dtype.
        displacement : ndarray of float64, shape (C, D)
        energy : float
        n_coincident : int
        """
        nx = self.backend
        displacement, energy, coincident = self.ped_forces(X, labels, n_classes, center, scale, radius, elastic,
                                                           time_step)
        original = nx.asarray(X)
        out = original.new_empty(tuple(original.shape)) if nx.name == "torch" else np.empty_like(original)
        moved = self.ped_apply(original, labels, displacement, scale, out)
        return moved, displacement, energy, coincident


CONTRACT = KERNEL_NAMES


class TorchKernels:
    """Kernel contract on torch, on whatever device each call's features live (CPU for non-tensors).

    Every method resolves ``ArrayKernels(TorchBackend(X.device), dtype)`` (cached per device) and delegates,
    so one object serves CPU and CUDA tensors alike.

    Parameters
    ----------
    dtype : {"float64", "float32"}, default "float64"
    """

    def __init__(self, dtype="float64"):
        self.dtype = check_dtype(dtype)
        self._by_device = {}

    def __repr__(self):
        return f"TorchKernels(dtype={self.dtype!r})"

    def __getattr__(self, name):
        # Registered kernels of later scores, resolved on the device of each call's features like the contract's.
        if name.startswith("_"):
            raise AttributeError(name)
        from pedrank.scores.registry import registered_array_kernel

        if registered_array_kernel(name) is None:
            raise AttributeError(f"{type(self).__name__} has no kernel {name!r}")
        return lambda X, *args, **kwargs: getattr(self.kernels_for(X), name)(X, *args, **kwargs)

    def kernels_for(self, X) -> ArrayKernels:
        """The :class:`ArrayKernels` on the device of ``X``."""
        from pedrank._engine.backend import TorchBackend, is_torch_tensor

        device = str(X.device) if is_torch_tensor(X) else "cpu"
        if device not in self._by_device:
            self._by_device[device] = ArrayKernels(TorchBackend(device), dtype=self.dtype)
        return self._by_device[device]


def _delegate(name):
    def method(self, X, *args, **kwargs):
        return getattr(self.kernels_for(X), name)(X, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = getattr(ArrayKernels, name).__doc__
    return method


for _name in CONTRACT:
    setattr(TorchKernels, _name, _delegate(_name))
del _name
