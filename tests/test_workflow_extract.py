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


class _HeadFirst(nn.Module):
    """Declares its classifier head before its body: the last nn.Linear declared is not the last one run."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(8, 3)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())

    def forward(self, x):
        return self.head(self.body(x))


def test_default_is_the_last_linear_run_not_the_last_declared():
    net = _HeadFirst()
    images, labels, loader = _loader()
    features, out_labels = extract_features(net, loader)
    with torch.no_grad():
        expected = net.body(images)
    assert features.shape == (11, 8)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out_labels, labels.numpy())
    named, _ = extract_features(net, loader, layer="body.4")
    np.testing.assert_array_equal(features, named)
    head_input, _ = extract_features(net, loader, layer="head", capture="input")
    np.testing.assert_array_equal(features, head_input)
    assert not any(m._forward_hooks for m in net.modules())  # every hook is removed


class _SharedHead(nn.Module):
    """Runs ``a``, then ``b``, then ``a`` again: ``a``'s last call is the last nn.Linear call."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.flatten = nn.Flatten()
        self.a = nn.Linear(64, 64)
        self.b = nn.Linear(64, 64)

    def forward(self, x):
        h = torch.relu(self.a(self.flatten(x)))
        return self.a(torch.tanh(self.b(h)))


def test_a_linear_run_twice_counts_by_its_last_call():
    net = _SharedHead()
    images, _, loader = _loader()
    features, _ = extract_features(net, loader)
    with torch.no_grad():
        expected = torch.tanh(net.b(torch.relu(net.a(images.flatten(1)))))
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-6, atol=1e-6)


class _AttentionAfterHead(nn.Module):
    """An nn.MultiheadAttention declared after the head: its out_proj (an nn.Linear) is never called as a module."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(8, 3)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        tokens = x.reshape(x.shape[0], 8, 8)
        mixed, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return self.head(mixed.mean(dim=1))


def test_a_linear_that_never_runs_is_not_the_default():
    net = _AttentionAfterHead()
    _, _, loader = _loader()
    features, _ = extract_features(net, loader)
    head_input, _ = extract_features(net, loader, layer="head", capture="input")
    assert features.shape == (11, 8)
    np.testing.assert_array_equal(features, head_input)


class _UnusedLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return self.conv(x)


def test_no_linear_run_names_the_model():
    _, _, loader = _loader()
    net = _UnusedLinear()
    with pytest.raises(ValueError, match="_UnusedLinear model ran none of its 1 nn.Linear"):
        extract_features(net, loader)
    assert not net.unused._forward_hooks
