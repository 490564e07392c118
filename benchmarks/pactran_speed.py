"""PACTran-Gaussian before and after the one-pass objective (issue 26), with LogME in the same run.

    nice -n 5 python benchmarks/pactran_speed.py --shapes 10000x1024x100 50000x2048x100 --json out.json

For each N x D x C: the benchmark features (benchmarks/_data.py, float32, fixed seed) are scored by
``pedrank.logme``, by the PACTran of ``--baseline`` (``git show REV:python/pedrank/scores/pactran.py`` loaded as a module
from a temporary file, default the last commit before the one-pass objective) and by today's ``pedrank.pactran``,
all with their defaults (the Gaussian prior, ``max_iter=100``, pedrank's BLAS thread policy). The three run in
turn, ``--repeat`` times; the best time is reported, and the largest peak resident memory of a call above what
the process held before it (``_data.measure_call``: VmHWM, Linux). Each PACTran run's L-BFGS-B iteration and
evaluation counts are recorded, and the relative difference of the two values. Prints a Markdown table (and
writes the raw numbers with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import scipy.optimize

from _data import make_features, measure_call  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
#: The last commit whose PACTran evaluated the loss and the gradient apart (three products per evaluation).
BEFORE = "38d13d1c25d1530d87d7fa62f03901a92bdc1593"


def parse_shape(text):
    n_samples, n_features, n_classes = (int(part) for part in text.lower().split("x"))
    return n_samples, n_features, n_classes


def load_baseline(revision):
    """``pactran`` of ``python/pedrank/scores/pactran.py`` at ``revision``, as a module inside the installed pedrank.

    Its relative imports resolve against today's package; its line registering the score is left out (the name
    is registered by today's module already).
    """
    for path in ("python/pedrank/scores/pactran.py", "python/pedrank/pactran.py"):  # its home since / before the move
        shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True)
        if shown.returncode == 0:
            break
    shown.check_returncode()
    source = shown.stdout
    source = "\n".join(line for line in source.splitlines() if not line.startswith("register("))
    with tempfile.NamedTemporaryFile("w", suffix="_pactran_before.py", delete=False) as handle:
        handle.write(source)
    try:
        module = types.ModuleType("pedrank._pactran_before")
        module.__package__ = "pedrank"
        module.__file__ = handle.name
        exec(compile(source, handle.name, "exec"), module.__dict__)
    finally:
        os.unlink(handle.name)
    return module.pactran


class IterationLog:
    """Records ``(nit, nfev)`` of every ``scipy.optimize.minimize`` call while installed."""

    def __init__(self):
        self.runs = []
        self._minimize = scipy.optimize.minimize

    def __enter__(self):
        def recording(*args, **kwargs):
            result = self._minimize(*args, **kwargs)
            self.runs.append((int(result.nit), int(result.nfev)))
            return result

        scipy.optimize.minimize = recording
        return self

    def __exit__(self, *exc):
        scipy.optimize.minimize = self._minimize


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["10000x1024x100"], help="N x D x C, e.g. 10000x1024x100")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", default=BEFORE, help="git revision of the PACTran to compare with")
    parser.add_argument("--json", help="write the raw measurements here")
    args = parser.parse_args()

    import pedrank

    before = load_baseline(args.baseline)
    calls = {"logme": pedrank.logme, "before": before, "after": pedrank.pactran}
    warm_features, warm_labels = make_features(300, 32, 5, seed=1)
    for call in calls.values():  # imports, thread pools and first-call setup are not what is measured
        call(warm_features, warm_labels)

    rows = []
    for text in args.shapes:
        n_samples, n_features, n_classes = parse_shape(text)
        features, labels = make_features(n_samples, n_features, n_classes)
        times = {name: [] for name in calls}
        values, counts, peaks = {}, {}, {}
        for _ in range(args.repeat):
            for name, call in calls.items():
                with IterationLog() as log:
                    values[name], seconds, peak = measure_call(lambda: call(features, labels))
                times[name].append(seconds)
                peaks[name] = max(peaks.get(name, 0), peak)
                if log.runs:
                    counts[name] = log.runs[-1]
        best = {name: min(seconds) for name, seconds in times.items()}
        row = {
            "shape": [n_samples, n_features, n_classes],
            "seconds": best, "all_seconds": times, "values": values,
            "peak_mib": {name: peak / 2**20 for name, peak in peaks.items()},
            "iterations": {name: count[0] for name, count in counts.items()},
            "evaluations": {name: count[1] for name, count in counts.items()},
            "speedup": best["before"] / best["after"],
            "before_over_logme": best["before"] / best["logme"],
            "after_over_logme": best["after"] / best["logme"],
            "rel_diff": abs(values["after"] - values["before"]) / abs(values["before"]),
            "load_1min": os.getloadavg()[0],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    print()
    print("| shape (N, D, C) | L-BFGS-B iterations (evaluations) | LogME s | PACTran before s | PACTran after s "
          "| speed-up | before / LogME | after / LogME | rel. diff of the values | peak MiB before / after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        seconds = row["seconds"]
        same = row["iterations"]["before"] == row["iterations"]["after"]
        iterations = (f"{row['iterations']['after']} ({row['evaluations']['after']})" if same else
                      f"before {row['iterations']['before']}, after {row['iterations']['after']}")
        cells = [str(tuple(row["shape"])), iterations, f"{seconds['logme']:.2f}", f"{seconds['before']:.2f}",
                 f"{seconds['after']:.2f}", f"{row['speedup']:.2f}", f"{row['before_over_logme']:.1f}",
                 f"{row['after_over_logme']:.1f}", f"{row['rel_diff']:.1e}",
                 f"{row['peak_mib']['before']:,.0f} / {row['peak_mib']['after']:,.0f}"]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
                       "numpy": np.__version__, "scipy": scipy.__version__, "baseline": args.baseline,
                       "repeat": args.repeat, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
