"""pactran:exact (Newton's method to the optimum) against the authors' L-BFGS-B, stopped at 100 iterations (the
default) and run on to its own tolerance (max_iter=20,000), with LogME in the same run (issue 26, item 3).

    nice -n 5 python benchmarks/pactran_exact.py --shapes 2000x256x20 10000x1024x100 --skip-long \
        --json benchmarks/pactran_exact.json

Features: benchmarks/_data.py (float32, fixed seed). One call each, in turn; wall seconds and the score. The
exact form's number differs from the default's wherever L-BFGS-B had not converged at 100 iterations (the
difference is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import pedrank
from _data import make_features  # benchmarks/ is the script's folder, first on sys.path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["2000x256x20"])
    parser.add_argument("--json")
    parser.add_argument("--skip-long", action="store_true", help="leave out L-BFGS-B to its tolerance")
    args = parser.parse_args()
    rows = []
    for shape in args.shapes:
        n, d, c = (int(part) for part in shape.split("x"))
        features, labels = make_features(n, d, c)
        calls = [("logme", lambda: pedrank.logme(features, labels)),
                 ("pactran (L-BFGS-B, 100 iterations)", lambda: pedrank.pactran(features, labels)),
                 ("pactran:exact (Newton)", lambda: pedrank.score(features, labels, "pactran:exact"))]
        if not args.skip_long:
            calls.append(("pactran (L-BFGS-B to tol 1e-6)", lambda: pedrank.pactran(features, labels, max_iter=20000)))
        for name, call in calls:
            start = time.perf_counter()
            value = float(call())
            seconds = time.perf_counter() - start
            rows.append({"shape": shape, "call": name, "seconds": seconds, "value": value,
                         "load": os.getloadavg()[0]})
            print(f"{shape:>16}  {name:<38} {seconds:9.2f} s  {value:.10f}  (load {os.getloadavg()[0]:.1f})",
                  flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "rows": rows},
                      handle, indent=1)


if __name__ == "__main__":
    main()
