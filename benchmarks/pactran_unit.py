"""`pactran:unit` against the authors' PACTran and LogME on one shape: the cost of dividing the features by their
scale (one pass over PACTran's own centred copy).

    PYTHONPATH=python python benchmarks/pactran_unit.py --shape 10000x1024x100 --repeat 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pedrank


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="10000x1024x100", help="N x D x C")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    n, d, c = (int(part) for part in args.shape.split("x"))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, c, n)
    features = rng.normal(size=(n, d)) + 2.0 * np.eye(c, d)[labels]
    calls = {"logme": lambda: pedrank.logme(features, labels),
             "pactran": lambda: pedrank.pactran(features, labels),
             "pactran:unit": lambda: pedrank.pactran(features, labels, unit_scale=True)}
    best = {}
    for _ in range(args.repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
    print(f"| {args.shape} | " + " | ".join(f"{best[name]:.2f}" for name in calls)
          + f" | {best['pactran:unit'] / best['pactran']:.2f} |")


if __name__ == "__main__":
    main()
