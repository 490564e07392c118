"""pedrank._core (and the array kernels where the contract is shared): run-to-run determinism, internal failures
surfacing as ValueError, SFDA's zero within-class scatter, LogME's rank tolerance, and the split PED step
(ped_forces + ped_apply)."""

import numpy as np
import pytest
from pedrank.backend import NumpyBackend
from sklearn.datasets import load_digits

import pedrank
import pedrank.reference
from pedrank import _core
from pedrank._engine.array_kernels import ArrayKernels
from pedrank._engine.validation import PedrankValueError
from pedrank.reference.ped import ped_forces as reference_ped_forces
from pedrank.reference.sfda import sfda_fit as reference_sfda_fit

RTOL = 1e-8


def _issue_features():
    X = np.random.default_rng(12).normal(size=(3100, 384)).astype(np.float32)
    y = np.random.default_rng(12).integers(0, 6, 3100)
    return X, y


def _kernel_sets():
    sets = [("core", _core), ("numpy", ArrayKernels(NumpyBackend()))]
    try:
        from pedrank.backend import torch_kernels

        sets.append(("torch", torch_kernels()))
    except ImportError:
        pass
    return sets


# ---------------------------------------------------------------------------------------------- determinism


def test_logme_is_bitwise_reproducible():
    X, y = _issue_features()
    values = {pedrank.logme(X, y) for _ in range(6)}
    assert len(values) == 1


def test_every_reducing_kernel_is_bitwise_reproducible():
    X, y = _issue_features()
    X64 = np.asfortranarray(X, dtype=np.float64)  # another layout and dtype through the same loops
    center, scale = X.mean(axis=0).astype(np.float64), np.maximum(X.std(axis=0), 1e-3).astype(np.float64)
    calls = {
        "class_means": lambda A: _core.class_means(A, y, 6)[1],
        "covariance": lambda A: _core.covariance(A)[1],
        "logme": lambda A: _core.logme(A, y, 6, None, False)[0],
        "logme_regression": lambda A: _core.logme(A, None, 0, np.stack([y, y ** 2], 1).astype(float), False)[3],
        "logme_wide": lambda A: _core.logme(A[:200], y[:200], 6, None, False)[0],
        "sfda_score": lambda A: np.array(_core.sfda_score(A, y, 6, np.nan)),
        "gbc": lambda A: np.array(_core.gbc(A, y, 6, 64, False, False)),
        "gbc_diagonal": lambda A: np.array(_core.gbc(A, y, 6, 64, True, False)),
        "ped_forces": lambda A: _core.ped_forces(A, y, 6, center, scale, 3.0, 1.0, 0.1)[0],
        "ped_step": lambda A: _core.ped_step(A, y, 6, center, scale, 3.0, 1.0, 0.1)[0],
    }
    for name, call in calls.items():
        for A in (X, X64):
            first = call(A)
            for _ in range(4):
                np.testing.assert_array_equal(call(A), first, err_msg=name)


# ---------------------------------------------------------------------------------------------- errors


def test_eigen_solver_failures_are_value_errors():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    with_inf = np.asfortranarray(rng.normal(size=(300, 300)))
    with_inf[3, 4] = -np.inf
    huge = rng.normal(size=(300, 20)) * 1e160
    for X in (with_inf, huge):
        with pytest.raises(PedrankValueError, match="rescale"):  # pedrank's ValueError, never RuntimeError
            _core.gbc(X, y, 3, 64, False, False)
        with pytest.raises(ValueError, match="rescale"):
            _core.logme(X, y, 3, None, False)
        with pytest.raises(ValueError, match="within-class scatter has non-finite entries"):
            _core.sfda_score(X, y, 3, np.nan)
    with pytest.raises(ValueError, match="rescale"):
        _core.logme(huge[:10].T.copy(), np.arange(20) % 3, 3, None, False)  # N <= D: the N x N Gram


def test_ped_forces_rejects_non_finite_statistics():
    X = np.random.default_rng(1).normal(size=(30, 4))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        _core.ped_forces(X, np.arange(30) % 3, 3, np.zeros(4), np.ones(4), 0.6, 1.0, 0.1)


