"""Every score, in each named form, with and without PED, against every ground truth of the zoo.

This is the evidence behind docs/choosing.md ("Which score should I use?") and behind ``pedrank rank``'s default metric
(:mod:`pedrank.workflow.recommendation` derives the recommendation from the committed ``evidence.csv``).

    # 1. score (resumable: each unit is cached on its own in cache/evidence/; rerun to resume); --sets campaign
    #    scores the campaign's units only (the scores do not depend on the truth: they can run while it grows)
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/evidence.py score --resamples 3
    #    (--sets finetuned --pending fonts: a fine-tuned dataset's units while its fine-tuning still runs)
    # 2. judge the scores against the truths, write evidence.csv and evidence.md, print the recommendation
    PYTHONPATH=python python benchmarks/zoo/evidence.py report

Ground truths (one per feature set):

* ``probe``: the linear probe of run_zoo.py (logistic regression on the training part, test accuracy), on the zoo
  features (EfficientNets at 96 px, HED at 48 px, the text encoders), 4 image and 2 text datasets;
* ``finetuned``: ``finetune_accuracies.csv`` (run_finetune.py, full fine-tuning, best of a small grid), with the
  scores on the features at the fine-tuning resolution (``cache/finetune_features``), 3 image datasets (the six
  original networks with seeds ``finetune_seeds/``, the eight added ones ``finetune_extra/``), the image target
  added later (fonts: all fourteen, ``finetune_targets/``) once fine-tuned, and the 2 text datasets (the
  packaged text encoders, ``finetune_text/``);
* ``campaign``: ``campaign/accuracies.csv`` (campaign.py, issue 25: the controlled zoo of 48 small CNNs fine-tuned
  on 8 image targets, seeds 0-2), with the scores on the frozen features of the 64-unit layer whose classifier
  fine-tuning replaces, at the 28 x 28 inputs it fine-tunes at (``cache/campaign_features``, extracted here,
  deterministic, per (target, model)). The truth of a model is the mean over its seeds that trained; a run that
  did not train (``trained`` = 0) is left out, a model without any trained run too, and a model whose frozen
  features pedrank refuses (dead: every row identical, as the networks pre-trained on shuffled labels can be) is
  left out of the scoring unit (``refused`` in its cache file): no score can rank it. All are counted in the
  report. The seeds enter the hierarchical bootstrap; the report gives their spread.

Row budgets, so that N < D and N > D can be read apart (the truth never changes, only the rows the scores see):

* ``full``: the training part (lfw 140, digits 1,257, mnist 1,400, fonts 1,876, fortunes/wordnet 840 rows);
* ``small``: 200 rows, stratified, of the training part (N < D for every model wider than 200), not where the
  training part has 200 rows or fewer (lfw, mnist_low).

A unit's regime is ``N<=D`` when N is at most the widest model's D (the EfficientNets' 1,280 on images, 384 on
text; the campaign's 64), else ``N>D``. Resamples: the full budget keeps 80 % of the training part (seed 1000+r);
the small budget draws another 200 rows (seed 2000+r).

Variants: every registered score that reads features (LEEP and NCE read a source model's predictions and are
not in the zoo), in its default form and each named form (``logme:exact``, ...), without and with PED (its
default setting); NCTI and ETran also in their authors' pool form (min-max over the dataset's models, through
``pedrank.rank``). Baselines judged the same way: ``parameters`` (vision), ``ImageNet top-1`` (EfficientNets;
the others 0), ``linear probe`` (the probe of the features the scores see, against fine-tuned and campaign
accuracy), ``random`` (mean over 2,000 permutations); on the campaign ``parameters`` is the controlled network's.
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
CAMPAIGN_FEATURES = HERE / "cache" / "campaign_features"
SETS = ("probe", "finetuned", "campaign", "text_campaign")
#: The fine-tuning campaigns (set name -> module): same interface (TARGETS, SEEDS, model_names, split, MANIFEST,
#: ACCURACIES, write_accuracies); the image campaign's frozen features are extracted here (campaign_features), the
#: text campaign's by its own ``features(target)``.
CAMPAIGNS = {"campaign": "campaign", "text_campaign": "text_campaign"}
EVIDENCE_CSV = HERE / "evidence.csv"
EVIDENCE_MD = HERE / "evidence.md"
EVIDENCE_SCORES = HERE / "evidence_scores.csv.gz"
SMALL_ROWS = 200
FRACTION = 0.8
VISION = ("digits", "mnist", "lfw", "fonts")
TEXT = ("fortunes", "wordnet")
VISION_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "hed_vgg16", "cifar10_cnn",
                 "digits_cnn")
TEXT_MODELS = ("glove_50d", "minilm_l6", "minilm_static", "sre_minilm_l6")
POOL_FORMS = ("etran", "ncti")


# --- what is scored ----------------------------------------------------------------------------------------

def variants():
    """[(variant name, score entry, options)]: each feature score's default form, then its named forms."""
    from pedrank.scores.registry import scores

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

    nleep_module = importlib.import_module("pedrank.scores.nleep")  # the module: `pedrank.nleep` is the function
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

def feature_sets(names=SETS, pending=()):
    """{set: {dataset: {"models": [...], "features": {model: (X, y)}, "train": idx, "test": idx}}} for the sets
    ``names`` (default: all). ``pending``: fine-tuned datasets whose fine-tuning is under way, taken into the
    ``finetuned`` set with every candidate model before their truth exists (``score --pending``: the scores do
    not depend on the truth, so they can be computed while it is trained)."""
    import run_finetune
    import run_zoo

    sets = {name: {} for name in SETS if name in names}
    if "probe" in sets:
        for dataset in VISION + TEXT:
            models = VISION_MODELS if dataset in VISION else TEXT_MODELS
            pool = {}
            for model in models:
                path = HERE / "cache" / f"{dataset}__{model}.npz"
                if not path.exists():
                    raise SystemExit(f"{path} is missing: run benchmarks/zoo/run_zoo.py first (it extracts the "
                                     "features)")
                with np.load(path) as archive:
                    pool[model] = (archive["features"], archive["labels"])
            labels = next(iter(pool.values()))[1]
            train, test = run_zoo.split(labels)
            sets["probe"][dataset] = {"models": list(models), "features": pool, "train": train, "test": test}
    if "finetuned" in sets:
        runs = finetuned_runs()
        for dataset in [d for d in VISION + TEXT if runs.get(d) or d in pending]:
            inputs, labels, train, test = run_finetune.load_dataset(dataset)
            # the six original vision models always; an added network or a text encoder once it has a fine-tuned
            # accuracy here
            candidates = list(VISION_MODELS) + list(run_finetune.EXTRA_MODELS) if dataset in VISION else TEXT_MODELS
            models = [m for m in candidates if m in VISION_MODELS or m in runs.get(dataset, ()) or dataset in pending]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pool = {m: (run_finetune.cached_features(dataset, m, inputs, labels), labels) for m in models}
            sets["finetuned"][dataset] = {"models": models, "features": pool, "train": train, "test": test}
    for set_name in [s for s in CAMPAIGNS if s in sets]:
        module = campaign_module(set_name)
        if not module.ACCURACIES.exists():  # a campaign not begun on this machine: no truth to judge against
            del sets[set_name]
            continue
        for target in module.TARGETS:
            pool = campaign_features(target) if set_name == "campaign" else module.features(target)
            labels = next(iter(pool.values()))[1]
            train, test = module.split(labels)
            sets[set_name][target] = {"models": list(pool), "features": pool, "train": train, "test": test}
    return sets


