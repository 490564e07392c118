"""Extraction against scoring per model in `pedrank select`: is overlapping them (scoring model i in a thread
while model i+1 extracts) worth it?

Extracts the zoo's packaged EfficientNet-Lite0/1/2 features once (cache in a scratch folder, extract_s per
model), then scores the cached features with each metric, PED off and on (``seconds`` per model: the score,
PED included, no extraction). An overlap can save at most the scoring of every model but the last, and only
when a core is free for it.

    python benchmarks/select/make_mnist.py 2000 /tmp/mnist2000.npz     # the zoo's mnist size
    nice -n 10 python benchmarks/select/overlap.py /tmp/mnist2000.npz --json benchmarks/select/overlap_run.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from pedrank.workflow.select import select

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="an .npz of images and labels (make_mnist.py)")
    parser.add_argument("--metrics", default="logme,sfda,gbc")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    models = {f"lite{v}": f"{HERE / 'lite_models.py'}:lite{v}" for v in (0, 1, 2)}
    result: dict = {"data": args.data, "load_before": os.getloadavg(), "threads": os.environ.get("OMP_NUM_THREADS")}
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        first = select(models, args.data, metric="logme", cache_dir=cache, progress=False)
        result["first_run_wall"] = time.perf_counter() - start
        result["extract_seconds"] = {r.model: r.extract_seconds for r in first}
        result["n_features"] = {r.model: r.n_features for r in first}
        print(first, flush=True)
        scores: dict = {}
        for metric in args.metrics.split(","):
            for ped in (False, True):
                table = select(models, args.data, metric=metric, ped=ped, cache_dir=cache, progress=False)
                assert all(r.cached for r in table)
                label = f"{metric}{'+ped' if ped else ''}"
                scores[label] = {r.model: r.seconds for r in table}
                print(f"{label:10s} " + "  ".join(f"{m}: {s:.3f} s" for m, s in scores[label].items()), flush=True)
        result["score_seconds"] = scores
    result["load_after"] = os.getloadavg()
    total_extract = sum(result["extract_seconds"].values())
    print(f"\nextraction, all models: {total_extract:.1f} s (first run's wall {result['first_run_wall']:.1f} s)")
    print("score seconds (all models) and their share of the extraction; an overlap saves at most that share:")
    for label, per_model in scores.items():
        total = sum(per_model.values())
        print(f"  {label:10s} {total:7.3f} s  {100 * total / total_extract:5.2f} %")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
