"""PACTran (Ding et al., ECCV 2022): PAC-Bayesian transferability bounds, Dirichlet, Gamma and Gaussian priors.

Each variant is the optimum of a PAC-Bayesian bound on the target loss of a classifier on top of the
pre-trained model; the authors' numbers are bounds (lower is better). pedrank returns their negative, so that
higher is better as for every other score.

- ``prior="gaussian"`` (default, the variant the authors recommend): a softmax regression on the features,
  fitted by L-BFGS-B with a Gaussian prior on the weights, plus a curvature (trace of the Hessian) penalty.
- ``prior="dirichlet"`` / ``"gamma"``: a mean-field bound over p(z | x), the probabilities of Z source
  "classes": by default the posteriors of a Gaussian mixture fitted on the features (the authors'
  PACTran-NDir / NGam, their feature-only form); ``probabilities=True`` reads ``features`` as a source model's
  predicted probabilities (PACTran-Dir / Gam).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy
import scipy.optimize
import scipy.special

from pedrank._engine.config import blas_on_policy
from pedrank._engine.validation import (
    PedrankValueError,
    check_bool,
    check_classification,
    check_int,
    check_positive,
    feature_scale,
    finite_score,
    to_numpy,
)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["pactran", "PRIORS", "SOLVERS", "pac_gauss_bound", "gmm_posteriors", "check_probabilities",
           "check_unit_scale"]

PRIORS = ("gaussian", "dirichlet", "gamma")
#: How the Gaussian bound's optimum is found: the authors' L-BFGS-B from a random start ("lbfgs"), or Newton's
#: method to convergence from zero ("newton", the ``pactran:exact`` form).
SOLVERS = ("lbfgs", "newton")
#: Newton's stopping rule: half the Newton decrement (the predicted decrease, -g.d / 2) below this times
#: max(1, |loss|): the loss is then within about that of its minimum (the problem is convex).
NEWTON_TOLERANCE = 1e-13
NEWTON_MAX_ITER = 100
#: L-BFGS-B's tolerance and the scale of the random initial weights, as in the authors' compute_metrics.py.
PAC_GAUSS_TOL = 1e-6
PAC_GAUSS_INIT_SCALE = 0.03
#: SciPy >= 1.15 computes logsumexp with the row maximum out of the sum (``log1p``); ``_logsumexp_rows`` repeats
#: those operations, and older SciPy's are left to SciPy, so the loss keeps SciPy's bits either way.
_SCIPY_LOGSUMEXP_LOG1P = tuple(int(part) for part in scipy.__version__.split(".")[:2]) >= (1, 15)


def check_unit_scale(unit_scale: Any, probabilities: bool) -> bool:
    """``unit_scale`` is a bool, and not combined with a source model's probabilities (which have no scale)."""
    check_bool(unit_scale, name="unit_scale")
    if unit_scale and probabilities:
        raise PedrankValueError("unit_scale: expected False with probabilities=True (probabilities have no scale to "
                                "divide by)")
    return bool(unit_scale)


def check_pactran_options(prior, lda_factor, variance_factor, alpha, max_iter, random_state, solver="lbfgs"):
    if prior not in PRIORS:
        raise PedrankValueError(f"prior: expected one of {PRIORS}, found {prior!r}")
    if solver not in SOLVERS:
        raise PedrankValueError(f"solver: expected one of {SOLVERS}, found {solver!r}")
    if solver == "newton" and prior != "gaussian":
        raise PedrankValueError(f"solver: 'newton' applies to prior='gaussian' only (it finds the Gaussian bound's "
                                f"optimum); found prior={prior!r}")
    lda_factor = check_positive(lda_factor, name="lda_factor")
    if variance_factor is None:
        variance_factor = 100.0 * lda_factor
    variance_factor = check_positive(variance_factor, name="variance_factor")
    alpha = check_positive(alpha, name="alpha")
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    if random_state is not None:
        random_state = check_int(random_state, name="random_state", minimum=0)
    return lda_factor, variance_factor, alpha, max_iter, random_state


