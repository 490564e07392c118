"""pedrank._core kernels against straightforward NumPy/SciPy computations written here from the spec.

The NumPy versions follow the authors' formulation where it differs from the kernels' (a thin SVD of X for
LogME, the generalised eigenproblem for SFDA, materialised ConfMix features, a per-pair loop for PED), so these
tests also check the algebraic shortcuts the kernels take. Shapes cover N < D and N > D, 2 to 400 classes,
imbalanced classes with one-sample classes, float32 and Fortran-ordered input.
"""

import numpy as np
import pytest
import scipy.linalg

from pedrank import _core

RTOL = 1e-8


def make_case(n, d, n_classes, seed, dtype=np.float64, order="C", spread=1.0):
    """Features with class structure, every class present, imbalanced, some classes of one sample."""
    rng = np.random.default_rng(seed)
    sizes = np.ones(n_classes, dtype=np.int64)
    rest = n - n_classes
    weights = rng.dirichlet(np.full(n_classes, 0.5))
    sizes += rng.multinomial(rest, weights)
    labels = rng.permutation(np.repeat(np.arange(n_classes), sizes)).astype(np.int64)
    centres = rng.normal(scale=spread, size=(n_classes, d))
    X = centres[labels] + rng.normal(scale=0.5, size=(n, d)) + rng.uniform(0, 1, size=d)
    X = np.asarray(X, dtype=dtype, order=order)
    return X, labels


CASES = [
    # n, d, C, seed, dtype, order
    (300, 12, 2, 0, np.float64, "C"),
    (500, 30, 7, 1, np.float32, "C"),
    (400, 25, 40, 2, np.float64, "F"),
    (60, 90, 5, 3, np.float64, "C"),  # N < D
    (40, 200, 9, 4, np.float32, "F"),  # N < D, float32, Fortran order
    (1000, 16, 400, 5, np.float64, "C"),  # many classes, most with 1-4 samples
    (700, 20, 150, 6, np.float32, "F"),
]


@pytest.fixture(params=CASES, ids=lambda c: f"n{c[0]}-d{c[1]}-C{c[2]}-{np.dtype(c[4]).name}-{c[5]}")
def case(request):
    n, d, C, seed, dtype, order = request.param
    X, y = make_case(n, d, C, seed, dtype, order)
    return X, y, C


def class_stats(X, y, C):
    counts = np.bincount(y, minlength=C)
    means = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    return counts, means


# ---------------------------------------------------------------------------------------------- scatter


def test_class_means_and_covariance(case):
    X, y, C = case
    X64 = X.astype(np.float64)
    counts, means = _core.class_means(X, y, C)
    want_counts, want_means = class_stats(X64, y, C)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_allclose(means, want_means, rtol=RTOL, atol=1e-12)
    mean, cov = _core.covariance(X)
    np.testing.assert_allclose(mean, X64.mean(axis=0), rtol=RTOL)
    np.testing.assert_allclose(cov, np.cov(X64.T, bias=True), rtol=RTOL, atol=1e-12 * np.abs(cov).max())


# ---------------------------------------------------------------------------------------------- LogME


def logme_numpy(X, T, exact_dimension=False):
    """LogME on targets T (N x K) from a thin SVD of X (the authors' N <= D path; rank-truncated for N > D)."""
    N, D = X.shape
    u, s, vh = np.linalg.svd(X, full_matrices=False)
    if N > D:
        keep = s > 1e-10
        u, s, vh = u[:, keep], s[keep], vh[keep]
    sigma = s**2
    k = len(s)
    out = []
    for t in T.T:
        x = u.T @ t
        x2 = x**2
        res_x2 = t @ t - x2.sum()
        alpha = beta = 1.0
        for _ in range(11):
            lam = alpha / beta
            gamma = np.sum(sigma / (sigma + lam))
            m2 = np.sum(sigma * x2 / (lam + sigma) ** 2)
            res2 = np.sum(x2 / (1 + sigma / lam) ** 2) + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (N - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - lam) / lam <= 1e-3:
                break
        # N > D: the authors' number is the rank-consistent evidence (see pedrank.logme); N <= D: their D quirk.
        dim = k if (exact_dimension or N > D) else D
        evidence = (
            dim / 2 * np.log(alpha)
            + N / 2 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
            - beta / 2 * res2
            - alpha / 2 * m2
            - N / 2 * np.log(2 * np.pi)
        ) / N
        weights = vh.T @ (s / (lam + sigma) * x)
        out.append((evidence, alpha, beta, weights))
    ev, al, be, w = zip(*out)
    return np.array(ev), np.array(al), np.array(be), np.stack(w, axis=1)


