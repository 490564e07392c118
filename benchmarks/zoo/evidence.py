"""Every score, in each named form, with and without PED, against every ground truth of the zoo.

This is the evidence behind README's "Which score should I use?" and behind ``pedrank rank``'s default metric
(:mod:`pedrank._recommendation` derives the recommendation from the committed ``evidence.csv``).

    # 1. score (resumable: each unit is cached on its own in cache/evidence/; rerun to resume)
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/evidence.py score --resamples 3
    # 2. judge the scores against the truths, write evidence.csv and evidence.md, print the recommendation
    PYTHONPATH=python python benchmarks/zoo/evidence.py report

Ground truths (one per feature set):

* ``probe``: the linear probe of run_zoo.py (logistic regression on the training part, test accuracy), on the zoo
  features (EfficientNets at 96 px, HED at 48 px, the text encoders), 5 datasets;
* ``finetuned``: ``finetune_accuracies.csv`` (run_finetune.py, full fine-tuning, best of a small grid), with the
  scores on the features at the fine-tuning resolution (``cache/finetune_features``), 3 image datasets.

Row budgets, so that N < D and N > D can be read apart (the truth never changes, only the rows the scores see):

* ``full``: the training part (lfw 140, digits 1,257, mnist 1,400, fortunes/wordnet 840 rows);
* ``small``: 200 rows, stratified, of the training part (N < D for every model wider than 200), not for lfw.

A unit's regime is ``N<=D`` when N is at most the widest model's D (the EfficientNets' 1,280 on images, 384 on
text), else ``N>D``. Resamples: the full budget keeps 80 % of the training part (seed 1000+r); the small budget
draws another 200 rows (seed 2000+r).

Variants: every registered score that reads features (LEEP and NCE read a source model's predictions and are
not in the zoo), in its default form and each named form (``logme:exact``, ...), without and with PED (its
default setting); NCTI and ETran also in their authors' pool form (min-max over the dataset's models, through
``pedrank.rank``). Baselines judged the same way: ``parameters`` (vision), ``ImageNet top-1`` (EfficientNets;
the others 0), ``linear probe`` (the 32 px features' probe, against fine-tuned accuracy only), ``random``
(mean over 2,000 permutations).
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads OpenBLAS: one thread per scoring process

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CACHE = HERE / "cache" / "evidence"
EVIDENCE_CSV = HERE / "evidence.csv"
EVIDENCE_MD = HERE / "evidence.md"
SMALL_ROWS = 200
FRACTION = 0.8
VISION = ("digits", "mnist", "lfw")
TEXT = ("fortunes", "wordnet")
VISION_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "hed_vgg16", "cifar10_cnn",
                 "digits_cnn")
TEXT_MODELS = ("glove_50d", "minilm_l6", "minilm_static", "sre_minilm_l6")
POOL_FORMS = ("etran", "ncti")


# --- what is scored ----------------------------------------------------------------------------------------

def variants():
    """[(variant name, score entry, options)]: each feature score's default form, then its named forms."""
    from pedrank._registry import scores

    out = []
    for entry in scores().values():
        if entry.inputs != "features":
            continue
        out.append((entry.name, entry, {}))
        out.extend((f"{entry.name}:{form}", entry, dict(options)) for form, options in entry.forms.items())
    return out


def _memoized_mixture():
    """NLEEP's two forms share one Gaussian mixture: fit it once per feature matrix (same function, same seed)."""
    import importlib

    nleep_module = importlib.import_module("pedrank.nleep")  # the module: `pedrank.nleep` is the function
    original = nleep_module.mixture_posteriors
    if getattr(original, "_evidence_memo", False):
        return
    memo: dict = {}

    @functools.wraps(original)
    def posteriors(features, n_classes, **options):
        key = (hashlib.sha1(np.ascontiguousarray(features).tobytes()).hexdigest(), features.shape, n_classes,
               tuple(sorted(options.items())))
        if key not in memo:
            memo.clear()  # one matrix at a time: the default and log forms are scored back to back
            memo[key] = original(features, n_classes, **options)
        return memo[key]

    posteriors._evidence_memo = True
    nleep_module.mixture_posteriors = posteriors


# --- feature sets and truths -------------------------------------------------------------------------------

