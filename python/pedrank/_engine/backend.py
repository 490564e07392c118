"""Array backends: one small namespace over NumPy and torch (in the spirit of POT's ``ot.backend``).

Every score that reduces to linear algebra is written once, in :mod:`pedrank._engine.array_kernels`, against the
methods of :class:`Backend`; :class:`NumpyBackend` and :class:`TorchBackend` implement them. Torch is an
optional dependency: nothing here imports it until a :class:`TorchBackend` is built, and tensors are
recognised by the module their type comes from, so ``import pedrank`` never imports torch.

Public entry points
-------------------
get_backend(features, backend="auto")
    The array namespace that suits ``features``.
torch_kernels(dtype="float64")
    The kernel contract on torch; ``pedrank._engine.kernels.select_kernels`` hands it out for tensors, and it can be
    passed as ``backend=`` to any score (e.g. ``torch_kernels("float32")``).
is_torch_tensor(x), to_numpy(x)
    Helpers that work whether or not torch is installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pedrank._engine.kernels import BACKENDS, torch_kernels
from pedrank._engine.validation import PedrankValueError, is_torch_tensor, to_numpy

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "NumpyBackend",
    "TorchBackend",
    "get_backend",
    "is_torch_tensor",
    "to_numpy",
    "torch_kernels",
]

BACKEND_NAMES = BACKENDS




class Backend:
    """The array operations the kernels use. Subclasses bind them to one library (and device).

    Arrays passed to these methods are native to the backend (``numpy.ndarray`` or ``torch.Tensor``), except
    in :meth:`asarray` and :meth:`asindex`, which accept anything array-like.
    """

    name = "base"
    float64: Any = None
    float32: Any = None
    int64: Any = None

    def asarray(self, x, dtype=None):
        """``x`` as a native array on this backend's device, cast to ``dtype`` when given. May share memory."""
        raise NotImplementedError

    def asindex(self, x):
        """``x`` (integer labels) as a native int64 array on this backend's device."""
        raise NotImplementedError

    def to_numpy(self, x) -> np.ndarray:
        raise NotImplementedError

    def item(self, x) -> float:
        """A 0-d native array as a Python float."""
        return float(self.to_numpy(x))

    def astype(self, x, dtype):
        """``x`` cast to ``dtype`` (a dtype of this backend); no copy when it already has it."""
        raise NotImplementedError

    def concatenate(self, arrays, axis=0):
        raise NotImplementedError

    def einsum(self, subscripts, *operands):
        raise NotImplementedError

    def zeros(self, shape, dtype=None):
        raise NotImplementedError

    def eye(self, n, dtype=None):
        raise NotImplementedError

    def arange(self, n):
        raise NotImplementedError

    # elementwise and reductions
    def exp(self, x):
        raise NotImplementedError

    def log(self, x):
        raise NotImplementedError

    def sqrt(self, x):
        raise NotImplementedError

    def abs(self, x):
        raise NotImplementedError

    def maximum(self, x, y):
        raise NotImplementedError

    def minimum(self, x, y):
        raise NotImplementedError

    def where(self, cond, x, y):
        raise NotImplementedError

    def sum(self, x, axis=None, keepdims=False):
        raise NotImplementedError

    def mean(self, x, axis=None, keepdims=False):
        raise NotImplementedError

    def count_nonzero(self, x) -> int:
        raise NotImplementedError

    def logsumexp(self, x, axis):
        raise NotImplementedError

    def softmax(self, x, axis):
        raise NotImplementedError

    # linear algebra
    def matmul(self, a, b):
        return a @ b

    def eigh(self, a):
        """Eigenvalues (ascending) and eigenvectors (columns) of the symmetric matrix ``a``."""
        raise NotImplementedError

    def cholesky(self, a):
        """Lower Cholesky factor of the SPD matrix ``a``; raises :class:`numpy.linalg.LinAlgError` if not PD."""
        raise NotImplementedError

    def cholesky_solve(self, b, factor):
        """Solve ``(L L^T) x = b`` given the lower factor ``L`` from :meth:`cholesky`."""
        raise NotImplementedError

    def solve(self, a, b):
        raise NotImplementedError

    # grouping
    def bincount(self, labels, n):
        raise NotImplementedError

    def index_add(self, labels, values, n):
        """Row sums of ``values`` (N x ...) grouped by ``labels``: an (n x ...) array, row c = sum over label c."""
        raise NotImplementedError

    def take_along_rows(self, x, labels):
        """``x[i, labels[i]]`` for every row i."""
        raise NotImplementedError

    def copy_into(self, out, values):
        """Write ``values`` (same shape) into the native array ``out``, casting to ``out``'s dtype."""
        raise NotImplementedError

    def is_writable(self, x) -> bool:
        """Whether the native array ``x`` may be written to."""
        return True

    def synchronize(self):
        """Wait for queued device work (timing helpers); a no-op on the host."""

    def __repr__(self):
        return f"{type(self).__name__}()"


