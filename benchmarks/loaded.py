"""Scores on a quiet and on a loaded machine, in the same run: does the thread policy avoid the cliffs?

For every shape and score, each setting runs in a fresh process (median of ``--repeat`` calls):

* ``policy``: pedrank's default (cpp/threads.hpp: one thread below 2e6 feature entries, else the free cores);
* ``1 thread``: ``PEDRANK_THREADS=1``;
* ``all threads``: ``PEDRANK_THREADS=<cores>``, the behaviour before the policy (both pools on every core).

"loaded" starts ``--busy`` competing processes (default: one per core), each a Python busy loop that ends by itself
after ``--busy-seconds`` and is killed by the harness when the measurement is done.

    PYTHONPATH=python python benchmarks/loaded.py --json benchmarks/loaded_run.json
    PYTHONPATH=python python benchmarks/loaded.py --shapes 1000x1280 --scores logme
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = ("1000x1280", "20000x1024", "50000x2048")
SCORES = ("logme", "sfda", "gbc")
CLASSES = 100
BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"

CHILD = """
import sys, time, numpy as np, pedrank
n, d = (int(v) for v in sys.argv[1].split("x"))
rng = np.random.default_rng(0)
labels = rng.integers(0, {classes}, n)
labels[:{classes}] = np.arange({classes})
features = np.maximum(rng.normal(size=({classes}, d))[labels] * 0.5 + rng.normal(size=(n, d)), 0).astype(np.float32)
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    getattr(pedrank, sys.argv[2])(features, labels)
    times.append(time.perf_counter() - start)
print(" ".join(repr(t) for t in times))
"""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def measure(shape: str, score: str, threads: int | None, repeat: int) -> list[float]:
    env = dict(os.environ)
    env.pop("PEDRANK_THREADS", None)
    if threads is not None:
        env["PEDRANK_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-c", CHILD.format(classes=CLASSES), shape, score, str(repeat)],
                          capture_output=True, text=True, env=env, timeout=1800, check=True)
    return [float(value) for value in done.stdout.split()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--scores", nargs="+", default=list(SCORES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--busy", type=int, default=cores())
    parser.add_argument("--busy-seconds", type=float, default=600.0)
    parser.add_argument("--json", help="write every measurement here")
    args = parser.parse_args(argv)

    settings = {"policy": None, "1 thread": 1, "all threads": cores()}
    rows = []
    for condition in ("quiet", "loaded"):
        busy = []
        if condition == "loaded":
            busy = [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=args.busy_seconds)])
                    for _ in range(args.busy)]
            time.sleep(1.0)
        try:
            for shape in args.shapes:
                for score in args.scores:
                    for name, threads in settings.items():
                        with open("/proc/loadavg") as handle:
                            load = handle.read().split()[0]
                        times = measure(shape, score, threads, args.repeat)
                        row = {"condition": condition, "shape": shape, "score": score, "setting": name,
                               "seconds": times, "median": statistics.median(times), "loadavg": float(load)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            for process in busy:
                process.kill()
    print()
    print("| shape | score | quiet policy | quiet all threads | loaded policy | loaded 1 thread | loaded all threads "
          "| loaded/quiet (policy) |")
    print("|---|---|---|---|---|---|---|---|")
    lookup = {(r["condition"], r["shape"], r["score"], r["setting"]): r["median"] for r in rows}
    for shape in args.shapes:
        for score in args.scores:
            cells = [lookup[(c, shape, score, s)] for c, s in (("quiet", "policy"), ("quiet", "all threads"),
                                                                ("loaded", "policy"), ("loaded", "1 thread"),
                                                                ("loaded", "all threads"))]
            ratio = cells[2] / cells[0]
            print(f"| {shape} | {score} | " + " | ".join(f"{v:.2f}" for v in cells) + f" | {ratio:.2f} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cores": cores(), "busy": args.busy, "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