@pytest.mark.parametrize("exact_dimension", [False, True])
def test_logme_classification(case, exact_dimension):
    X, y, C = case
    got = _core.logme(X, y, C, None, exact_dimension)
    want = logme_numpy(X.astype(np.float64), np.eye(C)[y], exact_dimension)
    for g, w, name in zip(got, want, ["evidence", "alpha", "beta", "weights"]):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=1e-10 * np.abs(w).max(), err_msg=name)


def test_logme_regression(case):
    X, y, C = case
    rng = np.random.default_rng(len(y))
    T = np.column_stack([rng.normal(size=len(y)), X[:, 0] * 0.3 + rng.normal(size=len(y))])
    got = _core.logme(X, None, 0, T, False)
    want = logme_numpy(X.astype(np.float64), T)
    for g, w, name in zip(got, want, ["evidence", "alpha", "beta", "weights"]):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=1e-10 * np.abs(w).max(), err_msg=name)


def test_logme_quirk_is_the_dimension_term():
    """Authors' evidence minus exact evidence is (D - k)/(2N) log(alpha) (k = kept components)."""
    X, y = make_case(30, 80, 4, 11)
    quirk = _core.logme(X, y, 4, None, False)
    exact = _core.logme(X, y, 4, None, True)
    np.testing.assert_allclose(quirk[0] - exact[0], (80 - 30) / (2 * 30) * np.log(quirk[1]), rtol=1e-10)


# ---------------------------------------------------------------------------------------------- SFDA


def power_lmax(S):
    v = S.sum(axis=1)
    for _ in range(3):
        w = S @ v
        w /= np.linalg.norm(w)
        v = S @ w
        v /= np.linalg.norm(v)
    return v @ S @ w


def lda_numpy(X, y, C, shrinkage=None):
    """The authors' shrinkage LDA: generalised eigenproblem Sb v = l Sw' v, coef = M V V^T."""
    N, D = X.shape
    counts, means = class_stats(X, y, C)
    priors = counts / N
    Sw = sum(priors[c] * np.cov(X[y == c].T, bias=True).reshape(D, D) for c in range(C))
    if shrinkage is None:
        shrinkage = max(np.exp(-5 * power_lmax(Sw)), 1e-10)
    St = np.cov(X.T, bias=True).reshape(D, D)
    St = (1 - shrinkage) * St + shrinkage * np.trace(St) / D * np.eye(D)
    Sw_s = (1 - shrinkage) * Sw + shrinkage * np.trace(Sw) / D * np.eye(D)
    _, V = scipy.linalg.eigh(St - Sw_s, Sw_s)
    coef = means @ V @ V.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return coef, intercept, shrinkage


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sfda_numpy(X, y, C, shrinkage=None):
    coef, intercept, s = lda_numpy(X, y, C, shrinkage)
    q = softmax(softmax(X @ coef.T + intercept))
    _, means = class_stats(X, y, C)
    others = (means.sum(axis=0) - means) / (C - 1)
    a = q[np.arange(len(y)), y][:, None]
    mixed = a * X + (1 - a) * others[y]
    coef2, intercept2, _ = lda_numpy(mixed, y, C, s)
    p = softmax(mixed @ coef2.T + intercept2)
    return p[np.arange(len(y)), y].mean(), s


def sfda_case(case):
    X, y, C = case
    # scale so that the adaptive shrinkage is moderate (well-conditioned Sw' makes 1e-8 a fair target)
    return (X / np.sqrt(X.shape[1])).astype(X.dtype), y, C