def judged_sets(units):
    """What ``judge`` reads of the feature sets, from the cached scoring units ``units`` alone: {set: {dataset:
    {"models": the models the measured full-budget unit scored or refused, "train_rows": its rows (the training
    part)}}}. No feature is loaded, so the report reruns from the committed units, probes.json and truths on a
    machine without the feature caches (``truths`` loads a set's features only for a probe not yet stored). A
    campaign not begun here (no accuracies.csv) is left out, as in ``feature_sets``."""
    sets: dict = {}
    for unit in units:
        if unit["budget"] != "full" or unit["resample"] is not None:
            continue
        set_name = unit["set"]
        if set_name in CAMPAIGNS and not campaign_module(set_name).ACCURACIES.exists():
            continue
        models = list(unit["scores"]) + [m for m in unit.get("refused", {}) if m not in unit["scores"]]
        sets.setdefault(set_name, {})[unit["dataset"]] = {"models": models, "train_rows": unit["n_rows"]}
    return sets


def campaign_module(set_name):
    """The campaign module of a campaign set (CAMPAIGNS)."""
    import importlib

    return importlib.import_module(CAMPAIGNS[set_name])


def campaign_features(target):
    """The controlled zoo's frozen features on a campaign target: {model: (X (n, 64) float32, labels (n,))} for
    every row of the target (the scores see the training part; the probe baseline its test part too).

    X is the network's ``features`` output (the 64-unit layer after its ReLU: what fine-tuning puts a fresh
    classifier on, campaign.py's ``build``) of the 28 x 28 inputs it is fine-tuned at, in eval mode (batch norm's
    running statistics), on one thread, in batches of 500: deterministic. Cached per (target, model) in
    cache/campaign_features/ with the checkpoint's SHA-256; a changed checkpoint is extracted again."""
    import campaign

    CAMPAIGN_FEATURES.mkdir(parents=True, exist_ok=True)
    pool, data = {}, None
    for model in campaign.model_names():
        path = CAMPAIGN_FEATURES / f"{target}__{model}.npz"
        digest = campaign._sha256(campaign.checkpoint_path(model))
        if path.exists():
            with np.load(path) as archive:
                if str(archive["checkpoint"]) == digest:
                    pool[model] = (archive["features"], archive["labels"])
                    continue
        if data is None:
            data = campaign.target_data(target)
        images, labels = data
        features = _controlled_features(model, images)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            np.savez(handle, features=features, labels=labels, checkpoint=np.array(digest))
        os.replace(tmp, path)
        pool[model] = (features, labels)
    return pool


def _controlled_features(model, images, batch=500):
    import campaign
    import torch

    torch.set_num_threads(1)
    net = campaign.load(model)  # eval mode
    with torch.no_grad():
        parts = [net.features(torch.as_tensor(images[i:i + batch])) for i in range(0, len(images), batch)]
    return torch.cat(parts).numpy().astype(np.float32)


def campaign_runs(refresh=True, pending=None, set_name="campaign"):
    """A campaign's truth per run (``set_name``: a key of CAMPAIGNS): ({target: {model: {seed: test accuracy}}} of
    the runs that trained, {target: {model: [seeds that did not train]}}), from its accuracies.csv (rewritten first
    from the committed run files when ``refresh``).

    Only complete seeds count: a (target, seed) enters once every model of the zoo has its run (trained or not),
    so that each model's truth is the mean over the same seeds and a target is judged on its whole zoo. The
    others go to ``pending`` ({target: {seed: finished runs}}) when a dict is given."""
    campaign = campaign_module(set_name)
    if refresh:
        campaign.write_accuracies()
    trained, untrained, finished = {}, {}, {}
    if not campaign.ACCURACIES.exists():
        return trained, untrained
    with campaign.ACCURACIES.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        key = (row["target"], int(row["seed"]))
        finished[key] = finished.get(key, 0) + 1
    complete = {key for key, count in finished.items() if count >= len(campaign.model_names())}
    if pending is not None:
        for (target, seed), count in sorted(finished.items()):
            if (target, seed) not in complete:
                pending.setdefault(target, {})[seed] = count
    for row in rows:
        target, seed = row["target"], int(row["seed"])
        if (target, seed) not in complete:
            continue
        if int(row["trained"]):
            trained.setdefault(target, {}).setdefault(row["model"], {})[seed] = float(row["test_accuracy"])
        else:
            untrained.setdefault(target, {}).setdefault(row["model"], []).append(seed)
    return trained, untrained


FINETUNE_SEEDS = HERE / "finetune_seeds"  # seed{s}/finetune_accuracies.csv: run_finetune.py --seed s, same grid
# the eight networks added to the zoo (run_finetune.EXTRA_MODELS), fine-tuned on the same grid: seed{s}/...
FINETUNE_EXTRA = HERE / "finetune_extra"
# the packaged text encoders (TEXT_MODELS) fine-tuned end to end on the text datasets: seed{s}/...
FINETUNE_TEXT = HERE / "finetune_text"
# the image targets added later (fonts), every vision network of the zoo in one run_finetune.py call: seed{s}/...
FINETUNE_TARGETS = HERE / "finetune_targets"