def check_probabilities(values: Any, *, name: str = "features") -> np.ndarray:
    """Rows of non-negative probabilities that sum to 1 (within 1e-4): a source model's p(z | x)."""
    probabilities = np.asarray(to_numpy(values), dtype=np.float64)
    if np.any(probabilities < 0):
        raise PedrankValueError(f"{name}: probabilities=True needs non-negative rows p(z | x), found a minimum of "
                                f"{probabilities.min()!r}")
    sums = probabilities.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > 1e-4:
        raise PedrankValueError(f"{name}: probabilities=True needs rows that sum to 1, found {sums[worst]!r} in row "
                                f"{worst}; expected 1 within 1e-4")
    return probabilities


def gmm_posteriors(features: np.ndarray, n_classes: int, *, random_state: int | None = 0) -> np.ndarray:
    """The authors' ``gmm_estimator``: posteriors of a Gaussian mixture on PCA(80 % variance) features.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    n_classes : int
    random_state : int or None
        Seed of the mixture's k-means initialisation (the authors' run after ``np.random.seed(0)`` is 0).

    Returns
    -------
    ndarray of shape (n_samples, n_components)
        With ``n_components = max(min(C, int(0.2 N)), int(0.1 N))``.
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    n_samples = features.shape[0]
    reduced = PCA(n_components=0.8).fit(features).transform(features)
    components = max(min(n_classes, int(n_samples * 0.2)), int(n_samples * 0.1))
    mixture = GaussianMixture(n_components=components, random_state=random_state).fit(reduced)
    return mixture.predict_proba(reduced)


def one_hot(encoded, n_classes):
    onehot = np.zeros((encoded.shape[0], n_classes))
    onehot[np.arange(encoded.shape[0]), encoded] = 1.0
    return onehot


def pac_dirichlet_bound(probabilities, onehot, alpha):
    """The authors' PACTran-Dirichlet bound (lower is better); class-by-source sums by one matrix product."""
    counts = onehot.sum(axis=0)[:, None]
    a0 = alpha * counts / counts.sum() + 1e-10  # (C, 1)
    log_s = np.log(probabilities + 1e-10)
    qz = probabilities
    for _ in range(10):
        aw = a0 + onehot.T @ qz  # (C, Z)
        logits = log_s + onehot @ scipy.special.digamma(aw) - scipy.special.digamma(aw.sum(axis=0))[None, :]
        log_qz = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        qz = np.exp(log_qz)
    log_c0 = scipy.special.loggamma(a0.sum()) - np.sum(scipy.special.loggamma(a0))
    log_c = scipy.special.loggamma(aw.sum(axis=0)) - np.sum(scipy.special.loggamma(aw), axis=0)
    total = np.sum(log_c0 - log_c - np.sum(qz * (log_qz - log_s), axis=0))
    return float(-total / onehot.size)


def pac_gamma_bound(probabilities, onehot, alpha):
    """The authors' PACTran-Gamma bound (lower is better), rate beta = 1."""
    counts = onehot.sum(axis=0)[:, None]
    a0 = alpha * counts / counts.sum() + 1e-10
    beta = 1.0
    log_s = np.log(probabilities + 1e-10)
    qz = probabilities
    for _ in range(10):
        aw = a0 + onehot.T @ qz
        lw = probabilities @ np.sum(aw / beta, axis=0)[:, None]  # (N, 1)
        logits = log_s + onehot @ (scipy.special.digamma(aw) - np.log(beta))
        log_qz = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        qz = np.exp(log_qz)
    bound = (np.sum(scipy.special.loggamma(a0) - scipy.special.loggamma(aw) + aw * np.log(beta) - a0 * np.log(beta))
             + np.sum(np.sum(qz * (log_qz - log_s), axis=-1) + np.log(lw[:, 0]) - 1.0))
    return float(bound / onehot.size + 1.0)


