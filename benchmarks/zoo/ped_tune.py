"""Does PED help, and with which setting? ``pedrank tune`` on the zoo's truths, leave-one-dataset-out (issue 25,
item 5).

evidence.py answers "does PED's *default* setting help each score" with a bootstrap interval. This script answers
the second half of the question the way a user can: for each score, :func:`pedrank.workflow.tune.tune` scores every
dataset's pool at every setting of PED's default grid (18 settings: elastic k x radius coefficient) and PED off,
chooses the setting on all datasets but one, and scores the held-out one with it. The leave-one-out mean weighted
tau, set against PED off's, is the out-of-sample gain a user can expect from tuning PED on data like this; the
in-sample best (the PED paper's Table 1 practice) is shown beside it as the optimistic bound.

The pools are evidence.py's: the training rows of each dataset (``full`` budget, the rows the scores see there),
the models with a truth whose features pedrank accepts (dead features are left out, as there). Truths: the
image and text campaigns (mean accuracy over the seeds that trained), the fine-tuned datasets, and the linear probe.

    # resumable: tune's own disk cache per truth (cache/ped_tune/, git-ignored); writes ped_tune.json and ped_tune.md
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/ped_tune.py \
        --metrics logme sfda gbc h_score regularized_h_score transrate
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import evidence  # noqa: E402

OUT_JSON = HERE / "ped_tune.json"
OUT_MD = HERE / "ped_tune.md"
CACHE = HERE / "cache" / "ped_tune"
#: Scores tuned: every feature score whose PED variant evidence.py judges, but the pool scores (ncti, etran: tune
#: scores each model on its own), the held-out-accuracy scores (knn, itm: PED leaks their held-out labels,
#: pedrank.PedLeakageWarning) and, for time, the slow per-call ones (parc's O(N^2) Spearman, pactran's optimiser:
#: 19 settings x ~45 models x 8 targets each).
METRICS = ("logme", "sfda", "gbc", "nleep", "h_score", "regularized_h_score", "transrate", "lead")


def pools_and_truth(set_name):
    sets = evidence.feature_sets([set_name])
    truth, _ = evidence.truths(sets, refresh=False)
    pools, kept_truth = {}, {}
    for dataset, item in sets[set_name].items():
        rows = evidence.unit_rows(item, "full", None)
        informative, _ = evidence.informative_models(item, rows)
        models = [m for m in informative if m in truth[set_name].get(dataset, {})]
        if len(models) < 3:
            continue
        pools[dataset] = {m: (np.ascontiguousarray(item["features"][m][0][rows], dtype=np.float64),
                              item["features"][m][1][rows]) for m in models}
        kept_truth[dataset] = {m: truth[set_name][dataset][m] for m in models}
    return pools, kept_truth


def run(set_name, metrics):
    from pedrank.workflow.tune import tune

    pools, truth = pools_and_truth(set_name)
    print(f"{set_name}: {len(pools)} datasets, {sum(len(p) for p in pools.values())} (dataset, model) pools",
          flush=True)
    result = tune(pools, truth, metrics=list(metrics), cache=CACHE / set_name, progress=False)
    print(result.to_string(), flush=True)
    return result.to_dict()


def _cell(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.3f}"


def gain_interval(entry, datasets, n_boot=2000, seed=0):
    """Leave-one-out minus PED off, mean over datasets, with a 95 % bootstrap interval over the datasets and the
    share of draws in which the gain is positive (the datasets are the unit that varies: a user's next dataset)."""
    columns = entry["columns"]
    diffs = np.array([(columns["leave-one-out"][d] or 0.0) - (columns["off"][d] or 0.0) for d in datasets])
    rng = np.random.default_rng(seed)
    draws = diffs[rng.integers(0, len(diffs), size=(n_boot, len(diffs)))].mean(axis=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    return float(diffs.mean()), float(low), float(high), float(np.mean(draws > 0) + 0.5 * np.mean(draws == 0))


def render(results):
    lines = ["### Does tuning PED carry over? `pedrank tune`, leave-one-dataset-out",
             "",
             "Per truth and score: the mean weighted tau over the datasets of PED off, PED's default setting, the "
             "setting chosen on the other datasets and scored on the held-out one (leave-one-out: what a user can "
             "expect), and the in-sample best per dataset (the PED paper's Table 1 practice: optimistic). "
             "\"recommended\": tune's advice (the setting chosen on all datasets when its leave-one-out mean beats "
             "PED off's, else off). The interval resamples the datasets (2,000 draws). "
             "Grid: elastic k in {0.6, 0.8, 1.0, 1.2, 1.5, 2.0} x radius coefficient in "
             "{0.3, 0.6, 1.0}, plus off. Command: `python benchmarks/zoo/ped_tune.py` (module docstring).",
             ""]
    for set_name, result in results.items():
        datasets = result["datasets"]
        lines += [f"**{set_name}** ({len(datasets)} datasets: {', '.join(datasets)})", "",
                  "| score | off | default | leave-one-out | LOO - off [95 % over datasets] | P(gain > 0) "
                  "| in-sample best | recommended | LOO settings |",
                  "|---|---:|---:|---:|---|---:|---:|---|---|"]
        for metric, entry in result["metrics"].items():
            columns = entry["columns"]
            off = columns["off"]["mean"]
            loo = columns["leave-one-out"]["mean"]
            gain, low, high, positive = gain_interval(entry, datasets)
            settings = sorted({fold["setting"] for fold in entry["folds"]})
            lines.append(f"| {metric} | {_cell(off)} | {_cell(columns['default']['mean'])} | {_cell(loo)} | "
                         f"{gain:+.3f} [{low:+.3f}, {high:+.3f}] | {positive:.2f} | "
                         f"{_cell(columns['in-sample best']['mean'])} | {entry['recommended']} | "
                         f"{'; '.join(settings)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["campaign", "text_campaign", "finetuned", "probe"],
                        choices=["campaign", "text_campaign", "finetuned", "probe"])
    parser.add_argument("--metrics", nargs="+", default=list(METRICS))
    args = parser.parse_args(argv)
    results = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {}
    for set_name in args.sets:
        results[set_name] = run(set_name, args.metrics)
        OUT_JSON.write_text(json.dumps(results, indent=1))
        OUT_MD.write_text(render(results) + "\n")
    print(render(results))


if __name__ == "__main__":
    main()