def finetuned_runs():
    """The real models' fine-tuned truth per run: {dataset: {model: {seed: test accuracy}}}.

    Seed 0 is ``finetune_accuracies.csv``; seed s >= 1 is ``finetune_seeds/seed{s}/finetune_accuracies.csv``
    (run_finetune.py with ``--seed s``: the same models, grid and dropped cells; the seed also draws the
    validation split). A (dataset, seed) enters once it has every model of seed 0's column, so that each model's
    truth is the mean over the same seeds. The networks added later (run_finetune.EXTRA_MODELS) come from
    ``finetune_extra/seed{s}/`` (one run_finetune.py call per seed, a dataset's column written once all eight
    finished it) and enter a dataset with the seeds they have there; so do the image targets added later
    (``finetune_targets/seed{s}/``: all fourteen networks) and the text encoders (``finetune_text/seed{s}/``). A
    dataset enters once one seed's column is complete."""
    import run_finetune

    from pedrank.workflow.io import read_accuracies

    def by_seed(folder, dataset):
        """(seed, {model: accuracy}) of each ``folder/seed{s}/finetune_accuracies.csv`` that has ``dataset``'s
        column (not written yet otherwise; and a one-column file would be read as any dataset's)."""
        for path in sorted(folder.glob("seed*/finetune_accuracies.csv")):
            with path.open(newline="") as handle:
                if dataset in next(csv.reader(handle), []):
                    yield int(path.parent.name[len("seed"):]), read_accuracies(path, dataset)

    def with_every_seed(runs_here, folder, dataset):
        """``runs_here`` ({model: {seed: accuracy}}) with each model ``folder``'s seeds have for ``dataset``."""
        for seed, found in by_seed(folder, dataset):
            for model, accuracy in found.items():
                runs_here.setdefault(model, {})[seed] = accuracy
        return runs_here

    runs = {}
    with run_finetune.ACCURACIES_CSV.open(newline="") as handle:
        first_datasets = next(csv.reader(handle))[1:]  # seed 0 of the six original models: lfw, digits, mnist
    for dataset in VISION + TEXT:
        runs_here = {}
        if dataset in first_datasets:
            base = read_accuracies(run_finetune.ACCURACIES_CSV, dataset)
            runs_here = {m: {0: a} for m, a in base.items()}
            for seed, found in by_seed(FINETUNE_SEEDS, dataset):
                if set(base) <= set(found):
                    for model in base:
                        runs_here[model][seed] = found[model]
        for folder in (FINETUNE_EXTRA, FINETUNE_TARGETS, FINETUNE_TEXT):
            with_every_seed(runs_here, folder, dataset)
        if runs_here:
            runs[dataset] = runs_here
    return runs


def truths(sets, refresh=True):
    """{set: {dataset: {model: accuracy}}} (the campaign's: the mean over its trained seeds) and the probes of every
    set's features {set: {dataset: {model: accuracy}}} (the probe truth, and a baseline of the others)."""

    path = CACHE / "probes.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    probes = {}
    loaded = {}  # sets without features (judged_sets): their features are loaded only for a probe not stored
    for name, datasets in sets.items():
        for dataset, item in datasets.items():
            for model in item["models"]:
                key = f"{name}/{dataset}/{model}"
                if key not in stored:
                    if "features" not in item:
                        if name not in loaded:
                            loaded[name] = feature_sets([name])[name]
                        item = loaded[name][dataset]
                    import run_zoo  # only for a probe not stored: it loads every zoo network's package

                    X, y = item["features"][model]
                    stored[key] = run_zoo.probe_accuracy(X, y, item["train"], item["test"])
                    changed = True
                probes.setdefault(name, {}).setdefault(dataset, {})[model] = stored[key]
    if changed:
        CACHE.mkdir(parents=True, exist_ok=True)
        # Two `score --datasets` processes each add their targets' probes: merge with what the other wrote since
        # this one read the file (a probe is deterministic, so either copy of a key is right), through a file of
        # this process's own, or the later writer drops the earlier one's probes (seen: 48 lost).
        on_disk = json.loads(path.read_text()) if path.exists() else {}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**on_disk, **stored}, indent=1))
        os.replace(tmp, path)
    out = {}
    if "probe" in sets:
        out["probe"] = probes["probe"]
    if "finetuned" in sets:
        out["finetuned"] = {d: {m: float(np.mean(list(seeds.values()))) for m, seeds in by_model.items()}
                            for d, by_model in finetuned_runs().items()}
    for set_name in [s for s in CAMPAIGNS if s in sets]:
        trained, _ = campaign_runs(refresh, set_name=set_name)
        out[set_name] = {target: {m: float(np.mean(list(seeds.values()))) for m, seeds in by_model.items()}
                         for target, by_model in trained.items()}
    return out, probes


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


def units(sets, resamples, campaign_resamples=None):
    """(set, dataset, budget, resample) in scoring order: the full rows' measured units first, then their resamples,
    then the small budget's (not where the training part has SMALL_ROWS rows or fewer: lfw's 140, mnist_low's).
    The campaign's units have at most ``campaign_resamples`` resamples (48 models a unit: its spread over the
    scoring rows is small beside the other levels of the bootstrap)."""
    order = []
    for budget in ("full", "small"):
        for resample in [None, *range(resamples)]:
            for set_name, datasets in sets.items():
                if set_name in CAMPAIGNS and resample is not None and campaign_resamples is not None \
                        and resample >= campaign_resamples:
                    continue
                for dataset, item in datasets.items():
                    if budget == "small" and len(item["train"]) <= SMALL_ROWS:
                        continue
                    order.append((set_name, dataset, budget, resample))
    return order


def informative_models(item, rows):
    """The models whose features on ``rows`` pass pedrank's shared validation, and {model: reason} for those it
    refuses (dead features: no score can rank them, ``pedrank.rank`` gives them an error row)."""
    from pedrank._engine.validation import check_features

    kept, refused = [], {}
    for model in item["models"]:
        try:
            check_features(np.ascontiguousarray(item["features"][model][0][rows], dtype=np.float64))
        except ValueError as error:
            refused[model] = f"{type(error).__name__}: {error}"
            continue
        kept.append(model)
    return kept, refused


def _without_models(stored, kept, pooled):
    """A stored unit restricted to the models ``kept``, with ``pooled`` = score_unit's (values, seconds, failures)
    of the pool forms over them in place of the stored pool forms."""
    values, seconds, failures = pooled
    forms = {label for by_label in values.values() for label in by_label}
    scores = {m: {**{k: v for k, v in stored["scores"][m].items() if k not in forms}, **values[m]} for m in kept}
    old_failures = stored.get("failures", {})
    failures = {m: {**{k: v for k, v in old_failures.get(m, {}).items() if k not in forms}, **failures.get(m, {})}
                for m in kept}
    seconds = {**{k: v for k, v in stored["seconds"].items() if k not in forms}, **seconds}
    return {**stored, "scores": scores, "seconds": seconds, "failures": {m: f for m, f in failures.items() if f}}


