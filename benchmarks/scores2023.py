"""The 2023 scores (ETran, NCTI, PACTran, k-NN) against their NumPy references, in the same run (issue 15).

Each call runs in a fresh child process on the benchmark features (benchmarks/_data.py: float32, non-negative,
clustered by class, fixed seed); peak memory is the child's VmHWM minus its VmRSS just before the call, as in
benchmarks/table.py. With ``--json`` every finished cell is written at once and a rerun skips the cells the file
already holds (key: score, implementation, N, D, C), so a run can be resumed or extended (a smaller ``--n`` for a
reference that does not fit at N = 50,000).

    PYTHONPATH=python python benchmarks/scores2023.py --json benchmarks/scores2023_run.json
    PYTHONPATH=python python benchmarks/scores2023.py --scores knn --n 5000 --json benchmarks/scores2023_run.json
    PYTHONPATH=python python benchmarks/scores2023.py --implementations pedrank --threads 2 --json ...

pedrank's thread policy gives a call one thread when other processes run (even niced ones), while the reference's
numpy uses every core: ``--threads 2`` compares both on two cores.
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
SCORES = ("etran", "ncti", "pactran", "knn")
IMPLEMENTATIONS = ("pedrank", "reference")


def child(score, implementation, n, d, c):
    sys.path.insert(0, str(HERE))
    from _data import make_features, measure_call

    features, labels = make_features(n, d, c)
    import pedrank
    import pedrank.reference

    function = getattr(pedrank if implementation == "pedrank" else pedrank.reference, score)
    value, seconds, peak = measure_call(lambda: function(features, labels))
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "value": float(value)}))


def key(row):
    return row["score"], row["implementation"], row["n"], row["d"], row["c"], row.get("threads", "policy")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", nargs="+", default=list(SCORES), choices=SCORES)
    parser.add_argument("--implementations", nargs="+", default=list(IMPLEMENTATIONS), choices=IMPLEMENTATIONS)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=2_048)
    parser.add_argument("--c", type=int, default=100)
    parser.add_argument("--threads", default="policy",
                        help="PEDRANK_THREADS for pedrank's calls (default: the thread policy; the reference runs on "
                             "numpy's threads either way)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", help="write every finished cell here (resumes)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        score, implementation, n, d, c = args.child
        child(score, implementation, int(n), int(d), int(c))
        return 0

    rows = []
    if args.json and os.path.exists(args.json):
        with open(args.json) as handle:
            rows = json.load(handle)["rows"]
    done = {key(row) for row in rows}
    for score in args.scores:
        for implementation in args.implementations:
            row = {"score": score, "implementation": implementation, "n": args.n, "d": args.d, "c": args.c,
                   "threads": args.threads if implementation == "pedrank" else "policy"}
            if key(row) in done:
                continue
            with open("/proc/loadavg") as handle:
                row["loadavg"] = float(handle.read().split()[0])
            row["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            command = [sys.executable, __file__, "--child", score, implementation, str(args.n), str(args.d),
                       str(args.c)]
            try:
                env = dict(os.environ)
                env.pop("PEDRANK_THREADS", None)
                if args.threads != "policy":
                    env["PEDRANK_THREADS"] = args.threads
                result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
                if result.returncode == 0:
                    row.update(json.loads(result.stdout.strip().splitlines()[-1]))
                else:
                    row["error"] = (result.stderr.strip().splitlines() or ["failed"])[-1][:300]
            except subprocess.TimeoutExpired:
                row["error"] = f"timeout: over {args.timeout:.0f} s"
            with open("/proc/loadavg") as handle:
                row["loadavg_after"] = float(handle.read().split()[0])
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json + ".tmp", "w") as handle:
                    json.dump({"cpus": os.cpu_count(), "rows": rows}, handle, indent=1)
                os.replace(args.json + ".tmp", args.json)

    print("\n| score | N x D x C | pedrank threads | reference s | pedrank s | reference / pedrank | pedrank peak "
          "| reference peak | rel. diff |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    cells = {key(row): row for row in rows}
    for (score, implementation, n, d, c, threads), ours in sorted(cells.items()):
        if implementation != "pedrank":
            continue
        ref = cells.get((score, "reference", n, d, c, "policy"), {})
        ratio = f"{ref['seconds'] / ours['seconds']:.1f}" if "seconds" in ref and "seconds" in ours else "-"
        rel = (f"{abs(ours['value'] - ref['value']) / abs(ref['value']):.1e}"
               if "value" in ref and "value" in ours and ref["value"] else "-")
        print(f"| {score} | {n} x {d} x {c} | {threads} | {ref.get('seconds', float('nan')):.2f} | "
              f"{ours.get('seconds', float('nan')):.2f} | {ratio} | {ours.get('peak_bytes', 0) / 2**20:,.0f} MiB | "
              f"{ref.get('peak_bytes', 0) / 2**20:,.0f} MiB | {rel} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