def feature_sets():
    """{set: {dataset: {"models": [...], "features": {model: (X, y)}, "train": idx, "test": idx}}}."""
    import run_finetune
    import run_zoo

    sets = {"probe": {}, "finetuned": {}}
    for dataset in VISION + TEXT:
        models = VISION_MODELS if dataset in VISION else TEXT_MODELS
        pool = {}
        for model in models:
            path = HERE / "cache" / f"{dataset}__{model}.npz"
            if not path.exists():
                raise SystemExit(f"{path} is missing: run benchmarks/zoo/run_zoo.py first (it extracts the features)")
            with np.load(path) as archive:
                pool[model] = (archive["features"], archive["labels"])
        labels = next(iter(pool.values()))[1]
        train, test = run_zoo.split(labels)
        sets["probe"][dataset] = {"models": list(models), "features": pool, "train": train, "test": test}
    for dataset in VISION:
        images, labels, train, test = run_finetune.load_dataset(dataset)
        pool = {}
        for model in VISION_MODELS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pool[model] = (run_finetune.cached_features(dataset, model, images, labels), labels)
        sets["finetuned"][dataset] = {"models": list(VISION_MODELS), "features": pool, "train": train, "test": test}
    return sets


def truths(sets):
    """{set: {dataset: {model: accuracy}}} and the 32 px probe {dataset: {model: accuracy}} (a baseline)."""
    import run_finetune
    import run_zoo

    from pedrank.io import read_accuracies

    path = CACHE / "probes.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    probes = {}
    for name, datasets in sets.items():
        for dataset, item in datasets.items():
            for model in item["models"]:
                key = f"{name}/{dataset}/{model}"
                if key not in stored:
                    X, y = item["features"][model]
                    stored[key] = run_zoo.probe_accuracy(X, y, item["train"], item["test"])
                    changed = True
                probes.setdefault(name, {}).setdefault(dataset, {})[model] = stored[key]
    if changed:
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=1))
    finetuned = {d: read_accuracies(run_finetune.ACCURACIES_CSV, d) for d in VISION}
    return {"probe": probes["probe"], "finetuned": finetuned}, probes["finetuned"]


# --- scoring units -----------------------------------------------------------------------------------------

def unit_rows(item, budget, resample):
    """The training rows a unit's scores see."""
    from sklearn.model_selection import train_test_split

    train = np.sort(item["train"])
    labels = next(iter(item["features"].values()))[1]
    if budget == "full":
        if resample is None:
            return train
        rng = np.random.default_rng(1000 + resample)
        return np.sort(rng.choice(train, size=int(round(FRACTION * len(train))), replace=False))
    seed = 2000 + (0 if resample is None else resample + 1)
    rows, _ = train_test_split(train, train_size=SMALL_ROWS, stratify=labels[train], random_state=seed)
    return np.sort(rows)


def score_unit(item, rows, variant_list):
    """{model: {variant[+PED]: score}} and {variant[+PED]: seconds summed over models}."""
    import pedrank

    values: dict = {m: {} for m in item["models"]}
    seconds: dict = {}
    moved = {}
    for model in item["models"]:
        X, y = item["features"][model]
        X, y = np.ascontiguousarray(X[rows], dtype=np.float64), y[rows]
        start = time.perf_counter()
        moved[model] = pedrank.ped(X, y).features
        seconds["PED"] = seconds.get("PED", 0.0) + time.perf_counter() - start
        for ped, features in ((False, X), (True, moved[model])):
            for name, entry, options in variant_list:
                label = f"{name}+PED" if ped else name
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        values[model][label] = float(entry.function(features, y, **options))
                except Exception as error:  # a score that refuses a unit is recorded, not fatal
                    values[model][label] = math.nan
                    print(f"    {model} {label}: {type(error).__name__}: {error}", flush=True)
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start
    for metric in POOL_FORMS:
        for ped in (False, True):
            label = f"{metric} (pool)" + ("+PED" if ped else "")
            start = time.perf_counter()
            pool = {m: (moved[m] if ped else np.ascontiguousarray(item["features"][m][0][rows], dtype=np.float64),
                        item["features"][m][1][rows]) for m in item["models"]}
            table = pedrank.rank(pool, metric=metric, progress=False)
            for model, value in table.scores.items():
                values[model][label] = float(value)
            seconds[label] = time.perf_counter() - start
    return values, seconds


def unit_key(set_name, dataset, budget, resample):
    return f"{set_name}__{dataset}__{budget}__{'measured' if resample is None else f'r{resample}'}"


def units(sets, resamples):
    order = []
    for resample in [None, *range(resamples)]:
        for budget in ("full", "small"):
            for set_name, datasets in sets.items():
                for dataset in datasets:
                    if budget == "small" and dataset == "lfw":
                        continue  # lfw's training part (140 rows) is already below 200
                    order.append((set_name, dataset, budget, resample))
    return order


