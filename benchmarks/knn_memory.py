"""Peak memory of pedrank.knn in a fresh process: VmHWM (reset just before) minus VmRSS before the call (as table.py).

    nice -n 10 python benchmarks/knn_memory.py --n 50000 --d 256 --classes 100

Features float32 (fixed seed), labels 0..C-1. Prints one JSON line: seconds, peak bytes, the N x N float64 size.
``--float64-path`` measures the Euclidean path before the float32 filter (float64 Gram blocks, kept for cosine and
for data outside float32's range) on the same call.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from _data import measure_call  # benchmarks/ is the script's folder, first on sys.path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=2_048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--float64-path", action="store_true", help="the float64 Gram path (before the filter)")
    args = parser.parse_args()
    import importlib

    import pedrank

    if args.float64_path:
        importlib.import_module("pedrank.scores.knn")._euclidean_blocks = lambda *arguments: None

    rng = np.random.default_rng(0)
    y = rng.integers(0, args.classes, args.n)
    X = (rng.standard_normal((args.n, args.d)) + rng.standard_normal((args.classes, args.d))[y]).astype(np.float32)
    # a fresh peak for this call: the float64 temporaries of the data generation above are not its own
    value, seconds, peak = measure_call(lambda: pedrank.knn(X, y, block_size=args.block_size))
    print(json.dumps({"n": args.n, "d": args.d, "classes": args.classes, "block_size": args.block_size,
                      "path": "float64" if args.float64_path else "default",
                      "seconds": round(seconds, 1), "peak_bytes": peak, "n_by_n_float64_bytes": 8 * args.n ** 2,
                      "value": value}))


if __name__ == "__main__":
    main()
