"""PACTran-Gaussian's one-pass objective (issue 26) against a plain loss / gradient pair written from the math.

pedrank evaluates the loss and the gradient from one ``features @ w`` and shares the exponentials between the
loss's log-sum-exp and the gradient's softmax. The plain version below evaluates each on its own, as the authors
do, so both L-BFGS-B runs must take the same iterates: the same iteration count and the same bound.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy
import scipy.optimize
import scipy.special
import threadpoolctl

import pedrank

PACTRAN = sys.modules["pedrank.scores.pactran"]  # the module: pedrank.pactran is the score function


@pytest.fixture(autouse=True)
def one_blas_thread():
    # both runs must see the same product rounding; the thread count changes it (tests/test_field_2023.py)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


def plain_bound(features, labels, *, lda_factor=1.0, variance_factor=100.0, max_iter=100, random_state=0):
    """(bound, L-BFGS-B iterations) of PACTran-Gaussian, written from its definition.

    Softmax regression ``q = softmax(X w + b)`` on centred X, loss ``L = (1/N) sum_i sum_c y_ic (log(y_ic +
    1e-10) - log q_ic) + |w|^2 / (2 lambda)`` with ``lambda = lda_factor N`` (the 1e-10 is the authors'), gradient
    ``X^T (q - y) / N + w / lambda`` and ``sum_i (q_i - y_i) / N``; the bound is ``L(theta*) + kd / (2 lambda)
    s2 log(sigma2_inv)``, ``sigma2_inv`` the mean diagonal of the Hessian times lambda, ``s2 = variance_factor / D``.
    """
    X = np.asarray(features, dtype=np.float64)
    X = X - X.mean(axis=0)
    n, d = X.shape
    c = int(labels.max()) + 1
    y = np.eye(c)[labels]
    lam = lda_factor * n

    def unpack(theta):
        theta = theta.reshape(d + 1, c)
        return theta[:d], theta[d]

    def loss(theta):
        w, b = unpack(theta)
        log_q = scipy.special.log_softmax(X @ w + b, axis=1)
        return np.sum(y * (np.log(y + 1e-10) - log_q)) / n + np.sum(w ** 2) / (2 * lam)

    def gradient(theta):
        w, b = unpack(theta)
        r = (scipy.special.softmax(X @ w + b, axis=1) - y) / n
        return np.vstack([X.T @ r + w / lam, r.sum(axis=0)]).ravel()

    start = np.vstack([np.random.RandomState(random_state).normal(size=(d, c)) * 0.03, np.zeros((1, c))]).ravel()
    result = scipy.optimize.minimize(loss, start, method="L-BFGS-B", jac=gradient, tol=1e-6,
                                     options={"maxiter": max_iter})
    w, b = unpack(result.x)
    q = scipy.special.softmax(X @ w + b, axis=1)
    diagonal = np.vstack([(X ** 2).T @ (q - q ** 2) + 1 / lam, (q - q ** 2).sum(axis=0)])
    sigma2_inv = diagonal.sum() * lam / (d * c) + 1e-10
    bound = loss(result.x) + d * c / (2 * lam) * (variance_factor / d) * np.log(sigma2_inv)
    return bound, result.nit


def problem(seed):
    rng = np.random.default_rng(seed)
    n, d, c = int(rng.integers(60, 400)), int(rng.integers(3, 90)), int(rng.integers(2, 10))
    labels = rng.integers(0, c, size=n)
    labels[:c] = np.arange(c)
    spread = 10.0 ** rng.uniform(-1, 1)
    features = (rng.normal(scale=spread, size=(c, d))[labels] + rng.normal(size=(n, d))) * 10.0 ** rng.uniform(-1, 1)
    return features, labels


@pytest.fixture
def iterations(monkeypatch):
    """The iteration counts of pedrank's L-BFGS-B runs, in call order."""
    seen = []
    minimize = scipy.optimize.minimize

    def recording(*args, **kwargs):
        result = minimize(*args, **kwargs)
        seen.append(result.nit)
        return result

    monkeypatch.setattr(scipy.optimize, "minimize", recording)
    return seen


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("max_iter", [100, 4])
def test_one_pass_objective_takes_the_plain_iterates(seed, max_iter, iterations):
    features, labels = problem(seed)
    lda_factor, variance_factor = [(1.0, 100.0), (10.0, 1000.0), (0.1, 10.0)][seed % 3]
    expected, expected_iterations = plain_bound(features, labels, lda_factor=lda_factor,
                                                variance_factor=variance_factor, max_iter=max_iter, random_state=seed)
    iterations.clear()  # the plain run's
    score = pedrank.pactran(features, labels, lda_factor=lda_factor, variance_factor=variance_factor,
                            max_iter=max_iter, random_state=seed)
    assert iterations == [expected_iterations]
    assert -score == pytest.approx(expected, rel=1e-10, abs=0)
    if max_iter == 4:
        assert expected_iterations == 4  # the unconverged path is exercised, not only converged optima


def test_public_bound_equals_the_score_and_leaves_its_inputs(iterations):
    features, labels = problem(11)
    onehot = np.eye(labels.max() + 1)[labels]
    kept_features, kept_onehot = features.copy(), onehot.copy()
    bound = PACTRAN.pac_gauss_bound(features, onehot, lda_factor=1.0, variance_factor=100.0, max_iter=100,
                                    random_state=0)
    np.testing.assert_array_equal(features, kept_features)
    np.testing.assert_array_equal(onehot, kept_onehot)
    assert -pedrank.pactran(features, labels) == pytest.approx(bound, rel=1e-12, abs=0)
    np.testing.assert_array_equal(features, kept_features)  # the score centres its own copy, never the caller's
    assert iterations[0] == iterations[1]
    assert bound == pytest.approx(plain_bound(features, labels)[0], rel=1e-10, abs=0)


@pytest.mark.skipif(not PACTRAN._SCIPY_LOGSUMEXP_LOG1P, reason="SciPy < 1.15: pedrank calls SciPy's logsumexp")
def test_row_logsumexp_has_scipys_bits():
    rng = np.random.default_rng(5)
    logits = rng.normal(scale=30.0, size=(500, 37))
    logits[3] = 2.5  # a row of ties: SciPy divides the rest by the count of maxima
    logits[4, :3] = logits[4].max() + 1.0  # three tied maxima
    logits[5] = -800.0  # exponentials that would underflow unshifted
    logits[6, 0] = 1e300
    top = logits.max(axis=-1, keepdims=True)
    shifted_exp = np.exp(logits - top)
    ours = PACTRAN._logsumexp_rows(logits, top, shifted_exp)
    np.testing.assert_array_equal(ours, scipy.special.logsumexp(logits, axis=-1, keepdims=True))
    np.testing.assert_array_equal(shifted_exp, np.exp(logits - top))  # shared with the softmax: left as it was
