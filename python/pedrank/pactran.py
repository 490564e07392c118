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

import numpy as np
import scipy.optimize
import scipy.special

from ._config import blas_on_policy
from ._registry import ScoreEntry, register
from ._validation import (
    PedrankValueError,
    check_classification,
    check_int,
    check_positive,
    finite_score,
    to_numpy,
)

__all__ = ["pactran", "PRIORS", "pac_gauss_bound", "gmm_posteriors", "check_probabilities"]

PRIORS = ("gaussian", "dirichlet", "gamma")
#: L-BFGS-B's tolerance and the scale of the random initial weights, as in the authors' compute_metrics.py.
PAC_GAUSS_TOL = 1e-6
PAC_GAUSS_INIT_SCALE = 0.03


def check_pactran_options(prior, lda_factor, variance_factor, alpha, max_iter, random_state):
    if prior not in PRIORS:
        raise PedrankValueError(f"prior: expected one of {PRIORS}, found {prior!r}")
    lda_factor = check_positive(lda_factor, name="lda_factor")
    if variance_factor is None:
        variance_factor = 100.0 * lda_factor
    variance_factor = check_positive(variance_factor, name="variance_factor")
    alpha = check_positive(alpha, name="alpha")
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    if random_state is not None:
        random_state = check_int(random_state, name="random_state", minimum=0)
    return lda_factor, variance_factor, alpha, max_iter, random_state


def check_probabilities(values, *, name="features"):
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


def gmm_posteriors(features, n_classes, *, random_state=0):
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


def _one_hot(encoded, n_classes):
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


def pac_gauss_bound(features, onehot, *, lda_factor, variance_factor, max_iter, random_state):
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

    Returns
    -------
    float
    """
    features = features - features.mean(axis=0, keepdims=True)
    n_samples, n_features = features.shape
    n_classes = onehot.shape[1]
    kd = n_features * n_classes
    ldas2 = lda_factor * n_samples
    log_onehot = np.log(onehot + 1e-10)

    def split(theta):
        theta = theta.reshape(n_features + 1, n_classes)
        return theta[:n_features], theta[n_features:]

    def loss(theta):
        w, b = split(theta)
        logits = features @ w + b
        log_q = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        # the authors' operation order: unconverged L-BFGS-B paths (ill-conditioned features) follow the rounding
        xent = np.sum(np.sum(onehot * (log_onehot - log_q), axis=-1)) / n_samples
        return xent + 0.5 * np.sum(w * w) / ldas2

    def gradient(theta):
        w, b = split(theta)
        residual = scipy.special.softmax(features @ w + b, axis=-1)
        residual -= onehot
        residual /= n_samples
        grad_w = features.T @ residual + w / ldas2
        return np.concatenate([grad_w, residual.sum(axis=0, keepdims=True)], axis=0).ravel()

    rng = np.random.RandomState(random_state)
    start = np.concatenate([rng.normal(size=(n_features, n_classes)) * PAC_GAUSS_INIT_SCALE,
                            np.zeros((1, n_classes))], axis=0).ravel()
    # NumPy's BLAS on pedrank's thread policy for this call (BENCHMARKS.md, issue 18): the optimiser makes ~200
    # small products, which OpenBLAS on every core turns 30x slower when other processes hold the cores
    with blas_on_policy(n_samples, n_features):
        theta = scipy.optimize.minimize(loss, start, method="L-BFGS-B", jac=gradient,
                                        options=dict(maxiter=max_iter), tol=PAC_GAUSS_TOL).x
        optimum = loss(theta)
        w, b = split(theta)
        p = scipy.special.softmax(features @ w + b, axis=-1)
        curvature = p - p * p
        hessian_sum = np.sum((features * features).T @ curvature) + kd / ldas2 + np.sum(curvature)
    sigma2_inv = hessian_sum * ldas2 / kd + 1e-10
    s2 = variance_factor / n_features
    return float(optimum + 0.5 * kd / ldas2 * s2 * np.log(sigma2_inv))


@finite_score("pactran")
def pactran(features, labels, *, prior="gaussian", lda_factor=1.0, variance_factor=None, alpha=1.0,
            probabilities=False, max_iter=100, random_state=0, backend="auto"):
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
    authors' does). The Dirichlet / Gamma class-by-source sums are one (C x N)(N x Z) product here, where
    the authors form an N x C x Z tensor.
    """
    lda_factor, variance_factor, alpha, max_iter, random_state = check_pactran_options(
        prior, lda_factor, variance_factor, alpha, max_iter, random_state)
    if probabilities and prior == "gaussian":
        raise PedrankValueError("probabilities: expected False with prior='gaussian' (PACTran-Gaussian reads "
                                "features); use prior='dirichlet' or 'gamma' for a source model's probabilities")
    features, encoded, classes = check_classification(features, labels)
    onehot = _one_hot(encoded, classes.shape[0])
    if prior == "gaussian":
        X = np.asarray(to_numpy(features), dtype=np.float64)
        return -pac_gauss_bound(X, onehot, lda_factor=lda_factor, variance_factor=variance_factor,
                                max_iter=max_iter, random_state=random_state)
    if probabilities:
        probs = check_probabilities(features)
    else:
        probs = gmm_posteriors(np.asarray(to_numpy(features), dtype=np.float64), classes.shape[0],
                               random_state=random_state)
    bound = pac_dirichlet_bound if prior == "dirichlet" else pac_gamma_bound
    return -bound(probs, onehot, alpha)


register(ScoreEntry(name="pactran", function=pactran, reference="pedrank.reference.pactran:pactran", order=12))
