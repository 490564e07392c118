"""Type stub of ``pedrank._core``, the compiled kernels (C++17/Eigen, cpp/bindings.cpp).

Features ``X`` are 2-D float32 or float64 NumPy arrays (any strides); ``labels`` are 1-D int64 arrays of
``0..n_classes-1``, one per row of ``X``. Results are float64. Bad input raises
:class:`pedrank.PedrankValueError`. tests/test_typing.py checks that this stub names every function and
attribute of the module with the binding's parameter names.
"""

from typing import SupportsFloat, SupportsIndex, SupportsInt

import numpy as np
import numpy.typing as npt

_Int = SupportsInt | SupportsIndex
_Float = SupportsFloat | SupportsIndex
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]

# The constants that define the scores (cpp/constants.hpp), read by pedrank/_constants.py.
LOGME_MAX_ITERATIONS: int
LOGME_TOLERANCE: float
LOGME_EPSILON: float
LOGME_RANK_TOLERANCE: float
SFDA_POWER_ROUNDS: int
SFDA_MIN_SHRINKAGE: float
SFDA_ZERO_SCATTER_FACTOR: float
GBC_VARIANCE_FLOOR: float
PED_SCALE_FLOOR: float

def class_means(X: object, labels: object, n_classes: _Int) -> tuple[_I64, _F64]:
    """(counts int64[C], means float64[C, D]) per class; an empty class has mean 0."""

def covariance(X: object) -> tuple[_F64, _F64]:
    """(mean float64[D], cov float64[D, D]): population covariance (divides by N), centred first."""

def logme(
    X: object, labels: object, n_classes: _Int, targets: object = None, exact_dimension: bool = False
) -> tuple[_F64, _F64, _F64, _F64]:
    """(evidence[K], alpha[K], beta[K], weights[D, K]). targets None: classification (K = n_classes)."""

def sfda_fit(X: object, labels: object, n_classes: _Int, shrinkage: _Float = ...) -> tuple[_F64, _F64, float]:
    """(coef[C, D], intercept[C], shrinkage): shrinkage LDA; shrinkage NaN = the authors' adaptive rule."""

def sfda_score(X: object, labels: object, n_classes: _Int, shrinkage: _Float = ...) -> tuple[float, float]:
    """(score, shrinkage): SFDA with ConfMix."""

def gbc(
    X: object,
    labels: object,
    n_classes: _Int,
    n_components: _Int = 64,
    diagonal: bool = False,
    exact_logdet: bool = False,
) -> float:
    """GBC score (<= 0, higher is better)."""

def mean_std(X: object) -> tuple[_F64, _F64]:
    """(mean float64[D], std float64[D]): column means and population standard deviations, one pass."""

def class_moments(X: object, labels: object, n_classes: _Int) -> tuple[_I64, _F64, _F64]:
    """(counts int64[C], means float64[C, D], variances float64[C, D]), one pass over X."""

def ped_pair_forces(
    means: object, radii: object, radius: _Float = 0.6, elastic: _Float = 1.0, time_step: _Float = 0.1
) -> tuple[_F64, float, int]:
    """(displacement[C, D], energy, n_coincident) of classes with rescaled means[C, D] and radii[C]."""

def ped_forces(
    X: object,
    labels: object,
    n_classes: _Int,
    center: object,
    scale: object,
    radius: _Float = 0.6,
    elastic: _Float = 1.0,
    time_step: _Float = 0.1,
) -> tuple[_F64, float, int]:
    """(displacement[C, D] (rescaled units), energy, n_coincident) of one PED step; one pass over X."""

def ped_apply(X: object, labels: object, displacement: object, scale: object, out: object) -> np.ndarray:
    """Writes X + displacement[labels] * scale into out (may be X itself) and returns out."""

def ped_step(
    X: object,
    labels: object,
    n_classes: _Int,
    center: object,
    scale: object,
    radius: _Float = 0.6,
    elastic: _Float = 1.0,
    time_step: _Float = 0.1,
) -> tuple[np.ndarray, _F64, float, int]:
    """(moved X (new array, X's dtype), displacement[C, D], energy, n_coincident)."""

def set_blas(enabled: bool) -> None:
    """Use SciPy's OpenBLAS/LAPACK (default) or Eigen only."""

def set_threads(n: _Int) -> None:
    """Threads every kernel call uses (0 = the policy; default PEDRANK_THREADS, else 0)."""

def call_threads(n: _Int, d: _Int) -> int:
    """The threads a call on n x d features would use now (the policy, for tests and show_config)."""

def set_eig_threads(n: _Int) -> None:
    """OpenBLAS threads for the symmetric eigensolvers (0 = OpenBLAS's own count)."""

def blas_backend() -> str:
    """'scipy-openblas' when the kernels use SciPy's BLAS now, else 'eigen'."""

def blas_status() -> str:
    """'scipy-openblas', or why the kernels fall back to Eigen."""

def openblas_threads_local() -> bool:
    """Whether OpenBLAS's per-thread thread count was found."""

def _load_linalg(blas_capi: object, lapack_capi: object) -> str:
    """Borrow BLAS/LAPACK from two __pyx_capi__-like dicts of capsules; returns the status. For tests."""

def num_threads() -> int:
    """OpenMP threads the kernels use."""
