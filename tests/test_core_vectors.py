"""pedrank._core against the PED authors' own outputs (tests/data/authors_ped_metrics.npz; the
``vectors`` fixture is in conftest.py).

Kernel-level numbers only: LogME (classification and regression), SFDA, one PED step. The PED loops are checked
at the public API level. Labels in the vectors are already 0..C-1, and the PED rescaling uses the mean and the
population std of the case's reference features, floored at 1e-3 like the authors.
"""


import numpy as np
import pytest

from conftest import AUTHORS_LOGME_REGRESSION_RTOL, AUTHORS_RTOL  # tests/ is on sys.path under pytest
from pedrank import _core

RTOL = AUTHORS_RTOL


CASES = [f"s{k}" for k in range(1, 9)]


def load(vectors, case):
    X = vectors[f"{case}_X"]
    y = vectors[f"{case}_y"].astype(np.int64)
    return X, y, int(y.max()) + 1


@pytest.mark.parametrize("case", CASES)
def test_logme(vectors, case):
    X, y, C = load(vectors, case)
    evidence, *_ = _core.logme(X, y, C, None, False)
    assert evidence.mean() == pytest.approx(vectors[f"{case}_logme"], rel=RTOL)


@pytest.mark.parametrize("case", CASES)
def test_logme_regression(vectors, case):
    # The second target column of every case is an exact linear function of X: its residual is pure round-off,
    # so this one comparison is held to conftest's AUTHORS_LOGME_REGRESSION_RTOL (the reason is given there).
    X, _, _ = load(vectors, case)
    evidence, *_ = _core.logme(X, None, 0, vectors[f"{case}_Yreg"], False)
    assert evidence.mean() == pytest.approx(vectors[f"{case}_logme_regression"], rel=AUTHORS_LOGME_REGRESSION_RTOL)


@pytest.mark.parametrize("case", CASES)
def test_sfda(vectors, case):
    X, y, C = load(vectors, case)
    X_before = X.copy()
    score, shrinkage = _core.sfda_score(X, y, C, np.nan)
    assert score == pytest.approx(vectors[f"{case}_sfda"], rel=RTOL)
    assert 1e-10 <= shrinkage <= 1.0
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("case", CASES)
def test_ped_step(vectors, case):
    X, y, C = load(vectors, case)
    ref = vectors[f"{case}_ref"]
    center, scale = ref.mean(axis=0), np.maximum(ref.std(axis=0), 1e-3)
    moved, displacement, energy, n_coincident = _core.ped_step(X, y, C, center, scale, 0.6, 1.0, 0.1)
    np.testing.assert_allclose(moved, vectors[f"{case}_ped_step_X"], rtol=RTOL, atol=1e-12)
    movement = np.abs(displacement).sum()
    assert movement == pytest.approx(vectors[f"{case}_ped_step_movement"], rel=RTOL, abs=1e-300)
    assert n_coincident == 0
    assert (energy > 0) == (movement > 0)


@pytest.mark.parametrize("case", CASES)
def test_float32_input_matches_float64_of_the_same_values(vectors, case):
    X, y, C = load(vectors, case)
    X32 = X.astype(np.float32)
    X32_as_64 = X32.astype(np.float64)
    assert _core.sfda_score(X32, y, C, np.nan)[0] == _core.sfda_score(X32_as_64, y, C, np.nan)[0]
    np.testing.assert_array_equal(_core.logme(X32, y, C, None, False)[0],
                                  _core.logme(np.asfortranarray(X32_as_64), y, C, None, False)[0])