def test_sfda_fit(case):
    X, y, C = sfda_case(case)
    coef, intercept, s = _core.sfda_fit(X, y, C, np.nan)
    want_coef, want_intercept, want_s = lda_numpy(X.astype(np.float64), y, C)
    assert s == pytest.approx(want_s, rel=RTOL)
    np.testing.assert_allclose(coef, want_coef, rtol=1e-7, atol=1e-8 * np.abs(want_coef).max())
    np.testing.assert_allclose(intercept, want_intercept, rtol=1e-7, atol=1e-8 * np.abs(want_intercept).max())


def test_sfda_score(case):
    X, y, C = sfda_case(case)
    score, s = _core.sfda_score(X, y, C, np.nan)
    want_score, want_s = sfda_numpy(X.astype(np.float64), y, C)
    assert s == pytest.approx(want_s, rel=RTOL)
    assert score == pytest.approx(want_score, rel=RTOL)


def test_sfda_given_shrinkage_is_used():
    X, y = make_case(200, 10, 3, 7)
    score, s = _core.sfda_score(X, y, 3, 0.25)
    assert s == 0.25
    assert score == pytest.approx(sfda_numpy(X, y, 3, 0.25)[0], rel=RTOL)


# ---------------------------------------------------------------------------------------------- GBC


def gbc_numpy(X, y, C, n_components=64, diagonal=False, exact_logdet=False):
    N, D = X.shape
    k = min(n_components, D, N)
    w, V = np.linalg.eigh(np.cov(X.T, bias=True).reshape(D, D))
    Z = (X - X.mean(axis=0)) @ V[:, ::-1][:, :k]
    mu = np.stack([Z[y == c].mean(axis=0) for c in range(C)])
    var = np.maximum(np.stack([Z[y == c].var(axis=0) for c in range(C)]), 1e-4)
    if not diagonal:
        var = var.mean(axis=1, keepdims=True)
    total = 0.0
    for i in range(C):
        for j in range(C):
            if i == j:
                continue
            s = (var[i] + var[j]) / 2
            maha = np.sum((mu[i] - mu[j]) ** 2 / s) / 8
            logdet = np.sum(np.log(s)) - 0.5 * np.sum(np.log(var[i])) - 0.5 * np.sum(np.log(var[j]))
            if not diagonal and exact_logdet:
                logdet *= k
            total += np.exp(-(maha + 0.5 * logdet))
    return -total


# the NumPy version loops over class pairs in Python: many-class cases run at a small D below
@pytest.mark.parametrize("params", [c for c in CASES if c[2] <= 100], ids=lambda c: f"n{c[0]}-d{c[1]}-C{c[2]}")
@pytest.mark.parametrize("diagonal,exact_logdet", [(False, False), (False, True), (True, False)])
def test_gbc(params, diagonal, exact_logdet):
    n, d, C, seed, dtype, order = params
    X, y = make_case(n, d, C, seed, dtype, order)
    got = _core.gbc(X, y, C, 8, diagonal, exact_logdet)
    want = gbc_numpy(X.astype(np.float64), y, C, 8, diagonal, exact_logdet)
    assert got == pytest.approx(want, rel=RTOL, abs=1e-12)


def test_gbc_many_classes():
    X, y = make_case(900, 6, 400, 8, spread=0.3)
    got = _core.gbc(X, y, 400, 4, False, False)
    want = gbc_numpy(X, y, 400, 4)
    assert got == pytest.approx(want, rel=RTOL)
    assert -400 * 399 <= got <= 0


# ---------------------------------------------------------------------------------------------- PED


def ped_step_numpy(X, y, C, center, scale, radius=0.6, elastic=1.0, time_step=0.1):
    Z = (X - center) / scale
    mu = np.stack([Z[y == c].mean(axis=0) for c in range(C)])
    R = np.sqrt(np.stack([Z[y == c].var(axis=0) for c in range(C)]).sum(axis=1))
    disp = np.zeros_like(mu)
    energy = 0.0
    for i in range(C):
        for j in range(i + 1, C):
            diff = mu[i] - mu[j]
            d = np.linalg.norm(diff)
            overlap = max(radius * R[i] + radius * R[j] - d, 0.0)
            if overlap > 0 and d > 0:
                energy += elastic * overlap**2 / 2
                s = min(0.5 * time_step**2 * elastic * overlap, overlap)
                disp[i] += s * diff / d
                disp[j] -= s * diff / d
    return (Z + disp[y]) * scale + center, disp, energy