class _SoftmaxObjective:
    """The Gaussian bound's L-BFGS-B objective: ``theta -> (loss, gradient)`` from one product ``features @ w``.

    The authors evaluate the loss and the gradient in two functions, each with its own ``features @ w``. Here
    they share that product (the gradient's ``features.T @ residual`` is the only other one) and one
    ``exp(logits - max)``: the loss's log-sum-exp and the gradient's softmax are scipy's operations, in scipy's
    order, on the same logits, so L-BFGS-B sees the same numbers bit for bit and takes the same iterates. The
    last point's logits and loss are kept for the bound at the optimum.
    """

    def __init__(self, features, onehot, ldas2):
        self.features = features
        self.onehot = onehot
        self.log_onehot = np.log(onehot + 1e-10)
        self.ldas2 = ldas2
        self.n_samples, self.n_features = features.shape
        self.n_classes = onehot.shape[1]
        self.last: tuple[np.ndarray, np.ndarray, float] | None = None  # (theta, logits, loss), last evaluation

    def split(self, theta):
        theta = theta.reshape(self.n_features + 1, self.n_classes)
        return theta[:self.n_features], theta[self.n_features:]

    def __call__(self, theta):
        w, b = self.split(theta)
        logits = self.features @ w
        logits += b
        top = logits.max(axis=-1, keepdims=True)
        shifted_exp = logits - top
        np.exp(shifted_exp, out=shifted_exp)
        if _SCIPY_LOGSUMEXP_LOG1P:
            log_q = logits - _logsumexp_rows(logits, top, shifted_exp)
        else:
            log_q = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        # the authors' operation order: unconverged L-BFGS-B paths (ill-conditioned features) follow the rounding
        np.subtract(self.log_onehot, log_q, out=log_q)
        log_q *= self.onehot
        xent = np.sum(np.sum(log_q, axis=-1)) / self.n_samples
        value = xent + 0.5 * np.sum(w * w) / self.ldas2
        # a copy of theta: L-BFGS-B may change the array it passed in place
        self.last = (np.array(theta, dtype=np.float64), logits, value)
        residual = shifted_exp  # softmax, then (p - y) / N, in that buffer
        residual /= residual.sum(axis=-1, keepdims=True)
        residual -= self.onehot
        residual /= self.n_samples
        # a new array each call: scipy keeps the gradient it was given
        gradient = np.empty((self.n_features + 1, self.n_classes))
        np.matmul(self.features.T, residual, out=gradient[:self.n_features])
        gradient[:self.n_features] += w / self.ldas2
        np.sum(residual, axis=0, out=gradient[self.n_features])
        return value, gradient.ravel()

    def logits_and_loss(self, theta):
        """``(features @ w + b, loss)`` at ``theta``: the last evaluation's when it was made at ``theta``."""
        last = self.last
        if last is None or not np.array_equal(theta, last[0]):
            self(theta)  # not after L-BFGS-B, whose answer is the point it evaluated last
            last = self.last
            assert last is not None  # set by every evaluation
        return last[1], last[2]


def _logsumexp_rows(logits, top, shifted_exp):
    """``scipy.special.logsumexp(logits, axis=-1, keepdims=True)`` (SciPy >= 1.15), given the row maxima ``top``
    and ``exp(logits - top)``.

    SciPy's operations in its order, so the same bits: the row's maxima are left out of the sum and added back as
    ``log1p(sum / count) + log(count)``. Computed here to share the exponentials with the gradient's softmax
    (SciPy's own, with about ten N x C temporaries, took 12.5 ms at 10,000 x 100 against 3.5 ms here); rows that
    are not finite go to SciPy.
    """
    at_top = logits == top
    count = np.sum(at_top, axis=-1, keepdims=True, dtype=np.float64)
    rest = np.where(at_top, 0.0, shifted_exp).sum(axis=-1, keepdims=True)
    rest = np.where(rest == 0, rest, rest / count)
    out = np.log1p(rest) + np.log(count) + top
    if not np.all(np.isfinite(out)):
        return scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    return out



