"""The fine-tuned evidence campaign for TEXT (issue 25): a controlled text zoo pre-trained here on offline text,
text targets derived from the zoo's two text datasets, each (model, target) fine-tuned end to end over a
learning-rate grid with three seeds. The image campaign's twin (``campaign.py``): same layout, same CLI, same
public interface, so that evidence.py can read it as another truth set. Every finished run is one small JSON
committed under ``benchmarks/zoo/text_campaign/runs/`` and nothing is ever run twice.

    # 1. pre-train the controlled text zoo: deterministic (one thread, fixed seeds); the checkpoints go to
    #    cache/text_controlled/ (git-ignored) and their SHA-256 to text_campaign/zoo_manifest.json (committed)
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/text_campaign.py pretrain
    # 2. fine-tune, seed 0 of every (model, target) first, then seeds 1 and 2; stops cleanly after the budget
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/text_campaign.py finetune --minutes 60
    # 3. what is done: runs per target and seed, and the accuracies table (text_campaign/accuracies.csv)
    PYTHONPATH=python python benchmarks/zoo/text_campaign.py status

Texts become token ids by one fixed rule shared by every model: lower-cased words (the regular expression
``_WORD``), each hashed (CRC-32) into ``BUCKETS - 1`` buckets (id 0 pads), the first ``MAX_TOKENS`` words kept.
No vocabulary is built from any dataset: a word has the same id in every source and target. The ids travel
as a float32 array (n, MAX_TOKENS) (exact below 2**24), the input type of :func:`pedrank.workflow.finetune`.

The controlled zoo, after the practice of the Model Zoos datasets: 2 architectures x 3 widths x 4 sources x 2
training lengths = 48 models. Architectures (both end with a 64-unit ReLU layer, the features that are scored,
and a linear classifier that fine-tuning replaces):

* ``bag``: a word-embedding table of ``width`` dimensions, the mean over the text's words, two ReLU layers
  (128, then 64 units): a fastText / deep-averaging-network style encoder, blind to word order;
* ``cnn``: the same table, a 1-D convolution over 3 words (``2 * width`` channels, ReLU), max over the words,
  a 64-unit ReLU layer: Kim-style text CNN, sees local word order.

Widths 16, 32 and 64; lengths 200 and 2,000 AdamW steps of 64 texts. Sources, all read from the disk (Debian
packages already installed; nothing downloaded), none of them holding a target's text:

* ``wordnet_other``: WordNet noun and verb glosses of the 24 lexicographer files (of >= 400 glosses) that the
  ``wordnet`` target does not use (noun.act, noun.attribute, ..., verb.social), at most 600 each: 13,785 texts,
  the target's domain and style, other classes;
* ``fortunes_other``: quotes of the 21 fortune files (of >= 128 quotes) that the ``fortunes`` target does not use
  (art, cookie, ..., zippy), at most 600 each, any quote also in a target left out: 8,195 texts, the other
  target's domain;
* ``manpages``: the NAME line and the first 40 words of the DESCRIPTION of manual pages (/usr/share/man, roff
  removed), labelled by their section (1, 2, 3, 5, 7, 8), at most 1,500 each: 4,824 texts, another domain
  (technical prose);
* ``wordnet_shuffled``: ``wordnet_other`` with its labels permuted (seeded): memorisation, weak features on
  purpose.

No source holds a target's text (exact matches after lower-casing are removed; the WordNet and fortune classes
are disjoint from the targets'). The hashed vocabulary's words: 36,105 distinct ones over the three sources,
covering 95 % of the fortunes target's word tokens and 93 % of wordnet's.

Targets (test part 30 % stratified, seed 0, as campaign.py): ``fortunes`` (10 classes x 120) and ``wordnet``
(12 x 100), the zoo's own samples (zoo_data.py), and derived ones: ``fortunes_low`` and ``wordnet_low`` (20 per
class, seeded), ``fortunes_dropout`` and ``wordnet_dropout`` (each word dropped with probability 0.5, seeded, at
least one kept), ``wordnet_nouns`` (a class subset: the 8 noun classes).

Fine-tuning: :func:`pedrank.workflow.finetune` on the token ids, the whole network trained with a fresh linear
head, SGD with momentum 0.9 and a cosine schedule, 300 steps of 48, learning rates {0.3, 0.1, 0.03} (word
embeddings learn slowly under plain SGD; in a probe of 7 models x 2 targets 0.01 was chosen at most once, on a
tie, and 1.0 stayed at chance), weight decay 0, the setting chosen on a validation split (20 % per class of the
training part); seeds 0, 1, 2 (each seeds the validation split, the new head and the batch order).
A run "did not train" when its training loss (mean of the last 10 % of steps) stayed within 5 % of chance,
log C, at every learning rate: :func:`trained`, as campaign.py; write_accuracies marks it with trained = 0.
``status`` also counts the chosen runs whose test accuracy still rose by more than 0.02 over the last 100 steps
(:func:`still_rising`; under a cosine schedule some late gain is normal, so these are reported, not left out).

Cost, measured on this 2-core machine at nice 19 on one thread, sharing it with the image campaign and other jobs
(2026-12-05): pre-training the 48 models took 18 min (3 to 14 s for 200 steps, 21 to 91 s for 2,000); one
fine-tuning run (300 steps) 0.8 s median (0.25 to 7.3 s, 1st to 99th percentile), one (model, target, seed) unit
of 3 runs 4.5 s on average; all 48 x 7 x 3 = 1,008 units (3,024 runs) took 75 min, seed 0 alone 34 min.

The two real sentence encoders (all-MiniLM-L6-v2 and the SRE MiniLM, 22.7 M parameters each) are not in this
pool: fine-tuned end to end (mean pooling, a new linear head, AdamW, batch 16, at most 128 word pieces), one epoch
of a full target's 672 training texts took 350 s on ``fortunes`` (its quotes fill the 128 pieces) and 98 s on
``wordnet`` (glosses, 34 pieces on average), measured on one thread at nice 19 on this 2-core machine while the
image campaign ran (2026-12-05). The campaign's protocol (300 steps of 48 = 21 epochs) would take 35 min to 2 h
per run; even 3 epochs per run, x 3 learning rates x 3 seeds x 7 targets x 2 models = 126 runs, would take 10 to
35 hours on one core. Left out (``TRANSFORMER_NOTE``); their linear-probe truth stays in run_zoo.py.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# the image campaign's reading of the run files, its accuracies table, work order and training check: shared
import campaign  # noqa: E402
from campaign import trained, work_order  # noqa: E402,F401  (trained: part of this module's interface)

CAMPAIGN = HERE / "text_campaign"
RUNS = CAMPAIGN / "runs"
MANIFEST = CAMPAIGN / "zoo_manifest.json"
ACCURACIES = CAMPAIGN / "accuracies.csv"
CHECKPOINTS = HERE / "cache" / "text_controlled"
FEATURES = HERE / "cache" / "text_features"

BUCKETS = 32768  # hashed word ids 1..BUCKETS-1; 0 pads
MAX_TOKENS = 64
FEATURE_DIM = 64

ARCHITECTURES = ("bag", "cnn")
WIDTHS = (16, 32, 64)
SOURCES = ("wordnet_other", "fortunes_other", "manpages", "wordnet_shuffled")
LENGTHS = (200, 2000)
PRETRAIN = {"batch_size": 64, "learning_rate": 3e-3, "weight_decay": 1e-4}

TARGETS = ("fortunes", "wordnet", "fortunes_low", "wordnet_low", "fortunes_dropout", "wordnet_dropout",
           "wordnet_nouns")
FINETUNE = {"iterations": 300, "batch_size": 48, "learning_rates": (0.3, 0.1, 0.03), "weight_decays": (0.0,),
            "checkpoints": 3, "schedule": "cosine"}
SEEDS = (0, 1, 2)

TRANSFORMER_NOTE = ("all-MiniLM-L6-v2 / SRE MiniLM fine-tuned end to end: one epoch of 672 texts on one thread "
                    "took 350 s (fortunes) and 98 s (wordnet); too slow for 126 runs on one core, left out")


def model_names():
    """The controlled zoo's names, ``{arch}_w{width}_{source}_s{steps}``, in a fixed order."""
    return [f"{a}_w{w}_{s}_s{n}" for a, w, s, n in itertools.product(ARCHITECTURES, WIDTHS, SOURCES, LENGTHS)]