def run_scores(args):
    _memoized_mixture()
    sets = feature_sets()
    truths(sets)  # computes and caches the probes once
    variant_list = variants()
    CACHE.mkdir(parents=True, exist_ok=True)
    todo = units(sets, args.resamples)
    for index, (set_name, dataset, budget, resample) in enumerate(todo):
        path = CACHE / f"{unit_key(set_name, dataset, budget, resample)}.json"
        if path.exists():
            continue
        item = sets[set_name][dataset]
        rows = unit_rows(item, budget, resample)
        start = time.perf_counter()
        values, seconds = score_unit(item, rows, variant_list)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"set": set_name, "dataset": dataset, "budget": budget, "resample": resample,
                                   "n_rows": int(len(rows)),
                                   "widths": {m: int(item["features"][m][0].shape[1]) for m in item["models"]},
                                   "scores": values, "seconds": seconds}, indent=1))
        os.replace(tmp, path)
        print(f"[{index + 1}/{len(todo)}] {path.stem}: {time.perf_counter() - start:.0f}s", flush=True)
    return 0


# --- judging -----------------------------------------------------------------------------------------------

def ranking(values, truth):
    """run_zoo's ranking metrics, named as the CSV's columns; nan where a score ties every model (no ranking)."""
    import run_zoo

    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)) or np.ptp(values) == 0:
        return {"weighted_tau": math.nan, "kendall_tau": math.nan, "top1": math.nan}
    metrics = run_zoo.ranking_metrics(list(values), list(truth))
    return {"weighted_tau": metrics["weighted_tau"], "kendall_tau": metrics["kendall_tau"],
            "top1": metrics["top1_relative_accuracy"]}


def random_ranking(truth):
    """run_finetune's random baseline (mean over 2,000 seeded permutations), named as the CSV's columns."""
    import run_finetune

    metrics = run_finetune.random_baseline(list(truth))
    return {"weighted_tau": metrics["weighted_tau"], "kendall_tau": metrics["kendall_tau"],
            "top1": metrics["top1_relative_accuracy"]}


def baseline_values(set_name, dataset, models, probe32):
    import run_finetune

    out = {}
    if dataset in VISION:
        params = _parameter_counts()
        out["parameters"] = [params[m] for m in models]
        out["ImageNet top-1"] = [run_finetune.IMAGENET_TOP1.get(m, 0.0) for m in models]
    if set_name == "finetuned":
        out["linear probe"] = [probe32[dataset][m] for m in models]
    return out


@functools.lru_cache(maxsize=1)
def _parameter_counts():
    path = CACHE / "parameters.json"
    if path.exists():
        return json.loads(path.read_text())
    import run_finetune

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = run_finetune.parameter_counts(VISION_MODELS)
    path.write_text(json.dumps(counts, indent=1))
    return counts


def judge(args):
    """evidence.csv: one row per (truth, dataset, budget, resample, variant) with the ranking metrics."""
    sets = feature_sets()
    truth_of, probe32 = truths(sets)
    rows = []
    found = sorted(CACHE.glob("*__*__*__*.json"))
    for path in found:
        unit = json.loads(path.read_text())
        set_name, dataset, budget, resample = unit["set"], unit["dataset"], unit["budget"], unit["resample"]
        if resample is not None and resample >= args.resamples:
            continue
        truth = truth_of[set_name][dataset]
        models = [m for m in unit["scores"] if m in truth and math.isfinite(truth[m])]
        y = [truth[m] for m in models]
        n_rows, widest = unit["n_rows"], max(unit["widths"][m] for m in models)
        # the regime is the measured unit's (a resample keeps 80 % of the rows: mnist's 1,400 become 1,120, below
        # the EfficientNets' 1,280, but it resamples the same unit)
        unit_rows = len(sets[set_name][dataset]["train"]) if budget == "full" else SMALL_ROWS
        common = {"truth": set_name, "dataset": dataset, "modality": "vision" if dataset in VISION else "text",
                  "budget": budget, "n_rows": n_rows, "regime": "N<=D" if unit_rows <= widest else "N>D",
                  "resample": "measured" if resample is None else resample, "models": len(models)}
        labels = list(unit["scores"][models[0]])
        for label in labels:
            rows.append({**common, "variant": label, "kind": "score",
                         **ranking([unit["scores"][m][label] for m in models], y)})
        if resample is None:
            for name, values in baseline_values(set_name, dataset, models, probe32).items():
                rows.append({**common, "variant": name, "kind": "baseline", **ranking(values, y)})
            rows.append({**common, "variant": "random", "kind": "baseline", **random_ranking(y)})
    fields = ["truth", "dataset", "modality", "budget", "n_rows", "regime", "resample", "models", "variant",
              "kind", "weighted_tau", "kendall_tau", "top1"]
    with EVIDENCE_CSV.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6f}" if isinstance(row[k], float) else row[k]) for k in fields})
    return rows


