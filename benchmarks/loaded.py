"""Scores on a quiet and on a loaded machine, in the same run: does the thread policy avoid the cliffs?

For every shape and score, each setting runs in a fresh process (median of ``--repeat`` calls):

* ``policy``: pedrank's default (cpp/threads.hpp: one thread below 2e6 feature entries, else the free cores);
* ``1 thread``: ``PEDRANK_THREADS=1``;
* ``all threads``: ``PEDRANK_THREADS=<cores>``, the behaviour before the policy (both pools on every core).

"loaded" starts ``--busy`` competing processes (default: one per core) for each measurement, each a Python busy loop
that ends by itself after ``--timeout`` plus a minute and is killed by the harness when the measurement is done.

``--scores`` takes any registered score (``pedrank.scores.registry.scores()``; default: LogME, SFDA, GBC; ``all``: every
one). Pool scores (NCTI, ETran) run as one model's raw call; scores that read a source model's predictions (LEEP,
NCE) get ``softmax`` of the features' first min(D, 1000) columns as the predictions (NCE: their argmax).
``--variant LABEL=ENV`` (repeatable) runs every cell once per environment, e.g. ``--variant default= --variant
passive=OMP_WAIT_POLICY=passive``. With ``--json`` every finished cell is written at once and a rerun with the same
file skips the cells it already holds (so a long run can be resumed, or extended by other arguments); a cell that
fails or passes ``--timeout`` is recorded with its error and not retried.

    PYTHONPATH=python python benchmarks/loaded.py --json benchmarks/loaded_run.json
    PYTHONPATH=python python benchmarks/loaded.py --shapes 1000x1280 --scores logme
    PYTHONPATH=python python benchmarks/loaded.py --scores knn --shapes 50000x2048 --repeat 1 \\
        --settings policy "1 thread" --json benchmarks/loaded_run_all.json
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
SETTINGS = ("policy", "1 thread", "all threads")
CONDITIONS = ("quiet", "loaded")
CLASSES = 100
BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"

CHILD = """
import sys, time, numpy as np, pedrank, scipy.special
from pedrank.scores.registry import resolve_metric
n, d = (int(v) for v in sys.argv[1].split("x"))
rng = np.random.default_rng(0)
labels = rng.integers(0, {classes}, n)
labels[:{classes}] = np.arange({classes})
features = np.maximum(rng.normal(size=({classes}, d))[labels] * 0.5 + rng.normal(size=(n, d)), 0).astype(np.float32)
entry, options = resolve_metric(sys.argv[2])
if entry.inputs == "predictions":
    features = scipy.special.softmax(features[:, :min(d, 1000)].astype(np.float64), axis=1)
    if entry.name == "nce":
        features = features.argmax(axis=1)
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    entry.function(features, labels, **options)
    times.append(time.perf_counter() - start)
print(" ".join(repr(t) for t in times))
"""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def registered_scores() -> tuple[str, ...]:
    from pedrank.scores.registry import metric_names

    return metric_names()


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``"LABEL=NAME=VALUE NAME=VALUE"`` -> (label, environment); ``"default="`` is the environment as it is."""
    label, _, assignments = text.partition("=")
    env = {}
    for assignment in assignments.split():
        name, equals, value = assignment.partition("=")
        if not equals:
            raise SystemExit(f"--variant {text!r}: expected LABEL=NAME=VALUE [NAME=VALUE ...]")
        env[name] = value
    return label, env


def measure(shape: str, score: str, threads: int | None, repeat: int, extra_env: dict[str, str],
            timeout: float) -> list[float]:
    env = dict(os.environ)
    env.pop("PEDRANK_THREADS", None)
    env.update(extra_env)
    if threads is not None:
        env["PEDRANK_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-c", CHILD.format(classes=CLASSES), shape, score, str(repeat)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise RuntimeError(lines[-1][:300])
    return [float(value) for value in done.stdout.split()]


def key(row: dict) -> tuple:
    return row["condition"], row["shape"], row["score"], row["setting"], row.get("variant", "default")


def load_rows(path: str | None) -> list[dict]:
    if path and os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)["rows"]
    return []


