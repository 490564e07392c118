"""The size guard: estimates, available memory, and the refusal before allocating."""

from __future__ import annotations

import numpy as np
import pytest

import pedrank
import pedrank.reference as reference
from conftest import make_problem
from pedrank._engine.memory import (
    MEMORY_LIMIT_ENV,
    InsufficientMemoryError,
    available_bytes,
    check_memory,
    estimate_bytes,
    format_bytes,
    guard,
)

GiB = 2**30


def test_reference_ped_counts_the_c_by_c_by_d_tensors():
    # 397 classes, 2048 features: one C x C x D float64 tensor is 2.4 GiB; the reference holds four.
    estimate = estimate_bytes("ped", 50_000, 2048, 397, dtype_size=4, implementation="reference")
    assert estimate >= 4 * 397 * 397 * 2048 * 8
    core = estimate_bytes("ped", 50_000, 2048, 397, dtype_size=4, implementation="core", n_threads=2)
    assert core < estimate / 5  # O(N D + C D), no C x C x D
    assert core >= 50_000 * 2048 * 4  # the moved features


@pytest.mark.parametrize("metric", ["logme", "sfda", "gbc", "ped"])
@pytest.mark.parametrize("implementation", ["core", "reference", "torch"])
def test_estimates_grow_with_every_size(metric, implementation):
    base = dict(n_samples=1000, n_features=300, n_classes=10)
    start = estimate_bytes(metric, **base, dtype_size=8, implementation=implementation, n_threads=2)
    assert start > 0
    for size in ("n_samples", "n_features"):
        bigger = dict(base, **{size: base[size] * 4})
        assert estimate_bytes(metric, **bigger, dtype_size=8, implementation=implementation, n_threads=2) >= start


def test_gram_side_follows_the_smaller_dimension_for_logme():
    wide = estimate_bytes("logme", 100, 100_000, 2, dtype_size=8, n_threads=1)
    assert wide < 100_000**2 * 8  # an N x N Gram when N <= D, never D x D
    assert estimate_bytes("logme", 100_000, 100, 2, dtype_size=8, n_threads=1) < 100_000**2 * 8


def test_estimate_rejects_unknown_names_and_negative_sizes():
    with pytest.raises(ValueError, match="metric"):
        estimate_bytes("leep", 10, 10, 2, dtype_size=8)
    with pytest.raises(ValueError, match="implementation"):
        estimate_bytes("logme", 10, 10, 2, dtype_size=8, implementation="gpu")
    with pytest.raises(ValueError, match="sizes"):
        estimate_bytes("logme", -1, 10, 2, dtype_size=8)


def test_available_bytes_reads_the_system_and_the_override(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    system = available_bytes()
    assert system is None or system > 0
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "123456")
    assert available_bytes() == 123456
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "2e9")
    assert available_bytes() == 2_000_000_000
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=MEMORY_LIMIT_ENV):
        available_bytes()


def test_check_memory_message_says_needed_available_and_advice(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(GiB))
    check_memory(GiB // 2, what="small", advice="none")  # fits: nothing raised
    with pytest.raises(InsufficientMemoryError, match="pedrank.reference.ped on 50000 x 2048 needs about") as error:
        check_memory(3 * GiB, what="pedrank.reference.ped on 50000 x 2048", advice="use PCA first")
    assert isinstance(error.value, MemoryError)
    message = str(error.value)
    assert "pedrank.reference.ped on 50000 x 2048" in message
    assert "3.0 GiB" in message and "1.0 GiB" in message and "use PCA first" in message
    assert error.value.needed == 3 * GiB and error.value.available == GiB


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 2**40) == "5.0 TiB"


def test_guard_refuses_the_reference_ped_but_not_the_core_at_the_same_limit(monkeypatch):
    features = np.zeros((2000, 512), dtype=np.float32)
    n_classes = 300
    core = estimate_bytes("ped", 2000, 512, n_classes, dtype_size=4)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(2 * core))
    guard("ped", features, n_classes)  # the core fits
    with pytest.raises(InsufficientMemoryError, match=r"use pedrank\.ped \(O\(C\*D\) memory\)"):
        guard("ped", features, n_classes, implementation="reference")


# The public functions and the reference call the guard after validation and before the
# kernels run (see python/pedrank/_engine/memory.py for what each estimate counts).


@pytest.mark.parametrize("library", [pedrank, reference], ids=["public", "reference"])
@pytest.mark.parametrize(
    "call",
    [
        lambda lib, x, y: lib.logme(x, y),
        lambda lib, x, y: lib.sfda(x, y),
        lambda lib, x, y: lib.gbc(x, y),
        lambda lib, x, y: lib.ped(x, y),
        lambda lib, x, y: lib.score(x, y, "sfda", ped=True),
        lambda lib, x, y: lib.parc(x, y),
        lambda lib, x, y: lib.nleep(x, y),
    ],
    ids=["logme", "sfda", "gbc", "ped", "score", "parc", "nleep"],
)
def test_every_entry_point_is_guarded(monkeypatch, library, call):
    features, labels = make_problem(50, 8, 3, seed=0)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1000")
    with pytest.raises(InsufficientMemoryError, match=r"needs about .* but only 1000 B is available"):
        call(library, features, labels)
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    call(library, features, labels)  # the same call runs when memory allows it


@pytest.mark.parametrize("library", [pedrank, reference], ids=["public", "reference"])
def test_parc_estimate_brackets_the_measured_peak(library):
    """The m x m estimate is within a factor 2 of what PARC allocates (tracemalloc sees numpy's arrays)."""
    import tracemalloc

    from pedrank._engine.memory import parc_bytes

    features, labels = make_problem(1500, 16, 5, seed=1)
    library.parc(features[:100], labels[:100])  # imports and caches outside the measurement
    tracemalloc.start()
    try:
        library.parc(features, labels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    implementation = "core" if library is pedrank else "reference"
    estimate = parc_bytes(1500, 16, implementation=implementation)
    assert peak / 2 <= estimate <= 2 * peak


def test_parc_refuses_by_its_subsample_size_and_says_what_to_lower(monkeypatch):
    from pedrank._engine.memory import parc_bytes

    features, labels = make_problem(3000, 8, 4, seed=2)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(parc_bytes(2000, 8)))
    with pytest.raises(InsufficientMemoryError, match="lower max_samples"):
        pedrank.parc(features, labels)
    pedrank.parc(features, labels, max_samples=1500)  # the same data fits on fewer rows


def test_nleep_refuses_a_mixture_that_cannot_fit(monkeypatch):
    """The second check knows the PCA's output dimension: many full covariances are what grows."""
    from sklearn.decomposition import PCA

    from pedrank._engine.memory import nleep_bytes

    features, labels = make_problem(600, 40, 6, seed=3)
    reduced_dim = PCA(n_components=0.8, svd_solver="full").fit(features).n_components_
    pca_stage = nleep_bytes(600, 40, 30)
    mixture_stage = nleep_bytes(600, 40, 30, reduced_dim=reduced_dim)
    assert mixture_stage > pca_stage  # 30 full covariances outweigh the PCA on these shapes
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(mixture_stage))
    pedrank.nleep(features, labels)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(pca_stage))  # the PCA passes, the mixture is refused
    with pytest.raises(InsufficientMemoryError, match=f"30-component mixture on {reduced_dim} PCA dimensions"):
        pedrank.nleep(features, labels)
    with pytest.raises(InsufficientMemoryError, match="mixture"):
        reference.nleep(features, labels)


def test_insufficient_memory_error_is_exported():
    assert pedrank.InsufficientMemoryError is InsufficientMemoryError
