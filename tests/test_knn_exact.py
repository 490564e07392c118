"""k-NN on NumPy finds exactly the reference's neighbours (its float64 distances, its stable order), ties included.

The Euclidean path filters with float32 products and a proven error bound, then decides on the reference's own
float64 distances; these cases are the ones a Gram expansion gets wrong: exact duplicates, integer grids (exact
ties at equal distance), a large offset with a tiny spread (cancellation), float32 and float64 inputs.
"""

import importlib

import numpy as np
import pytest

import pedrank
from pedrank import reference

knn_module = importlib.import_module("pedrank.scores.knn")


def reference_neighbours(X, k):
    X = np.array(X, dtype=np.float64)
    distances = np.concatenate([np.sqrt(((X[i:i + 64, None, :] - X[None, :, :]) ** 2).sum(axis=-1))
                                for i in range(0, len(X), 64)])
    np.fill_diagonal(distances, np.inf)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def case(kind, seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(20, 400)), int(rng.integers(1, 200))
    X = rng.standard_normal((n, d))
    if kind == "rounded":
        X = np.round(X, 1)
    elif kind == "duplicates":
        X[n // 2:] = X[0]
    elif kind == "offset":
        X = X * 1e-8 + 5.0
    elif kind == "grid":
        X = rng.integers(0, 3, (n, d)).astype(np.float64)
    y = rng.integers(0, 5, n)
    return X, y, rng


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "rounded", "duplicates", "offset", "grid"])
@pytest.mark.parametrize("seed", [0, 1])
def test_neighbours_are_the_references(kind, dtype, seed):
    X, y, rng = case(kind, seed)
    X = X.astype(dtype)
    for k in (1, 3, 5):
        block = int(rng.integers(1, 128))
        got = knn_module.knn_neighbours(X, k, block_size=block)
        np.testing.assert_array_equal(got, reference_neighbours(X, k))
    if not np.ptp(X, axis=0).any():  # 5 + 1e-8 x rounds to 5.0 in float32: a dead model, refused by both
        for lib in (pedrank, reference):
            with pytest.raises(pedrank.UninformativeFeaturesError, match="carry no information"):
                lib.knn(X, y, k=3)
        return
    assert pedrank.knn(X, y, k=3) == reference.knn(X, y, k=3)


def test_out_of_float32_range_takes_the_float64_path():
    X, y, _ = case("normal", 2)
    for scale in (1e-20, 1e20):
        assert knn_module._euclidean_blocks(X * scale, 3, 64) is None
        assert pedrank.knn(X * scale, y) == reference.knn(X * scale, y)
