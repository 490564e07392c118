"""Reference PACTran (Ding et al., ECCV 2022): a line-by-line port of the authors' compute_metrics.py
(google-research/pactran_metrics): ``calculate_pac_dir``, ``calculate_pac_gamma``, ``calculate_pac_gauss``
and ``gmm_estimator``, with their N x C x Z tensors and per-step arrays."""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.special
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from pedrank._engine.validation import PedrankValueError, check_classification
from pedrank.scores.pactran import check_pactran_options, check_probabilities, check_unit_scale


def one_hot(a):
    b = np.zeros((a.size, a.max() + 1))
    b[np.arange(a.size), a] = 1.0
    return b


def _gmm_estimator(features, n_classes, random_state):
    """The authors' ``gmm_estimator``: a Gaussian mixture's posteriors p(z | x) on PCA features keeping 80 %
    of the variance, with ``max(min(C, int(0.2 N)), int(0.1 N))`` components (their run seeds it with 0)."""
    n_samples = features.shape[0]
    pca = PCA(n_components=0.8).fit(features)
    reduced = pca.transform(features)
    n_components = max(min(n_classes, int(n_samples * 0.2)), int(n_samples * 0.1))
    mixture = GaussianMixture(n_components=n_components, random_state=random_state).fit(reduced)
    return mixture.predict_proba(reduced)


def _pac_dir(prob, label, alpha):
    label = one_hot(label)
    soft_targets_sum = np.expand_dims(np.sum(label, axis=0), axis=1)
    a0 = alpha * soft_targets_sum / np.sum(soft_targets_sum) + 1e-10
    qz = prob
    log_s = np.log(prob + 1e-10)
    for _ in range(10):
        aw = a0 + np.sum(np.einsum("BY,BZ->BYZ", label, qz), axis=0)
        logits_qz = log_s + np.matmul(label, scipy.special.digamma(aw)) - np.reshape(
            scipy.special.digamma(np.sum(aw, axis=0)), [1, -1])
        log_qz = logits_qz - scipy.special.logsumexp(logits_qz, axis=-1, keepdims=True)
        qz = np.exp(log_qz)
    log_c0 = scipy.special.loggamma(np.sum(a0)) - np.sum(scipy.special.loggamma(a0))
    log_c = scipy.special.loggamma(np.sum(aw, axis=0)) - np.sum(scipy.special.loggamma(aw), axis=0)
    pac_dir = np.sum(log_c0 - log_c - np.sum(qz * (log_qz - log_s), axis=0))
    return -pac_dir / label.size


def _pac_gamma(prob, label, alpha):
    label = one_hot(label)
    soft_targets_sum = np.expand_dims(np.sum(label, axis=0), axis=1)
    a0 = alpha * soft_targets_sum / np.sum(soft_targets_sum) + 1e-10
    beta = 1.0
    qz = prob
    s = prob
    log_s = np.log(prob + 1e-10)
    for _ in range(10):
        aw = a0 + np.sum(np.einsum("BY,BZ->BYZ", label, qz), axis=0)
        lw = np.matmul(s, np.expand_dims(np.sum(aw / beta, axis=0), axis=1))
        logits_qz = log_s + np.matmul(label, scipy.special.digamma(aw) - np.log(beta))
        log_qz = logits_qz - scipy.special.logsumexp(logits_qz, axis=-1, keepdims=True)
        qz = np.exp(log_qz)
    pac_gamma = (np.sum(scipy.special.loggamma(a0) - scipy.special.loggamma(aw) + aw * np.log(beta)
                        - a0 * np.log(beta))
                 + np.sum(np.sum(qz * (log_qz - log_s), axis=-1) + np.log(np.squeeze(lw, axis=-1)) - 1.0))
    return pac_gamma / label.size + 1.0


