"""The compiled core's borrowed BLAS/LAPACK: signature checks, fall-back to Eigen, and parity on both paths.

The BLAS-only code paths (OpenBLAS's dsyrk above D = 256 with N D^2 >= 1e9, SFDA's blocked Cholesky and
dgemm at D >= 512, dsyevd at D >= 256) are only reached at sizes the other tests do not use: here D = 520.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pedrank
from pedrank import _core, reference
from pedrank._engine import constants as _constants

RTOL = 1e-8


@pytest.fixture(scope="module")
def wide_problem():
    """N = 2000 > D = 520 (N D^2 = 5.4e8: the Gram by blocks), C = 6, correlated columns."""
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 6, size=2000)
    labels[:6] = np.arange(6)
    mixing = rng.normal(size=(520, 520)) / np.sqrt(520)
    features = rng.normal(size=(6, 520))[labels] * 0.7 + rng.normal(size=(2000, 520)) @ mixing
    return features, labels


@pytest.fixture
def blas_switch():
    yield
    _core.set_blas(True)


@pytest.mark.parametrize("use_blas", [True, False])
@pytest.mark.parametrize("metric", ["logme", "sfda", "gbc"])
def test_blas_and_eigen_paths_equal_the_reference(wide_problem, blas_switch, metric, use_blas):
    features, labels = wide_problem
    _core.set_blas(use_blas)
    assert _core.blas_backend() == ("scipy-openblas" if use_blas else "eigen")
    expected = getattr(reference, metric)(features, labels)
    assert getattr(pedrank, metric)(features, labels) == pytest.approx(expected, rel=RTOL)


def test_sfda_blocked_cholesky_coefficients_equal_the_reference(wide_problem, blas_switch):
    """D = 520 >= 512: the shrunk scatter is solved by the blocked Cholesky on the borrowed BLAS."""
    import importlib

    reference_sfda_fit = importlib.import_module("pedrank.reference.sfda").sfda_fit
    features, labels = wide_problem
    encoded = labels.astype(np.int64)
    with_blas = _core.sfda_fit(features, encoded, 6, float("nan"))
    _core.set_blas(False)
    with_eigen = _core.sfda_fit(features, encoded, 6, float("nan"))
    coef, intercept, shrinkage = reference_sfda_fit(features, encoded, 6)
    # Coefficients near zero carry the solve's cancellation: compare against the largest one.
    for name, blas_value, eigen_value, wanted in zip(
        ("coef", "intercept", "shrinkage"), with_blas, with_eigen, (coef, intercept, shrinkage)
    ):
        scale = float(np.max(np.abs(wanted)))
        np.testing.assert_allclose(blas_value, eigen_value, rtol=1e-9, atol=1e-9 * scale, err_msg=name)
        np.testing.assert_allclose(blas_value, wanted, rtol=1e-7, atol=1e-8 * scale, err_msg=name)


def test_constants_come_from_the_core():
    assert _constants.LOGME_MAX_ITERATIONS == _core.LOGME_MAX_ITERATIONS == 11
    assert _constants.LOGME_TOLERANCE == _core.LOGME_TOLERANCE == 1e-3
    assert _constants.LOGME_EPSILON == _core.LOGME_EPSILON == 1e-5
    assert _constants.GBC_VARIANCE_FLOOR == _core.GBC_VARIANCE_FLOOR == 1e-4
    assert _constants.PED_SCALE_FLOOR == pedrank.ped.__globals__["SCALE_FLOOR"] == 1e-3
    import importlib

    from pedrank._engine import array_kernels as _array_kernels

    reference_logme = importlib.import_module("pedrank.reference.logme")
    assert _array_kernels.LOGME_EPS == reference_logme.LOGME_EPSILON == _core.LOGME_EPSILON


FORGE = textwrap.dedent(
    """
    import ctypes, sys
    import numpy as np
    import scipy.linalg.cython_blas as blas, scipy.linalg.cython_lapack as lapack
    import pedrank
    from pedrank import _core, reference

    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

    routine, forged_name = sys.argv[1], sys.argv[2].encode()
    real = blas.__pyx_capi__ if routine in ("dsyrk", "dgemm") else lapack.__pyx_capi__
    pointer = get_pointer(real[routine], get_name(real[routine]))
    forged = dict(real)
    forged[routine] = new(pointer, forged_name, None)
    if routine in ("dsyrk", "dgemm"):
        status = _core._load_linalg(forged, lapack.__pyx_capi__)
    else:
        status = _core._load_linalg(blas.__pyx_capi__, forged)
    print("STATUS", status)
    print("BACKEND", _core.blas_backend())
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=1500)
    features = rng.normal(size=(4, 300))[labels] + rng.normal(size=(1500, 300))
    for metric in ("logme", "sfda", "gbc"):
        got, want = getattr(pedrank, metric)(features, labels), getattr(reference, metric)(features, labels)
        assert abs(got - want) <= 1e-8 * abs(want), (metric, got, want)
    print("RESTORED", _core._load_linalg(blas.__pyx_capi__, lapack.__pyx_capi__))
    """
)


@pytest.mark.parametrize(
    "routine, forged_name",
    [
        # a 64-bit-integer (ILP64) BLAS: the same routine with long integers
        ("dsyrk", "void (char *, char *, long *, long *, double *, double *, long *, double *, double *, long *)"),
        ("dsyevd", "void (char *, char *, int *, float *, int *, float *, float *, int *, int *, int *, int *)"),
        ("dgemm", "not a signature at all"),
    ],
)
def test_a_forged_capsule_signature_falls_back_to_eigen(routine, forged_name):
    """A capsule whose C signature is not the prototype the kernels call through is never called: the core falls
    back to Eigen, says why, and every score still equals the reference. Run in a subprocess: it rewires the
    process-wide BLAS table."""
    result = subprocess.run(
        [sys.executable, "-c", FORGE, routine, forged_name], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["STATUS"].startswith("eigen (") and routine in lines["STATUS"], lines["STATUS"]
    assert lines["BACKEND"] == "eigen"
    assert lines["RESTORED"] == "scipy-openblas"


def test_show_config_reports_the_blas(capsys):
    pedrank.show_config()
    out = capsys.readouterr().out
    assert "blas" in out and _core.blas_status() in out and pedrank.__version__ in out
