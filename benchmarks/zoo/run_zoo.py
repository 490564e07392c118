"""Offline model-zoo benchmark: do LogME, SFDA, GBC, NLEEP (with and without PED) rank real pre-trained
models the way a linear probe does?

    bash benchmarks/zoo/setup.sh          # once: pip + apt packages
    PYTHONPATH=python nice -n 19 python benchmarks/zoo/run_zoo.py [--resamples 20] [--json out.json]

Features are cached in benchmarks/zoo/cache/ (delete it to re-extract). Protocol: see ZOO.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # a shared 2-core machine: one thread, everywhere

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CACHE = HERE / "cache"

import zoo_data  # noqa: E402
import zoo_models  # noqa: E402

TEST_FRACTION = 0.3
SPLIT_SEED = 0
PROBE_C = 1.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- features -----------------------------------------------------------------------------------------

def cached_features(dataset: str, model: str, load_data, extractor, data_cache: dict):
    path = CACHE / f"{dataset}__{model}.npz"
    if path.exists():
        with np.load(path) as archive:
            return archive["features"], archive["labels"], 0.0
    if dataset not in data_cache:
        data_cache[dataset] = load_data()
    inputs, labels = data_cache[dataset]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = np.asarray(extractor(inputs, labels), dtype=np.float32)
    seconds = time.perf_counter() - start
    CACHE.mkdir(exist_ok=True)
    np.savez(path, features=features, labels=labels)
    log(f"  extracted {model} on {dataset}: {features.shape} in {seconds:.1f}s")
    return features, labels, seconds


def build_pool(datasets: dict, models: dict):
    pool, seconds, data_cache = {}, 0.0, {}
    for dataset, load_data in datasets.items():
        for model, extractor in models.items():
            features, labels, spent = cached_features(dataset, model, load_data, extractor, data_cache)
            pool[dataset, model] = (features, labels)
            seconds += spent
    return pool, seconds


# --- ground truth: a linear probe -----------------------------------------------------------------------

def split(labels: np.ndarray):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels,
                            random_state=SPLIT_SEED)


def probe_accuracy(features, labels, train, test) -> float:
    """Logistic regression (L2, C=1, lbfgs) on features standardised with the training part's statistics."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=3000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning would only say it stopped at max_iter
        probe.fit(features[train], labels[train])
    return float(probe.score(features[test], labels[test]))


# --- scores -------------------------------------------------------------------------------------------

def metric_functions():
    import pedrank

    metrics = {name: (lambda X, y, ped, name=name: pedrank.score(X, y, name, ped=ped)) for name in
               ("logme", "sfda", "gbc")}
    nleep = getattr(pedrank, "nleep", None)
    if nleep is None or not callable(nleep):
        try:
            from pedrank.scores.nleep import nleep
        except ImportError:
            nleep = None
    if nleep is not None:
        def nleep_score(X, y, ped, nleep=nleep):
            if ped:
                X = pedrank.ped(X, y).features
            return nleep(X, y)

        metrics["nleep"] = nleep_score
    return metrics


def score_pool(pool, indices_of, metrics, variants):
    """{(dataset, model, metric, ped): score} on the rows ``indices_of[dataset]`` of each pair."""
    out = {}
    for (dataset, model), (features, labels) in pool.items():
        rows = indices_of[dataset]
        X, y = np.ascontiguousarray(features[rows], dtype=np.float64), labels[rows]
        for metric, function in metrics.items():
            for ped in variants:
                out[dataset, model, metric, ped] = float(function(X, y, ped))
    return out


# --- ranking quality ------------------------------------------------------------------------------------

def ranking_metrics(scores: list[float], accuracies: list[float]) -> dict:
    scores, accuracies = np.asarray(scores), np.asarray(accuracies)
    return {
        "weighted_tau": float(stats.weightedtau(scores, accuracies)[0]),
        "kendall_tau": float(stats.kendalltau(scores, accuracies)[0]),
        "top1_relative_accuracy": float(accuracies[np.argmax(scores)] / accuracies.max()),
    }


def evaluate_all(scores, accuracy, datasets, models_of, metrics, variants):
    table = {}
    for dataset in datasets:
        models = models_of[dataset]
        truth = [accuracy[dataset, m] for m in models]
        for metric in metrics:
            for ped in variants:
                values = [scores[dataset, m, metric, ped] for m in models]
                table[dataset, metric, ped] = ranking_metrics(values, truth)
    return table