def _newton_optimum(centred, onehot, ldas2):
    """The unique minimum of the Gaussian bound's loss (cross-entropy plus ``|w|^2 / (2 ldas2)``) by Newton's
    method: exact Hessian-vector products, preconditioned conjugate gradients, a backtracking (Armijo) line search;
    from zero, so no random start. Returns theta (the weights, then the biases), shape ((D + 1) * C,).

    The loss is strictly convex in the weights and convex in the biases, with one flat direction (the same constant
    added to every class's bias) that changes no probability: the optimum's loss and probabilities, all the bound
    reads, are unique. The iterations run on the features rotated into the eigenbasis V of ``X^T X`` (``F = X V``,
    one more N x D float64 array; ``|W|`` is unchanged by the rotation, so the problem is the same), where the
    preconditioner is the Hessian's diagonal, ``sum_i p_ic (1 - p_ic) F_ik^2 / N + 1 / ldas2`` for weight (k, c)
    and ``sum_i p_ic (1 - p_ic) / N`` for bias c: the curvature of each class along each principal direction.
    """
    n_samples, n_features = centred.shape
    n_classes = onehot.shape[1]
    labels = np.argmax(onehot, axis=1)
    _, rotation = np.linalg.eigh(centred.T @ centred)
    rotated = centred @ rotation
    rows = np.arange(n_samples)

    def loss_and_probabilities(w, b):
        logits = rotated @ w
        logits += b
        log_norm = scipy.special.logsumexp(logits, axis=1)
        loss = float(np.mean(log_norm - logits[rows, labels]) + 0.5 * np.sum(w * w) / ldas2)
        probabilities = np.exp(logits - log_norm[:, None])
        return loss, probabilities

    def hessian_times(probabilities, direction_w, direction_b):
        change = rotated @ direction_w
        change += direction_b
        change *= probabilities
        change -= probabilities * change.sum(axis=1, keepdims=True)
        change /= n_samples
        return rotated.T @ change + direction_w / ldas2, change.sum(axis=0)

    def diagonal(probabilities):
        spread = probabilities * (1.0 - probabilities)
        weights = np.zeros((n_features, n_classes))
        for start in range(0, n_samples, 4096):  # F^2 by row blocks: no second N x D array
            block = rotated[start:start + 4096]
            weights += (block * block).T @ spread[start:start + 4096]
        weights /= n_samples
        weights += 1.0 / ldas2
        return weights, np.maximum(spread.sum(axis=0) / n_samples, 1e-300)

    def preconditioned(diagonal_w, diagonal_b, residual_w, residual_b):
        solved_b = residual_b / diagonal_b
        return residual_w / diagonal_w, solved_b - solved_b.mean()  # no step along the flat direction

    w = np.zeros((n_features, n_classes))
    b = np.zeros(n_classes)
    loss, probabilities = loss_and_probabilities(w, b)
    for _ in range(NEWTON_MAX_ITER):
        residual = (probabilities - onehot) / n_samples
        gradient_w = rotated.T @ residual + w / ldas2
        gradient_b = residual.sum(axis=0)
        gradient_norm = np.sqrt(np.sum(gradient_w**2) + np.sum(gradient_b**2))
        if not gradient_norm > 0:  # at the optimum to the last bit: no direction left to solve for
            break
        diagonal_w, diagonal_b = diagonal(probabilities)
        # inexact Newton: conjugate gradients on H d = -g to a relative residual that tightens near the optimum
        tolerance = min(0.5, np.sqrt(gradient_norm)) * gradient_norm
        step_w, step_b = np.zeros_like(w), np.zeros_like(b)
        rest_w, rest_b = -gradient_w, -gradient_b
        solved_w, solved_b = preconditioned(diagonal_w, diagonal_b, rest_w, rest_b)
        search_w, search_b = solved_w.copy(), solved_b.copy()
        rho = np.sum(rest_w * solved_w) + np.sum(rest_b * solved_b)
        for _ in range(4 * n_classes + 50):
            product_w, product_b = hessian_times(probabilities, search_w, search_b)
            curvature = np.sum(search_w * product_w) + np.sum(search_b * product_b)
            if curvature <= 0:
                break
            alpha = rho / curvature
            step_w += alpha * search_w
            step_b += alpha * search_b
            rest_w -= alpha * product_w
            rest_b -= alpha * product_b
            if np.sqrt(np.sum(rest_w**2) + np.sum(rest_b**2)) <= tolerance:
                break
            solved_w, solved_b = preconditioned(diagonal_w, diagonal_b, rest_w, rest_b)
            rho_next = np.sum(rest_w * solved_w) + np.sum(rest_b * solved_b)
            if not rho_next > 0:  # the residual vanished below rounding (near the optimum): the step is solved
                break
            search_w = solved_w + (rho_next / rho) * search_w
            search_b = solved_b + (rho_next / rho) * search_b
            rho = rho_next
        predicted = -(np.sum(gradient_w * step_w) + np.sum(gradient_b * step_b))  # -g.d = the Newton decrement^2
        if not predicted > 0:  # no descent left at this precision
            break
        if predicted / 2 <= NEWTON_TOLERANCE * max(1.0, abs(loss)):
            w, b = w + step_w, b + step_b
            break
        step = 1.0
        while step >= 1e-10:
            trial_w, trial_b = w + step * step_w, b + step * step_b
            trial_loss, trial_probabilities = loss_and_probabilities(trial_w, trial_b)
            if trial_loss <= loss - 1e-4 * step * predicted:  # False for a non-finite trial
                break
            step /= 2
        else:  # no sufficient decrease along the step: rounding dominates, the current point is the optimum
            break
        w, b, loss, probabilities = trial_w, trial_b, trial_loss, trial_probabilities
    return np.concatenate([rotation @ w, b[None, :]], axis=0).ravel()


