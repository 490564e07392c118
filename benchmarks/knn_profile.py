"""Where k-NN's time goes: the stages of both NumPy Euclidean paths of pedrank.knn, timed one by one (issue 15).

"float64" is the Gram-expansion path (float64 products, five in-place passes, argpartition and lexsort per block;
still used for cosine and out-of-range data); "float32 filter" the default path (float32 products, the bound,
argpartition per 256 rows, the candidate mask, the reference's float64 distances on the candidates). The stages
repeat the two paths' operations in python/pedrank/scores/knn.py (same sizes, same order), with a clock between them;
the whole calls are timed too. Features as benchmarks/_data.py, k = 3, block 1,024 rows, BLAS threads as numpy's
default (both cores).

    PYTHONPATH=python python benchmarks/knn_profile.py --n 20000 --d 2048
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_features  # noqa: E402
from _timing import emit, load  # noqa: E402


class Clock:
    def __init__(self):
        self.totals = {}
        self.last = time.perf_counter()

    def __call__(self, stage):
        now = time.perf_counter()
        self.totals[stage] = self.totals.get(stage, 0.0) + now - self.last
        self.last = now


def float64_path(X, k, block_size, clock):
    X = np.asarray(X, dtype=np.float64)
    squared = np.einsum("ij,ij->i", X, X)
    clock("copy and norms")
    n = X.shape[0]
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        clock("python")
        block = X[start:stop] @ X.T
        clock("products (float64 gemm)")
        block *= -2.0
        block += squared[start:stop, None]
        block += squared[None, :]
        np.maximum(block, 0.0, out=block)
        np.sqrt(block, out=block)
        rows = np.arange(stop - start)
        block[rows, rows + start] = np.inf
        clock("elementwise passes")
        part = np.argpartition(block, k - 1, axis=1)[:, :k]
        clock("argpartition")
        np.lexsort((part, np.take_along_axis(block, part, axis=1)), axis=1)
        clock("lexsort")


def float32_path(X, k, block_size, clock):
    knn = importlib.import_module("pedrank.scores.knn")
    n, d = X.shape
    squared = np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64))
    norms = np.sqrt(squared)
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    squared32 = squared.astype(np.float32)
    clock("copy and norms")
    pairs = 0
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        b = stop - start
        clock("python")
        block = X32[start:stop] @ X32.T
        clock("products (float32 gemm)")
        block *= -2.0
        block += squared32[None, :]
        block[np.arange(b), np.arange(start, stop)] = np.inf
        clock("elementwise passes")
        for low in range(0, b, 256):
            part = np.argpartition(block[low:low + 256], k - 1, axis=1)[:, :k]
            np.take_along_axis(block[low:low + 256], part, axis=1)
        clock("argpartition")
        # a threshold as tight as the real one (the k-th value plus the bound's width), for the mask's cost
        width = 2.0 * (d * 2.0 ** -24 * 1.01 + 2 ** -22) * norms[start:stop] * norms.max() + 2 ** -21 * squared.max()
        kth = np.partition(block, k - 1, axis=1)[:, k - 1].astype(np.float64)
        threshold = (kth + 2 * width).astype(np.float32)
        clock("(profile only: k-th value)")
        rows, cols = np.nonzero(block <= threshold[:, None])
        clock("candidate mask")
        distances = knn._exact_distances(X, rows + start, cols)
        np.lexsort((cols, distances, rows))
        pairs += rows.shape[0]
        clock("exact distances and order")
    return pairs / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--d", type=int, default=2_048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--json", help="append the result (one JSON line) to this file")
    args = parser.parse_args()
    knn = importlib.import_module("pedrank.scores.knn")
    X, _ = make_features(args.n, args.d, args.classes)
    result = {"n": args.n, "d": args.d, "classes": args.classes,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg": load()}
    for name, path in (("float64", float64_path), ("float32 filter", float32_path)):
        clock = Clock()
        extra = path(X, 3, 1024, clock)
        result[name] = {stage: round(seconds, 2) for stage, seconds in clock.totals.items()}
        if extra is not None:
            result[name]["candidate pairs per row"] = round(extra, 2)
    for name, blocks in (("float64", lambda: knn._blocks_numpy(X, 3, "euclidean", 1024)),
                         ("float32 filter", lambda: knn._euclidean_blocks(X, 3, 1024))):
        start = time.perf_counter()
        neighbours = blocks()
        result[name]["whole neighbour search"] = round(time.perf_counter() - start, 2)
        result[name + " neighbours"] = neighbours
    same = bool(np.array_equal(result.pop("float64 neighbours"), result.pop("float32 filter neighbours")))
    result["same neighbours"] = same
    emit(result, args.json)


if __name__ == "__main__":
    main()
