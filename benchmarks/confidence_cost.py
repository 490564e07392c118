"""What `rank(..., confidence=B)` costs against B + 1 plain rankings, and what one multi-metric pass saves.

    PYTHONPATH=python python benchmarks/confidence_cost.py [--n 2000] [--d 256] [--c 20] [--models 4] [--b 20]
    PYTHONPATH=python python benchmarks/confidence_cost.py --digits

For each metric: the median of 3 plain ``rank`` calls on the pool (files on disk, as ``pedrank rank`` reads
them), the median of 3 ``rank(..., confidence=B)`` calls, and their ratio to B + 1 plain calls (1.0 = the bootstrap
costs exactly B + 1 rankings); then the share of a resample spent copying the resampled rows, the only work a
reweighting by multiplicities could skip. Last: ``rank(metric=[...])`` against one plain call per metric.
Prints a Markdown table (BENCHMARKS.md, "How sure is the ranking?").

``--digits``: LogME's order of two digits extractors (README, "How sure is the ranking?") on stratified subsamples
without replacement of 50 % and 80 % of the rows, 40 each (seed 0): how often each leads.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import pedrank
from pedrank.workflow.confidence import stratified_bootstrap
from pedrank.workflow.io import find_features


def _median_seconds(call, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def logme_turns_with_n(subsamples: int = 40) -> None:
    from pedrank.frontends.demo import digits_model_pool

    train, labels, _, _ = digits_model_pool(models=["rbf-fourier-512", "random-relu-512"])
    rng = np.random.default_rng(0)
    classes = np.unique(labels)
    full = {m: pedrank.logme(x, labels) for m, x in train.items()}
    print(f"all {len(labels)} rows: " + ", ".join(f"{m} {v:.4f}" for m, v in full.items()))
    for fraction in (0.5, 0.8):
        leads = 0
        for _ in range(subsamples):
            rows = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c),
                                                      int(round(fraction * np.sum(labels == c))), replace=False)
                                           for c in classes]))
            scores = {m: pedrank.logme(x[rows], labels[rows]) for m, x in train.items()}
            leads += scores["rbf-fourier-512"] > scores["random-relu-512"]
        print(f"{fraction:.0%} of the rows: rbf-fourier-512 leads in {leads} of {subsamples} subsamples, "
              f"random-relu-512 in {subsamples - leads}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--c", type=int, default=20)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--b", type=int, default=20)
    parser.add_argument("--metrics", default="logme,sfda,gbc,sfda+ped,ncti")
    parser.add_argument("--digits", action="store_true", help="only the LogME subsample experiment")
    args = parser.parse_args()
    if args.digits:
        logme_turns_with_n()
        return

    rng = np.random.default_rng(0)
    labels = np.arange(args.n) % args.c
    with tempfile.TemporaryDirectory() as folder:
        for m in range(args.models):
            centres = rng.normal(scale=0.3 + 0.2 * m, size=(args.c, args.d))
            features = (centres[labels] + rng.normal(size=(args.n, args.d))).astype(np.float32)
            np.savez(Path(folder) / f"model{m}.npz", features=features, labels=labels)
        pool = find_features([folder])
        print(f"N = {args.n}, D = {args.d}, C = {args.c}, {args.models} models (float32 .npz files), B = {args.b}")
        print()
        print("| metric | plain rank (s) | confidence=B (s) | / (B + 1) plain | copies of the rows (s) |")
        print("|---|---|---|---|---|")
        arrays = {name: np.load(source.path)["features"] for name, source in pool.items()}
        copy = _median_seconds(lambda: [x[rows] for rows in stratified_bootstrap(labels, args.b, 0)
                                        for x in arrays.values()])
        for spec in args.metrics.split(","):
            metric, _, ped = spec.partition("+")
            options = {"metric": metric, "ped": bool(ped), "progress": False}
            plain = _median_seconds(lambda: pedrank.rank(pool, **options))
            boot = _median_seconds(lambda: pedrank.rank(pool, confidence=args.b, **options))
            print(f"| {spec} | {plain:.3f} | {boot:.2f} | {boot / ((args.b + 1) * plain):.2f} | {copy:.3f} |")
        metrics = [m for m in args.metrics.split(",") if "+" not in m]
        separate = _median_seconds(lambda: [pedrank.rank(pool, metric=m, progress=False) for m in metrics])
        together = _median_seconds(lambda: pedrank.rank(pool, metric=metrics, progress=False))
        print()
        print(f"rank(metric={metrics}): {together:.3f} s in one pass against {separate:.3f} s for "
              f"{len(metrics)} plain calls")


if __name__ == "__main__":
    main()
