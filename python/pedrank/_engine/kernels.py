"""The kernel contract, stated once, and the choice of the kernel set that runs a score.

Two kernel sets implement :class:`KernelSet`: the compiled core ``pedrank._core`` (NumPy input) and the
array-API kernels on torch (:func:`torch_kernels`, for tensors), so each public score is written once against
this contract. Kernels that a score adds later are declared with the score (:mod:`pedrank.scores.registry`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pedrank._engine.validation import MissingDependencyError, PedrankValueError, is_torch_tensor

__all__ = ["BACKENDS", "KERNEL_NAMES", "KernelSet", "SHARED_KERNEL_ARGUMENTS", "select_kernels", "torch_kernels"]

#: Values of every score's ``backend=`` option (a kernel set object is accepted too).
BACKENDS = ("auto", "numpy", "torch")


@runtime_checkable
class KernelSet(Protocol):
    """What the compiled core and the torch kernels both provide (semantics: ``cpp/bindings.cpp``).

    Arrays are NumPy arrays for the core and tensors on the features' device for torch; labels are int64
    class indices 0..C-1; results that are small (per class, per target) come back as float64 NumPy arrays.
    """

    def class_means(self, X: Any, labels: Any, n_classes: int) -> tuple[Any, Any]:
        """(counts (C,), means (C, D)) per class."""

    def class_moments(self, X: Any, labels: Any, n_classes: int) -> tuple[Any, Any, Any]:
        """(counts (C,), means (C, D), population variances (C, D)), one pass."""

    def covariance(self, X: Any) -> tuple[Any, Any]:
        """(mean (D,), population covariance (D, D))."""

    def mean_std(self, X: Any) -> tuple[Any, Any]:
        """(mean (D,), population std (D,)), one pass."""

    def logme(self, X: Any, labels: Any, n_classes: int, targets: Any = None,
              exact_dimension: bool = False) -> tuple[Any, Any, Any, Any]:
        """(evidence (K,), alpha (K,), beta (K,), weights (D, K))."""

    def sfda_fit(self, X: Any, labels: Any, n_classes: int, shrinkage: float = float("nan")) -> tuple[Any, Any, float]:
        """(coef (C, D), intercept (C,), shrinkage) of the shrinkage LDA."""

    def sfda_score(self, X: Any, labels: Any, n_classes: int, shrinkage: float = float("nan")) -> tuple[float, float]:
        """(score, shrinkage) of SFDA with ConfMix."""

    def gbc(self, X: Any, labels: Any, n_classes: int, n_components: int = 64, diagonal: bool = False,
            exact_logdet: bool = False) -> float:
        """GBC score."""

    def ped_pair_forces(self, means: Any, radii: Any, radius: float = 0.6, elastic: float = 1.0,
                        time_step: float = 0.1) -> tuple[Any, float, int]:
        """(displacement (C, D), energy, coincident pairs) from class means and radii alone."""

    def ped_forces(self, X: Any, labels: Any, n_classes: int, center: Any, scale: Any, radius: float = 0.6,
                   elastic: float = 1.0, time_step: float = 0.1) -> tuple[Any, float, int]:
        """(displacement (C, D), energy, coincident pairs) of one PED step, one pass over X."""

    def ped_apply(self, X: Any, labels: Any, displacement: Any, scale: Any, out: Any) -> Any:
        """Write X + displacement[labels] * scale into out; returns out."""

    def ped_step(self, X: Any, labels: Any, n_classes: int, center: Any, scale: Any, radius: float = 0.6,
                 elastic: float = 1.0, time_step: float = 0.1) -> tuple[Any, Any, float, int]:
        """(moved X, displacement, energy, coincident pairs): ped_forces then ped_apply into a new array."""


#: The contract's method names, in declaration order.
KERNEL_NAMES: tuple[str, ...] = tuple(
    name for name, value in vars(KernelSet).items() if callable(value) and not name.startswith("_")
)

#: Argument kinds of the shared kernels for the fuzz harness (see pedrank.scores.registry.ARGUMENT_KINDS); the
#: kernels a score owns declare theirs in the score's registry entry.
SHARED_KERNEL_ARGUMENTS: dict[str, tuple] = {
    "class_means": (("X",), ("labels",), ("n_classes",)),
    "class_moments": (("X",), ("labels",), ("n_classes",)),
    "covariance": (("X",),),
    "mean_std": (("X",),),
    "ped_pair_forces": (("class_matrix", "means"), ("class_vector", "radii", 1.0), ("real", "radius", 0.6),
                        ("real", "elastic", 1.0), ("real", "time_step", 0.1)),
    "ped_forces": (("X",), ("labels",), ("n_classes",), ("vector", "center", 0.0), ("vector", "scale", 1.0),
                   ("real", "radius", 0.6), ("real", "elastic", 1.0), ("real", "time_step", 0.1)),
    "ped_apply": (("X",), ("labels",), ("class_matrix", "displacement"), ("vector", "scale", 1.0), ("out",)),
    "ped_step": (("X",), ("labels",), ("n_classes",), ("vector", "center", 0.0), ("vector", "scale", 1.0),
                 ("real", "radius", 0.6), ("real", "elastic", 1.0), ("real", "time_step", 0.1)),
}


def select_kernels(features: Any, backend: Any = "auto") -> Any:
    """Return the kernel set for ``features`` under the ``backend`` choice.

    "auto" picks torch for a torch tensor (on whatever device it lives) and the
    compiled core for anything else; "numpy" and "torch" force one. A kernel set
    object is used as it is: ``backend=pedrank._engine.backend.torch_kernels("float32")``
    computes in float32 on torch (faster on GPUs; scores within about 1e-4 of
    float64, see :mod:`pedrank.backend`).
    """
    if not isinstance(backend, str):
        if not all(hasattr(backend, name) for name in KERNEL_NAMES):
            raise PedrankValueError(
                f"backend: expected one of {BACKENDS} or a kernel set with methods {KERNEL_NAMES}, "
                f"found {backend!r}"
            )
        return backend
    if backend not in BACKENDS:
        raise PedrankValueError(f"backend: expected one of {BACKENDS}, found {backend!r}")
    use_torch = backend == "torch" or (backend == "auto" and is_torch_tensor(features))
    if use_torch:
        return torch_kernels()
    if is_torch_tensor(features):
        raise PedrankValueError(
            "backend: 'numpy' was asked for but the features are a torch tensor; "
            "pass features.cpu().numpy() or use backend='auto'"
        )
    from pedrank import _core

    return _core


_TORCH_KERNELS: dict = {}


def torch_kernels(dtype: str = "float64") -> Any:
    """The kernel contract on torch, on the device of each call's features (CPU for non-tensors).

    This is what :func:`select_kernels` hands out for torch input; ``torch_kernels("float32")`` computes in
    float32. Raises ImportError with an install hint when torch is missing.
    """
    try:
        import torch  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "the torch backend needs torch: pip install 'pedrank[torch]' (torch==2.13.0)"
        ) from exc
    from pedrank._engine.array_kernels import TorchKernels, check_dtype

    dtype = check_dtype(dtype)
    if dtype not in _TORCH_KERNELS:
        _TORCH_KERNELS[dtype] = TorchKernels(dtype)
    return _TORCH_KERNELS[dtype]