def pac_gauss_bound(features: np.ndarray, onehot: np.ndarray, *, lda_factor: float, variance_factor: float | None,
                    max_iter: int, random_state: int | None, solver: str = "lbfgs") -> float:
    """The authors' PACTran-Gaussian bound (lower is better).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features), float64
        Centred here (a copy), as the authors' current code does.
    onehot : ndarray of shape (n_samples, n_classes)
    lda_factor : float
        lambda / N of the Gaussian prior's precision (the authors' grid: 10, 1, 0.1).
    variance_factor : float
        s2 * D, the posterior variance factor (the authors' grid for lda_factor 1: 100 and 10).
    max_iter : int
        L-BFGS-B iterations (authors: 100; ETran's copy: 10).
    random_state : int or None
        Seed of the initial weights ``RandomState(seed).normal(size=(D, C)) * 0.03`` (the authors draw them
        from NumPy's global generator; their runs seed it with 0 first).
    solver : {"lbfgs", "newton"}, default="lbfgs"
        "lbfgs": the authors' optimiser (``max_iter``, ``random_state`` apply); "newton": the optimum itself
        (:func:`_newton_optimum`; ``max_iter`` and ``random_state`` are not used).

    Returns
    -------
    float

    Notes
    -----
    L-BFGS-B takes the authors' iterates (the same loss and gradient expressions, to the last bit) but gets the
    loss and gradient from one evaluation: two N x D x C products per evaluation instead of three, and none
    after the optimum (the authors make two more there, one on an N x D square of the features).
    """
    return _gauss_bound_of_centred(features - features.mean(axis=0, keepdims=True), onehot,
                                   lda_factor=lda_factor, variance_factor=variance_factor, max_iter=max_iter,
                                   random_state=random_state, solver=solver)


