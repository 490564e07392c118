"""Every score, in each named form, with and without PED, against every ground truth of the zoo.

This is the evidence behind docs/choosing.md ("Which score should I use?") and behind ``pedrank rank``'s default metric
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
EVIDENCE_SCORES = HERE / "evidence_scores.csv.gz"
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


def score_unit(item, rows, variant_list, pool_forms=POOL_FORMS):
    """{model: {variant[+PED]: score}} and {variant[+PED]: seconds summed over models}."""
    import pedrank

    values: dict = {m: {} for m in item["models"]}
    failures: dict = {}  # {model: {variant: reason}}: a refusal or a non-finite value, judged a failure, not a tie
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
                    failures.setdefault(model, {})[label] = f"{type(error).__name__}: {error}"
                    print(f"    {model} {label}: {type(error).__name__}: {error}", flush=True)
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start
    for metric in pool_forms:
        for ped in (False, True):
            label = f"{metric} (pool)" + ("+PED" if ped else "")
            start = time.perf_counter()
            pool = {m: (moved[m] if ped else np.ascontiguousarray(item["features"][m][0][rows], dtype=np.float64),
                        item["features"][m][1][rows]) for m in item["models"]}
            table = pedrank.rank(pool, metric=metric, progress=False, errors="row")
            for model, value in table.scores.items():
                values[model][label] = float(value)
            for model, reason in table.errors.items():
                failures.setdefault(model, {})[label] = reason
                print(f"    {model} {label}: {reason}", flush=True)
            seconds[label] = time.perf_counter() - start
    return values, seconds, failures


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
        item = sets[set_name][dataset]
        rows = unit_rows(item, budget, resample)
        start = time.perf_counter()
        if path.exists():
            # a score registered since the unit was scored: score only what the unit lacks, keep the rest
            stored = json.loads(path.read_text())
            present = set(next(iter(stored["scores"].values())))
            missing = [v for v in variant_list if v[0] not in present or f"{v[0]}+PED" not in present]
            if not missing:
                continue
            values, seconds, failures = score_unit(item, rows, missing, pool_forms=())
            for model, by_label in values.items():
                stored["scores"][model].update(by_label)
            seconds.pop("PED", None)
            stored["seconds"].update(seconds)
            for model, by_label in failures.items():
                stored.setdefault("failures", {}).setdefault(model, {}).update(by_label)
            values, seconds, failures = stored["scores"], stored["seconds"], stored.get("failures", {})
        else:
            values, seconds, failures = score_unit(item, rows, variant_list)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"set": set_name, "dataset": dataset, "budget": budget, "resample": resample,
                                   "n_rows": int(len(rows)),
                                   "widths": {m: int(item["features"][m][0].shape[1]) for m in item["models"]},
                                   "scores": values, "seconds": seconds, "failures": failures}, indent=1))
        os.replace(tmp, path)
        print(f"[{index + 1}/{len(todo)}] {path.stem}: {time.perf_counter() - start:.0f}s", flush=True)
    return 0


# --- judging -----------------------------------------------------------------------------------------------

def ranking(values, truth):
    """run_zoo's ranking metrics, named as the CSV's columns, and ``failed``: the number of models without a finite
    score. A failure (a refusal, NaN or inf) leaves the metrics nan and is counted, never taken for a tie; a score
    that ties every model gives nan metrics with ``failed`` 0 (no information)."""
    import run_zoo

    values = np.asarray(values, dtype=float)
    failed = int(np.sum(~np.isfinite(values)))
    if failed or np.ptp(values) == 0:
        return {"weighted_tau": math.nan, "kendall_tau": math.nan, "top1": math.nan, "failed": failed}
    metrics = run_zoo.ranking_metrics(list(values), list(truth))
    return {"weighted_tau": metrics["weighted_tau"], "kendall_tau": metrics["kendall_tau"],
            "top1": metrics["top1_relative_accuracy"], "failed": 0}


def random_ranking(truth):
    """run_finetune's random baseline (mean over 2,000 seeded permutations), named as the CSV's columns."""
    import run_finetune

    metrics = run_finetune.random_baseline(list(truth))
    return {"weighted_tau": metrics["weighted_tau"], "kendall_tau": metrics["kendall_tau"],
            "top1": metrics["top1_relative_accuracy"], "failed": 0}


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
    """evidence.csv: one row per (truth, dataset, budget, resample, variant) with the ranking metrics; and
    evidence_scores.csv.gz: every model's score per (truth, dataset, resample, variant) of the full budget, with
    the baselines' values and the truths, for the hierarchical bootstrap."""
    sets = feature_sets()
    truth_of, probe32 = truths(sets)
    rows = []
    long_rows = []
    found = sorted(CACHE.glob("*__*__*__*.json"))
    for path in found:
        unit = json.loads(path.read_text())
        set_name, dataset, budget, resample = unit["set"], unit["dataset"], unit["budget"], unit["resample"]
        if resample is not None and resample >= args.resamples:
            continue
        truth = truth_of[set_name][dataset]
        models = [m for m in unit["scores"] if m in truth and math.isfinite(truth[m])]
        add_consensus(unit["scores"], models)
        baselines = baseline_values(set_name, dataset, models, probe32)  # the same at every resample
        if budget == "full":
            tag = "measured" if resample is None else resample
            for model in models:
                long_rows.append({"truth": set_name, "dataset": dataset, "resample": tag, "model": model,
                                  "variant": "accuracy", "score": truth[model]})
                for label, value in unit["scores"][model].items():
                    long_rows.append({"truth": set_name, "dataset": dataset, "resample": tag, "model": model,
                                      "variant": label, "score": value})
            for name, values in baselines.items():
                long_rows += [{"truth": set_name, "dataset": dataset, "resample": tag, "model": m,
                               "variant": name, "score": v} for m, v in zip(models, values)]
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
            rows.append({**common, "variant": label, "kind": "consensus" if label in CONSENSUS else "score",
                         **ranking([unit["scores"][m][label] for m in models], y)})
        if resample is None:
            for name, values in baselines.items():
                rows.append({**common, "variant": name, "kind": "baseline", **ranking(values, y)})
            rows.append({**common, "variant": "random", "kind": "baseline", **random_ranking(y)})
    fields = ["truth", "dataset", "modality", "budget", "n_rows", "regime", "resample", "models", "variant",
              "kind", "weighted_tau", "kendall_tau", "top1", "failed"]
    with EVIDENCE_CSV.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6f}" if isinstance(row[k], float) else row[k]) for k in fields})
    write_scores_table(long_rows)
    return rows