def parse_name(name):
    arch, width, rest = name.split("_", 2)
    source, steps = rest.rsplit("_s", 1)
    return arch, int(width[1:]), source, int(steps)


# --- tokens --------------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text):
    return _WORD.findall(text.lower())


def encode(texts, max_tokens=MAX_TOKENS):
    """Texts -> float32 (n, max_tokens) hashed word ids (0 pads; a text without words gets one id, 1)."""
    out = np.zeros((len(texts), max_tokens), dtype=np.float32)
    for row, text in enumerate(texts):
        ids = [zlib.crc32(w.encode()) % (BUCKETS - 1) + 1 for w in words(text)[:max_tokens]] or [1]
        out[row, :len(ids)] = ids
    return out


# --- data ----------------------------------------------------------------------------------------------------

OTHER_LEXFILES = (4, 7, 9, 11, 12, 14, 17, 19, 21, 22, 23, 24, 26, 27, 28, 30, 31, 33, 35, 36, 39, 40, 41, 42)
#                  every noun and verb lexicographer file with >= 400 glosses that the wordnet target does not use
OTHER_FORTUNES = ("art", "cookie", "disclaimer", "ethnic", "fortunes", "humorists", "kids", "knghtbrd", "love",
                  "men-women", "miscellaneous", "people", "perl", "platitudes", "riddles", "songs-poems", "sports",
                  "startrek", "wisdom", "work", "zippy")  # every fortune file with >= 128 quotes not a target's
