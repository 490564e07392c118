"""The field's 2023 scores (ETran, NCTI, PACTran, k-NN; with and without PED) on the zoo's cached features,
against the linear-probe accuracies of run_zoo.py's last run (cache/results.json: same split, same rows).

    PYTHONPATH=python nice -n 10 python benchmarks/zoo/score_2023.py [--json out.json]

Scores on the training rows, as run_zoo.py. "etran" / "ncti" are the single-model raw sums; "etran (pool)" /
"ncti (pool)" the authors' pool-normalised numbers (pedrank.scores.etran.etran_pool / pedrank.scores.ncti.ncti_pool) over the
dataset's models. Prints markdown tables (weighted tau, Kendall tau, top-1 relative accuracy).
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
sys.path.insert(0, str(HERE))

from run_zoo import CACHE, log, ranking_metrics, split  # noqa: E402

DATASETS = ("digits", "mnist", "lfw", "fortunes", "wordnet")
VISION = ("digits", "mnist", "lfw")
SINGLE = ("etran", "ncti", "pactran", "knn")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=CACHE / "results_2023.json")
    args = parser.parse_args(argv)
    import pedrank
    from pedrank.scores.etran import etran_pool
    from pedrank.scores.ncti import ncti_pool

    accuracy = json.loads((CACHE / "results.json").read_text())["accuracy"]
    scores, seconds = {}, {}
    for dataset in DATASETS:
        models = sorted(key.split("/")[1] for key in accuracy if key.split("/")[0] == dataset)
        pool, labels = {}, None
        for model in models:
            with np.load(CACHE / f"{dataset}__{model}.npz") as archive:
                features, labels = archive["features"], archive["labels"]
            train, _ = split(labels)
            pool[model] = np.ascontiguousarray(features[train], dtype=np.float64)
        y = labels[train]
        for ped in (False, True):
            tag = "+PED" if ped else ""
            for metric in SINGLE:
                start = time.perf_counter()
                for model in models:
                    scores[f"{dataset}/{model}/{metric}{tag}"] = float(pedrank.score(pool[model], y, metric, ped=ped))
                seconds[f"{dataset}/{metric}{tag}"] = time.perf_counter() - start
                log(f"{dataset} {metric}{tag}: {seconds[f'{dataset}/{metric}{tag}']:.1f} s")
            for name, function in (("etran (pool)", etran_pool), ("ncti (pool)", ncti_pool)):
                table = function(pool, y, ped=ped)
                for model in models:
                    scores[f"{dataset}/{model}/{name}{tag}"] = float(table.scores[model])
    names = [f"{m}{t}" for m in SINGLE + ("etran (pool)", "ncti (pool)") for t in ("", "+PED")]
    rows = {}
    for name in names:
        per = {}
        for dataset in DATASETS:
            models = sorted(key.split("/")[1] for key in accuracy if key.split("/")[0] == dataset)
            per[dataset] = ranking_metrics([scores[f"{dataset}/{m}/{name}"] for m in models],
                                           [accuracy[f"{dataset}/{m}"] for m in models])
        rows[name] = per
    args.json.write_text(json.dumps({"scores": scores, "table": rows, "seconds": seconds}, indent=1))
    for key, title in (("weighted_tau", "Weighted tau"), ("kendall_tau", "Kendall tau"),
                       ("top1_relative_accuracy", "Top-1 relative accuracy")):
        print(f"\n#### {title}\n| score | " + " | ".join(DATASETS) + " | mean vision | mean text | mean all |")
        print("|---" * (len(DATASETS) + 4) + "|")
        for name in names:
            values = [rows[name][d][key] for d in DATASETS]
            means = [np.nanmean(values[:3]), np.nanmean(values[3:]), np.nanmean(values)]
            fmt = "{:.3f}" if key.startswith("top1") else "{:+.3f}"
            print(f"| {name} | " + " | ".join(fmt.format(v) for v in values + means) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