#: Consensus rankings judged like any variant (issue 27): the mean rank of the models over several scores (as
#: ``pedrank.rank(metric=[...])``'s consensus), as a score: minus the mean rank. "leaders" are the three best
#: means against fine-tuned accuracy in the previous table, so that row is chosen on the data it is judged on.
CONSENSUS = {
    "consensus: pactran, sfda, logme": ("pactran", "sfda", "logme"),
    "consensus: leaders (pactran, parc+PED, parc:exact+PED)": ("pactran", "parc+PED", "parc:exact+PED"),
    "consensus: every score, default form": ("logme", "sfda", "gbc", "nleep", "parc", "h_score",
                                             "regularized_h_score", "transrate", "pactran", "knn", "etran (pool)",
                                             "ncti (pool)"),
}


def add_consensus(scores, models):
    """Add each CONSENSUS variant to ``scores`` ({model: {variant: score}}) for ``models``: minus the mean rank
    (1 = best, ties averaged); nan for every model when a component failed on one (a failure, as for a score)."""
    from scipy.stats import rankdata

    for name, parts in CONSENSUS.items():
        table = np.array([[scores[m][part] for m in models] for part in parts], dtype=float)
        if not np.all(np.isfinite(table)):
            values = np.full(len(models), np.nan)
        else:
            values = -np.mean([rankdata(-row, method="average") for row in table], axis=0)
        for model, value in zip(models, values):
            scores[model][name] = float(value)