# ---------------------------------------------------------------------------------------------- SFDA


@pytest.mark.parametrize("name,kernels", _kernel_sets())
def test_sfda_zero_within_scatter_is_a_value_error(name, kernels):
    one_per_class = np.random.default_rng(2).normal(size=(5, 8))
    zeros = np.zeros((10, 4))
    for X, y in ((one_per_class, np.arange(5)), (zeros, np.arange(10) % 2)):
        C = int(y.max()) + 1
        # all-zero features are a dead model, refused by the shared validation before SFDA; the kernels, past the
        # validation, still refuse them by their own zero-scatter test
        match = "carry no information" if not X.any() else "within-class scatter is zero"
        with pytest.raises(PedrankValueError, match=match):
            pedrank.reference.sfda(X, y)
        for call in (kernels.sfda_fit, kernels.sfda_score):
            with pytest.raises(ValueError, match="within-class scatter is zero"):
                call(X, y, C, float("nan"))


@pytest.mark.parametrize("name,kernels", _kernel_sets())
def test_sfda_power_iteration_with_vanishing_iterate(name, kernels):
    # The second feature is minus the first within every class: Sw's row sums are 0, so the authors' power
    # iteration starts from 0. The reference then takes the largest eigenvalue as 0 (shrinkage 1).
    # Integer data with exactly representable class means, so the row sums are exactly 0.
    y = np.arange(60) % 3
    u = np.where(np.arange(60) < 30, 1.0, -1.0)
    means = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]])
    X = means[y] + np.stack([u, -u], axis=1)
    coef, intercept, shrinkage = kernels.sfda_fit(X, y, 3, float("nan"))
    want_coef, want_intercept, want_shrinkage = reference_sfda_fit(X, y, 3)
    assert shrinkage == want_shrinkage == 1.0
    np.testing.assert_allclose(coef, want_coef, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(intercept, want_intercept, rtol=RTOL, atol=1e-12)


# ---------------------------------------------------------------------------------------------- LogME rank


def test_logme_drops_gram_rounding_noise_like_the_reference():
    X, y = load_digits(return_X_y=True)  # constant pixels: the Gram matrix is rank-deficient
    assert pedrank.logme(X, y) == pytest.approx(pedrank.reference.logme(X, y), rel=RTOL)
    X64 = X.astype(np.float64)
    assert ArrayKernels().logme(X64, y, 10)[0].mean() == pytest.approx(pedrank.reference.logme(X, y), rel=RTOL)


def test_logme_rank_one_features():
    X = np.tile(np.random.default_rng(4).normal(size=(1, 12)), (80, 1))  # every sample identical
    y = np.arange(80) % 4
    for lib in (pedrank, pedrank.reference):  # a dead model: refused before LogME runs
        with pytest.raises(PedrankValueError, match="all 80 rows are identical"):
            lib.logme(X, y)
    # the kernel itself, past the validation, stays finite on it
    evidence, alpha, beta, weights = _core.logme(X, y, 4, None, True)
    assert np.isfinite(evidence).all() and np.isfinite(weights).all()


# ---------------------------------------------------------------------------------------------- PED split


def _ped_case(dtype=np.float64, order="C", offset=0.0, seed=5):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(700) % 9)
    X = rng.normal(size=(9, 33))[y] * 0.8 + rng.normal(size=(700, 33)) + offset
    X = np.asarray(X, dtype=dtype, order=order)
    center = X.astype(np.float64).mean(axis=0)
    scale = np.maximum(X.astype(np.float64).std(axis=0), 1e-3)
    return X, y, center, scale


@pytest.mark.parametrize("name,kernels", _kernel_sets())
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_ped_forces_matches_reference(name, kernels, offset):
    # offset: a large common shift stresses the single-pass variances (no two-pass centring)
    X, y, center, scale = _ped_case(offset=offset)
    X = _native(name, X)
    displacement, energy, coincident = kernels.ped_forces(X, y, 9, center, scale, 0.6, 1.0, 0.1)
    want = reference_ped_forces(_host(X), y, 9, center, scale, 0.6, 1.0, 0.1)
    assert np.abs(want[0]).sum() > 0 and want[1] > 0
    np.testing.assert_allclose(displacement, want[0], rtol=RTOL, atol=1e-12 * np.abs(want[0]).max())
    assert energy == pytest.approx(want[1], rel=RTOL)
    assert coincident == want[2]


