"""Size guard: estimate what a call will allocate and refuse it before it starts.

A 100,000 x 2048 float32 feature file is 800 MB; the reference PED on 397 classes
allocates a 397 x 397 x 2048 float64 tensor several times (2.6 GB each). Running out
of memory half-way kills the interpreter (or the machine); refusing up front with a
message that says how much is needed and how to get under it does not.

The estimates are upper-bound-ish sums of the large arrays each implementation holds
at its peak (every term is listed in :func:`estimate_bytes`); small vectors (length
C, D or K) are ignored. They are meant to be right within a factor of about 2, which
is what a guard needs.

``PEDRANK_MEMORY_LIMIT`` (bytes, e.g. ``2e9`` or ``2000000000``) overrides the memory
reported by the system: set it to cap pedrank below what the machine has, or to
trigger the guard in tests.
"""

from __future__ import annotations

import os

from pedrank._engine.validation import PedrankError, PedrankValueError

__all__ = [
    "InsufficientMemoryError",
    "MEMORY_LIMIT_ENV",
    "available_bytes",
    "check_memory",
    "estimate_bytes",
    "format_bytes",
    "guard",
    "nleep_bytes",
    "parc_bytes",
]

#: Environment variable (bytes) that overrides the available memory.
MEMORY_LIMIT_ENV = "PEDRANK_MEMORY_LIMIT"

#: Names :func:`estimate_bytes` knows.
METRICS = ("logme", "sfda", "gbc", "ped")
IMPLEMENTATIONS = ("core", "reference", "torch")

_F64 = 8


class InsufficientMemoryError(PedrankError, MemoryError):
    """A call would need more memory than is available; raised before allocating (a :class:`PedrankError` and a
    ``MemoryError``).

    Attributes
    ----------
    needed, available : int
        Bytes estimated and bytes available.
    """

    def __init__(self, message: str, *, needed: int, available: int):
        super().__init__(message)
        self.needed = needed
        self.available = available


