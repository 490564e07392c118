"""Does the FeatureScaleWarning's remedy help? Each scale-dependent score against every truth of the zoo, on the
features as extracted and on each model's features divided by its scale (pedrank's ``feature_scale``: the RMS
of the centred features), so that every model of a pool is on one scale.

    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 15 python benchmarks/zoo/scale_check.py score   # resumable
    PYTHONPATH=python python benchmarks/zoo/scale_check.py report                              # scale_check.md

The units are evidence.py's measured units (the full training rows, and 200 rows where the training part is
larger), with the models evidence.py judges there (those pedrank accepts and the truth has); the truth is the
same (fine-tuned accuracy, the mean over its seeds; the probe for the probe set). Each unit's values are cached in
``cache/scale_check/`` (git-ignored; the report's table is committed). The scores are the single-model functions
(NCTI and ETran without their authors' pool step). Only the scale changes between the two columns.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import evidence  # noqa: E402

CACHE = HERE / "cache" / "scale_check"
REPORT = HERE / "scale_check.md"
#: The scores that move with the scale somewhere in the zoo's range (docs/robustness.md), and logme:exact, which
#: does not below an RMS of 10-20, as the control.
METRICS = ("logme", "logme:exact", "sfda", "gbc", "transrate", "etran", "pactran", "ncti")
BUDGETS = ("full", "small")


def unit_path(set_name, dataset, budget):
    return CACHE / f"{set_name}__{dataset}__{budget}.json"


def score(args):
    import pedrank
    from pedrank._engine.validation import feature_scale
    from pedrank.scores.registry import resolve_metric
    from pedrank.scores.scoring import scale_dependence

    sets = evidence.feature_sets(args.sets)
    truth, _ = evidence.truths(sets, refresh=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    for set_name, datasets in sets.items():
        for dataset, item in datasets.items():
            for budget in BUDGETS:
                if budget == "small" and len(item["train"]) <= evidence.SMALL_ROWS:
                    continue
                path = unit_path(set_name, dataset, budget)
                if path.exists():
                    continue
                rows = evidence.unit_rows(item, budget, None)
                kept, _ = evidence.informative_models(item, rows)
                models = [m for m in kept if m in truth[set_name].get(dataset, {})]
                if len(models) < 3:
                    continue
                print(f"{set_name} {dataset} {budget}: {len(models)} models", flush=True)
                features = {m: np.ascontiguousarray(item["features"][m][0][rows], dtype=np.float64) for m in models}
                labels = item["features"][models[0]][1][rows]
                scales = {m: feature_scale(features[m]) for m in models}
                shapes = {m: (scales[m], *features[m].shape) for m in models}
                unit = {"models": models, "truth": [truth[set_name][dataset][m] for m in models],
                        "scales": [scales[m] for m in models], "widths": [features[m].shape[1] for m in models],
                        "rows": len(rows), "values": {}, "warns": {}}
                for metric in METRICS:
                    entry, options = resolve_metric(metric)
                    unit["warns"][metric] = scale_dependence(entry, options, shapes) is not None
                    for form, divide in (("raw", False), ("unit", True)):
                        values = []
                        for m in models:
                            X = features[m] / scales[m] if divide else features[m]
                            try:
                                with warnings.catch_warnings():
                                    warnings.simplefilter("ignore")
                                    values.append(float(pedrank.score(X, labels, metric)))
                            except Exception as error:  # a refusal is recorded as NaN (a failed ranking)
                                print(f"    {m} {metric} {form}: {type(error).__name__}: {error}", flush=True)
                                values.append(math.nan)
                        unit["values"][f"{metric}/{form}"] = values
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(unit))
                os.replace(tmp, path)


def _tau(values, truth):
    return evidence.ranking(values, truth)["weighted_tau"]


def report(args):
    rng = np.random.default_rng(0)
    rows = []
    by_set: dict = {}
    for path in sorted(CACHE.glob("*.json")):
        set_name, dataset, budget = path.stem.split("__")
        unit = json.loads(path.read_text())
        by_set.setdefault(set_name, []).append((dataset, budget, unit))
    lines = ["# Does dividing each model's features by its scale change the scores' rankings? (scale_check.py)", "",
             "Weighted tau against each truth on the features as extracted (raw) and divided by each model's scale "
             "(RMS of the centred features), over evidence.py's measured units (full rows; 200 rows where the "
             "training part is larger). Difference: unit - raw, mean over the units with a 95 % interval from "
             f"{args.boot} bootstrap draws of the units; `warned`: units where `pedrank.rank` warns "
             "(FeatureScaleWarning) on the raw features. A unit whose raw or unit ranking failed (a refusal) is "
             "left out of both.", ""]
    for set_name, units in by_set.items():
        scales = [s for _, _, u in units for s in u["scales"]]
        lines += [f"## {set_name}: {len(units)} units, {sum(len(u['models']) for _, _, u in units)} model rows, "
                  f"feature scales {min(scales):.3g} to {max(scales):.3g}", "",
                  "| score | raw | unit scale | difference [95 %] | units | warned |", "|---|---|---|---|---|---|"]
        for metric in METRICS:
            pairs = []
            warned = 0
            for _, _, unit in units:
                raw = _tau(unit["values"][f"{metric}/raw"], unit["truth"])
                scaled = _tau(unit["values"][f"{metric}/unit"], unit["truth"])
                warned += bool(unit["warns"][metric])
                if np.isfinite(raw) and np.isfinite(scaled):
                    pairs.append((raw, scaled))
            if not pairs:
                continue
            pairs = np.array(pairs)
            differences = pairs[:, 1] - pairs[:, 0]
            draws = rng.integers(0, len(differences), size=(args.boot, len(differences)))
            low, high = np.percentile(differences[draws].mean(axis=1), [2.5, 97.5])
            lines.append(f"| {metric} | {pairs[:, 0].mean():+.3f} | {pairs[:, 1].mean():+.3f} | "
                         f"{differences.mean():+.3f} [{low:+.3f}, {high:+.3f}] | {len(pairs)} | {warned} |")
            rows.append({"set": set_name, "metric": metric, "raw": pairs[:, 0].mean(), "unit": pairs[:, 1].mean(),
                         "difference": differences.mean(), "low": low, "high": high, "units": len(pairs),
                         "warned": warned})
        lines.append("")
    REPORT.write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score")
    p.add_argument("--sets", nargs="*", default=["finetuned", "probe", "campaign", "text_campaign"])
    p.set_defaults(handler=score)
    p = sub.add_parser("report")
    p.add_argument("--boot", type=int, default=2000)
    p.set_defaults(handler=report)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