def _native(name, X):
    if name == "torch":
        import torch

        return torch.as_tensor(X)
    return X


def _host(X):
    return X.numpy() if hasattr(X, "numpy") and not isinstance(X, np.ndarray) else X


@pytest.mark.parametrize("name,kernels", _kernel_sets())
@pytest.mark.parametrize("dtype,order", [(np.float64, "C"), (np.float32, "C"), (np.float32, "F"), (np.float64, "F")])
def test_ped_apply_into_new_other_dtype_and_in_place(name, kernels, dtype, order):
    X, y, center, scale = _ped_case(dtype, order)
    displacement = kernels.ped_forces(_native(name, X), y, 9, center, scale, 0.6, 1.0, 0.1)[0]
    exact = X.astype(np.float64) + displacement[y] * scale
    moved, *_ = kernels.ped_step(_native(name, X), y, 9, center, scale, 0.6, 1.0, 0.1)
    np.testing.assert_array_equal(_host(moved), exact.astype(dtype))

    other = np.float32 if dtype == np.float64 else np.float64
    out = _native(name, np.zeros(X.shape, dtype=other, order=order))
    returned = kernels.ped_apply(_native(name, X), y, displacement, scale, out)
    assert returned is out
    np.testing.assert_array_equal(_host(out), exact.astype(other))

    X_before = X.copy()
    own = _native(name, X.copy(order="A"))
    assert kernels.ped_apply(own, y, displacement, scale, own) is own
    np.testing.assert_array_equal(_host(own), exact.astype(dtype))
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("name,kernels", [s for s in _kernel_sets() if s[0] != "torch"])
def test_ped_apply_validates_out(name, kernels):
    X, y, center, scale = _ped_case()
    displacement = kernels.ped_forces(X, y, 9, center, scale, 0.6, 1.0, 0.1)[0]
    read_only = np.zeros_like(X)
    read_only.flags.writeable = False
    for out in (np.zeros((X.shape[0], X.shape[1] + 1)), read_only, np.zeros(X.shape[0])):
        with pytest.raises(ValueError, match="out"):
            kernels.ped_apply(X, y, displacement, scale, out)
    if name == "core":
        with pytest.raises(ValueError, match="dtype"):
            _core.ped_apply(X, y, displacement, scale, np.zeros(X.shape, dtype=np.int64))
        big = np.zeros((X.shape[0], X.shape[1] + 1))
        big[:, :-1] = X
        with pytest.raises(ValueError, match="overlaps"):
            _core.ped_apply(big[:, :-1], y, displacement, scale, big[:, 1:])
        with pytest.raises(ValueError, match="labels"):
            _core.ped_apply(X, y, displacement[:5], scale, np.zeros_like(X))


def test_ped_step_is_forces_then_apply():
    X, y, center, scale = _ped_case(np.float32, "F")
    moved, displacement, energy, coincident = _core.ped_step(X, y, 9, center, scale, 0.6, 1.0, 0.1)
    forces = _core.ped_forces(X, y, 9, center, scale, 0.6, 1.0, 0.1)
    np.testing.assert_array_equal(displacement, forces[0])
    assert (energy, coincident) == forces[1:]
    assert moved.dtype == X.dtype and moved.flags.f_contiguous
    np.testing.assert_array_equal(moved, _core.ped_apply(X, y, forces[0], scale, np.empty_like(X)))


@pytest.mark.parametrize("dtype,order", [(np.float64, "C"), (np.float32, "F")])
def test_mean_std_one_pass_matches_numpy(dtype, order):
    # a large common offset: the single pass must not cancel (numpy's std is two-pass)
    X, _, _, _ = _ped_case(dtype, order, offset=1e4)
    mean, std = _core.mean_std(X)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(mean, X64.mean(axis=0), rtol=RTOL)
    np.testing.assert_allclose(std, X64.std(axis=0), rtol=RTOL)
    np.testing.assert_array_equal(_core.mean_std(X)[1], std)