def mean_over(table, datasets, metric, ped, key):
    return float(np.mean([table[d, metric, ped][key] for d in datasets]))


# --- main ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=20, help="bootstrap resamples (0: none)")
    parser.add_argument("--fraction", type=float, default=0.8,
                        help="share of the training rows each resample keeps (drawn without replacement)")
    parser.add_argument("--json", type=Path, default=CACHE / "results.json")
    parser.add_argument("--no-nleep", action="store_true")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    groups = {
        "vision": (zoo_data.IMAGE_DATASETS, zoo_models.VISION_MODELS),
        "text": (zoo_data.TEXT_DATASETS, zoo_models.TEXT_MODELS),
    }
    pool, extract_seconds = {}, 0.0
    models_of = {}
    for group, (datasets, models) in groups.items():
        log(f"features ({group})")
        part, seconds = build_pool(datasets, models)
        pool.update(part)
        extract_seconds += seconds
        models_of.update({d: list(models) for d in datasets})
    all_datasets = list(models_of)

    log("linear probes")
    start = time.perf_counter()
    train_of, test_of, accuracy = {}, {}, {}
    for dataset in all_datasets:
        labels = pool[dataset, models_of[dataset][0]][1]
        train_of[dataset], test_of[dataset] = split(labels)
        for model in models_of[dataset]:
            features, labels = pool[dataset, model]
            accuracy[dataset, model] = probe_accuracy(features, labels, train_of[dataset], test_of[dataset])
    probe_seconds = time.perf_counter() - start

    metrics = metric_functions()
    if args.no_nleep:
        metrics.pop("nleep", None)
    variants = (False, True)
    log(f"scores: {list(metrics)} x PED {variants} on the training rows")
    start = time.perf_counter()
    scores = score_pool(pool, train_of, metrics, variants)
    score_seconds = time.perf_counter() - start
    table = evaluate_all(scores, accuracy, all_datasets, models_of, metrics, variants)

    # Cross-check our ranking metrics against the package's own evaluate (same scipy definitions).
    try:
        from pedrank import evaluate
    except ImportError:
        evaluate = None
    if evaluate is not None:
        for (dataset, metric, ped), row in table.items():
            check = evaluate({m: scores[dataset, m, metric, ped] for m in models_of[dataset]},
                             {m: accuracy[dataset, m] for m in models_of[dataset]})
            assert abs(check.weighted_tau - row["weighted_tau"]) < 1e-12, (dataset, metric, ped)

    boot, boot_accuracy = [], []
    start = time.perf_counter()
    for r in range(args.resamples):
        rng = np.random.default_rng(1000 + r)
        rows = {d: np.sort(rng.choice(train_of[d], size=int(round(args.fraction * len(train_of[d]))),
                                      replace=False)) for d in all_datasets}
        resampled = score_pool(pool, rows, metrics, variants)
        # The probe is refitted on the same resampled training rows (same test part): truth noise too.
        resampled_accuracy = {(d, m): probe_accuracy(*pool[d, m], rows[d], test_of[d])
                              for d in all_datasets for m in models_of[d]}
        boot_accuracy.append(resampled_accuracy)
        boot.append(evaluate_all(resampled, resampled_accuracy, all_datasets, models_of, metrics, variants))
        log(f"  resample {r + 1}/{args.resamples} ({time.perf_counter() - start:.0f}s)")
    boot_seconds = time.perf_counter() - start
    total_seconds = time.perf_counter() - started

    report = render(table, boot, accuracy, scores, pool, models_of, groups, metrics, variants, train_of,
                    test_of)
    report += (f"\nruntime: {total_seconds:.0f}s in all = features {extract_seconds:.0f}s (0 when cached) + "
               f"probes {probe_seconds:.0f}s + scores {score_seconds:.0f}s + {args.resamples} resamples "
               f"{boot_seconds:.0f}s (+ loading)\n")
    print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "accuracy": {f"{d}/{m}": a for (d, m), a in accuracy.items()},
        "scores": {f"{d}/{m}/{k}/{'ped' if p else 'plain'}": s for (d, m, k, p), s in scores.items()},
        "table": {f"{d}/{k}/{'ped' if p else 'plain'}": row for (d, k, p), row in table.items()},
        "bootstrap": [{f"{d}/{k}/{'ped' if p else 'plain'}": row for (d, k, p), row in b.items()}
                      for b in boot],
        "seconds": {"total": total_seconds, "features": extract_seconds, "probes": probe_seconds,
                    "scores": score_seconds, "bootstrap": boot_seconds},
        "bootstrap_accuracy": [{f"{d}/{m}": a for (d, m), a in b.items()} for b in boot_accuracy],
        "resamples": args.resamples, "fraction": args.fraction,
    }, indent=1))
    return 0