def _cell(entry):
    if entry is None:
        return "-"
    mean, std, _ = entry
    return f"{mean:+.3f}" if math.isnan(std) else f"{mean:+.3f} +- {std:.3f}"


def render(evidence):
    """Markdown tables of the evidence (means over datasets of weighted tau, +- the std over resamples)."""
    from pedrank._recommendation import summary

    variants_in_order = []
    for row in evidence:
        if row["variant"] not in variants_in_order:
            variants_in_order.append(row["variant"])
    scores = [v for v in variants_in_order if any(r["variant"] == v and r["kind"] == "score" for r in evidence)]
    baselines = [v for v in variants_in_order if v not in scores]
    resamples = sorted({r["resample"] for r in evidence if r["resample"] != "measured"})
    out = []
    columns = [("fine-tuned, 3 image datasets", summary(evidence, "finetuned")),
               ("probe, 3 image datasets", summary(evidence, "probe", modality="vision")),
               ("probe, 2 text datasets", summary(evidence, "probe", modality="text")),
               ("probe, all 5", summary(evidence, "probe"))]
    out.append(f"### Mean weighted tau, full scoring rows (measured +- std over {len(resamples)} resamples)")
    out.append("| score | " + " | ".join(name for name, _ in columns) + " |")
    out.append("|---|" + "---|" * len(columns))
    for v in scores + baselines:
        out.append(f"| {v} | " + " | ".join(_cell(table.get(v)) for _, table in columns) + " |")
    regimes = [(f"{truth_label}, {regime} ({units})", summary(evidence, truth, budget=None, regime=regime))
               for truth, truth_label in (("finetuned", "fine-tuned"), ("probe", "probe"))
               for regime in ("N<=D", "N>D")
               for units in [", ".join(sorted({f"{r['dataset']} {r['n_rows']}" for r in evidence
                                               if r["truth"] == truth and r["regime"] == regime
                                               and r["resample"] == "measured"}))]]
    out.append("\n### By regime: mean weighted tau over the units (dataset, rows) where N <= D for the widest model, "
               "and where N > D for every model (both row budgets)")
    out.append("| score | " + " | ".join(name for name, _ in regimes) + " |")
    out.append("|---|" + "---|" * len(regimes))
    for v in scores + baselines:
        out.append(f"| {v} | " + " | ".join(_cell(table.get(v)) for _, table in regimes) + " |")
    out.append("\n### Per dataset, full scoring rows, measured weighted tau")
    units = sorted({(r["truth"], r["dataset"]) for r in evidence if r["budget"] == "full"})
    out.append("| score | " + " | ".join(f"{'ft' if t == 'finetuned' else 'probe'} {d}" for t, d in units) + " |")
    out.append("|---|" + "---|" * len(units))
    lookup = {(r["truth"], r["dataset"], r["variant"]): r["weighted_tau"] for r in evidence
              if r["budget"] == "full" and r["resample"] == "measured"}
    for v in scores + baselines:
        cells = [lookup.get((t, d, v)) for t, d in units]
        out.append(f"| {v} | " + " | ".join("-" if c is None else "nan" if math.isnan(c) else f"{c:+.3f}"
                                             for c in cells) + " |")
    return "\n".join(out) + "\n"


def report(args):
    from pedrank import _recommendation

    judge(args)
    evidence = _recommendation.read_evidence(EVIDENCE_CSV)
    text = render(evidence)
    choice = _recommendation.recommend(evidence)
    text += "\n" + _recommendation.explain(choice, evidence) + "\n"
    EVIDENCE_MD.write_text(text)
    print(text)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="score every unit (resumable)")
    p.add_argument("--resamples", type=int, default=3)
    p = sub.add_parser("report", help="judge the cached scores, write evidence.csv and evidence.md")
    p.add_argument("--resamples", type=int, default=3, help="use resamples 0..N-1 (those cached)")
    args = parser.parse_args(argv)
    return run_scores(args) if args.command == "score" else report(args)


if __name__ == "__main__":
    raise SystemExit(main())