MAN_SECTIONS = ("1", "2", "3", "5", "7", "8")
SOURCE_CAP = {"wordnet_other": 600, "fortunes_other": 600, "manpages": 1500}  # texts per class at most
_GLOSS = re.compile(r"^\d{8} (\d{2}) [nv] .*?\| (.*)$")


def _norm(text):
    return " ".join(words(text))


def _target_texts():
    import zoo_data

    return {_norm(t) for loader in (zoo_data.fortunes, zoo_data.wordnet) for t in loader()[0]}


def _take(texts, labels, cap, seed):
    """At most ``cap`` texts of each class (seeded), in their original order."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        picks.append(rows if len(rows) <= cap else rng.choice(rows, size=cap, replace=False))
    keep = np.sort(np.concatenate(picks))
    return [texts[i] for i in keep], labels[keep]


def _wordnet_other():
    import zoo_data

    exclude = _target_texts()
    class_of = {lexfile: i for i, lexfile in enumerate(OTHER_LEXFILES)}
    texts, labels = [], []
    for part in ("noun", "verb"):
        for line in (zoo_data.WORDNET_DIR / f"data.{part}").read_text(encoding="latin-1").splitlines():
            match = _GLOSS.match(line)
            if match and int(match.group(1)) in class_of and _norm(match.group(2)) not in exclude:
                texts.append(match.group(2).strip())
                labels.append(class_of[int(match.group(1))])
    return _take(texts, labels, SOURCE_CAP["wordnet_other"], seed=31)


def _fortunes_other():
    import zoo_data

    exclude = _target_texts()
    texts, labels = [], []
    for index, name in enumerate(OTHER_FORTUNES):
        raw = (zoo_data.FORTUNES_DIR / name).read_text(encoding="latin-1")
        quotes = [" ".join(q.split()) for q in raw.split("\n%\n")]
        quotes = sorted({q for q in quotes if len(q) > 10 and _norm(q) not in exclude})
        texts += quotes
        labels += [index] * len(quotes)
    return _take(texts, labels, SOURCE_CAP["fortunes_other"], seed=37)


_ROFF_ESCAPE = re.compile(r"\\f[BIRP1-4]|\\f\(..|\\f\[[^]]*\]|\\\(..|\\\[[^]]*\]|\\[&|^~ 0-]|\\\*\(..|\\\*.|\\[ew]")


def _man_text(path, n_words=40):
    """The NAME line and the first ``n_words`` words of the DESCRIPTION of a manual page (roff removed)."""
    try:
        raw = gzip.decompress(path.read_bytes()).decode("latin-1")
    except (OSError, EOFError):
        return None
    section, name, body = None, [], []
    for line in raw.splitlines():
        if line.startswith((".SH", ".Sh")):
            heading = line[3:].strip().strip('"').upper()
            section = "NAME" if heading.startswith("NAME") else ("DESC" if heading.startswith("DESC") else None)
            if section is None and body:
                break
            continue
        if line.startswith((".", "'")):
            if section == "NAME" and line.startswith((".Nm", ".Nd")):
                line = line[3:]
            else:
                continue
        line = _ROFF_ESCAPE.sub(" ", line).replace("\\-", "-").replace("\\", " ")
        if section == "NAME":
            name.append(line)
        elif section == "DESC":
            body.append(line)
            if sum(len(b.split()) for b in body) >= n_words:
                break
    text = " ".join(" ".join(name + body).split()[: n_words + 20])
    return text if name and len(words(text)) >= 8 else None


def _manpages():
    root = Path("/usr/share/man")
    rng = np.random.default_rng(41)
    per_class = SOURCE_CAP["manpages"]
    texts, labels = [], []
    for index, section in enumerate(MAN_SECTIONS):
        files = sorted(p for p in (root / f"man{section}").glob("*.gz") if p.is_file())
        found = []
        for i in rng.permutation(len(files)):
            text = _man_text(files[i])
            if text is not None:
                found.append(text)
            if len(found) == per_class:
                break
        texts += found
        labels += [index] * len(found)
    return texts, np.asarray(labels, dtype=np.int64)


def source_data(source):
    """The pre-training set of a source: (texts (list of str), labels (n,) int64)."""
    if source == "wordnet_other":
        return _wordnet_other()
    if source == "wordnet_shuffled":
        texts, labels = _wordnet_other()
        return texts, np.random.default_rng(7).permutation(labels)
    if source == "fortunes_other":
        return _fortunes_other()
    if source == "manpages":
        return _manpages()
    raise SystemExit(f"unknown source {source!r}; expected one of {SOURCES}")


def _word_dropout(texts, seed, p=0.5):
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        tokens = text.split()
        keep = rng.random(len(tokens)) >= p
        if tokens and not keep.any():
            keep[rng.integers(len(tokens))] = True
        out.append(" ".join(t for t, k in zip(tokens, keep) if k))
    return out


def target_data(target):
    """A fine-tuning target: (texts (list of str), labels (n,) int64); the models read ``encode(texts)``."""
    import zoo_data

    base, _, variant = target.partition("_")
    if base not in zoo_data.TEXT_DATASETS or target not in TARGETS:
        raise SystemExit(f"unknown target {target!r}; expected one of {TARGETS}")
    texts, labels = zoo_data.TEXT_DATASETS[base]()
    if variant == "low":
        keep = zoo_data._stratified_take(labels, 20, None, seed=19)
        texts, labels = [texts[i] for i in keep], labels[keep]
    elif variant == "dropout":
        texts = _word_dropout(texts, seed=29)
    elif variant == "nouns":
        nouns = [i for i, lexfile in enumerate(zoo_data.WORDNET_LEXFILES.values()) if lexfile.startswith("noun.")]
        keep = np.flatnonzero(np.isin(labels, nouns))
        texts, labels = [texts[i] for i in keep], labels[keep]
    return list(texts), np.asarray(labels, dtype=np.int64)


def split(labels):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=0.3, stratify=labels, random_state=0)


# --- models --------------------------------------------------------------------------------------------------

def build(name, n_classes):
    """A fresh, randomly initialised network of the recipe ``name`` (call torch.manual_seed first).

    It takes float (batch, MAX_TOKENS) hashed word ids (0 pads) and ends with a 64-unit ReLU layer (the features
    that are scored) and a linear classifier of ``n_classes`` outputs (replaced when fine-tuned).
    """
    import torch
    from torch import nn

    arch, width, _, _ = parse_name(name)

    class ControlledText(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(BUCKETS, width, padding_idx=0)
            nn.init.normal_(self.embedding.weight, std=0.3)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
            if arch == "bag":
                self.body = nn.Sequential(nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, FEATURE_DIM), nn.ReLU())
            else:
                self.conv = nn.Conv1d(width, 2 * width, 3, padding=1)
                self.body = nn.Sequential(nn.Linear(2 * width, FEATURE_DIM), nn.ReLU())
            self.classifier = nn.Linear(FEATURE_DIM, n_classes)

        def features(self, x):
            ids = x.long()
            mask = (ids > 0).unsqueeze(-1)
            embedded = self.embedding(ids)  # (n, t, width)
            if arch == "bag":
                pooled = embedded.sum(1) / mask.sum(1).clamp(min=1)
            else:
                hidden = torch.relu(self.conv(embedded.transpose(1, 2))).transpose(1, 2)  # (n, t, 2 width)
                pooled = hidden.masked_fill(~mask, float("-inf")).amax(1)
                pooled = torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))
            return self.body(pooled)

        def forward(self, x):
            return self.classifier(self.features(x))

    return ControlledText()


def checkpoint_path(name):
    return CHECKPOINTS / f"{name}.pt"


def load(name):
    """The pre-trained network ``name`` (pretrain first)."""
    import torch

    state = torch.load(checkpoint_path(name), map_location="cpu", weights_only=True)
    net = build(name, state["classifier.weight"].shape[0])
    net.load_state_dict(state)
    return net.eval()


def _name_seed(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def pretrain_one(name, data=None):
    """Train ``name`` on its source; deterministic given torch's CPU kernels on one thread.

    ``data``: the source's (texts, labels), read from the disk when None."""
    import torch

    _, _, source, steps = parse_name(name)
    texts, labels = data if data is not None else source_data(source)
    n_classes = int(labels.max()) + 1
    seed = _name_seed(name)
    torch.manual_seed(seed)
    net = build(name, n_classes)
    x, y = torch.as_tensor(encode(texts)), torch.as_tensor(labels)
    optimizer = torch.optim.AdamW(net.parameters(), lr=PRETRAIN["learning_rate"],
                                  weight_decay=PRETRAIN["weight_decay"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    losses = []
    for _ in range(steps):
        batch = torch.randint(0, len(y), (PRETRAIN["batch_size"],), generator=generator)
        loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        accuracy = float((net(x).argmax(1) == y).float().mean())
    return net, {"source": source, "steps": steps, "seed": seed, "source_accuracy": accuracy,
                 "source_samples": len(y), "final_loss": float(np.mean(losses[-20:]))}


def pretrain(args):
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    names = args.models or model_names()
    sources = {}
    for index, name in enumerate(names):
        path = checkpoint_path(name)
        if path.exists() and not args.verify:
            continue
        start = time.perf_counter()
        source = parse_name(name)[2]
        if source not in sources:
            sources[source] = source_data(source)
        net, info = pretrain_one(name, sources[source])
        tmp = path.with_suffix(".tmp")
        torch.save(net.state_dict(), tmp)
        os.replace(tmp, path)
        if not campaign.record_checkpoint(manifest, MANIFEST, name, path, net, info):
            continue
        print(f"[{index + 1}/{len(names)}] {name}: source accuracy {info['source_accuracy']:.3f}, "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    return 0


# --- frozen features -----------------------------------------------------------------------------------------

def features(target, models=None):
    """Each model's frozen features of all the target's samples: ``{model: (X float32 (n, 64), labels)}``.

    The penultimate layer (the 64-unit layer that fine-tuning puts a new head on), eval mode, no gradient, in the
    order of :func:`target_data`. Cached in cache/text_features/ keyed by the checkpoint's SHA-256."""
    import torch

    torch.set_num_threads(1)
    texts, labels = target_data(target)
    tokens = None
    out = {}
    FEATURES.mkdir(parents=True, exist_ok=True)
    for name in models or model_names():
        digest = campaign._sha256(checkpoint_path(name))
        path = FEATURES / f"{target}__{name}__{digest[:16]}.npz"
        if path.is_file():
            with np.load(path) as stored:
                out[name] = (stored["X"], stored["y"])
            continue
        if tokens is None:
            tokens = torch.as_tensor(encode(texts))
        net = load(name)
        with torch.no_grad():
            X = torch.cat([net.features(tokens[i:i + 256]) for i in range(0, len(tokens), 256)]).numpy()
        X = X.astype(np.float32)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, X=X, y=labels)
        os.replace(tmp, path)
        out[name] = (X, labels)
    return out


# --- fine-tuning ---------------------------------------------------------------------------------------------

def finetune_unit(model, target, seed, data_cache):
    import torch

    from pedrank.workflow.finetune import finetune

    if target not in data_cache:
        texts, labels = target_data(target)
        train, test = split(labels)
        data_cache[target] = (encode(texts), labels, train, test)
    tokens, labels, train, test = data_cache[target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return finetune({model: lambda: load(model)}, tokens[train], labels[train], test_inputs=tokens[test],
                        test_labels=labels[test], dataset=target, learning_rates=FINETUNE["learning_rates"],
                        weight_decays=FINETUNE["weight_decays"], iterations=FINETUNE["iterations"],
                        batch_size=FINETUNE["batch_size"], checkpoints=FINETUNE["checkpoints"],
                        schedule=FINETUNE["schedule"], seed=seed, cache_dir=RUNS / f"seed{seed}",
                        device=torch.device("cpu"), progress=False)


def run_finetune(args):
    import torch

    torch.set_num_threads(args.threads)
    models = args.models or model_names()
    missing = [m for m in models if not checkpoint_path(m).exists()]
    if missing:
        raise SystemExit(f"{len(missing)} checkpoints missing (first {missing[0]}): run `text_campaign.py pretrain`")
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else None
    data_cache = {}
    order = work_order(models, args.targets, args.seeds)
    for index, (seed, target, model) in enumerate(order):
        if deadline is not None and time.monotonic() > deadline:
            print(f"stopped after the {args.minutes} min budget at unit {index + 1}/{len(order)}", flush=True)
            break
        start = time.perf_counter()
        result = finetune_unit(model, target, seed, data_cache)
        fresh = [r for r in result.runs if not r["cached"]]
        if fresh:
            chosen = result.chosen[model]
            print(f"[{index + 1}/{len(order)}] seed {seed} {target} {model}: test {chosen['test_accuracy']:.3f} "
                  f"(lr {chosen['learning_rate']:g}, train loss {chosen['train_loss']:.3f}), "
                  f"{time.perf_counter() - start:.1f}s", flush=True)
    write_accuracies()
    return 0


def collect():
    """Every finished run: {(seed, target, model): chosen run record} (campaign.py's reading of the run files)."""
    return campaign.collect(RUNS, FINETUNE)


def write_accuracies():
    """text_campaign/accuracies.csv: one row per (target, model, seed) whose grid is complete (campaign.py's
    columns, its writer)."""
    return campaign.write_accuracies(ACCURACIES, RUNS, FINETUNE)


def status(args):
    chosen = write_accuracies()
    models = model_names()
    print(f"{len(chosen)} of {len(models) * len(TARGETS) * len(SEEDS)} (target, model, seed) units finished "
          f"({len(models)} models x {len(TARGETS)} targets x {len(SEEDS)} seeds); {ACCURACIES}")
    for target in TARGETS:
        counts = [sum(1 for (s, t, _) in chosen if t == target and s == seed) for seed in SEEDS]
        accuracies = [run["test_accuracy"] for (s, t, _), run in chosen.items() if t == target and s == 0
                      and trained(run)]
        untrained = sorted(m for (s, t, m), run in chosen.items() if t == target and not trained(run))
        spread = f", seed-0 accuracy {min(accuracies):.3f}-{max(accuracies):.3f}" if accuracies else ""
        left_out = f"; did not train (left out): {', '.join(untrained)}" if untrained else ""
        rising = sum(still_rising(run) for (_, t, _), run in chosen.items() if t == target)
        late = f"; still rising at the end: {rising}" if rising else ""
        print(f"  {target:17s} seeds {counts}{spread}{left_out}{late}")
    return 0


def still_rising(run, margin=0.02):
    """True when the chosen run's test accuracy rose by more than ``margin`` over its last checkpoint interval
    (200 -> 300 steps): a sign that 300 steps under-trained it. Reported by ``status``, not left out."""
    curve = [run["curve"][k] for k in sorted(run.get("curve", {}), key=int)]
    return len(curve) >= 2 and curve[-1] - curve[-2] > margin


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="pre-train the controlled text zoo (skips checkpoints that exist)")
    p.add_argument("--models", nargs="+", choices=model_names())
    p.add_argument("--verify", action="store_true", help="retrain existing checkpoints and compare their SHA-256")
    p = sub.add_parser("finetune", help="fine-tune (resumable; finished runs are never rerun)")
    p.add_argument("--models", nargs="+", choices=model_names())
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--minutes", type=float, default=0, help="stop starting new units after this long (0: no limit)")
    p.add_argument("--threads", type=int, default=1)
    sub.add_parser("status", help="count the finished units and write text_campaign/accuracies.csv")
    args = parser.parse_args(argv)
    return {"pretrain": pretrain, "finetune": run_finetune, "status": status}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
