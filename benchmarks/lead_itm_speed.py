"""LEAD and ITM against LogME in one process (issue 26): this tree's ``pedrank.lead`` / ``pedrank.itm``, optionally
earlier versions of python/pedrank/scores/lead.py and itm.py, and the floors of their work, interleaved, best of
``--repeats``.

    git show HEAD:python/pedrank/scores/lead.py > /tmp/lead_before.py     # optional: the versions to compare with
    git show HEAD:python/pedrank/scores/itm.py > /tmp/itm_before.py
    PYTHONPATH=python python benchmarks/lead_itm_speed.py --before-lead /tmp/lead_before.py \\
        --before-itm /tmp/itm_before.py

Timed, each as one call on the same features (benchmarks/_data.py: float32, non-negative, clustered, C = 100), in
this order (every other repeat swaps each "before" with its "after"):

- ``logme``: ``pedrank.logme(X, y)``, the issue's yardstick;
- ``lead`` / ``lead_before``: ``lead(X, y)`` of this tree / of the ``--before-lead`` file (default options);
- ``itm`` / ``itm_before``: ``itm_terms(X, y)`` of this tree / of the ``--before-itm`` file (default options;
  the earlier ITM trained with torch, so its first call also imports torch and ``torch._dynamo``: the best of the
  repeats leaves those imports out, ``first`` keeps them);
- ``lead_ntk_floor``: the float64 products LEAD's NTK diagonal cannot avoid with the default head (1024, 2048) on
  its C x 64 rows: ``Z W_1``, ``A_1 W_2`` and the backward ``D_2 W_2^T``, nothing else;
- ``lead_logistic``: the scikit-learn ``LogisticRegression(C=1)`` fit and ``predict_proba`` LEAD's F_0 is
  (unchanged: scikit-learn's lbfgs, its iterates are its own);
- ``itm_matmul_floor``: the float64 products of ITM's 500 steps and 5 evaluations that cannot be avoided,
  ``Z_B W`` (each step and each held-out batch) and ``Z_B^T G`` (each step), on the policy's threads for one batch.

Each call runs on pedrank's thread policy, as the scores do (``blas_on_policy``: one thread when other processes
leave no core free). The background jobs are left running (nothing is paused); the 1-minute load is recorded at the
start, after each repeat and at the end. Wall seconds and the process's CPU seconds are both recorded: on one thread
the CPU seconds leave out the time the call waited for a core, so they drift less with the load. Values: LEAD's
score before/after (relative difference); ITM's accuracies (equal or not), and the largest relative differences of
its losses and trained weights (each weight array's difference over its largest magnitude). One JSON line is printed
(and appended to ``--json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_features  # noqa: E402
from _timing import emit, load, load_module, timed  # noqa: E402


def floors(X, y, n_classes):
    """The floor calls (see the module docstring)."""
    from pedrank._engine.config import blas_on_policy
    from pedrank.scores.lead import LOGISTIC_MAX_ITER, LOGISTIC_TOL, standardise

    n, d = X.shape
    z = standardise(np.asarray(X, np.float64))
    rng = np.random.default_rng(0)
    rows = z[np.concatenate([np.flatnonzero(y == c)[:64] for c in range(n_classes)])]
    first, second = rng.standard_normal((d, 1024)), rng.standard_normal((1024, 2048))
    gates = (rng.random((rows.shape[0], 2048)) < 0.5).astype(np.float64)

    def lead_ntk_floor():
        with blas_on_policy(n, d):
            hidden = rows @ first
            np.maximum(hidden, 0.0, out=hidden)
            top = hidden @ second
            back = gates @ second.T
            return float(top[0, 0] + back[0, 0])

    def lead_logistic():
        from sklearn.linear_model import LogisticRegression

        with blas_on_policy(n, d):
            model = LogisticRegression(C=1.0, tol=LOGISTIC_TOL, max_iter=LOGISTIC_MAX_ITER, random_state=0)
            return float(model.fit(z, y).predict_proba(z)[0, 0])

    weights = rng.uniform(-d ** -0.5, d ** -0.5, (d, n_classes))
    train = n - int(round(0.2 * n))
    batch_starts = [(i * 256) % (train - 256) for i in range(500)]

    def itm_matmul_floor():
        total = 0.0
        with blas_on_policy(min(256, n), d):
            for start in batch_starts:
                batch = z[start:start + 256]
                gradient = batch @ weights
                total += float((batch.T @ gradient)[0, 0])
            for _ in range(5):
                for start in range(train, n, 256):
                    total += float((z[start:start + 256] @ weights)[0, 0])
        return total

    return {"lead_ntk_floor": lead_ntk_floor, "lead_logistic": lead_logistic, "itm_matmul_floor": itm_matmul_floor}


def relative(after, before):
    return float(np.max(np.abs(np.asarray(after) - np.asarray(before))) / max(np.max(np.abs(before)), 1e-300))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=1_024)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before-lead", help="a copy of an earlier python/pedrank/scores/lead.py to time beside")
    parser.add_argument("--before-itm", help="a copy of an earlier python/pedrank/scores/itm.py to time beside")
    parser.add_argument("--no-floors", action="store_true", help="leave the floor calls out")
    parser.add_argument("--json", help="append the result (one JSON line) to this file")
    args = parser.parse_args()
    import pedrank
    from pedrank import _core
    from pedrank.scores import lead as lead_after
    from pedrank.scores.itm import itm_terms

    X, y = make_features(args.n, args.d, args.classes)
    calls = {"logme": lambda: pedrank.logme(X, y), "lead": lambda: lead_after.lead(X, y)}
    lead_before = None
    if args.before_lead:
        lead_before = load_module("lead_before", args.before_lead)
        calls["lead_before"] = lambda: lead_before.lead(X, y)
    calls["itm"] = lambda: itm_terms(X, y)
    if args.before_itm:
        replace = {"pedrank.scores.lead": lead_before} if lead_before is not None else None
        itm_before = load_module("itm_before", args.before_itm, replace)
        calls["itm_before"] = lambda: itm_before.itm_terms(X, y)
    if not args.no_floors:
        calls.update(floors(X, y, args.classes))

    result = {"n": args.n, "d": args.d, "classes": args.classes,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": load(),
              "policy_threads": int(_core.call_threads(args.n, args.d))}
    seconds = {name: [] for name in calls}
    cpu_seconds = {name: [] for name in calls}
    values = {}
    loads = []
    for repeat in range(args.repeats):
        order = list(calls)
        if repeat % 2:  # every other repeat runs each "before" ahead of its "after" (ABBA: order effects cancel)
            for after, before in (("lead", "lead_before"), ("itm", "itm_before")):
                if before in calls:
                    i, j = order.index(after), order.index(before)
                    order[i], order[j] = order[j], order[i]
        for name in order:
            elapsed, cpu, values[name] = timed(calls[name])
            seconds[name].append(round(elapsed, 3))
            cpu_seconds[name].append(round(cpu, 3))
        loads.append(load())
    result["load_after_each_repeat"] = loads
    result["seconds"] = seconds
    best = {name: min(times) for name, times in seconds.items()}
    result["best"] = best
    result["first"] = {name: times[0] for name, times in seconds.items()}
    result["best / logme"] = {name: round(value / best["logme"], 2) for name, value in best.items()}
    result["cpu_seconds"] = cpu_seconds
    best_cpu = {name: min(times) for name, times in cpu_seconds.items()}
    result["best_cpu"] = best_cpu
    result["best_cpu / logme"] = {name: round(value / best_cpu["logme"], 2) for name, value in best_cpu.items()}
    result["values"] = {"logme": float(values["logme"]), "lead": float(values["lead"]),
                        "itm": float(values["itm"]["score"]), "itm_accuracies": values["itm"]["accuracies"].tolist()}
    if "lead_before" in values:
        result["values"]["lead_before"] = float(values["lead_before"])
        result["lead relative difference"] = abs(values["lead"] - values["lead_before"]) / abs(values["lead_before"])
    if "itm_before" in values:
        after, before = values["itm"], values["itm_before"]
        result["values"]["itm_before"] = float(before["score"])
        result["itm same accuracies"] = bool(np.array_equal(after["accuracies"], before["accuracies"]))
        result["itm losses relative difference"] = relative(after["losses"], before["losses"])
        result["itm weights relative difference"] = max(relative(a, b) for a, b in zip(after["weights"],
                                                                                        before["weights"]))
    result["load_end"] = load()
    emit(result, args.json)


if __name__ == "__main__":
    main()