class NumpyBackend(Backend):
    """NumPy / SciPy on the host."""

    name = "numpy"
    float64 = np.float64
    float32 = np.float32
    int64 = np.int64

    def asarray(self, x, dtype=None):
        if is_torch_tensor(x):
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=dtype)

    def asindex(self, x):
        return np.asarray(to_numpy(x), dtype=np.int64)

    def to_numpy(self, x):
        return np.asarray(x)

    def astype(self, x, dtype):
        return x.astype(dtype, copy=False)

    def concatenate(self, arrays, axis=0):
        return np.concatenate(arrays, axis=axis)

    def einsum(self, subscripts, *operands):
        return np.einsum(subscripts, *operands, optimize=True)

    def zeros(self, shape, dtype=None):
        return np.zeros(shape, dtype=dtype or np.float64)

    def eye(self, n, dtype=None):
        return np.eye(n, dtype=dtype or np.float64)

    def arange(self, n):
        return np.arange(n)

    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        return np.log(x)

    def sqrt(self, x):
        return np.sqrt(x)

    def abs(self, x):
        return np.abs(x)

    def maximum(self, x, y):
        return np.maximum(x, y)

    def minimum(self, x, y):
        return np.minimum(x, y)

    def where(self, cond, x, y):
        return np.where(cond, x, y)

    def sum(self, x, axis=None, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return np.mean(x, axis=axis, keepdims=keepdims)

    def count_nonzero(self, x):
        return int(np.count_nonzero(x))

    def logsumexp(self, x, axis):
        from scipy.special import logsumexp

        return logsumexp(x, axis=axis)

    def softmax(self, x, axis):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        e = np.exp(shifted)
        return e / np.sum(e, axis=axis, keepdims=True)

    def eigh(self, a):
        return np.linalg.eigh(a)

    def cholesky(self, a):
        return np.linalg.cholesky(a)

    def cholesky_solve(self, b, factor):
        from scipy.linalg import cho_solve

        return cho_solve((factor, True), b, check_finite=False)

    def solve(self, a, b):
        return np.linalg.solve(a, b)

    def bincount(self, labels, n):
        return np.bincount(labels, minlength=n).astype(np.int64)

    def index_add(self, labels, values, n):
        # A stable sort plus add.reduceat is O(N*D); np.add.at would be an order of magnitude slower.
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        starts = np.searchsorted(sorted_labels, np.arange(n))
        present = np.bincount(labels, minlength=n) > 0
        out = np.zeros((n,) + values.shape[1:], dtype=values.dtype)
        if labels.shape[0] == 0:
            return out
        sums = np.add.reduceat(values[order], np.minimum(starts, labels.shape[0] - 1), axis=0)
        out[present] = sums[present]
        return out

    def take_along_rows(self, x, labels):
        return x[np.arange(x.shape[0]), labels]

    def copy_into(self, out, values):
        np.copyto(out, values, casting="unsafe")

    def is_writable(self, x):
        return bool(x.flags.writeable)


class TorchBackend(Backend):
    """torch on one device (``"cpu"``, ``"cuda:0"``, ...). Torch is imported when the backend is built."""

    name = "torch"

    def __init__(self, device=None):
        import torch

        self._torch = torch
        self.device = torch.device(device if device is not None else "cpu")
        self.float64 = torch.float64
        self.float32 = torch.float32
        self.int64 = torch.int64

    def __repr__(self):
        return f"TorchBackend(device={str(self.device)!r})"

    def _dtype(self, dtype):
        if dtype is None or isinstance(dtype, self._torch.dtype):
            return dtype
        return {np.dtype(np.float64): self._torch.float64, np.dtype(np.float32): self._torch.float32,
                np.dtype(np.int64): self._torch.int64}[np.dtype(dtype)]

    def asarray(self, x, dtype=None):
        torch = self._torch
        dtype = self._dtype(dtype)
        if isinstance(x, torch.Tensor):
            return x.detach().to(device=self.device, dtype=dtype)
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def asindex(self, x):
        return self.asarray(x, dtype=self._torch.int64)

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def item(self, x):
        return float(x.item())

    def astype(self, x, dtype):
        return x.to(self._dtype(dtype))

    def concatenate(self, arrays, axis=0):
        return self._torch.cat(list(arrays), dim=axis)

    def einsum(self, subscripts, *operands):
        return self._torch.einsum(subscripts, *operands)

    def zeros(self, shape, dtype=None):
        return self._torch.zeros(shape, dtype=self._dtype(dtype) or self._torch.float64, device=self.device)

    def eye(self, n, dtype=None):
        return self._torch.eye(n, dtype=self._dtype(dtype) or self._torch.float64, device=self.device)

    def arange(self, n):
        return self._torch.arange(n, device=self.device)

    def exp(self, x):
        return self._torch.exp(x)

    def log(self, x):
        return self._torch.log(x)

    def sqrt(self, x):
        return self._torch.sqrt(x)

    def abs(self, x):
        return self._torch.abs(x)

    def _like(self, ref, y):
        torch = self._torch
        if isinstance(y, torch.Tensor):
            return y
        dtype = ref.dtype if isinstance(ref, torch.Tensor) else torch.float64
        return torch.as_tensor(y, dtype=dtype, device=self.device)

    def maximum(self, x, y):
        return self._torch.maximum(x, self._like(x, y))

    def minimum(self, x, y):
        return self._torch.minimum(x, self._like(x, y))

    def where(self, cond, x, y):
        ref = x if isinstance(x, self._torch.Tensor) else y
        return self._torch.where(cond, self._like(ref, x), self._like(ref, y))

    def sum(self, x, axis=None, keepdims=False):
        if axis is None:
            return self._torch.sum(x)
        return self._torch.sum(x, dim=axis, keepdim=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        if axis is None:
            return self._torch.mean(x)
        return self._torch.mean(x, dim=axis, keepdim=keepdims)

    def count_nonzero(self, x):
        return int(self._torch.count_nonzero(x).item())

    def logsumexp(self, x, axis):
        return self._torch.logsumexp(x, dim=axis)

    def softmax(self, x, axis):
        return self._torch.softmax(x, dim=axis)

    def eigh(self, a):
        return self._torch.linalg.eigh(a)

    def cholesky(self, a):
        factor, info = self._torch.linalg.cholesky_ex(a)
        if int(info.item()) != 0:
            raise np.linalg.LinAlgError("matrix is not positive definite")
        return factor

    def cholesky_solve(self, b, factor):
        return self._torch.cholesky_solve(b, factor, upper=False)

    def solve(self, a, b):
        return self._torch.linalg.solve(a, b)

    def bincount(self, labels, n):
        return self._torch.bincount(labels, minlength=n)

    def index_add(self, labels, values, n):
        out = self._torch.zeros((n,) + tuple(values.shape[1:]), dtype=values.dtype, device=values.device)
        return out.index_add_(0, labels, values)

    def take_along_rows(self, x, labels):
        return x.gather(1, labels.reshape(-1, 1)).reshape(-1)

    def copy_into(self, out, values):
        with self._torch.no_grad():
            out.copy_(values)

    def synchronize(self):
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)


def get_backend(features=None, backend="auto"):
    """The array backend for ``features``.

    Parameters
    ----------
    features : array-like or torch.Tensor, optional
        The features a score will run on; with ``backend="auto"`` a torch tensor selects
        :class:`TorchBackend` on the tensor's device, anything else :class:`NumpyBackend`.
    backend : {"auto", "numpy", "torch"} or Backend, default "auto"
        ``"numpy"`` / ``"torch"`` force one (``"torch"`` with non-tensor features runs on the CPU);
        a :class:`Backend` instance is returned unchanged.

    Returns
    -------
    Backend
    """
    if isinstance(backend, Backend):
        return backend
    if backend not in BACKEND_NAMES:
        raise PedrankValueError(f"backend must be one of {BACKEND_NAMES} or a Backend instance; got {backend!r}")
    tensor = is_torch_tensor(features)
    if backend == "numpy" or (backend == "auto" and not tensor):
        return NumpyBackend()
    return TorchBackend(features.device if tensor else "cpu")