def pac_gauss(features, label_idx, lda_factor, s2_factor, max_iter, random_state, solver="lbfgs"):
    nclasses = label_idx.max() + 1
    label = one_hot(label_idx)
    features = features - np.mean(features, axis=0, keepdims=True)
    bs = features.shape[0]
    d = features.shape[-1]
    kd = d * nclasses
    ldas2 = lda_factor * bs
    dinv = 1.0 / float(d)

    def unpack(theta):
        theta = np.reshape(theta, [d + 1, nclasses])
        return theta[:d, :], theta[d:, :]

    def loss_fn(theta):
        w, b = unpack(theta)
        logits = np.matmul(features, w) + b
        log_qz = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        xent = np.sum(np.sum(label * (np.log(label + 1e-10) - log_qz), axis=-1)) / bs
        return xent + 0.5 * np.sum(np.square(w)) / ldas2

    def grad_fn(theta):
        w, b = unpack(theta)
        grad_f = scipy.special.softmax(np.matmul(features, w) + b, axis=-1)
        grad_f -= label
        grad_f /= bs
        grad_w = np.matmul(features.transpose(), grad_f) + w / ldas2
        grad_b = np.sum(grad_f, axis=0, keepdims=True)
        return np.ravel(np.concatenate([grad_w, grad_b], axis=0))

    def grad2(theta):
        w, b = unpack(theta)
        prob_logits = scipy.special.softmax(np.matmul(features, w) + b, axis=-1)
        grad2_f = prob_logits - np.square(prob_logits)
        grad2_w = np.matmul(np.square(features).transpose(), grad2_f) + 1.0 / ldas2
        grad2_b = np.sum(grad2_f, axis=0, keepdims=True)
        return np.ravel(np.concatenate([grad2_w, grad2_b], axis=0))

    def hessian_times(theta, direction):
        # pactran:exact only: the cross-entropy's Hessian times a direction, (1/N) X^T (p * Xv - p (p . Xv)) + v / ldas2
        w, b = unpack(theta)
        v_w, v_b = unpack(direction)
        prob = scipy.special.softmax(np.matmul(features, w) + b, axis=-1)
        z = np.matmul(features, v_w) + v_b
        r = prob * z - prob * np.sum(prob * z, axis=-1, keepdims=True)
        r /= bs
        return np.ravel(np.concatenate([np.matmul(features.transpose(), r) + v_w / ldas2,
                                        np.sum(r, axis=0, keepdims=True)], axis=0))

    if solver == "newton":
        # the optimum itself (pactran:exact): SciPy's trust-region Newton-CG from zero, to a gradient norm of 1e-10
        theta_1d = scipy.optimize.minimize(loss_fn, np.zeros((d + 1) * nclasses), method="trust-ncg", jac=grad_fn,
                                           hessp=hessian_times, options=dict(gtol=1e-10, maxiter=10000)).x
    else:
        theta = np.random.RandomState(random_state).normal(size=[d, nclasses]) * 0.03
        theta_1d = np.ravel(np.concatenate([theta, np.zeros([1, nclasses])], axis=0))
        theta_1d = scipy.optimize.minimize(loss_fn, theta_1d, method="L-BFGS-B", jac=grad_fn,
                                           options=dict(maxiter=max_iter), tol=1e-6).x
    pac_opt = loss_fn(theta_1d)
    sigma2_inv = np.sum(grad2(theta_1d)) * ldas2 / kd + 1e-10
    s2 = s2_factor * dinv
    return pac_opt + 0.5 * kd / ldas2 * s2 * np.log(sigma2_inv)


def pactran(features, labels, *, prior="gaussian", lda_factor=1.0, variance_factor=None, alpha=1.0,
            probabilities=False, max_iter=100, random_state=0, solver="lbfgs", unit_scale=False):
    """Reference PACTran. See :func:`pedrank.pactran`."""
    lda_factor, variance_factor, alpha, max_iter, random_state = check_pactran_options(
        prior, lda_factor, variance_factor, alpha, max_iter, random_state, solver)
    if probabilities and prior == "gaussian":
        raise PedrankValueError("probabilities: expected False with prior='gaussian'")
    unit_scale = check_unit_scale(unit_scale, probabilities)
    features, encoded, classes = check_classification(features, labels)
    X = np.array(features, dtype=np.float64)
    if unit_scale:  # the root mean square of the centred entries: sqrt(trace(covariance) / D)
        X = X / np.sqrt(np.mean((X - X.mean(axis=0)) ** 2))
    if prior == "gaussian":
        return float(-pac_gauss(X, encoded, lda_factor, variance_factor, max_iter, random_state, solver))
    prob = check_probabilities(X) if probabilities else _gmm_estimator(X, classes.shape[0], random_state)
    bound = _pac_dir if prior == "dirichlet" else _pac_gamma
    return float(-bound(prob, encoded, alpha))