def _spread(values: np.ndarray) -> str:
    """mean +- std over the resamples where the tau is defined (a score that ties every model has none)."""
    defined = values[np.isfinite(values)]
    text = f"{defined.mean():+.3f} +- {defined.std(ddof=1):.3f}" if len(defined) > 1 else "n/a"
    return text if len(defined) == len(values) else f"{text} (defined in {len(defined)}/{len(values)})"


def _share(diffs: np.ndarray) -> str:
    defined = diffs[np.isfinite(diffs)]
    if not len(defined):
        return "[n/a]"
    return f"[{np.mean(defined > 1e-12):.0%}/{np.mean(np.abs(defined) <= 1e-12):.0%}]"


def render(table, boot, accuracy, scores, pool, models_of, groups, metrics, variants, train_of, test_of):
    lines = []
    out = lines.append
    out("## Pools and linear-probe accuracy (test part)")
    for dataset, models in models_of.items():
        features, labels = pool[dataset, models[0]]
        out(f"\n{dataset}: {len(labels)} samples, {len(np.unique(labels))} classes, "
            f"train {len(train_of[dataset])} / test {len(test_of[dataset])}")
        for model in sorted(models, key=lambda m: -accuracy[dataset, m]):
            out(f"  {model:20s} d={pool[dataset, model][0].shape[1]:5d}  probe acc {accuracy[dataset, model]:.4f}")

    def name(metric, ped):
        return f"{metric}{'+PED' if ped else ''}"

    for key, title in (("weighted_tau", "Weighted tau"), ("kendall_tau", "Kendall tau"),
                       ("top1_relative_accuracy", "Top-1 relative accuracy")):
        out(f"\n## {title}")
        datasets = list(models_of)
        header = f"| score | " + " | ".join(datasets) + " | mean vision | mean text | mean all |"
        out(header)
        out("|" + "---|" * (len(datasets) + 4))
        for metric in metrics:
            for ped in variants:
                cells = [f"{table[d, metric, ped][key]:+.3f}" for d in datasets]
                means = [mean_over(table, list(ds), metric, ped, key) for ds, _ in groups.values()]
                means.append(mean_over(table, datasets, metric, ped, key))
                out(f"| {name(metric, ped)} | " + " | ".join(cells) + " | "
                    + " | ".join(f"{m:+.3f}" for m in means) + " |")

    if boot:
        out(f"\n## PED minus plain, weighted tau: measured value, and over {len(boot)} resamples "
            "mean +- std [share of resamples where PED is better / equal]; a tau is undefined when a score ties all models")
        datasets = list(models_of)
        out("| score | " + " | ".join(datasets) + " | mean all |")
        out("|" + "---|" * (len(datasets) + 2))
        for metric in metrics:
            cells = []
            for subset in [[d] for d in datasets] + [datasets]:
                measured = (np.mean([table[d, metric, True]["weighted_tau"] for d in subset])
                            - np.mean([table[d, metric, False]["weighted_tau"] for d in subset]))
                diffs = np.array([np.mean([b[d, metric, True]["weighted_tau"] for d in subset])
                                  - np.mean([b[d, metric, False]["weighted_tau"] for d in subset])
                                  for b in boot])
                cells.append(f"{measured:+.3f} ({_spread(diffs)}) {_share(diffs)}")
            out(f"| {metric} | " + " | ".join(cells) + " |")
        out(f"\n## Weighted tau over the {len(boot)} resamples: mean +- std (per dataset, then the mean over all)")
        out("| score | " + " | ".join(datasets) + " | mean all |")
        out("|" + "---|" * (len(datasets) + 2))
        for metric in metrics:
            for ped in variants:
                cells = []
                for subset in [[d] for d in datasets] + [datasets]:
                    values = np.array([np.mean([b[d, metric, ped]["weighted_tau"] for d in subset]) for b in boot])
                    cells.append(_spread(values))
                out(f"| {name(metric, ped)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
