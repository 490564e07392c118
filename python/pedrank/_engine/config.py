"""``pedrank.show_config()``: what this installation runs on."""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import sys
from typing import Any, Callable, TypeVar, cast

import numpy as np

from pedrank import _core


def config() -> dict:
    """The build and run-time facts :func:`show_config` prints, as a dict of str to str/int/bool."""
    import numpy
    import scipy

    from pedrank import __version__

    return {
        "pedrank": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "torch": _version_of("torch"),
        # Borrowed SciPy BLAS/LAPACK, or why the kernels fall back to Eigen.
        "blas": _core.blas_status(),
        "blas_in_use": _core.blas_backend(),
        "openblas_threads_local": bool(_core.openblas_threads_local()),
        "threads": os.environ.get("PEDRANK_THREADS", "0 (policy: 1 below 2e6 feature entries, else the free cores)"),
        "threads_for_50000x2048_now": int(_core.call_threads(50_000, 2048)),
        "eig_threads": os.environ.get("PEDRANK_EIG_THREADS", "0 (the call's threads)"),
        "openmp_threads": int(_core.num_threads()),
    }


def show_config(file=None) -> None:
    """Print pedrank's version, its dependencies and which linear algebra the compiled core uses.

    The ``blas`` line says ``scipy-openblas`` when the kernels borrow SciPy's BLAS/LAPACK, or ``eigen (...)``
    with the reason when they fall back to Eigen (SciPy missing, or a routine whose C signature differs from the
    one pedrank calls through, e.g. a 64-bit-integer BLAS).
    """
    facts = config()
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        print(f"{key.ljust(width)}  {value}", file=file or sys.stdout)


def _version_of(module: str) -> str:
    if importlib.util.find_spec(module) is None:
        return "not installed"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "installed (version unknown)"


def set_threads(n: int) -> None:
    """Fix the threads every kernel call uses (``n >= 1``), or restore the policy (``n = 0``).

    The policy (the default, or ``PEDRANK_THREADS=0``): a call on fewer than 2e6 feature entries (N * D) runs on
    one thread, a larger one on as many threads as there are cores that no other process is running on at its
    start (read from /proc on Linux; at least one). It is applied per call, to pedrank's own loops and, through
    OpenBLAS's per-thread setting, to the BLAS/LAPACK calls the kernels make: numpy's process-wide thread count is
    never changed. Loops are cut the same way whatever the count, so only the eigensolvers' last bits (about
    1e-15 relative) can differ between a loaded and a quiet run; a fixed count makes every call bitwise
    reproducible.
    """
    from pedrank._engine.validation import check_int

    _core.set_threads(check_int(n, name="n", minimum=0))


def blas_on_policy(n_samples: int, n_features: int) -> Any:
    """A context in which NumPy's and SciPy's BLAS/LAPACK (OpenBLAS, MKL) run on pedrank's thread policy for a call
    on ``n_samples x n_features`` features: one thread below 2e6 entries, else the free cores, or the count fixed by
    :func:`set_threads` / ``PEDRANK_THREADS``. The limit is set for the call and restored after it
    (threadpoolctl), so the caller's own NumPy keeps its setting.

    Scores whose heavy work is NumPy/SciPy linear algebra rather than the compiled core need it: on a busy machine
    OpenBLAS's spinning workers made such calls 10-70x slower than on one thread (BENCHMARKS.md, "Under load").
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        import threadpoolctl

        # Found once (the libraries NumPy and SciPy loaded): limiting through it costs ~10 us a call, where
        # threadpool_limits, which looks the libraries up again each time, costs ~0.7 ms, a cost that small
        # calls (LEEP, NCE: milliseconds) would show.
        _CONTROLLER = threadpoolctl.ThreadpoolController()
    return _CONTROLLER.limit(limits=int(_core.call_threads(int(n_samples), int(n_features))), user_api="blas")


_CONTROLLER: Any = None


_Function = TypeVar("_Function", bound=Callable[..., Any])


def follows_thread_policy(function: _Function) -> _Function:
    """Decorator: run ``function(features, ...)`` inside :func:`blas_on_policy` sized by its first argument's shape
    (N x D; any other shape, or none, runs it as it is)."""

    @functools.wraps(function)
    def on_policy(features: Any, *args: Any, **kwargs: Any) -> Any:
        shape: tuple[int, ...] | None = getattr(features, "shape", None)
        if shape is None:
            try:
                shape = tuple(np.shape(features))
            except Exception:  # not array-like: the function's own validation says why
                shape = ()
        if len(shape) != 2:
            return function(features, *args, **kwargs)
        with blas_on_policy(shape[0], shape[1]):
            return function(features, *args, **kwargs)

    return cast(_Function, on_policy)