def test_ped_step(case):
    X, y, C = case
    X64 = X.astype(np.float64)
    rng = np.random.default_rng(0)
    center = X64.mean(axis=0) + rng.normal(scale=0.1, size=X.shape[1])
    scale = np.maximum(X64.std(axis=0) * rng.uniform(0.5, 2.0, size=X.shape[1]), 1e-3)
    before = X.copy()
    moved, disp, energy, n_coincident = _core.ped_step(X, y, C, center, scale, 0.6, 1.0, 0.1)
    np.testing.assert_array_equal(X, before)
    want_moved, want_disp, want_energy = ped_step_numpy(X64, y, C, center, scale)
    assert moved.dtype == X.dtype and moved.shape == X.shape
    assert n_coincident == 0
    np.testing.assert_allclose(disp, want_disp, rtol=RTOL, atol=1e-12 * np.abs(want_disp).max())
    assert energy == pytest.approx(want_energy, rel=RTOL)
    if X.dtype == np.float64:
        np.testing.assert_allclose(moved, want_moved, rtol=RTOL)
    else:
        np.testing.assert_allclose(moved, want_moved.astype(np.float32), rtol=1e-6)


def test_class_moments(case):
    X, y, C = case
    X64 = X.astype(np.float64)
    counts, means, variances = _core.class_moments(X, y, C)
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=C))
    want_means = np.stack([X64[y == c].mean(axis=0) for c in range(C)])
    want_var = np.stack([X64[y == c].var(axis=0) for c in range(C)])
    np.testing.assert_allclose(means, want_means, rtol=RTOL)
    # One-sample classes have variance exactly 0; the rest match the two-pass variance.
    np.testing.assert_allclose(variances, want_var, rtol=RTOL, atol=1e-14 * want_var.max())
    assert (variances[counts == 1] == 0).all()


def test_pair_forces_alone_equal_the_step_from_features(case):
    """ped_forces = class_moments, rescaled, then ped_pair_forces (no second look at the features)."""
    X, y, C = case
    X64 = X.astype(np.float64)
    center = X64.mean(axis=0) + 0.05
    scale = np.maximum(X64.std(axis=0) * 0.8, 1e-3)
    _, means, variances = _core.class_moments(X, y, C)
    mu = (means - center) / scale
    radii = np.sqrt((variances / scale**2).sum(axis=1))
    disp, energy, coincident = _core.ped_pair_forces(mu, radii, 0.6, 1.0, 0.1)
    _, want_disp, want_energy = ped_step_numpy(X64, y, C, center, scale)
    np.testing.assert_allclose(disp, want_disp, rtol=RTOL, atol=1e-12 * np.abs(want_disp).max())
    assert energy == pytest.approx(want_energy, rel=RTOL)
    assert coincident == 0


def test_pair_forces_hand_computed():
    """Two unit-radius classes 1 apart at radius 1: overlap 1, each moves 0.5 * 0.1**2 * 1 = 0.005 apart."""
    mu = np.array([[0.0, 0.0], [1.0, 0.0]])
    disp, energy, coincident = _core.ped_pair_forces(mu, np.ones(2), 1.0, 1.0, 0.1)
    np.testing.assert_allclose(disp, [[-0.005, 0.0], [0.005, 0.0]], rtol=1e-15)
    assert energy == pytest.approx(0.5, rel=1e-15)
    assert coincident == 0
    with pytest.raises(ValueError, match="radii"):
        _core.ped_pair_forces(mu, np.ones(3), 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="radii"):
        _core.ped_pair_forces(mu, -np.ones(2), 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="not finite"):
        _core.ped_pair_forces(np.array([[np.nan, 0.0], [1.0, 0.0]]), np.ones(2), 1.0, 1.0, 0.1)