def save_rows(path: str | None, rows: list[dict], busy: int) -> None:
    if not path:
        return
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump({"cores": cores(), "busy": busy, "rows": rows}, handle, indent=1)
    os.replace(temporary, path)


def table(rows: list[dict], shapes, scores, variant: str) -> list[str]:
    lookup = {key(r)[:4]: r for r in rows if r.get("variant", "default") == variant}

    def cell(condition, shape, score, setting):
        row = lookup.get((condition, shape, score, setting))
        if row is None:
            return "-", None
        if "error" in row:
            return row["error"].split(":")[0], None
        return f"{row['median']:.3g}", row["median"]

    lines = ["| shape | score | quiet policy | quiet all threads | loaded policy | loaded 1 thread "
             "| loaded all threads | loaded/quiet (policy) | loaded policy / 1 thread |",
             "|---|---|---|---|---|---|---|---|---|"]
    for shape in shapes:
        for score in scores:
            cells = [cell(c, shape, score, s) for c, s in (("quiet", "policy"), ("quiet", "all threads"),
                                                            ("loaded", "policy"), ("loaded", "1 thread"),
                                                            ("loaded", "all threads"))]
            if all(value is None for _, value in cells):
                continue
            ratios = []
            for a, b in ((2, 0), (2, 3)):
                ratios.append(f"{cells[a][1] / cells[b][1]:.2f}" if cells[a][1] and cells[b][1] else "-")
            lines.append(f"| {shape} | {score} | " + " | ".join(text for text, _ in cells) + " | " + " | ".join(ratios)
                         + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--scores", nargs="+", default=list(SCORES), help="registered score names, or 'all'")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--variant", action="append", default=None,
                        help="LABEL=NAME=VALUE ...: an environment to run every cell under (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--busy", type=int, default=cores())
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per cell before it is given up")
    parser.add_argument("--json", help="write every measurement here (resumes: cells already there are skipped)")
    args = parser.parse_args(argv)

    known = registered_scores()
    scores = [name for name in known if ":" not in name] if args.scores == ["all"] else args.scores
    unknown = [name for name in scores if name not in known]
    if unknown:
        parser.error(f"--scores: unknown {unknown}; registered: {list(known)}")
    variants = [parse_variant(text) for text in (args.variant or ["default="])]

    thread_counts = {"policy": None, "1 thread": 1, "all threads": cores()}
    rows = load_rows(args.json)
    done = {key(row) for row in rows}
    for condition in args.conditions:
        for shape in args.shapes:
            for score in scores:
                for setting in args.settings:
                    for label, extra_env in variants:
                        row = {"condition": condition, "shape": shape, "score": score, "setting": setting,
                               "variant": label}
                        if key(row) in done:
                            continue
                        busy = []
                        if condition == "loaded":
                            busy = [subprocess.Popen([sys.executable, "-c",
                                                      BUSY.format(seconds=args.timeout + 60)])
                                    for _ in range(args.busy)]
                            time.sleep(1.0)
                        try:
                            with open("/proc/loadavg") as handle:
                                row["loadavg"] = float(handle.read().split()[0])
                            row["env"] = extra_env
                            try:
                                times = measure(shape, score, thread_counts[setting], args.repeat, extra_env,
                                                args.timeout)
                                row.update(seconds=times, median=statistics.median(times))
                            except subprocess.TimeoutExpired:
                                row["error"] = f"timeout: over {args.timeout:.0f} s"
                            except RuntimeError as error:
                                row["error"] = f"error: {error}"
                        finally:
                            for process in busy:
                                process.kill()
                                process.wait()
                        rows.append(row)
                        done.add(key(row))
                        save_rows(args.json, rows, args.busy)
                        print(json.dumps(row), flush=True)
    print()
    for label, _ in variants:
        if len(variants) > 1:
            print(f"variant {label}:")
        print("\n".join(table(rows, args.shapes, scores, label)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
