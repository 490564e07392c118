"""Backend selection, optional torch, and where results live."""

import subprocess
import sys

import numpy as np
import pytest
from pedrank.backend import NumpyBackend, get_backend, is_torch_tensor, to_numpy, torch_kernels

from conftest import make_problem
from pedrank._engine.array_kernels import ArrayKernels, TorchKernels
from pedrank._engine.kernels import select_kernels


@pytest.mark.parametrize("module", ["pedrank", "pedrank.backend", "pedrank._engine.array_kernels"])
def test_importing_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_auto_picks_numpy_for_arrays():
    features = np.zeros((4, 3))
    assert isinstance(get_backend(features), NumpyBackend)
    assert isinstance(get_backend(features.tolist()), NumpyBackend)
    assert not is_torch_tensor(features)


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="backend"):
        get_backend(np.zeros((2, 2)), "cupy")
    with pytest.raises(ValueError, match="backend"):
        select_kernels(np.zeros((2, 2)), "cupy")
    with pytest.raises(ValueError, match="backend"):
        select_kernels(np.zeros((2, 2)), object())


def test_numpy_kernels_are_the_core_and_kernel_sets_pass_through():
    from pedrank import _core

    assert select_kernels(np.zeros((4, 3))) is _core
    assert select_kernels(np.zeros((4, 3)), "numpy") is _core
    numpy_kernels = ArrayKernels(NumpyBackend())
    assert select_kernels(np.zeros((4, 3)), numpy_kernels) is numpy_kernels


def test_auto_picks_torch_for_tensors():
    torch = pytest.importorskip("torch")
    from pedrank.backend import TorchBackend

    tensor = torch.zeros(4, 3)
    assert is_torch_tensor(tensor)
    chosen = get_backend(tensor)
    assert isinstance(chosen, TorchBackend) and chosen.device == tensor.device
    assert isinstance(get_backend(np.zeros((4, 3)), "torch"), TorchBackend)
    assert isinstance(get_backend(tensor, "numpy"), NumpyBackend)
    assert isinstance(select_kernels(tensor), TorchKernels)
    assert isinstance(select_kernels(np.zeros((4, 3)), "torch"), TorchKernels)
    with pytest.raises(ValueError, match="torch tensor"):
        select_kernels(tensor, "numpy")
    np.testing.assert_array_equal(to_numpy(tensor), np.zeros((4, 3)))


def test_lead_selector_hands_out_torch_kernels():
    torch = pytest.importorskip("torch")
    from pedrank._engine.kernels import select_kernels

    kernels = select_kernels(torch.zeros(4, 3), "auto")
    assert isinstance(kernels, TorchKernels)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ped_moved_features_stay_a_tensor_in_the_input_dtype(dtype):
    torch = pytest.importorskip("torch")
    features, labels = make_problem(120, 6, 4, seed=3)
    tensor = torch.as_tensor(features).to(getattr(torch, dtype))
    center, scale = features.mean(axis=0), features.std(axis=0)
    moved, displacement, energy, coincident = torch_kernels().ped_step(
        tensor, labels, 4, center, scale, 3.0, 1.0, 0.1
    )
    assert isinstance(moved, torch.Tensor)
    assert moved.dtype == tensor.dtype and moved.device == tensor.device
    assert moved.data_ptr() != tensor.data_ptr()
    assert np.abs(displacement).sum() > 0
    assert isinstance(displacement, np.ndarray) and isinstance(energy, float) and isinstance(coincident, int)
    np.testing.assert_array_equal(tensor.numpy(), features.astype(dtype))


def test_torch_results_are_host_floats_and_arrays():
    torch = pytest.importorskip("torch")
    from pedrank.backend import torch_kernels

    features, labels = make_problem(80, 5, 3, seed=4)
    kernels = torch_kernels()
    tensor = torch.as_tensor(features)
    score, shrinkage = kernels.sfda_score(tensor, labels, 3, float("nan"))
    assert isinstance(score, float) and isinstance(shrinkage, float)
    assert isinstance(kernels.gbc(tensor, labels, 3, 4, False, False), float)
    for output in kernels.logme(tensor, labels, 3, None, False):
        assert isinstance(output, np.ndarray) and output.dtype == np.float64
    # Labels may also arrive as a tensor.
    assert kernels.sfda_score(tensor, torch.as_tensor(labels), 3, float("nan"))[0] == pytest.approx(score)


def test_float32_compute_tracks_float64():
    """The documented float32 tolerance: about 1e-4 relative on scores (1e-3 asserted)."""
    features, labels = make_problem(400, 20, 6, seed=5, separation=0.5)
    single, double = ArrayKernels(dtype="float32"), ArrayKernels()
    assert single.gbc(features, labels, 6, 8, False, False) == pytest.approx(
        double.gbc(features, labels, 6, 8, False, False), rel=1e-3)
    assert np.mean(single.logme(features, labels, 6, None, False)[0]) == pytest.approx(
        np.mean(double.logme(features, labels, 6, None, False)[0]), rel=1e-3)
    center, scale = features.mean(axis=0), features.std(axis=0)
    moved32 = single.ped_step(features, labels, 6, center, scale, 0.6, 1.0, 0.1)[1]
    moved64 = double.ped_step(features, labels, 6, center, scale, 0.6, 1.0, 0.1)[1]
    assert np.abs(moved32).sum() == pytest.approx(np.abs(moved64).sum(), rel=1e-3)


def test_public_ped_on_tensors_equals_the_reference_loop():
    """The whole PED call on a tensor: statistics, pair forces and the moved copy on the tensor's device."""
    import os

    torch = pytest.importorskip("torch")
    import pedrank
    import pedrank.reference as reference

    features, labels = make_problem(400, 12, 9, seed=4)
    device = os.environ.get("PEDRANK_TEST_DEVICE", "cpu")
    result = pedrank.ped(torch.as_tensor(features, device=device), labels, radius=1.5)
    expected = reference.ped(features, labels, radius=1.5)
    assert is_torch_tensor(result.features) and result.features.device.type == torch.device(device).type
    assert result.features.dtype == torch.float64
    assert result.steps == expected.steps > 1
    np.testing.assert_allclose(result.movements, expected.movements, rtol=1e-8)
    np.testing.assert_allclose(result.energies, expected.energies, rtol=1e-8)
    np.testing.assert_allclose(result.features.cpu().numpy(), expected.features, rtol=1e-8, atol=1e-12)