def _gauss_bound_of_centred(centred, onehot, *, lda_factor, variance_factor, max_iter, random_state,
                            solver="lbfgs"):
    """:func:`pac_gauss_bound` on features already centred (column means subtracted), float64."""
    n_samples, n_features = centred.shape
    n_classes = onehot.shape[1]
    kd = n_features * n_classes
    ldas2 = lda_factor * n_samples
    objective = _SoftmaxObjective(centred, onehot, ldas2)
    # NumPy's BLAS on pedrank's thread policy for this call (BENCHMARKS.md, issue 18): the optimiser makes up to
    # ~200 small products, which OpenBLAS on every core turns 30x slower when other processes hold the cores
    with blas_on_policy(n_samples, n_features):
        if solver == "newton":
            theta = _newton_optimum(centred, onehot, ldas2)
        else:
            rng = np.random.RandomState(random_state)
            start = np.concatenate([rng.normal(size=(n_features, n_classes)) * PAC_GAUSS_INIT_SCALE,
                                    np.zeros((1, n_classes))], axis=0).ravel()
            theta = scipy.optimize.minimize(objective, start, method="L-BFGS-B", jac=True,
                                            options=dict(maxiter=max_iter), tol=PAC_GAUSS_TOL).x
        # L-BFGS-B's answer is the point it evaluated last: its logits and loss without another product
        logits, optimum = objective.logits_and_loss(theta)
        p = scipy.special.softmax(logits, axis=-1)
        curvature = p - p * p
        # sum((X * X).T @ curvature) = sum_i |x_i|^2 sum_c curvature_ic: one pass over X, no N x D square
        row_norms = np.einsum("ij,ij->i", centred, centred)
        hessian_sum = float(row_norms @ curvature.sum(axis=1)) + kd / ldas2 + np.sum(curvature)
    sigma2_inv = hessian_sum * ldas2 / kd + 1e-10
    s2 = variance_factor / n_features
    return float(optimum + 0.5 * kd / ldas2 * s2 * np.log(sigma2_inv))