def run_scores(args):
    _memoized_mixture()
    sets = feature_sets(args.sets, pending=args.pending)
    if args.datasets:  # a share of the units, e.g. for two processes that must not write the same unit
        known = {d for datasets in sets.values() for d in datasets}
        unknown = sorted(set(args.datasets) - known)
        if unknown:
            raise SystemExit(f"--datasets: found {unknown}; expected datasets of the sets {list(sets)}: "
                             f"{sorted(known)}")
        sets = {name: {d: item for d, item in datasets.items() if d in args.datasets}
                for name, datasets in sets.items()}
    truths(sets, refresh=False)  # computes and caches the probes once
    variant_list = [v for v in variants() if v[0].split(":")[0] not in args.exclude]
    CACHE.mkdir(parents=True, exist_ok=True)
    todo = units(sets, args.resamples, args.campaign_resamples)
    for index, (set_name, dataset, budget, resample) in enumerate(todo):
        path = CACHE / f"{unit_key(set_name, dataset, budget, resample)}.json"
        rows = unit_rows(sets[set_name][dataset], budget, resample)
        kept, refused = informative_models(sets[set_name][dataset], rows)
        item = {**sets[set_name][dataset], "models": kept}
        start = time.perf_counter()
        stored = json.loads(path.read_text()) if path.exists() else None
        restricted = stored is not None and set(kept) < set(stored["scores"])
        if restricted:
            # models left out since (a fine-tune found under-trained): the others' own scores stand; the pool
            # forms read every model, so only they are scored again, over the models kept
            stored = _without_models(stored, kept, score_unit(item, rows, [], pool_forms=POOL_FORMS))
        elif stored is not None and set(kept) != set(stored["scores"]):
            # models added to the set since (the zoo's added networks): the whole unit is scored again (and
            # replaces the stored one)
            stored = None
        if stored is not None:
            # a score registered since the unit was scored: score only what the unit lacks, keep the rest
            present = set(next(iter(stored["scores"].values())))
            missing = [v for v in variant_list if v[0] not in present or f"{v[0]}+PED" not in present]
            if not missing and not restricted:
                continue
            if missing:
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
                                   "scores": values, "seconds": seconds, "failures": failures,
                                   "refused": refused}, indent=1))
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


def baseline_values(set_name, dataset, models, probes):
    """{baseline: values of ``models``}; ``probes``: truths()'s probes of every set's features."""
    import run_finetune

    out = {}
    if set_name in CAMPAIGNS:
        manifest = _campaign_manifest(set_name)
        if all("parameters" in manifest.get(m, {}) for m in models):
            out["parameters"] = [manifest[m]["parameters"] for m in models]
        out["linear probe"] = [probes[set_name][dataset][m] for m in models]
        return out
    if dataset in VISION:
        params = _parameter_counts(tuple(models))
        out["parameters"] = [params[m] for m in models]
        out["ImageNet top-1"] = [run_finetune.IMAGENET_TOP1.get(m, 0.0) for m in models]
    if set_name == "finetuned":
        out["linear probe"] = [probes[set_name][dataset][m] for m in models]
    return out


@functools.lru_cache(maxsize=None)
def _campaign_manifest(set_name="campaign"):
    return json.loads(campaign_module(set_name).MANIFEST.read_text())


@functools.lru_cache(maxsize=None)
def _parameter_counts(models=VISION_MODELS):
    """{model: parameter count} of the vision networks ``models``, cached in parameters.json (the added networks
    are counted, and stored, the first time they are asked for)."""
    path = CACHE / "parameters.json"
    counts = json.loads(path.read_text()) if path.exists() else {}
    missing = [m for m in models if m not in counts]
    if missing:
        import run_finetune

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            counts.update(run_finetune.parameter_counts(missing))
        path.write_text(json.dumps(counts, indent=1))
    return counts


def current_units(found, truth_of=None):
    """(current, stale) of the cached units ``found``. A resample scored before models joined its set (the zoo's
    added networks) lacks some of its measured unit's models: it is not a resample of the same unit, and is left
    out until ``score`` redoes it (a score that ranks 6 models would be judged beside one that ranks 14). Only
    the models that are judged count (those of ``truth_of[set][dataset]`` when given): a model left out of the
    truth since (an under-trained fine-tune) does not make a unit stale."""
    measured = {(u["set"], u["dataset"], u["budget"]): set(u["scores"]) for u in found if u["resample"] is None}
    current, stale = [], []
    for unit in found:
        judged = measured.get((unit["set"], unit["dataset"], unit["budget"]), set())
        if truth_of is not None:
            judged &= set(truth_of.get(unit["set"], {}).get(unit["dataset"], {}))
        lacking = (judged - set(unit["scores"])
                   - set(unit.get("refused", {})))  # refused on this resample's rows: judged elsewhere, not stale
        (stale if unit["resample"] is not None and lacking else current).append(unit)
    return current, stale


