"""Every registered score (default form, without and with PED) against LogME, the float64 Gram and the floors of
issue 26, one fresh child process per call, written as one JSON line per finished (task, shape); resumable.

    PYTHONPATH=python python benchmarks/score_table.py                      # both shapes, resumes what is missing
    PYTHONPATH=python python benchmarks/score_table.py --shapes 10000x1024  # one shape
    PYTHONPATH=python python benchmarks/score_table.py --table              # print the markdown table only

Results: ``benchmarks/score_table.jsonl`` (``--results``). A (task, shape) already there is skipped, a timed-out
or failed one too (``--retry`` reruns those). Features: float32, non-negative, clustered by class, seeded
(benchmarks/_data.py), C = 100. Scores that read a source model's predictions (LEEP, NCE) get
``softmax(X W / sqrt(D))`` over 1,000 source classes (W seeded; NCE its argmax, hard labels), and no PED (it
moves features, not predictions).

Tasks: ``gram64`` (numpy ``X.T @ X`` of the float64 copy: the floor of an exact float64 score), ``knn_floor``
(``X[rows] @ X.T`` in float32, 1,024 rows a block: the N x N x D product), ``parc_floor`` (``np.argsort`` of
m (m - 1) / 2 float64 values, m = min(N, 15,000): PARC's default subsample), and ``<metric>`` /
``<metric>+ped`` for every name in ``pedrank.METRICS`` (``pedrank.score(X, y, metric, ped=...)``).

Peak memory: the child's VmHWM, reset just before the call (``/proc/self/clear_refs``), minus its VmRSS before it,
so the data generation is not counted (benchmarks/_data.py ``measure_call``). The background fine-tuning campaign
is paused (SIGSTOP) around each child and resumed (SIGCONT) after it, in ``finally`` (benchmarks/_quiet.py); the
1-minute load just before each child is recorded.

Capped: ``nleep`` and ``nleep+ped`` at 50,000 x 2,048 (scikit-learn's full-covariance EM of 500 components:
hours on 2 cores; 527 s already at 10,000 x 1,024); any call past ``--timeout`` seconds (default 1,800) is
recorded as timed out.
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
DEFAULT_RESULTS = HERE / "score_table.jsonl"
SHAPES = ("10000x1024", "50000x2048")
N_CLASSES = 100
SOURCE_CLASSES = 1000
CAPS = {
    ("nleep", "50000x2048"): "capped: scikit-learn's EM of 5 x C = 500 full-covariance components takes hours "
                             "here (527 s at 10,000 x 1,024, ~N d^2 per component and iteration)",
    ("nleep+ped", "50000x2048"): "capped: as nleep",
}


def shape_of(name):
    n, d = name.split("x")
    return int(n), int(d)


def predictions(features, seed=1):
    import numpy as np

    weights = np.random.default_rng(seed).standard_normal((features.shape[1], SOURCE_CLASSES)).astype(np.float32)
    logits = (features @ weights).astype(np.float64) / np.sqrt(features.shape[1])
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def child(task, shape):
    sys.path.insert(0, str(HERE))
    import numpy as np

    from _data import make_features, measure_call

    n, d = shape_of(shape)
    features, labels = make_features(n, d, N_CLASSES)
    if task == "gram64":
        features = features.astype(np.float64)
        call = lambda: float((features.T @ features)[0, 0])  # noqa: E731
    elif task == "knn_floor":
        def call():
            total = 0.0
            for start in range(0, n, 1024):
                total += float((features[start:start + 1024] @ features.T)[0, 0])
            return total
    elif task == "parc_floor":
        m = min(n, 15_000)
        values = np.random.default_rng(0).random(m * (m - 1) // 2)
        del features
        call = lambda: float(np.argsort(values)[0])  # noqa: E731
    else:
        import pedrank
        from pedrank.scores.registry import resolve_metric

        metric, _, ped = task.partition("+")
        entry, _ = resolve_metric(metric)
        if entry.inputs == "predictions":
            features = predictions(features)
            if metric == "nce":  # NCE reads hard source labels: the source model's argmax
                features = features.argmax(axis=1)
        call = lambda: float(pedrank.score(features, labels, metric, ped=bool(ped)))  # noqa: E731
    value, seconds, peak = measure_call(call)
    print(json.dumps({"value": value, "seconds": seconds, "peak_bytes": peak}))


def tasks():
    sys.path.insert(0, str(HERE.parent / "python"))
    import pedrank
    from pedrank.scores.registry import resolve_metric

    names = ["gram64", "knn_floor", "parc_floor"]
    for metric in pedrank.METRICS:
        names.append(metric)
        if resolve_metric(metric)[0].inputs != "predictions":
            names.append(metric + "+ped")
    return names


def read(results):
    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[(row["task"], row["shape"])] = row
    return done


def run(args):
    from _quiet import quiet
    from _timing import load

    results = Path(args.results)
    done = read(results)
    names = [name for name in tasks() if not args.only or name in args.only]
    for shape in args.shapes:
        for task in names:
            previous = done.get((task, shape))
            if previous and not args.force and (previous["status"] == "ok" or not args.retry):
                continue
            row = {"task": task, "shape": shape, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            if (task, shape) in CAPS:
                row.update(status="capped", reason=CAPS[(task, shape)])
            else:
                command = [sys.executable, __file__, "--child", task, shape]
                with quiet():
                    row["load_before"] = load()
                    try:
                        out = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout,
                                             env=os.environ)
                    except subprocess.TimeoutExpired:
                        out = None
                if out is None:
                    row.update(status="timeout", reason=f"over {args.timeout} s")
                elif out.returncode:
                    row.update(status="failed", reason=out.stderr.strip().splitlines()[-1][:300])
                else:
                    row.update(status="ok", **json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(row), flush=True)
            with results.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            done[(task, shape)] = row


def table(results):
    done = read(Path(results))
    lines = ["| score | " + " | ".join(f"{s} s | / LogME | / floor | peak" for s in SHAPES) + " |",
             "|---|" + "---:|---:|---:|---:|" * len(SHAPES)]
    floors = {"knn": "knn_floor", "parc": "parc_floor"}
    for task in tasks():
        cells = []
        for shape in SHAPES:
            row = done.get((task, shape))
            if row is None:
                cells += ["pending", "", "", ""]
                continue
            if row["status"] != "ok":
                cells += [row["status"], "", "", ""]
                continue
            logme = done.get(("logme", shape), {})
            ratio = f"{row['seconds'] / logme['seconds']:.1f}" if logme.get("status") == "ok" else ""
            floor = done.get((floors.get(task.split("+")[0], "gram64"), shape), {})
            to_floor = f"{row['seconds'] / floor['seconds']:.2f}" if floor.get("status") == "ok" else ""
            if task in floors.values():  # a floor: its own reference, not the Gram's
                to_floor = "-"
            cells += [f"{row['seconds']:.2f}", ratio, to_floor, f"{row['peak_bytes'] / 2 ** 20:,.0f} MiB"]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--only", nargs="+", help="these tasks only")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--retry", action="store_true", help="rerun timed-out and failed calls")
    parser.add_argument("--force", action="store_true", help="rerun the chosen tasks even where they have a row")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
    elif args.table:
        table(args.results)
    else:
        sys.path.insert(0, str(HERE))
        run(args)


if __name__ == "__main__":
    main()
