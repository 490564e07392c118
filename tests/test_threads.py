"""The thread policy of the compiled core (cpp/threads.hpp): one thread for small calls, the free cores for large
ones, decided per call; loops cut the same way whatever the count."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import pedrank
from conftest import make_problem
from pedrank import _core


@pytest.fixture
def restore_threads():
    yield
    _core.set_threads(0)
    _core.set_eig_threads(0)


def test_small_calls_run_on_one_thread_and_a_fixed_count_wins(restore_threads):
    assert _core.call_threads(1000, 1280) == 1  # 1.28e6 entries: below the 2e6 threshold
    assert 1 <= _core.call_threads(50_000, 2048) <= max(1, _core.num_threads())
    pedrank.set_threads(3)
    assert _core.call_threads(10, 10) == 3 and _core.call_threads(50_000, 2048) == 3
    pedrank.set_threads(0)
    assert _core.call_threads(1000, 1280) == 1
    with pytest.raises(pedrank.PedrankValueError, match="n"):
        pedrank.set_threads(-1)


def test_results_do_not_depend_on_the_thread_count(restore_threads):
    """Segments and accumulators are sized by the process's thread count, not the call's, so our loops give the
    same bits on one thread or two; OpenBLAS's eigensolver may move the last bits, so LogME and GBC are compared
    to 1e-13 and bitwise once the eigensolver's count is fixed (H-score's NumPy LAPACK: 1e-13)."""
    features, labels = make_problem(3000, 600, 7, seed=3)
    features = features.astype(np.float32)

    def run():
        return {
            "class_means": _core.class_means(features, labels, 7)[1],
            "covariance": _core.covariance(features)[1],
            "sfda": pedrank.sfda(features, labels),
            "ped": pedrank.ped(features, labels).features,
            "h_score": pedrank.h_score(features, labels),
            "logme": pedrank.logme(features, labels),
            "gbc": pedrank.gbc(features, labels),
        }

    results = {}
    for threads in (1, 2):
        pedrank.set_threads(threads)
        results[threads] = run()
    for name in ("class_means", "covariance", "sfda", "ped"):
        np.testing.assert_array_equal(results[1][name], results[2][name], err_msg=name)
    # H-score's eigensolver is NumPy's LAPACK, now on the policy's count too: its last bits may move like LogME's
    for name in ("logme", "gbc", "h_score"):
        assert results[1][name] == pytest.approx(results[2][name], rel=1e-13, abs=1e-300), name
    _core.set_eig_threads(1)
    fixed = {}
    for threads in (1, 2):
        pedrank.set_threads(threads)
        fixed[threads] = (pedrank.logme(features, labels), pedrank.gbc(features, labels))
    assert fixed[1] == fixed[2]


BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the load probe reads /proc (Linux only)")
def test_a_busy_machine_gets_one_thread(restore_threads):
    cpus = _core.num_threads()
    if cpus < 2:
        pytest.skip("one CPU: every call runs on one thread anyway")
    if (os.cpu_count() or 1) > 2 * cpus:
        pytest.skip("this process sees a slice of a larger machine, whose load the probe ignores")
    busy = [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=20)]) for _ in range(cpus)]
    try:
        time.sleep(1.0)
        seen = [_core.call_threads(50_000, 2048) for _ in range(20)]
    finally:
        for process in busy:
            process.kill()
    # Every core runs another process: the large call runs on one thread (a few samples may catch a busy process
    # between two time slices).
    assert sorted(seen)[len(seen) // 2] == 1, seen


def _numpy_blas_threads():
    import threadpoolctl

    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def test_numpy_linear_algebra_scores_run_numpys_blas_on_the_policy(restore_threads):
    """Scores whose heavy work is NumPy/SciPy (not the core) set NumPy's BLAS threads per call and restore them."""
    from pedrank._engine.config import follows_thread_policy

    seen = []

    @follows_thread_policy
    def probe(features, labels):
        seen.append(_numpy_blas_threads())
        return 0.0

    before = _numpy_blas_threads()
    assert before, "no BLAS found by threadpoolctl"
    pedrank.set_threads(1)
    probe(np.zeros((2000, 2000)), None)
    assert seen[-1] and set(seen[-1]) == {1}
    assert _numpy_blas_threads() == before  # the caller's setting is back
    pedrank.set_threads(0)
    probe([[0.0, 1.0], [1.0, 0.0]], None)  # small: one thread by the policy, array-likes included
    assert set(seen[-1]) == {int(_core.call_threads(2, 2))} == {1}
    assert _numpy_blas_threads() == before
    # every score whose heavy work is NumPy/SciPy goes through it (PACTran and k-NN set the same limit inside)
    import importlib

    for name in ("h_score", "regularized_h_score", "transrate", "parc", "nleep", "leep", "nce"):
        assert hasattr(getattr(pedrank, name), "__wrapped__"), name
    for module, terms in (("pedrank.scores.etran", "etran_terms"), ("pedrank.scores.ncti", "ncti_terms")):
        assert hasattr(getattr(importlib.import_module(module), terms), "__wrapped__"), terms
