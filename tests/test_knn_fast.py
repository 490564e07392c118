"""k-NN's faster filter (issue 26) chooses exactly the neighbours it chose before: the reference's, ties included.

The Euclidean NumPy path now finds the k columns behind its bound T_i by k row-wise argmins (k <= _ARGMIN_K) instead
of an argpartition, reuses one product buffer and one mask, and reads the candidates with ``flatnonzero``. Any k
columns give a valid bound, so the neighbours cannot change; these tests hold it to that on random and adversarial
inputs (exact ties, duplicated rows, tiny N, k up to N - 1, every block size), against the reference's stable
argsort of float64 distances and against the argpartition route (the previous path, still used above _ARGMIN_K).
"""

import importlib

import numpy as np
import pytest

import pedrank
from pedrank import reference

knn_module = importlib.import_module("pedrank.scores.knn")


def reference_neighbours(X, k):
    X = np.array(X, dtype=np.float64)
    distances = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1))
    np.fill_diagonal(distances, np.inf)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def adversarial(kind, rng):
    n, d = int(rng.integers(2, 90)), int(rng.integers(1, 40))
    X = rng.standard_normal((n, d))
    if kind == "ties":  # integer grid: many exactly equal distances
        X = rng.integers(0, 2, (n, d)).astype(np.float64)
    elif kind == "duplicate_rows":
        X[rng.integers(0, n, n // 2)] = X[0]
    elif kind == "two_points":  # every row one of two points
        X = np.where(rng.random(n)[:, None] < 0.5, X[0], X[-1])
    elif kind == "offset":  # cancellation in the Gram expansion
        X = X * 1e-6 + 3.0
    elif kind == "scaled":
        X = X * 10.0 ** rng.integers(-12, 12)
    return X


def both_routes(X, k, block, monkeypatch):
    """The neighbours by the argmin route and by the argpartition route (the path before issue 26's change)."""
    fast = knn_module.knn_neighbours(X, k, block_size=block)
    with monkeypatch.context() as patch:
        patch.setattr(knn_module, "_ARGMIN_K", 0)
        partition = knn_module.knn_neighbours(X, k, block_size=block)
    return fast, partition


KINDS = ["normal", "ties", "duplicate_rows", "two_points", "offset", "scaled"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_neighbours_identical_on_adversarial_inputs(kind, dtype, seed, monkeypatch):
    rng = np.random.default_rng(1000 * seed + KINDS.index(kind))
    X = adversarial(kind, rng).astype(dtype)
    n = X.shape[0]
    for k in sorted({1, min(3, n - 1), max(1, n // 2), n - 1}):  # k near N included
        block = int(rng.integers(1, n + 5))
        fast, partition = both_routes(X, k, block, monkeypatch)
        expected = reference_neighbours(X, k)
        np.testing.assert_array_equal(fast, expected)
        np.testing.assert_array_equal(partition, expected)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_tiny_n_every_k(n, monkeypatch):
    rng = np.random.default_rng(n)
    for X in (rng.standard_normal((n, 3)), np.zeros((n, 2)) + np.arange(n)[:, None] % 2):
        for k in range(1, n):
            for block in (1, n):
                fast, partition = both_routes(X, k, block, monkeypatch)
                np.testing.assert_array_equal(fast, reference_neighbours(X, k))
                np.testing.assert_array_equal(partition, fast)


@pytest.mark.parametrize("seed", range(4))
def test_scores_equal_the_reference_and_the_previous_route(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(40, 300)), int(rng.integers(2, 64))
    y = rng.integers(0, 4, n)
    X = rng.standard_normal((n, d)) + 2.0 * rng.standard_normal((4, d))[y]
    if seed % 2:
        X[n // 3: n // 2] = X[0]  # duplicated rows: ties at distance 0
    targets = X[:, 0] + rng.standard_normal(n)
    for k in (1, 3, 7, n - 1):
        fast = (pedrank.knn(X, y, k=k), pedrank.knn(X, y % 2, k=k), pedrank.knn(X, targets, k=k, regression=True))
        with monkeypatch.context() as patch:
            patch.setattr(knn_module, "_ARGMIN_K", 0)
            before = (pedrank.knn(X, y, k=k), pedrank.knn(X, y % 2, k=k),
                      pedrank.knn(X, targets, k=k, regression=True))
        expected = (reference.knn(X, y, k=k), reference.knn(X, y % 2, k=k),
                    reference.knn(X, targets, k=k, regression=True))
        np.testing.assert_allclose(fast, expected, rtol=1e-8, atol=0)
        np.testing.assert_allclose(fast, before, rtol=1e-8, atol=0)


def test_large_k_takes_the_partition_route_and_agrees(monkeypatch):
    rng = np.random.default_rng(7)
    X = np.round(rng.standard_normal((120, 6)), 1).astype(np.float32)
    k = knn_module._ARGMIN_K + 5
    fast, partition = both_routes(X, k, 50, monkeypatch)
    np.testing.assert_array_equal(fast, reference_neighbours(X, k))
    np.testing.assert_array_equal(partition, fast)


@pytest.mark.parametrize("k", [1, 3, 16, 17])
def test_smallest_columns_leaves_the_block_as_it_was(k):
    rng = np.random.default_rng(k)
    block = rng.integers(0, 4, (9, 40)).astype(np.float32)  # many equal values
    block[np.arange(9), np.arange(9)] = np.inf
    kept = block.copy()
    columns, values = knn_module._smallest_columns(block, k)
    np.testing.assert_array_equal(block, kept)
    for row in range(9):
        assert len(set(columns[row].tolist())) == k
        np.testing.assert_array_equal(np.sort(values[row]), np.sort(kept[row])[:k])
        np.testing.assert_array_equal(values[row], kept[row, columns[row]])


def test_benchmark_features_same_neighbours_as_the_partition_route(monkeypatch):
    """A mid-size case like the benchmarks' (non-negative, clustered, float32), several full blocks."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 1500)
    X = np.maximum(rng.normal(scale=0.6, size=(10, 48))[y] + rng.standard_normal((1500, 48)), 0).astype(np.float32)
    fast, partition = both_routes(X, 3, 256, monkeypatch)
    np.testing.assert_array_equal(fast, partition)
    np.testing.assert_array_equal(fast, reference_neighbours(X, 3))
