"""Is P(best) calibrated? ``rank(confidence=B)``'s probability that the top model is best, against whether it is
the best after fine-tuning (and by the linear probe), on the zoo (issue 27).

    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/calibration.py --resamples 50

For each truth's datasets (fine-tuned: 3 image datasets, 6 models, scores on the features at the fine-tuning
resolution; probe: 5 datasets) and each metric, the model pool is ranked on the full training part with B
stratified bootstrap resamples. Reported per metric: the mean P(best) of the predicted best, the share of datasets
where the predicted best is the truth's best (hit rate), and the mean share of resamples whose best is the truth's
best. A calibrated P(best) has mean P(best) close to the hit rate. Writes calibration.json and calibration.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

METRICS = ("sfda", "logme", "gbc", "h_score")  # fast enough for B resamples of every pool here; PACTran takes ~50x


def run(args):
    import evidence

    import pedrank

    sets = evidence.feature_sets()
    truth_of, _ = evidence.truths(sets)
    results = []
    for set_name in ("finetuned", "probe"):
        for dataset, item in sets[set_name].items():
            truth = truth_of[set_name][dataset]
            models = [m for m in item["models"] if m in truth and np.isfinite(truth[m])]
            best = max(models, key=lambda m: truth[m])
            rows = np.sort(item["train"])
            pool = {m: (np.ascontiguousarray(item["features"][m][0][rows], dtype=np.float64),
                        item["features"][m][1][rows]) for m in models}
            for metric in args.metrics:
                start = time.perf_counter()
                table = pedrank.rank(pool, metric=metric, confidence=args.resamples, random_state=0,
                                     errors="row", progress=False)
                p_truth_best = next(r.p_best for r in table if r.model == best)
                results.append({"truth": set_name, "dataset": dataset, "metric": metric, "predicted": table[0].model,
                                "p_best": table[0].p_best, "truth_best": best,
                                "hit": table[0].model == best, "p_truth_best": p_truth_best,
                                "seconds": round(time.perf_counter() - start, 1)})
                print(results[-1], flush=True)
    (HERE / "calibration.json").write_text(json.dumps({"resamples": args.resamples, "results": results}, indent=1))
    lines = [f"# Calibration of P(best) ({args.resamples} resamples, full training rows)\n",
             "| truth | metric | datasets | mean P(best) of the predicted best | hit rate | mean P(truth's best) |",
             "|---|---|---|---|---|---|"]
    for set_name in ("finetuned", "probe"):
        for metric in args.metrics:
            rows = [r for r in results if r["truth"] == set_name and r["metric"] == metric]
            lines.append(f"| {set_name} | {metric} | {len(rows)} | {np.mean([r['p_best'] for r in rows]):.2f} | "
                         f"{np.mean([r['hit'] for r in rows]):.2f} | "
                         f"{np.mean([r['p_truth_best'] for r in rows]):.2f} |")
    everything = results
    lines.append(f"\nAll {len(everything)} (truth, dataset, metric) rankings: mean P(best) "
                 f"{np.mean([r['p_best'] for r in everything]):.2f}, hit rate "
                 f"{np.mean([r['hit'] for r in everything]):.2f}.")
    (HERE / "calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=50)
    parser.add_argument("--metrics", nargs="+", default=list(METRICS))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
