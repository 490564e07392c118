"""Peak memory of pedrank.knn in a fresh process: VmHWM minus VmRSS just before the call (as benchmarks/table.py).

    nice -n 10 python benchmarks/knn_memory.py --n 50000 --d 256 --classes 100

Features float32 (fixed seed), labels 0..C-1. Prints one JSON line: seconds, peak bytes, the N x N float64 size.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _rss_bytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=2_048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--block-size", type=int, default=1024)
    args = parser.parse_args()
    import pedrank

    rng = np.random.default_rng(0)
    y = rng.integers(0, args.classes, args.n)
    X = (rng.standard_normal((args.n, args.d)) + rng.standard_normal((args.classes, args.d))[y]).astype(np.float32)
    before = _rss_bytes("VmRSS")
    start = time.perf_counter()
    value = pedrank.knn(X, y, block_size=args.block_size)
    seconds = time.perf_counter() - start
    peak = _rss_bytes("VmHWM") - before
    print(json.dumps({"n": args.n, "d": args.d, "classes": args.classes, "block_size": args.block_size,
                      "seconds": round(seconds, 1), "peak_bytes": peak, "n_by_n_float64_bytes": 8 * args.n ** 2,
                      "value": value}))


if __name__ == "__main__":
    main()