def format_bytes(n_bytes: float) -> str:
    """Human-readable size: ``format_bytes(3 * 2**30) == '3.0 GiB'``."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _n_threads() -> int:
    """Threads the core may run (each holds its own D x D / C x D accumulator)."""
    for variable in ("OMP_NUM_THREADS",):
        value = os.environ.get(variable, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def estimate_bytes(
    metric: str,
    n_samples: int,
    n_features: int,
    n_classes: int,
    *,
    dtype_size: int,
    implementation: str = "core",
    n_components: int = 64,
    n_threads: int | None = None,
    output_dtype_size: int | None = None,
) -> int:
    """Peak bytes a score allocates besides the caller's features (an estimate).

    N = n_samples, D = n_features, C = n_classes, s = dtype_size (bytes per input
    value after validation: 4 for float32 and float16 input, 8 for float64 and
    integers), T = threads of the core, f = 8 (float64), k = min(N, D),
    p = min(n_components, N, D).

    ``implementation="core"`` (``pedrank.logme`` etc. on NumPy arrays; no N x D copy:
    the kernels read the caller's array in row blocks of at most 4096 x D float64
    per thread):

    * logme: N > D: the Gram X^T X, one D x D accumulator per thread plus the sum,
      the eigen-decomposition (vectors + workspace) and V: ``(T + 4) D^2 f``;
      N <= D: the same on the N x N row Gram ``(T + 4) N^2 f``; plus the per-target
      projections and weights ``3 (D + N) C f``.
    * sfda: within-class scatter per thread plus the sum, its Cholesky factor and
      the LDLT fall-back ``(T + 3) D^2 f``; class sums per thread and the C x D
      means, coefficients and right-hand sides ``(T + 6) C D f``.
    * gbc: covariance per thread, sum, eigen-decomposition ``(T + 4) D^2 f``; the
      N x p projection ``N p f``; class statistics ``2 C p f``.
    * ped (the whole loop): the moved features ``N D o`` (o = output_dtype_size: 8 by
      default, the authors' float64; s with ``dtype="input"``; the features are read once
      for their class moments and written once); shifted class sums and squares per
      thread ``2 T C D f``; pivots, means, variances, rescaled means, summed and
      current displacement ``7 C D f``. Never C x C x D.

    ``implementation="reference"`` (``pedrank.reference``, NumPy, plain ports):

    * logme: the float64 copy ``N D f`` (made even for float64 input only when it
      is not float64), u and its temporary ``2 N k f``, the SVD of the D x D Gram
      (N > D: ``4 D^2 f``) or of X itself (N <= D: LAPACK's copy and vh,
      ``2 N D f + N^2 f``), the N x C indicator targets ``N C f``.
    * sfda: its private float64 copy of the features (ConfMix writes into it) and
      the centred copies ``2 N D f``; scatter, shrunk scatter, total, between,
      eigenvectors and the generalised eigensolver's workspace ``8 D^2 f``;
      probabilities ``3 N C f``; means and coefficients ``4 C D f``.
    * gbc: float64 copy and centred copy ``2 N D f``; covariance and eigenvectors
      ``4 D^2 f``; projection ``2 N p f``.
    * ped: the C x C x D pairwise differences, their squares, directions and
      weighted directions ``4 C^2 D f`` (the authors' layout); the float64 copy,
      rescaled, displaced and moved features ``5 N D f``.

    ``implementation="torch"`` (``pedrank.backend``, array-API kernels): as "core"
    with T = 1, plus the float64 working copy of the features ``N D f`` (for ped,
    also the shifted rows and their squares of the moments pass, ``2 N D f``).

    Parameters
    ----------
    metric : {"logme", "sfda", "gbc", "ped"}
    n_samples, n_features, n_classes : int
    dtype_size : int
        Bytes per value of the validated features (4 or 8).
    implementation : {"core", "reference", "torch"}, default "core"
    n_components : int, default 64
        GBC's PCA dimensions.
    n_threads : int or None
        Threads of the core; default ``OMP_NUM_THREADS`` or the usable CPUs.
    output_dtype_size : int or None
        Bytes per value of PED's moved features (core and torch); None means dtype_size.

    Returns
    -------
    int
        Estimated peak bytes.
    """
    if metric not in METRICS:
        raise PedrankValueError(f"metric: expected one of {METRICS}, found {metric!r}")
    if implementation not in IMPLEMENTATIONS:
        raise PedrankValueError(f"implementation: expected one of {IMPLEMENTATIONS}, found {implementation!r}")
    n, d, c, s = int(n_samples), int(n_features), int(n_classes), int(dtype_size)
    if min(n, d, c) < 0 or s <= 0:
        raise PedrankValueError(
            f"sizes: expected non-negative n_samples, n_features, n_classes and dtype_size > 0, "
            f"found ({n}, {d}, {c}, {s})"
        )
    f = _F64
    k = min(n, d)
    p = max(0, min(int(n_components), n, d))
    t = 1 if implementation == "torch" else (n_threads or _n_threads())

    if implementation == "reference":
        if metric == "logme":
            copy = n * d * f if s != f else 0
            factor = 4 * d * d * f if n > d else 2 * n * d * f + n * n * f
            return copy + 2 * n * k * f + factor + n * c * f
        if metric == "sfda":
            return 2 * n * d * f + 8 * d * d * f + 3 * n * c * f + 4 * c * d * f
        if metric == "gbc":
            return 2 * n * d * f + 4 * d * d * f + 2 * n * p * f
        return 4 * c * c * d * f + 5 * n * d * f  # ped

    if metric == "logme":
        gram_side = d if n > d else n
        total = (t + 4) * gram_side * gram_side * f + 3 * (d + n) * c * f
    elif metric == "sfda":
        total = (t + 3) * d * d * f + (t + 6) * c * d * f
    elif metric == "gbc":
        total = (t + 4) * d * d * f + n * p * f + 2 * c * p * f
    else:  # ped
        total = n * d * (s if output_dtype_size is None else int(output_dtype_size)) + (2 * t + 7) * c * d * f
    if implementation == "torch":
        total += (3 if metric == "ped" else 1) * n * d * f
    return int(total)


#: Peak bytes of PARC per (rows m)^2 float64 entries. The core (pedrank.parc, blocked since
#: issue 26): the authors' m x m label matrix of the default form, then the m (m - 1) / 2
#: sorted dissimilarities, a byte per pair and the minority groups' values. Peak RSS (VmHWM,
#: whole calls, C = 100, benchmarks/score_table.jsonl): 965 MB at m = 10,000, D = 1,024 and
#: 2,007 MB at m = 15,000, D = 2,048, i.e. 1.21 and 1.12 m^2 f in all; ``exact=True`` about
#: 0.6 m^2 f. 1.25 m^2 f plus the terms below bounds both (estimate / peak 1.39, 1.54).
#: The reference (4.14 and 9.6 by tracemalloc at m = 1,000-4,000): the n x n correlation,
#: the upper triangle, its ranks, the indicator, the label correlation and index arrays.
PARC_SQUARE_FACTOR = {"core": 1.25, "reference": 10.0}

#: The core's row block of pairwise correlations (32 MiB, pedrank.scores.parc) and its two
#: temporaries, never more than the m x m entries they cut: what dominates at small m
#: (tracemalloc: 3.0 m^2 f at m = 1,500, 2.4 at m = 3,000, both within this bound).
PARC_BLOCK_BYTES = 3 * (1 << 22) * _F64


def parc_bytes(n_rows: int, n_features: int, *, implementation: str = "core") -> int:
    """Peak bytes of PARC on ``n_rows`` (subsampled) rows: ``factor m^2 f`` for the
    pairwise values, the core's row block, and the float64 copy, the PCA's ``3 m D f``."""
    m, d = int(n_rows), int(n_features)
    block = min(PARC_BLOCK_BYTES, 3 * m * m * _F64) if implementation == "core" else 0
    return int(PARC_SQUARE_FACTOR[implementation] * m * m * _F64 + block + 3 * m * d * _F64)


def nleep_bytes(n_samples: int, n_features: int, n_mixture: int, reduced_dim: int | None = None) -> int:
    """Peak bytes of NLEEP (an estimate; both implementations run scikit-learn).

    ``reduced_dim=None`` counts the PCA stage only: the float64 copy, the centred copy
    and the thin SVD's U ``3 N D f`` plus ``min(N, D)^2 f``. With the PCA's output
    dimension k known, the mixture stage: the reduced features ``N k f``, the full
    covariances, precisions and their Cholesky factors ``4 K k^2 f``, responsibilities
    and log-probabilities ``4 N K f`` (K = ``n_mixture`` components).
    """
    n, d, k_mix = int(n_samples), int(n_features), int(n_mixture)
    if reduced_dim is None:
        return int(3 * n * d * _F64 + min(n, d) ** 2 * _F64)
    k = int(reduced_dim)
    return int(n * k * _F64 + 4 * k_mix * k * k * _F64 + 4 * n * k_mix * _F64)


def available_bytes() -> int | None:
    """Bytes the process may still allocate, or None when it cannot be told.

    ``PEDRANK_MEMORY_LIMIT`` wins when set; otherwise ``MemAvailable`` of
    ``/proc/meminfo`` (Linux: free memory plus reclaimable caches), otherwise the
    free physical pages from ``os.sysconf``.
    """
    override = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if override:
        try:
            value = float(override)
        except ValueError:
            raise PedrankValueError(
                f"{MEMORY_LIMIT_ENV}: expected a number of bytes (e.g. 2e9), found {override!r}"
            ) from None
        if not value >= 0:
            raise PedrankValueError(f"{MEMORY_LIMIT_ENV}: expected a number of bytes >= 0, found {override!r}")
        return int(value)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(needed: int, *, what: str, advice: str) -> None:
    """Raise :class:`InsufficientMemoryError` when ``needed`` bytes exceed what is available.

    Parameters
    ----------
    needed : int
        Estimated bytes (see :func:`estimate_bytes`).
    what : str
        The call, e.g. ``"pedrank.reference.ped on 50000 x 2048 features, 397 classes"``.
    advice : str
        How to need less, appended to the message.

    Nothing is checked when the available memory cannot be determined.
    """
    available = available_bytes()
    if available is None or needed <= available:
        return
    source = f"{MEMORY_LIMIT_ENV}" if os.environ.get(MEMORY_LIMIT_ENV, "").strip() else "available memory"
    raise InsufficientMemoryError(
        f"{what} needs about {format_bytes(needed)} but only {format_bytes(available)} is available "
        f"({source}). To reduce it: {advice}",
        needed=int(needed),
        available=int(available),
    )


_ADVICE = {
    "logme": "project the features to fewer dimensions first (e.g. PCA to 256-512; memory grows with "
    "min(N, D)^2), or score a random subsample of the samples",
    "sfda": "project the features to fewer dimensions first (e.g. PCA to 256-512; memory grows with D^2), "
    "or merge rare classes",
    "gbc": "project the features to fewer dimensions first (e.g. PCA to 256-512; memory grows with D^2)",
    "ped": "pass float32 features with dtype='input' (the moved copy then keeps float32), score a random "
    "subsample of the samples, or project the features with PCA first",
}


def guard(
    metric: str,
    features,
    n_classes: int,
    *,
    implementation: str | None = None,
    backend: str = "auto",
    n_components: int = 64,
    output_dtype_size: int | None = None,
) -> None:
    """Check the memory of ``metric`` on validated ``features`` before running it.

    Parameters
    ----------
    metric : {"logme", "sfda", "gbc", "ped"}
    features : ndarray or torch.Tensor of shape (n_samples, n_features)
        Validated features (after :func:`pedrank._engine.validation.check_features`).
    n_classes : int
        Classes, or regression targets for LogME.
    implementation : {"core", "reference", "torch"} or None
        None: "torch" for a tensor or ``backend="torch"``, else "core".
    backend : str
        The public functions' ``backend`` option.
    n_components : int
        GBC's PCA dimensions.
    output_dtype_size : int or None
        Bytes per value of PED's moved features; None: the features' own.

    Tensors on an accelerator are not checked (host memory says nothing about them).

    Raises
    ------
    InsufficientMemoryError
        With the estimate, the available memory and what to do about it.
    """
    from pedrank._engine.validation import is_torch_tensor

    if is_torch_tensor(features):
        if getattr(features.device, "type", "cpu") != "cpu":
            return
        implementation = implementation or "torch"
    elif implementation is None:
        implementation = "torch" if backend == "torch" else "core"
    n_samples, n_features = (int(size) for size in features.shape)
    itemsize = getattr(getattr(features, "dtype", None), "itemsize", None)
    if itemsize is None:  # torch dtypes
        itemsize = getattr(features, "element_size", lambda: 8)()
    needed = estimate_bytes(
        metric,
        n_samples,
        n_features,
        n_classes,
        dtype_size=int(itemsize),
        implementation=implementation,
        n_components=n_components,
        output_dtype_size=output_dtype_size,
    )
    advice = _ADVICE[metric]
    if implementation == "reference" and metric == "ped":
        advice = "use pedrank.ped (O(C*D) memory) instead of the reference, or " + advice
    elif implementation == "reference":
        advice = f"use pedrank.{metric} (the compiled core needs far less) instead of the reference, or " + advice
    check_memory(
        needed,
        what=(
            f"{metric} ({implementation}) on {n_samples} x {n_features} features "
            f"with {n_classes} classes"
        ),
        advice=advice,
    )


def memory_estimator(metric: str):
    """The registry's ``memory`` callable of a score that :func:`estimate_bytes` models (logme, sfda, gbc)."""

    def memory(n_samples, n_features, n_classes, *, dtype_size, implementation="core"):
        return estimate_bytes(metric, n_samples, n_features, n_classes, dtype_size=dtype_size,
                              implementation=implementation)

    return memory
