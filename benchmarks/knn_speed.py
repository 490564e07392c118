"""k-NN against its floor in one process (issue 26): the float32 N x N x D product, pedrank.knn's neighbour search
now, and optionally an earlier version of python/pedrank/scores/knn.py, interleaved, best of ``--repeats``.

    git show HEAD:python/pedrank/scores/knn.py > /tmp/knn_before.py      # optional: the version to compare with
    PYTHONPATH=python python benchmarks/knn_speed.py --n 10000 --d 1024 --before /tmp/knn_before.py

Timed, each as one call on the same features (benchmarks/_data.py, float32, C = 100, k = 3, block 1,024 rows):

- ``floor``: ``X[rows] @ X.T`` in 1,024-row blocks on NumPy's own BLAS threads, as ``benchmarks/score_table.py``'s
  ``knn_floor`` row;
- ``floor_policy``: the same product inside ``blas_on_policy`` (pedrank's thread policy, which pedrank.knn uses:
  one thread when the other processes leave no core free);
- ``after`` / ``before``: ``knn_neighbours(X, 3)`` of this tree / of the ``--before`` file; the neighbours of both are
  compared (``same_neighbours``); ``policy_threads`` is the BLAS thread count the policy would choose at each
  call's start (``PEDRANK_THREADS=n`` fixes it, for a comparison free of the load's changes).

The background fine-tuning campaign is paused around each timed call (benchmarks/_quiet.py) and always resumed;
the 1-minute load is recorded before and after. One JSON line is printed (and appended to ``--json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_features  # noqa: E402
from _quiet import quiet  # noqa: E402
from _timing import emit, load, load_module, timed  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=1_024)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--before", help="a copy of an earlier python/pedrank/scores/knn.py to time beside")
    parser.add_argument("--json", help="append the result (one JSON line) to this file")
    args = parser.parse_args()
    from pedrank import _core
    from pedrank._engine.config import blas_on_policy
    from pedrank.scores import knn as after

    X, _ = make_features(args.n, args.d, args.classes)

    def floor():
        total = 0.0
        for start in range(0, args.n, 1024):
            total += float((X[start:start + 1024] @ X.T)[0, 0])
        return total

    def floor_policy():
        with blas_on_policy(args.n, args.d):
            return floor()

    calls = {"floor": floor, "floor_policy": floor_policy, "after": lambda: after.knn_neighbours(X, 3)}
    if args.before:
        before = load_module("knn_before", args.before)  # not registered again: knn is registered already
        calls["before"] = lambda: before.knn_neighbours(X, 3)
    result = {"n": args.n, "d": args.d, "classes": args.classes, "k": 3,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": load(),
              "after_threads": int(_core.call_threads(args.n, args.d))}
    seconds = {name: [] for name in calls}
    threads = {name: [] for name in calls}  # the policy's BLAS threads at each call's start (free cores)
    values = {}
    for _ in range(args.repeats):
        for name, call in calls.items():
            threads[name].append(int(_core.call_threads(args.n, args.d)))
            with quiet():
                elapsed, _, values[name] = timed(call)
            seconds[name].append(round(elapsed, 3))
    result["policy_threads"] = threads
    result["load_end"] = load()
    result["seconds"] = seconds
    best = {name: min(times) for name, times in seconds.items()}
    result["best"] = best
    result["after / floor"] = round(best["after"] / best["floor"], 3)
    result["after / floor_policy"] = round(best["after"] / best["floor_policy"], 3)
    if "before" in best:
        result["before / floor"] = round(best["before"] / best["floor"], 3)
        result["same_neighbours"] = bool(np.array_equal(values["before"], values["after"]))
    emit(result, args.json)


if __name__ == "__main__":
    main()
