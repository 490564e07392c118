"""Choosing the kernels that run a score: the compiled core for NumPy input, the
array-API kernels (torch) for tensors. Every kernel set has the same signatures
(see ``cpp/bindings.cpp``), so the public functions are written once."""

from __future__ import annotations

from typing import Any

from ._validation import PedrankValueError, is_torch_tensor

BACKENDS = ("auto", "numpy", "torch")
KERNEL_NAMES = (
    "class_means",
    "class_moments",
    "covariance",
    "mean_std",
    "logme",
    "sfda_fit",
    "sfda_score",
    "gbc",
    "ped_pair_forces",
    "ped_forces",
    "ped_apply",
)


def select_kernels(features: Any, backend: str = "auto"):
    """Return the kernel set for ``features`` under the ``backend`` choice.

    "auto" picks torch for a torch tensor (on whatever device it lives) and the
    compiled core for anything else; "numpy" and "torch" force one. A kernel set
    object is used as it is: ``backend=pedrank.backend.torch_kernels("float32")``
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
        from .backend import torch_kernels

        return torch_kernels()
    if is_torch_tensor(features):
        raise PedrankValueError(
            "backend: 'numpy' was asked for but the features are a torch tensor; "
            "pass features.cpu().numpy() or use backend='auto'"
        )
    from . import _core

    return _core
