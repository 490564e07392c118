"""pedrank.extract_features: a layer's activations over a DataLoader (torch is optional)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from pedrank.workflow.extract import extract_features  # noqa: E402


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(20, 7), nn.ReLU(), nn.Dropout(0.5), nn.Linear(7, 3),
    )


def _loader(n=11, batch_size=4):
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(n, 1, 8, 8, generator=generator)
    labels = torch.arange(n) % 3
    return images, labels, DataLoader(TensorDataset(images, labels), batch_size=batch_size)


def test_default_is_the_input_of_the_last_linear_layer_in_eval_mode():
    net = _net()
    images, labels, loader = _loader()
    net.train()
    features, out_labels = extract_features(net, loader)
    net.eval()
    with torch.no_grad():
        expected = net[:7](images)  # dropout is the identity in eval mode
    assert features.shape == (11, 7)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out_labels, labels.numpy())


def test_training_mode_and_gradients_are_left_as_they_were():
    net = _net()
    _, _, loader = _loader()
    net.train()
    extract_features(net, loader)
    assert net.training
    assert all(p.grad is None for p in net.parameters())
    assert not net[0]._forward_hooks  # the hook is removed


def test_a_named_4d_layer_is_globally_average_pooled():
    net = _net().eval()
    images, _, loader = _loader()
    features, _ = extract_features(net, loader, layer="1")
    with torch.no_grad():
        expected = net[:2](images).mean(dim=(2, 3))
    assert features.shape == (11, 5)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-6, atol=1e-6)


def test_a_module_and_its_input():
    net = _net().eval()
    images, _, loader = _loader()
    features, _ = extract_features(net, loader, layer=net[4], capture="input")
    with torch.no_grad():
        expected = net[:4](images)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-6, atol=1e-6)


def test_dict_batches():
    net = _net()
    images, labels, _ = _loader(n=6)
    batches = [{"image": images[:3], "label": labels[:3]}, {"image": images[3:], "label": labels[3:]}]
    features, out_labels = extract_features(net, batches)
    assert features.shape == (6, 7)
    np.testing.assert_array_equal(out_labels, labels.numpy())


def test_errors():
    _, _, loader = _loader()
    with pytest.raises(ValueError, match="no nn.Linear"):
        extract_features(nn.Sequential(nn.Conv2d(1, 2, 3)), loader)
    with pytest.raises(ValueError, match="no submodule 'head'"):
        extract_features(_net(), loader, layer="head")
    with pytest.raises(ValueError, match="no batches"):
        extract_features(_net(), [])
    with pytest.raises(ValueError, match="inputs, labels"):
        extract_features(_net(), [torch.zeros(2, 1, 8, 8)])
    with pytest.raises(ValueError, match="capture"):
        extract_features(_net(), loader, capture="middle")