def judge(args):
    """evidence.csv: one row per (truth, dataset, budget, resample, variant) with the ranking metrics; and
    evidence_scores.csv.gz: every model's score per (truth, dataset, resample, variant) of the full budget, with
    the baselines' values and the truths, for the hierarchical bootstrap."""
    found = [json.loads(path.read_text()) for path in sorted(CACHE.glob("*__*__*__*.json"))]
    found = [u for u in found if u["resample"] is None or u["resample"] < args.resamples]
    sets = judged_sets(found)
    truth_of, probes = truths(sets)
    # truths() has just rewritten each campaign's accuracies.csv
    runs = {name: campaign_runs(refresh=False, set_name=name)[0] for name in CAMPAIGNS if name in sets}
    if "finetuned" in sets:
        runs["finetuned"] = finetuned_runs()
    rows = []
    long_rows = []
    # a model that pedrank refuses on the rows of one unit (near-dead features: more than 95 % identical rows on
    # a resample) is left out of every unit of that (set, dataset, budget): the resamples judge the same models
    refused = {}
    for unit in found:
        refused.setdefault((unit["set"], unit["dataset"], unit["budget"]), set()).update(unit.get("refused", {}))
    found, stale = current_units(found, truth_of)
    if stale:
        print(f"left out {len(stale)} resample units scored before models joined their set (run `score` to "
              "redo them): " + ", ".join(sorted({f"{u['set']}/{u['dataset']}" for u in stale})), flush=True)
    for unit in found:
        set_name, dataset, budget, resample = unit["set"], unit["dataset"], unit["budget"], unit["resample"]
        truth = truth_of[set_name].get(dataset, {})  # a campaign target without finished runs has none yet
        models = [m for m in unit["scores"] if m in truth and math.isfinite(truth[m])
                  and m not in refused[set_name, dataset, budget]]
        if len(models) < 2:
            continue
        add_consensus(unit["scores"], models)
        baselines = baseline_values(set_name, dataset, models, probes)  # the same at every resample
        if budget == "full":
            tag = "measured" if resample is None else resample
            for model in models:
                # one accuracy row per fine-tuning seed (the campaign's that trained; the others' single run)
                seeds = runs[set_name][dataset][model] if set_name in runs else {0: truth[model]}
                long_rows += [{"truth": set_name, "dataset": dataset, "resample": tag, "model": model,
                               "variant": "accuracy", "score": value, "seed": seed}
                              for seed, value in sorted(seeds.items())]
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
        unit_rows = sets[set_name][dataset]["train_rows"] if budget == "full" else SMALL_ROWS
        text = dataset in TEXT if set_name in ("probe", "finetuned") else set_name == "text_campaign"
        common = {"truth": set_name, "dataset": dataset, "modality": "text" if text else "vision",
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
    """evidence_scores.csv.gz, byte-stable (gzip without a time stamp): the bootstrap's input. ``seed``: the
    fine-tuning seed of an ``accuracy`` row (one row per seed), empty for scores."""
    import gzip
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["truth", "dataset", "resample", "model", "variant", "score", "seed"])
    for row in long_rows:
        value = row["score"]
        writer.writerow([row["truth"], row["dataset"], row["resample"], row["model"], row["variant"],
                         "nan" if not math.isfinite(value) else f"{value:.9g}", row.get("seed", "")])
    with open(EVIDENCE_SCORES, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
        handle.write(buffer.getvalue().encode())


def read_scores_table(path=None):
    """The rows of evidence_scores.csv.gz, scores as floats."""
    import gzip

    with gzip.open(path or EVIDENCE_SCORES, "rt", newline="") as handle:
        return [{**row, "score": float(row["score"])} for row in csv.DictReader(handle)]


#: The truths of the bootstrap: each on its own, and "pooled", the fine-tuned datasets and the campaign's targets
#: together (each a dataset of its own, drawn alike).
BOOT_TRUTHS = ("finetuned", "campaign", "text_campaign", "pooled", "probe")
BOOT_LABELS = {"finetuned": "fine-tuned", "campaign": "campaign", "text_campaign": "text campaign",
               "pooled": "pooled fine-tuned (zoo + both campaigns)", "probe": "probe"}


def bootstrap_inputs(table, truth):
    """(scores, accuracies) for :func:`pedrank.workflow.bootstrap.hierarchical_bootstrap` from the rows of
    evidence_scores.csv.gz: one truth, or "pooled" (every fine-tuned truth, the rule's); the rule's own reading
    (:func:`pedrank.workflow.recommendation.pooled_bootstrap_inputs`: datasets named ``truth/dataset``, one
    accuracy row per fine-tuning seed)."""
    from pedrank.workflow.recommendation import FINE_TUNED_TRUTHS, pooled_bootstrap_inputs

    return pooled_bootstrap_inputs(table, FINE_TUNED_TRUTHS if truth == "pooled" else (truth,))


def bootstrap_results(n_boot, random_state=0):
    """{truth: BootstrapResult} for the truths of BOOT_TRUTHS present in evidence_scores.csv.gz."""
    from pedrank.workflow.bootstrap import hierarchical_bootstrap

    table = read_scores_table()
    present = {r["truth"] for r in table}
    results = {}
    for truth in BOOT_TRUTHS:
        if truth == "pooled" and "finetuned" not in present or truth != "pooled" and truth not in present:
            continue
        scores, accuracies = bootstrap_inputs(table, truth)
        results[truth] = hierarchical_bootstrap(scores, accuracies, n_boot=n_boot, random_state=random_state)
    return results


def bootstrap_section(evidence, n_boot, random_state=0):
    """Markdown: every variant's mean weighted tau with its 95 % interval over datasets, models, seeds and
    scoring rows, and P(it beats the default), against each truth; PED's effect per score; the rule."""
    from pedrank.workflow.recommendation import CHALLENGE_PROBABILITY, INCUMBENT, RECOMMENDED, candidates, challenge

    results = bootstrap_results(n_boot, random_state)
    shown = [t for t in BOOT_TRUTHS if t in results]
    lines = [f"### Hierarchical bootstrap ({n_boot} paired draws: datasets, models within a dataset, fine-tuning "
             "seeds, scoring-row resamples; full scoring rows)",
             "Mean weighted tau [95 % interval]; P(> default): the share of draws in which the variant's mean beats "
             f"the default's ({RECOMMENDED.variant}). Every model has each fine-tuning seed that trained (the real "
             "models: the seeds in their table below; the seed level draws one per drawn model); pooled: the "
             "zoo's fine-tuned datasets and both campaigns' targets drawn alike (the truth the rule reads). Sorted by "
             "the campaign's mean.\n"]
    names = [v for v in results[shown[0]].variants if all(v in results[t].variants for t in shown)]
    key = "campaign" if "campaign" in results else shown[0]
    names.sort(key=lambda v: -np.nan_to_num(results[key].measured[v], nan=-9))
    lines.append("| variant | " + " | ".join(f"{BOOT_LABELS[t]} | P(> default)" for t in shown) + " |")
    lines.append("|---|" + "---|---|" * len(shown))

    def cell(result, v):
        low, high = result.interval(v)
        return f"{result.measured[v]:+.3f} [{low:+.3f}, {high:+.3f}]"

    for v in names:
        cells = [f"{cell(results[t], v)} | {results[t].p_beats(v, RECOMMENDED.variant):.2f}" for t in shown]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines.append("\n(nan: a baseline not defined on every dataset of that truth, e.g. ImageNet top-1 on the text "
                 "probes and on the campaign's controlled networks.)\n")
    lines.append(ped_section(results, shown))
    pool = candidates(evidence)
    rule = results["pooled"]
    won, _ = challenge(rule, INCUMBENT.variant, pool)
    chosen, tied = challenge(rule, RECOMMENDED.variant, pool)
    verdict = ("stays" if chosen == RECOMMENDED.variant else f"would change to {chosen}")
    lines.append(f"**The rule** (a challenger replaces the default only when it beats it in >= "
                 f"{CHALLENGE_PROBABILITY:.0%} of the paired draws against the pooled fine-tuned truth): from stage "
                 f"1's {INCUMBENT.variant}, the challenge gives {won} (P(beats {INCUMBENT.variant}) "
                 f"{rule.p_beats(won, INCUMBENT.variant):.2f}); the committed default {RECOMMENDED.variant} {verdict} "
                 f"under its own challenge. Not separated from {chosen} (it does not beat them in "
                 f"{CHALLENGE_PROBABILITY:.0%} of the draws): {len(tied) - 1} of {len(pool) - 1} other candidates, "
                 f"led by {', '.join(tied[1:8])}.")
    lines.append(by_truth_paragraph(n_boot, random_state, pool))
    for truth in ("finetuned", "campaign", "text_campaign"):
        if truth not in results:
            continue
        result = results[truth]
        chosen, tied = challenge(result, RECOMMENDED.variant, pool)
        beaten = sorted((v for v in pool if v in result.variants and v != RECOMMENDED.variant
                         and result.p_beats(RECOMMENDED.variant, v) >= CHALLENGE_PROBABILITY))
        winners = sorted((v for v in pool if v in result.variants and v != RECOMMENDED.variant
                          and result.p_beats(v, RECOMMENDED.variant) >= CHALLENGE_PROBABILITY),
                         key=lambda v: -result.p_beats(v, RECOMMENDED.variant))
        lines.append(f"\n**The same challenge against the {BOOT_LABELS[truth]} truth alone** (information: the rule "
                     f"reads them pooled): {RECOMMENDED.variant} "
                     + ("stays" if chosen == RECOMMENDED.variant
                        else f"would give way to {chosen} (the cheapest of the winners that no other winner beats)")
                     + f". Beating {RECOMMENDED.variant} in >= {CHALLENGE_PROBABILITY:.0%} of the draws: "
                     + (", ".join(f"{v} ({result.p_beats(v, RECOMMENDED.variant):.2f})" for v in winners) or "none")
                     + f"; {RECOMMENDED.variant} beats {len(beaten)} of {len(pool) - 1} in >= "
                     f"{CHALLENGE_PROBABILITY:.0%}" + (f" ({', '.join(beaten)})" if beaten else "")
                     + f"; not separated from {chosen}: {len(tied) - 1} of {len(pool) - 1}"
                     + (f" ({', '.join(tied[1:8])}{', ...' if len(tied) > 8 else ''})" if len(tied) > 1 else "")
                     + ".")
    return "\n".join(lines) + "\n", results


def by_truth_paragraph(n_boot, random_state, pool):
    """Markdown: the rule's challenge again with each fine-tuned truth weighing the same (the bootstrap stratified by
    truth: the 3 real-model datasets count as much as the 8 image or 7 text targets): how much the verdict rests on
    the pooled datasets being mostly the controlled zoos'. Information; the rule reads every dataset alike."""
    from pedrank.workflow.bootstrap import hierarchical_bootstrap
    from pedrank.workflow.recommendation import CHALLENGE_PROBABILITY, INCUMBENT, RECOMMENDED, challenge

    scores, accuracies = bootstrap_inputs(read_scores_table(), "pooled")
    strata = {row["dataset"]: row["dataset"].split("/", 1)[0] for row in accuracies}
    result = hierarchical_bootstrap(scores, accuracies, n_boot=n_boot, random_state=random_state, strata=strata)
    won, _ = challenge(result, INCUMBENT.variant, pool)
    chosen, tied = challenge(result, RECOMMENDED.variant, pool)
    top = sorted((v for v in pool if v in result.variants and math.isfinite(result.measured[v])),
                 key=lambda v: -result.measured[v])[:6]
    shown = list(dict.fromkeys([*top, RECOMMENDED.variant, INCUMBENT.variant]))

    def cell(v):
        low, high = result.interval(v)
        return f"{v} {result.measured[v]:+.3f} [{low:+.3f}, {high:+.3f}]"

    return (f"\n**Each fine-tuned truth weighing the same** (the same draws stratified by truth: "
            f"{', '.join(sorted(set(strata.values())))}; information, the rule weighs every dataset alike): from "
            f"{INCUMBENT.variant} the challenge gives {won} (P {result.p_beats(won, INCUMBENT.variant):.2f}); "
            f"{RECOMMENDED.variant} " + ("stays" if chosen == RECOMMENDED.variant else f"would give way to {chosen}")
            + f" under its own challenge; not separated from {chosen} in {CHALLENGE_PROBABILITY:.0%}: "
            f"{len(tied) - 1} of {len(pool) - 1}. Means [95 %]: " + "; ".join(cell(v) for v in shown) + ".")


def ped_section(results, shown):
    """Markdown: "Does PED help?" per score: the mean weighted tau with PED minus without, measured, with its 95 %
    interval over the same paired draws, and P(PED better)."""
    first = results[shown[0]]
    bases = [v for v in first.variants if not v.endswith("+PED") and f"{v}+PED" in first.variants]
    lines = ["### Does PED help? Mean weighted tau with PED (default setting) minus without, per score",
             "Measured difference [95 % interval over the paired draws above], and P(PED better): the share of draws "
             "in which the PED variant's mean beats the plain one's (ties count half). \"failed\": the score refused "
             "a model of that truth (no measured mean; the interval is over the draws without it).\n",
             "| score | " + " | ".join(BOOT_LABELS[t] for t in shown) + " |", "|---|" + "---|" * len(shown)]
    for base in bases:
        cells = []
        for truth in shown:
            result = results[truth]
            if base not in result.variants or f"{base}+PED" not in result.variants:
                cells.append("-")
                continue
            diff = result._column(f"{base}+PED") - result._column(base)
            diff = diff[np.isfinite(diff)]
            measured = result.measured[f"{base}+PED"] - result.measured[base]
            if diff.size == 0:
                cells.append("failed")
                continue
            low, high = np.percentile(diff, [2.5, 97.5])
            # a score that failed on a model has no measured mean: its interval is over the draws it scored
            centre = f"{measured:+.3f}" if math.isfinite(measured) else "failed"
            cells.append(f"{centre} [{low:+.3f}, {high:+.3f}] {result.p_beats(f'{base}+PED', base):.2f}")
        lines.append(f"| {base} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seed_agreement(trained, models, others=(1, 2)):
    """The seed-to-seed spread of a truth ({model: {seed: accuracy}}) over ``models``: the std of each model's
    accuracy over its seeds, in points (models with >= 2 seeds), and the weighted tau between seed 0's and each
    other seed's accuracies over the models that have both (a cell "-" below 3 such models)."""
    from scipy import stats

    stds = [np.std(list(trained[m].values()), ddof=1) * 100 for m in models if len(trained[m]) >= 2]
    taus = []
    for other in others:
        common = [m for m in models if 0 in trained[m] and other in trained[m]]
        if len(common) < 3:
            taus.append("-")
            continue
        tau = stats.weightedtau([trained[m][0] for m in common], [trained[m][other] for m in common])[0]
        taus.append(f"{tau:+.3f} ({len(common)})")
    return stds, taus


def heldout_section(n_boot, random_state=0, table=None):
    """Markdown: the scores against the image campaign's held-out targets alone (``campaign.HELDOUT_TARGETS``, fixed
    after the default was chosen on the others; their units, the scores' predictions, committed before their
    fine-tuning). Before their truth exists: each target's top models under the default and under LogME, read from
    the measured units."""
    import campaign

    from pedrank.workflow.bootstrap import hierarchical_bootstrap
    from pedrank.workflow.recommendation import (
        PREVIOUS,
        RECOMMENDED,
        candidates,
        pooled_bootstrap_inputs,
        read_evidence,
    )

    held = campaign.HELDOUT_TARGETS
    lines = [f"### Held-out targets ({', '.join(held)}): fixed after the default ({RECOMMENDED.variant}) was chosen",
             ""]
    rows = [r for r in (read_scores_table() if table is None else table)
            if r["truth"] == "campaign" and r["dataset"] in held]
    judged = sorted({r["dataset"] for r in rows if r["variant"] == "accuracy"})
    if not judged:
        lines.append("No fine-tuned truth yet. The predictions (measured units, full rows), best first:")
        lines.append("")
        for target in held:
            path = CACHE / f"campaign__{target}__full__measured.json"
            if not path.exists():
                lines.append(f"- {target}: not scored yet")
                continue
            scores = json.loads(path.read_text())["scores"]
            for variant in (RECOMMENDED.variant, PREVIOUS.variant):
                order = sorted(scores, key=lambda m: -scores[m].get(variant, -math.inf))
                lines.append(f"- {target}, {variant}: " + ", ".join(order[:5]) + f" ... ({len(order)} models)")
        return "\n".join(lines) + "\n"
    present = {r["variant"] for r in rows}
    pool = [v for v in candidates(read_evidence(EVIDENCE_CSV)) if v in present]
    baselines = [b for b in ("linear probe", "parameters") if b in present]
    scores, accuracies = pooled_bootstrap_inputs(rows, ("campaign",))
    result = hierarchical_bootstrap(scores, accuracies, n_boot=n_boot, random_state=random_state,
                                    variants=pool + baselines)
    lines.append(f"Judged on {len(judged)} of {len(held)} ({', '.join(judged)}); mean weighted tau [95 % interval] "
                 f"over {n_boot} paired draws (targets, models, seeds, scoring rows), P(> default): the share of draws "
                 f"in which the variant beats {RECOMMENDED.variant}, P(> {PREVIOUS.variant}) likewise.")
    lines += ["", f"| variant | held-out mean | P(> default) | P(> {PREVIOUS.variant}) |", "|---|---|---|---|"]
    for variant in sorted(pool, key=lambda v: -result.measured[v]) + baselines:
        low, high = result.interval(variant)
        label = f"{variant} (baseline)" if variant in baselines else variant
        lines.append(f"| {label} | {result.measured[variant]:+.3f} [{low:+.3f}, {high:+.3f}] | "
                     f"{result.p_beats(variant, RECOMMENDED.variant):.2f} | "
                     f"{result.p_beats(variant, PREVIOUS.variant):.2f} |")
    return "\n".join(lines) + "\n"


def finetuned_section():
    """Markdown: the real models' fine-tuned truth per seed: its seed-to-seed spread and agreement."""
    runs = finetuned_runs()
    lines = ["### The real models' fine-tuned truth: seeds, seed-to-seed spread",
             "run_finetune.py's protocol with ``--seed`` 0, 1, 2 (seed 0: ``finetune_accuracies.csv``; the others: "
             "``finetune_seeds/``); a seed enters a dataset once every model has its run. The eight added vision "
             "networks (``finetune_extra/``), the fourteen on the image targets added later (``finetune_targets/``) "
             "and the text encoders on the text datasets (``finetune_text/``) enter with the seeds they have. "
             "Columns as in the campaigns' tables below.\n",
             "| dataset | models | seeds in | accuracy | seed std, mean / max (points) | "
             "weighted tau seed 0 vs 1 / 0 vs 2 |",
             "|---|---|---|---|---|---|"]
    for dataset, trained in runs.items():
        models = sorted(trained)
        seeds = sorted({s for by_seed in trained.values() for s in by_seed})
        means = [np.mean(list(trained[m].values())) for m in models]
        stds, taus = seed_agreement(trained, models)
        lines.append(f"| {dataset} | {len(models)} | {', '.join(map(str, seeds))} | "
                     f"{min(means):.3f}-{max(means):.3f} | "
                     + (f"{np.mean(stds):.2f} / {np.max(stds):.2f} ({len(stds)})" if stds else "-") + " | "
                     + " / ".join(taus) + " |")
    return "\n".join(lines) + "\n"


def campaign_section(set_name="campaign"):
    """Markdown: a campaign's truth: runs per seed, what was left out and why, the seed-to-seed spread of the
    accuracies, and how well one seed's ranking predicts another's (the truth's own noise)."""
    pending = {}
    runs, untrained = campaign_runs(refresh=False, pending=pending, set_name=set_name)
    refused = {}
    for path in sorted(CACHE.glob(f"{set_name}__*__full__*.json")):
        unit = json.loads(path.read_text())
        refused.setdefault(unit["dataset"], set()).update(unit.get("refused", {}))
    if not runs and not untrained:
        return ""
    campaign = campaign_module(set_name)
    size = len(campaign.model_names())
    lines = [f"### The {BOOT_LABELS[set_name]}'s truth: runs, left out, seed-to-seed spread",
             f"Trained runs per seed (of {size} models); runs that did not train (left out); models left out of the "
             "judged units: without a trained run, or with frozen features that pedrank refuses on the full rows or "
             "a resample of them (dead, or near-dead: more than 95 % identical rows; no score ranks them); the "
             "accuracy range of the judged models (mean over their seeds); the seed-to-seed spread: the std of a "
             "model's accuracy over its seeds (models with >= 2), its mean and max, in "
             "accuracy points; and the weighted tau between two seeds' accuracies over the same models (how well "
             "one fine-tuning run ranks the models of another: the ceiling of any score against this truth).\n",
             "| target | trained runs, seeds 0/1/2 | did not train | left out: no trained run / dead features | "
             "judged models | accuracy | seed std, mean / max (points) | weighted tau seed 0 vs 1 / 0 vs 2 |",
             "|---|---|---|---|---|---|---|---|"]
    spreads = []
    for target in campaign.TARGETS:
        trained = runs.get(target, {})
        failed = untrained.get(target, {})
        counts = "/".join(str(sum(1 for seeds in trained.values() if s in seeds)) for s in campaign.SEEDS)
        no_run = sorted(m for m in failed if m not in trained)
        dead = refused.get(target)
        judged = [m for m in trained if dead is not None and m not in dead]
        means = [np.mean(list(trained[m].values())) for m in judged]
        stds, taus = seed_agreement(trained, judged)
        spreads += stds
        lines.append(f"| {target} | {counts} | {sum(len(v) for v in failed.values())} | {len(no_run)} / "
                     f"{'-' if dead is None else len(dead)} | {len(judged) if dead is not None else '-'} | "
                     + (f"{min(means):.3f}-{max(means):.3f}" if means else "-") + " | "
                     + (f"{np.mean(stds):.2f} / {np.max(stds):.2f} ({len(stds)})" if stds else "-") + " | "
                     + " / ".join(taus) + " |")
    if spreads:
        lines.append(f"\nOver all targets: a model's accuracy moves by {np.mean(spreads):.2f} points (std over its "
                     f"seeds; median {np.median(spreads):.2f}, max {np.max(spreads):.2f}) over {len(spreads)} "
                     "(target, model) pairs with >= 2 seeds.")
    if pending:
        lines.append(f"Not judged yet (a seed enters once all {size} models have its run): "
                     + "; ".join(f"{t} seed {', '.join(f'{s} ({n} of {size} runs)' for s, n in by_seed.items())}"
                                 for t, by_seed in pending.items()) + ".")
    dead_all = sorted({m for names in refused.values() for m in names})
    if dead_all:
        lines.append(f"Dead frozen features (left out where refused): {', '.join(dead_all)}.")
    return "\n".join(lines) + "\n"


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
    from pedrank.workflow.recommendation import failures, summary

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
    targets = sorted({r["dataset"] for r in evidence if r["truth"] == "campaign"})
    text_targets = sorted({r["dataset"] for r in evidence if r["truth"] == "text_campaign"})
    real = {r["dataset"]: r["modality"] for r in evidence if r["truth"] == "finetuned"}
    n_text = sum(m == "text" for m in real.values())
    probed = {r["dataset"]: r["modality"] for r in evidence if r["truth"] == "probe"}
    n_probed_text = sum(m == "text" for m in probed.values())
    columns = [(f"fine-tuned, {len(real) - n_text} image + {n_text} text datasets", summary(evidence, "finetuned")),
               (f"campaign, {len(targets)} image targets", summary(evidence, "campaign")),
               (f"text campaign, {len(text_targets)} text targets", summary(evidence, "text_campaign")),
               (f"probe, {len(probed) - n_probed_text} image datasets", summary(evidence, "probe", modality="vision")),
               (f"probe, {n_probed_text} text datasets", summary(evidence, "probe", modality="text")),
               (f"probe, all {len(probed)}", summary(evidence, "probe"))]
    if not text_targets:
        del columns[2]
    if not targets:
        del columns[1]
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
    # every campaign unit is N > D (D = 64): their two row budgets instead
    regimes += [(f"{BOOT_LABELS[truth]}, {budget} rows", summary(evidence, truth, budget=budget))
                for truth, present in (("campaign", targets), ("text_campaign", text_targets)) if present
                for budget in ("full", "small")]
    out.append("\n### By regime: mean weighted tau over the units (dataset, rows) where N <= D for the widest model, "
               "and where N > D for every model (both row budgets); the campaign by row budget")
    out.append("| score | " + " | ".join(name for name, _ in regimes) + " |")
    out.append("|---|" + "---|" * len(regimes))
    for v in scores + baselines:
        out.append(f"| {v} | " + " | ".join(_cell(table.get(v)) for _, table in regimes) + " |")
    out.append("\n### Per dataset, full scoring rows, measured weighted tau")
    units = sorted({(r["truth"], r["dataset"]) for r in evidence if r["budget"] == "full"})
    short = {"finetuned": "ft", "probe": "probe", "campaign": "camp", "text_campaign": "tcamp"}
    out.append("| score | " + " | ".join(f"{short[t]} {d}" for t, d in units) + " |")
    out.append("|---|" + "---|" * len(units))
    lookup = {(r["truth"], r["dataset"], r["variant"]): r["weighted_tau"] for r in evidence
              if r["budget"] == "full" and r["resample"] == "measured"}
    for v in scores + baselines:
        cells = [lookup.get((t, d, v)) for t, d in units]
        out.append(f"| {v} | " + " | ".join("-" if c is None else "nan" if math.isnan(c) else f"{c:+.3f}"
                                             for c in cells) + " |")
    return "\n".join(out) + "\n"


def report(args):
    from pedrank.workflow import recommendation as _recommendation

    judge(args)
    evidence = _recommendation.read_evidence(EVIDENCE_CSV)
    text = render(evidence)
    choice = _recommendation.recommend(evidence)
    text += "\n" + _recommendation.explain(choice, evidence) + "\n"
    section, _ = bootstrap_section(evidence, args.boot)
    text += "\n" + section
    text += "\n" + heldout_section(args.boot)
    text += "\n" + finetuned_section()
    for set_name in CAMPAIGNS:
        text += "\n" + campaign_section(set_name)
    EVIDENCE_MD.write_text(text)
    print(text)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="score every unit (resumable)")
    p.add_argument("--resamples", type=int, default=3)
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS, help="the feature sets to score")
    p.add_argument("--campaign-resamples", type=int, default=3, help="at most this many for the campaign's units")
    p.add_argument("--exclude", nargs="+", default=[], metavar="SCORE",
                   help="scores not to score now (a later run without it adds them to the cached units)")
    p.add_argument("--datasets", nargs="+", default=[], metavar="DATASET",
                   help="score only these datasets' units (default: every dataset of the sets)")
    p.add_argument("--pending", nargs="+", default=[], choices=VISION + TEXT, metavar="DATASET",
                   help="fine-tuned datasets being trained: score their units with every candidate model now")
    p = sub.add_parser("report", help="judge the cached scores, write evidence.csv and evidence.md")
    p.add_argument("--resamples", type=int, default=3, help="use resamples 0..N-1 (those cached)")
    p.add_argument("--boot", type=int, default=1000, help="draws of the hierarchical bootstrap")
    args = parser.parse_args(argv)
    return run_scores(args) if args.command == "score" else report(args)


if __name__ == "__main__":
    raise SystemExit(main())
