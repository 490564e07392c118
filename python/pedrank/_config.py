"""``pedrank.show_config()``: what this installation runs on."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys

from . import _core


def config() -> dict:
    """The build and run-time facts :func:`show_config` prints, as a dict of str to str/int/bool."""
    import numpy
    import scipy

    from . import __version__

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
    from ._validation import check_int

    _core.set_threads(check_int(n, name="n", minimum=0))