def write_scores_table(long_rows):
    """evidence_scores.csv.gz, byte-stable (gzip without a time stamp): the bootstrap's input."""
    import gzip
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["truth", "dataset", "resample", "model", "variant", "score"])
    for row in long_rows:
        value = row["score"]
        writer.writerow([row["truth"], row["dataset"], row["resample"], row["model"], row["variant"],
                         "nan" if not math.isfinite(value) else f"{value:.9g}"])
    with open(EVIDENCE_SCORES, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
        handle.write(buffer.getvalue().encode())


def read_scores_table(path=None):
    """The rows of evidence_scores.csv.gz, scores as floats."""
    import gzip

    with gzip.open(path or EVIDENCE_SCORES, "rt", newline="") as handle:
        return [{**row, "score": float(row["score"])} for row in csv.DictReader(handle)]


def bootstrap_section(evidence, n_boot, random_state=0):
    """Markdown: every variant's mean weighted tau with its 95 % interval over datasets, models, seeds and
    scoring rows, and P(it beats the default), against each truth."""
    from pedrank._bootstrap import hierarchical_bootstrap
    from pedrank._recommendation import RECOMMENDED

    table = read_scores_table()
    lines = [f"### Hierarchical bootstrap ({n_boot} paired draws: datasets, models within a dataset, fine-tuning "
             "seeds, scoring-row resamples; full scoring rows)",
             "Mean weighted tau [95 % interval]; P(> default): the share of draws in which the variant's mean beats "
             f"the default's ({RECOMMENDED.variant}). One fine-tuning seed per model so far: the seed level adds no "
             "spread yet.\n"]
    results = {}
    for truth in ("finetuned", "probe"):
        rows = [r for r in table if r["truth"] == truth]
        accuracies = [{"dataset": r["dataset"], "model": r["model"], "seed": 0, "accuracy": r["score"]}
                      for r in rows if r["variant"] == "accuracy" and r["resample"] == "measured"]
        scores = [r for r in rows if r["variant"] != "accuracy"]
        results[truth] = hierarchical_bootstrap(scores, accuracies, n_boot=n_boot, random_state=random_state)
    finetuned, probe = results["finetuned"], results["probe"]
    names = [v for v in finetuned.variants if v in probe.variants]
    names.sort(key=lambda v: -np.nan_to_num(finetuned.measured[v], nan=-9))
    lines.append("| variant | fine-tuned | P(> default) | probe | P(> default) |")
    lines.append("|---|---|---|---|---|")

    def cell(result, v):
        low, high = result.interval(v)
        return f"{result.measured[v]:+.3f} [{low:+.3f}, {high:+.3f}]"

    for v in names:
        lines.append(f"| {v} | {cell(finetuned, v)} | {finetuned.p_beats(v, RECOMMENDED.variant):.2f} | "
                     f"{cell(probe, v)} | {probe.p_beats(v, RECOMMENDED.variant):.2f} |")
    lines.append("\n(nan: a baseline not defined on every dataset of that truth, e.g. ImageNet top-1 on the text "
                 "probes.)\n")
    from pedrank._recommendation import CHALLENGE_PROBABILITY, candidates, challenge

    pool = candidates(evidence)
    chosen, tied = challenge(finetuned, RECOMMENDED.variant, pool, cost=_seconds())
    verdict = ("stays" if chosen == RECOMMENDED.variant else f"would change to {chosen}")
    lines.append(f"**The rule** (a challenger replaces the default only when it beats it in >= "
                 f"{CHALLENGE_PROBABILITY:.0%} of the paired draws against fine-tuned accuracy): the default "
                 f"{RECOMMENDED.variant} {verdict}. Not separated from {chosen} (it does not beat them in "
                 f"{CHALLENGE_PROBABILITY:.0%} of the draws): {len(tied) - 1} of {len(pool) - 1} other candidates, "
                 f"led by {', '.join(tied[1:6])}.")
    return "\n".join(lines) + "\n", results


def _seconds():
    """{variant: seconds summed over the measured full-budget units}: the cost that breaks ties of the rule."""
    seconds: dict = {}
    for path in sorted(CACHE.glob("*__full__measured.json")):
        for label, value in json.loads(path.read_text()).get("seconds", {}).items():
            seconds[label] = seconds.get(label, 0.0) + value
    return seconds


@functools.lru_cache(maxsize=None)
def _failure_reasons():
    """{variant: first reason recorded in the cached units} (the units' ``failures``, model first)."""
    reasons: dict = {}
    for path in sorted(CACHE.glob("*__*__*__*.json")):
        unit = json.loads(path.read_text())
        for model, by_variant in unit.get("failures", {}).items():
            for variant, reason in by_variant.items():
                reasons.setdefault(variant, f"{unit['dataset']} {model}: {reason}")
    return reasons


def _first_reason(variant):
    return _failure_reasons().get(variant, "").replace("|", "/")[:160]


def _cell(entry):
    if entry is None:
        return "-"
    mean, std, _ = entry
    return f"{mean:+.3f}" if math.isnan(std) else f"{mean:+.3f} +- {std:.3f}"


def render(evidence):
    """Markdown tables of the evidence (means over datasets of weighted tau, +- the std over resamples)."""
    from pedrank._recommendation import failures, summary

    variants_in_order = []
    for row in evidence:
        if row["variant"] not in variants_in_order:
            variants_in_order.append(row["variant"])
    scores = [v for v in variants_in_order if any(r["variant"] == v and r["kind"] == "score" for r in evidence)]
    baselines = [v for v in variants_in_order if v not in scores]
    resamples = sorted({r["resample"] for r in evidence if r["resample"] != "measured"})
    out = []
    failed = failures(evidence)
    if failed:
        out.append("### Failures: variants that refused a model or gave it a non-finite value (units, of all rows)")
        out.append("Not candidates for the recommendation; their means below are over the units they scored.\n")
        out.append("| score | failed units | first reason |")
        out.append("|---|---|---|")
        for v in sorted(failed, key=lambda v: (-failed[v], v)):
            out.append(f"| {v} | {failed[v]} | {_first_reason(v)} |")
        out.append("")
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
    section, _ = bootstrap_section(evidence, args.boot)
    text += "\n" + section
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
    p.add_argument("--boot", type=int, default=1000, help="draws of the hierarchical bootstrap")
    args = parser.parse_args(argv)
    return run_scores(args) if args.command == "score" else report(args)


if __name__ == "__main__":
    raise SystemExit(main())