def test_ped_coincident_means_are_skipped_and_counted():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [5.0, 5.0], [5.5, 5.5]])
    y = np.array([0, 0, 1, 1, 2, 2])  # classes 0 and 1 share the mean (0.5, 0.5)
    moved, disp, energy, n_coincident = _core.ped_step(X, y, 3, np.zeros(2), np.ones(2), 0.6, 1.0, 0.1)
    assert n_coincident == 1
    np.testing.assert_array_equal(disp, 0.0)  # the only overlapping pair has no direction
    assert energy == 0.0  # ... and is left out of the energy, like pedrank.reference
    np.testing.assert_array_equal(moved, X)


# ---------------------------------------------------------------------------------------------- robustness


def test_bad_labels_raise_value_error():
    X, y = make_case(50, 4, 3, 9)
    with pytest.raises(ValueError, match="labels"):
        _core.sfda_score(X, np.where(y == 2, 5, y), 3, np.nan)
    with pytest.raises(ValueError, match="labels"):
        _core.logme(X, -y, 3, None, False)
    with pytest.raises(ValueError, match="length"):
        _core.gbc(X, y[:-1], 3, 64, False, False)
    with pytest.raises(ValueError, match="class 2"):
        _core.gbc(X, np.minimum(y, 1), 3, 64, False, False)
    with pytest.raises(ValueError, match="scale"):
        _core.ped_step(X, y, 3, np.zeros(4), np.zeros(4), 0.6, 1.0, 0.1)
    with pytest.raises(ValueError, match="center"):
        _core.ped_step(X, y, 3, np.zeros(3), np.ones(4), 0.6, 1.0, 0.1)


def test_bad_features_raise_value_error():
    y = np.zeros(5, dtype=np.int64)
    with pytest.raises(ValueError, match="2-D"):
        _core.covariance(np.zeros(5))
    with pytest.raises(ValueError, match="float32 or float64"):
        _core.covariance(np.zeros((5, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="at least one row"):
        _core.covariance(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="targets"):
        _core.logme(np.ones((5, 2)), None, 0, np.ones((4, 1)), False)
    with pytest.raises(ValueError, match="2 classes"):
        _core.sfda_score(np.random.default_rng(0).normal(size=(5, 2)), y, 1, np.nan)


def test_strided_and_negative_stride_views():
    X, y = make_case(120, 10, 4, 10)
    big = np.zeros((240, 20))
    big[::2, ::2] = X
    view = big[::2, ::2]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    np.testing.assert_allclose(_core.logme(view, y, 4, None, False)[0], _core.logme(X, y, 4, None, False)[0],
                               rtol=1e-12)
    flipped = X[::-1]
    assert _core.sfda_score(flipped, y[::-1].copy(), 4, np.nan)[0] == pytest.approx(
        _core.sfda_score(X, y, 4, np.nan)[0], rel=1e-10)


def test_inputs_not_mutated():
    X, y = make_case(100, 8, 3, 12)
    X0, y0 = X.copy(), y.copy()
    _core.sfda_score(X, y, 3, np.nan)
    _core.logme(X, y, 3, None, False)
    _core.gbc(X, y, 3, 64, False, False)
    _core.ped_step(X, y, 3, X.mean(axis=0), X.std(axis=0), 0.6, 1.0, 0.1)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("use_blas", [True, False])
def test_eigen_and_blas_paths_agree(use_blas):
    # big enough for the kernels to hand the Gram matrix and the eigen-decomposition to SciPy's OpenBLAS
    X, y = make_case(16_000, 260, 5, 13, spread=0.2)
    X = X / 10
    try:
        _core.set_blas(use_blas)
        got = (_core.logme(X, y, 5, None, False)[0], _core.sfda_score(X, y, 5, np.nan)[0],
               _core.gbc(X, y, 5, 10, True, False), _core.covariance(X)[1])
    finally:
        _core.set_blas(True)
    np.testing.assert_allclose(got[0], logme_numpy(X, np.eye(5)[y])[0], rtol=RTOL)
    assert got[1] == pytest.approx(sfda_numpy(X, y, 5)[0], rel=RTOL)
    assert got[2] == pytest.approx(gbc_numpy(X, y, 5, 10, True), rel=RTOL)
    np.testing.assert_allclose(got[3], np.cov(X.T, bias=True), rtol=RTOL, atol=1e-13)
