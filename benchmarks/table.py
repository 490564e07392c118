"""Print the benchmark table of issue 4: pedrank against pedrank.reference and numpy's X.T @ X.

    python benchmarks/table.py                 # the two large shapes (several minutes, up to ~8 GB for the reference)
    python benchmarks/table.py --shape small   # a quick run at the CI shape

Every measurement runs in a fresh child process (same machine, same run), so peak memory is that call's own:
the child's peak resident set size (VmHWM) minus its resident size just before the call, the features already
made. Features: float32, fixed seed (benchmarks/_data.py). "gram32" is numpy X.T @ X on the float32 features
as given, "gram64" the same on a float64 copy (the floor for a float64-exact computation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (label, shape, task): tasks are run by the child below
ROWS = {
    "large": [
        ("LogME", "large", "logme"),
        ("SFDA", "large", "sfda"),
        ("GBC", "large", "gbc"),
        ("PED step", "large", "ped_step"),
        ("PED forces", "large", "ped_forces"),
        ("PED loop", "large", "ped_loop"),
    ],
    "many_classes": [
        ("PED step", "many_classes", "ped_step"),
        ("PED loop", "many_classes", "ped_loop"),
        ("PED+SFDA", "many_classes", "ped_sfda"),
    ],
    "small": [
        ("LogME", "small", "logme"),
        ("SFDA", "small", "sfda"),
        ("GBC", "small", "gbc"),
        ("PED step", "small", "ped_step"),
        ("PED loop", "small", "ped_loop"),
        ("PED+SFDA", "small", "ped_sfda"),
    ],
}


def child(shape_name, task, implementation):
    """Run one measurement; print JSON {seconds, peak_bytes, value}."""
    sys.path.insert(0, str(HERE))
    import numpy as np

    from _data import SHAPES, make_features

    n, d, n_classes = SHAPES[shape_name]
    features, labels = make_features(n, d, n_classes)
    if task == "gram64":
        features = features.astype(np.float64)
    import pedrank
    import pedrank.reference
    from pedrank import _core
    from pedrank.reference.ped import ped_forces as reference_ped_forces
    from pedrank.reference.ped import ped_step as reference_ped_step
    from pedrank.scores.ped import rescaling_statistics

    module = pedrank if implementation == "pedrank" else pedrank.reference
    extra = {}
    if task in ("gram32", "gram64"):
        call = lambda: features.T @ features  # noqa: E731
    elif task in ("logme", "sfda", "gbc"):
        call = lambda: getattr(module, task)(features, labels)  # noqa: E731
    elif task == "ped_step":
        # forces, then the moved features written to a new array (the reference's step does the same work)
        center, scale = rescaling_statistics(None, features)
        step = _core.ped_step if implementation == "pedrank" else reference_ped_step
        call = lambda: float(np.abs(step(features, labels, n_classes, center, scale, 0.6, 1.0, 0.1)[1]).sum())  # noqa: E731
    elif task == "ped_forces":
        # the statistics pass and the pairwise forces, without writing moved features
        center, scale = rescaling_statistics(None, features)
        forces = _core.ped_forces if implementation == "pedrank" else reference_ped_forces
        call = lambda: float(np.abs(forces(features, labels, n_classes, center, scale, 0.6, 1.0, 0.1)[0]).sum())  # noqa: E731
    elif task == "ped_loop":
        # the whole PED call (validation, statistics, every step, the moved features), default options
        def call():
            result = module.ped(features, labels)
            extra["steps"] = result.steps
            return float(sum(result.movements))
    elif task == "ped_sfda":
        call = lambda: module.score(features, labels, "sfda", ped=True)  # noqa: E731
    else:
        raise ValueError(task)
    from _data import measure_call

    value, seconds, peak = measure_call(call)
    value = float(value) if np.ndim(value) == 0 else None
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "value": value, **extra}))


def measure(shape_name, task, implementation, timeout):
    command = [sys.executable, __file__, "--child", shape_name, task, implementation]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"seconds": float("nan"), "peak_bytes": 0, "value": None, "error": f"timeout {timeout}s"}
    if done.returncode != 0:
        return {"seconds": float("nan"), "peak_bytes": 0, "value": None, "error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt_bytes(n):
    return f"{n / 2**20:,.0f} MiB"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["large", "many_classes", "small", "both"], default="both")
    parser.add_argument("--no-reference", action="store_true", help="skip pedrank.reference (fast)")
    parser.add_argument("--reference-ped-sfda", action="store_true",
                        help="also run the reference PED+SFDA loop at C=397 (about 8 GB, minutes)")
    parser.add_argument("--only", help="comma-separated tasks to run (e.g. ped_step,ped_loop); default all")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return

    sys.path.insert(0, str(HERE))
    from _data import SHAPES

    shapes = ["large", "many_classes"] if args.shape == "both" else [args.shape]
    results = []
    header = (f"{'score':<16} {'shape (N, D, C)':<20} {'reference s':>11} {'pedrank s':>9} {'gram32 s':>8} "
              f"{'gram64 s':>8} {'ref/ped':>7} {'ped/g32':>7} {'ped/g64':>7} {'ped peak':>10} {'ref peak':>10} "
              f"{'rel diff':>8}")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}")
    print(header)
    for shape_name in shapes:
        n, d, c = SHAPES[shape_name]
        gram32 = measure(shape_name, "gram32", "numpy", args.timeout)
        gram64 = measure(shape_name, "gram64", "numpy", args.timeout)
        for label, _, task in ROWS[shape_name]:
            if args.only and task not in args.only.split(","):
                continue
            ours = measure(shape_name, task, "pedrank", args.timeout)
            skip_ref = args.no_reference or (task == "ped_sfda" and shape_name != "small"
                                             and not args.reference_ped_sfda)
            ref = None if skip_ref else measure(shape_name, task, "reference", args.timeout)
            ref_s = ref["seconds"] if ref else float("nan")
            rel = (abs(ours["value"] - ref["value"]) / abs(ref["value"])
                   if ref and ours["value"] is not None and ref["value"] not in (None, 0) else float("nan"))
            if "steps" in ours:
                label = f"{label} ({ours['steps']} st.)"
                if ref and ref.get("steps") != ours["steps"]:
                    print(f"    steps differ: reference {ref.get('steps')}, pedrank {ours['steps']}", flush=True)
            print(f"{label:<16} {f'({n}, {d}, {c})':<20} {ref_s:>11.2f} {ours['seconds']:>9.2f} "
                  f"{gram32['seconds']:>8.2f} {gram64['seconds']:>8.2f} {ref_s / ours['seconds']:>7.1f} "
                  f"{ours['seconds'] / gram32['seconds']:>7.2f} {ours['seconds'] / gram64['seconds']:>7.2f} "
                  f"{fmt_bytes(ours['peak_bytes']):>10} {fmt_bytes(ref['peak_bytes']) if ref else '-':>10} "
                  f"{rel:>8.1e}", flush=True)
            for who, r in (("pedrank", ours), ("reference", ref)):
                if r and "error" in r:
                    print(f"    {who} failed: {r['error']}", flush=True)
            results.append({"score": label, "shape": [n, d, c], "pedrank": ours, "reference": ref,
                            "gram32": gram32, "gram64": gram64})
    print(f"# float64 features at ({SHAPES['many_classes'][0]}, {SHAPES['many_classes'][1]}): "
          f"{fmt_bytes(SHAPES['many_classes'][0] * SHAPES['many_classes'][1] * 8)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
