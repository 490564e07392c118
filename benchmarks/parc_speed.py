"""PARC's Spearman step, before (dense: m x m matrices, scipy's rankdata twice) and after (row blocks, one in-place
sort), against the floors, in one run, each call in a fresh child process (issue 26, item 4).

    PYTHONPATH=python python benchmarks/parc_speed.py --n 10000 [--n 15000 ...] [--json benchmarks/parc_run.jsonl]

Features float32, C = 100 (benchmarks/_data.py); the PCA and standardisation (``parc_inputs``) run before the
clock; timed: the Spearman correlation of the two dissimilarities (``_parc_spearman`` after, ``_spearman_dense``
before) and the whole ``pedrank.parc`` call. Floors: ``np.argsort`` of the P = m (m - 1) / 2 float64 values (the
issue's "one argsort of its pairwise values") and an in-place ``ndarray.sort`` of them. Peak memory: the child's
VmHWM (reset just before the call) minus its VmRSS before it. The background campaign is paused around each
child (benchmarks/_quiet.py) and resumed after it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(task, n, exact):
    sys.path.insert(0, str(HERE))
    import importlib

    import numpy as np

    from _data import make_features, measure_call

    module = importlib.import_module("pedrank.scores.parc")
    features, labels = make_features(n, 1024, 100)
    if task == "whole":
        value, seconds, peak = measure_call(lambda: module.parc(features, labels, exact=exact, max_samples=n))
    else:
        standardised, encoded, kernels = module.parc_inputs(features, labels, n_components=32, max_samples=n,
                                                            random_state=0, exact=exact)
        del features
        if task == "after":
            call = lambda: module._parc_spearman(standardised, encoded, exact)  # noqa: E731
        elif task == "before":
            call = lambda: module._spearman_dense(standardised, encoded, exact, kernels)  # noqa: E731
        else:
            values = 1.0 - np.random.default_rng(0).random(n * (n - 1) // 2)
            del standardised
            if task == "argsort":
                call = lambda: float(np.argsort(values)[0])  # noqa: E731
            else:
                call = lambda: float(values.sort() or values[0])  # noqa: E731
        value, seconds, peak = measure_call(call)
    print(json.dumps({"value": float(value), "seconds": seconds, "peak_bytes": peak}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append")
    parser.add_argument("--tasks", default="argsort,sort,after,before,whole")
    parser.add_argument("--exact", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2] == "1")
        return
    from _quiet import quiet
    from _timing import load

    for n in args.n or [10_000]:
        for task in args.tasks.split(","):
            command = [sys.executable, __file__, "--child", task, str(n), "1" if args.exact else "0"]
            with quiet():
                before = load()
                out = subprocess.run(command, capture_output=True, text=True, env=os.environ)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                continue
            row = {"n": n, "pairs": n * (n - 1) // 2, "exact": args.exact, "task": task, "load_before": before,
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **json.loads(out.stdout)}
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