@finite_score("pactran")
def pactran(features: Any, labels: Any, *, prior: str = "gaussian", lda_factor: float = 1.0,
            variance_factor: float | None = None, alpha: float = 1.0, probabilities: bool = False, max_iter: int = 100,
            random_state: int | None = 0, solver: str = "lbfgs", unit_scale: bool = False,
            backend: str = "auto") -> float:
    """PACTran transferability score (Ding et al., ECCV 2022), as ``-bound`` (higher is better).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model; with ``probabilities=True`` (Dirichlet / Gamma only), a
        source model's predicted probabilities, shape (n_samples, n_source_classes), rows summing to 1.
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    prior : {"gaussian", "dirichlet", "gamma"}, default="gaussian"
    lda_factor : float, default=1.0
        Gaussian: the prior precision over N (authors' grid 10, 1, 0.1).
    variance_factor : float or None, default=None
        Gaussian: ``s2 * D``; None is ``100 * lda_factor``, the first entry of the authors' grid for each
        ``lda_factor`` (1000, 100, 10), and the value ETran's code uses.
    alpha : float, default=1.0
        Dirichlet / Gamma: concentration of the prior.
    probabilities : bool, default=False
        Dirichlet / Gamma: read ``features`` as p(z | x). False: p(z | x) are the posteriors of the authors'
        Gaussian mixture on the features (:func:`gmm_posteriors`; the authors' PACTran-NDir / NGam).
    max_iter : int, default=100
        Gaussian: L-BFGS-B iterations (the authors' 100; ETran's copy uses 10).
    random_state : int or None, default=0
        Gaussian: seed of the initial weights; Dirichlet / Gamma on features: seed of the mixture. 0 reproduces
        the authors' runs, which seed NumPy's global generator with 0.
    solver : {"lbfgs", "newton"}, default="lbfgs"
        Gaussian: "lbfgs" is the authors' L-BFGS-B (``max_iter`` iterations from a random start); "newton"
        finds the optimum itself (Newton's method from zero, to a predicted decrease below 1e-13 of the loss),
        so the score no longer depends on ``random_state`` or ``max_iter``. ``"pactran:exact"`` names it.
    unit_scale : bool, default=False
        Divide the features by their scale (the root mean square of the centred features,
        :func:`pedrank._engine.validation.feature_scale`) first, so that the value does not depend on the features'
        units. The authors' Gaussian prior has an absolute variance, so their value moves with the scale: on the
        zoo's truths, scoring the features at one scale raised PACTran's agreement with fine-tuned accuracy from
        +0.215 to +0.620 (weighted tau, controlled image zoo) and from +0.019 to +0.442 (text zoo)
        (``benchmarks/zoo/scale_check.md``). ``"pactran:unit"`` names it. Not with ``probabilities=True``.
    backend : {"auto", "numpy", "torch"}, default="auto"
        Accepted for a uniform interface: PACTran has no kernel path (L-BFGS-B runs in SciPy), so a torch
        tensor is copied to the host as float64.

    Returns
    -------
    float
        Minus the authors' bound. Gaussian: ``-(L(theta*) + 0.5 * kd / (lda_factor N) * s2 * log(sigma2_inv))``
        with L the cross-entropy plus weight decay at the L-BFGS-B optimum of centred features,
        ``sigma2_inv`` the mean diagonal Hessian; Dirichlet / Gamma: minus the mean-field bound after 10
        fixed-point rounds, divided by N * C.

    Notes
    -----
    The Gaussian optimum is L-BFGS-B's from a random start, stopped at ``max_iter`` or ``tol=1e-6``: on
    ill-conditioned features it has not converged and the score depends on ``random_state`` (as the
    authors' does). ``solver="newton"`` (``pactran:exact``) is the optimum of the same strictly convex problem:
    a different number wherever L-BFGS-B had not converged, the same (to L-BFGS-B's tolerance) where it had.
    The Dirichlet / Gamma class-by-source sums are one (C x N)(N x Z) product here, where the authors form an
    N x C x Z tensor.
    """
    lda_factor, variance_factor, alpha, max_iter, random_state = check_pactran_options(
        prior, lda_factor, variance_factor, alpha, max_iter, random_state, solver)
    if probabilities and prior == "gaussian":
        raise PedrankValueError("probabilities: expected False with prior='gaussian' (PACTran-Gaussian reads "
                                "features); use prior='dirichlet' or 'gamma' for a source model's probabilities")
    unit_scale = check_unit_scale(unit_scale, probabilities)
    features, encoded, classes = check_classification(features, labels)
    onehot = one_hot(encoded, classes.shape[0])
    if prior == "gaussian":
        # our own float64 copy, centred (and scaled) in place: one N x D float64 array where pac_gauss_bound needs
        # two
        X = np.array(to_numpy(features), dtype=np.float64, copy=True)
        X -= X.mean(axis=0, keepdims=True)
        if unit_scale:
            X /= np.sqrt(np.einsum("ij,ij->", X, X) / X.size)
        return -_gauss_bound_of_centred(X, onehot, lda_factor=lda_factor, variance_factor=variance_factor,
                                        max_iter=max_iter, random_state=random_state, solver=solver)
    if probabilities:
        probs = check_probabilities(features)
    else:
        X = np.asarray(to_numpy(features), dtype=np.float64)
        if unit_scale:
            X = X / feature_scale(X)
        probs = gmm_posteriors(X, classes.shape[0], random_state=random_state)
    bound = pac_dirichlet_bound if prior == "dirichlet" else pac_gamma_bound
    return -bound(probs, onehot, alpha)


def _scale_range(n_samples: int, n_features: int, options: dict[str, Any]) -> tuple[float, float] | None:
    """The authors' Gaussian prior has an absolute variance: the value moves at every scale, unless the features
    are divided by their own scale first (``unit_scale``, ``pactran:unit``)."""
    return (0.0, math.inf) if options.get("unit_scale") else None


register(ScoreEntry(name="pactran", function=pactran, reference="pedrank.reference.pactran:pactran",
                    forms={"exact": {"solver": "newton"}, "unit": {"unit_scale": True}}, order=12,
                    scale_range=_scale_range))
