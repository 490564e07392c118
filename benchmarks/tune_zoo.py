"""Tune PED on the offline model zoo, leave one dataset out: time, PED/scoring share and in- vs out-of-sample tau.

    PYTHONPATH=python nice -n 10 python benchmarks/tune_zoo.py [--metrics logme sfda gbc] [--datasets ...]
        [--truth probe|finetune] [--cache DIR]

Pools: the zoo's cached features (benchmarks/zoo/cache/{dataset}__{model}.npz), scored on the training rows of
run_zoo.py's split (the rows the linear probe was fitted on). Truth: the linear probe's test accuracy
(cache/results.json, written by run_zoo.py) or fine-tuned accuracy (benchmarks/zoo/finetune_accuracies.csv, for
the datasets and models it covers). Grid: pedrank.tune's default (k x radius, 18 settings) + PED off.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ZOO = HERE / "zoo"
sys.path.insert(0, str(ZOO))


def load_truth(kind: str) -> dict[str, dict[str, float]]:
    if kind == "probe":
        accuracy = json.loads((ZOO / "cache" / "results.json").read_text())["accuracy"]
        out: dict[str, dict[str, float]] = {}
        for key, value in accuracy.items():
            dataset, model = key.split("/")
            out.setdefault(dataset, {})[model] = float(value)
        return out
    from pedrank.workflow.evaluate import read_truth

    path = ZOO / "finetune_accuracies.csv"
    header = path.read_text().splitlines()[0].split(",")
    return {d: dict(read_truth(path, d).accuracies) for d in header[1:]}


def markdown(result, title: str) -> str:
    from pedrank.workflow.tune import setting_label

    lines = [f"#### {title}", "", "| score | column | " + " | ".join(result.datasets) + " | mean |",
             "|---|---|" + "---|" * (len(result.datasets) + 1)]
    for metric in result.metrics:
        for column, values in result.rows(metric).items():
            lines.append(f"| {metric} | {column} | " + " | ".join(f"{values[d]:+.3f}" for d in result.datasets)
                         + f" | {values['mean']:+.3f} |")
        folds = {f.held_out: f for f in result.folds[metric]}
        lines.append(f"| {metric} | LOO choice | " + " | ".join(setting_label(folds[d].setting) for d in result.datasets)
                     + f" | on all: {setting_label(result.chosen[metric])} |")
        lines.append(f"| {metric} | in-sample choice | "
                     + " | ".join(setting_label(result.in_sample(metric, d)[0]) for d in result.datasets) + " | |")
    lines += ["", f"Means over {len(result.datasets)} datasets", "",
              "| score | in-sample best (PED grid, per dataset) | leave-one-out | chosen on all (in-sample) | "
              "PED default | PED off | chosen on all | recommended |", "|---|---|---|---|---|---|---|---|"]
    for metric in result.metrics:
        rows = result.rows(metric)
        lines.append(f"| {metric} | " + " | ".join(f"{rows[c]['mean']:+.3f}" for c in
                                                   ("in-sample best", "leave-one-out", "chosen on all", "default", "off"))
                     + f" | {setting_label(result.chosen[metric])} | {setting_label(result.recommended[metric])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", default=["logme", "sfda", "gbc"], help="score names, or all")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--truth", choices=("probe", "finetune"), default="probe")
    parser.add_argument("--cache", type=Path, default=ZOO / "cache" / "tune")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from run_zoo import split

    from pedrank.workflow.tune import tune

    truth = load_truth(args.truth)
    started = time.perf_counter()
    datasets: dict[str, dict] = {}
    for path in sorted((ZOO / "cache").glob("*__*.npz")):
        dataset, model = path.stem.split("__", 1)
        if args.datasets and dataset not in args.datasets:
            continue
        if dataset not in truth or model not in truth[dataset]:
            continue
        with np.load(path) as archive:
            features, labels = archive["features"], archive["labels"]
        train, _ = split(labels)
        datasets.setdefault(dataset, {})[model] = (np.ascontiguousarray(features[train], dtype=np.float64),
                                                   labels[train])
    loading = time.perf_counter() - started
    shapes = {d: {m: pool[m][0].shape for m in pool} for d, pool in datasets.items()}
    print(f"pools ({args.truth} truth): " + "; ".join(f"{d}: {len(p)} models" for d, p in shapes.items()),
          file=sys.stderr, flush=True)
    metrics = "all" if args.metrics == ["all"] else args.metrics  # all: every per-model feature score
    result = tune(datasets, {d: truth[d] for d in datasets}, metrics=metrics, cache=args.cache,
                          progress=False)
    s = result.seconds
    print(markdown(result, f"{'linear-probe' if args.truth == 'probe' else 'fine-tuned'} truth, "
                           f"{', '.join(result.metrics)}"))
    print(f"\ntime: {s['total']:.1f}s in tune (+ {loading:.1f}s reading the npz files): PED {s['ped']:.1f}s "
          f"({s['ped'] / s['total']:.1%}), scoring {s['scoring']:.1f}s ({s['scoring'] / s['total']:.1%}); "
          f"{result.calls} scores computed, {result.shared} shared between settings with equal displacements, "
          f"{result.cached} read from the disk cache; {len(result.settings)} candidates x "
          f"{sum(len(p) for p in datasets.values())} pool entries x {len(result.metrics)} scores = "
          f"{len(result.settings) * sum(len(p) for p in datasets.values()) * len(result.metrics)} (+ the default)")
    if args.json:
        args.json.write_text(result.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
