"""The array kernels (NumPy and CPU torch backends) reproduce the authors' outputs in the parity vectors.

Set PEDRANK_TEST_DEVICE (e.g. "cuda") to run the torch cases on another device.
"""

import os

import numpy as np
import pytest
from pedrank.backend import NumpyBackend

from conftest import AUTHORS_LOGME_REGRESSION_RTOL, AUTHORS_RTOL, CASES
from pedrank._engine.array_kernels import ArrayKernels

# conftest's tolerances for the authors' numbers; the regression exception is explained there. The well-posed
# first regression target is checked at RTOL against the reference in test_backend_reference.py.
RTOL = AUTHORS_RTOL
REGRESSION_RTOL = AUTHORS_LOGME_REGRESSION_RTOL
PED_RADIUS, PED_ELASTIC, PED_TIME_STEP = 0.6, 1.0, 0.1


def _numpy_kernels():
    return ArrayKernels(NumpyBackend()), lambda array: array, lambda array: array


def _torch_kernels():
    torch = pytest.importorskip("torch")
    from pedrank.backend import torch_kernels

    device = os.environ.get("PEDRANK_TEST_DEVICE", "cpu")
    return torch_kernels(), (lambda array: torch.as_tensor(array, device=device)), (lambda t: t.cpu().numpy())


@pytest.fixture(params=["numpy", "torch"])
def kernels(request):
    """(kernels, to native array, to numpy) for each array backend."""
    return _numpy_kernels() if request.param == "numpy" else _torch_kernels()


def _case(vectors, case):
    features, labels = vectors[f"s{case}_X"], vectors[f"s{case}_y"]
    return features, labels, int(labels.max()) + 1


@pytest.mark.parametrize("case", CASES)
def test_logme_classification(vectors, kernels, case):
    kern, native, _ = kernels
    features, labels, n_classes = _case(vectors, case)
    evidence, _, _, _ = kern.logme(native(features), labels, n_classes, None, False)
    assert evidence.shape == (n_classes,)
    assert float(np.mean(evidence)) == pytest.approx(float(vectors[f"s{case}_logme"]), rel=RTOL)


@pytest.mark.parametrize("case", CASES)
def test_logme_regression(vectors, kernels, case):
    kern, native, _ = kernels
    features, _, _ = _case(vectors, case)
    targets = vectors[f"s{case}_Yreg"]
    evidence, _, _, weights = kern.logme(native(features), None, targets.shape[1], targets, False)
    assert weights.shape == (features.shape[1], targets.shape[1])
    expected = float(vectors[f"s{case}_logme_regression"])
    assert float(np.mean(evidence)) == pytest.approx(expected, rel=REGRESSION_RTOL)


@pytest.mark.parametrize("case", CASES)
def test_sfda(vectors, kernels, case):
    kern, native, _ = kernels
    features, labels, n_classes = _case(vectors, case)
    score, shrinkage = kern.sfda_score(native(features), labels, n_classes, float("nan"))
    assert score == pytest.approx(float(vectors[f"s{case}_sfda"]), rel=RTOL)
    assert 1e-10 <= shrinkage <= 1.0


@pytest.mark.parametrize("case", CASES)
def test_ped_step(vectors, kernels, case):
    kern, native, back = kernels
    features, labels, n_classes = _case(vectors, case)
    reference = vectors[f"s{case}_ref"]
    center, scale = reference.mean(axis=0), np.maximum(reference.std(axis=0), 1e-3)
    moved, displacement, energy, coincident = kern.ped_step(
        native(features), labels, n_classes, center, scale, PED_RADIUS, PED_ELASTIC, PED_TIME_STEP
    )
    expected_movement = float(vectors[f"s{case}_ped_step_movement"])
    assert coincident == 0
    if expected_movement == 0:
        # No overlapping clusters: nothing moves and there is no potential energy.
        assert np.abs(displacement).sum() == 0
        assert energy == 0
        np.testing.assert_array_equal(back(moved), features)
    else:
        assert float(np.abs(displacement).sum()) == pytest.approx(expected_movement, rel=RTOL)
        assert energy > 0
        np.testing.assert_allclose(back(moved), vectors[f"s{case}_ped_step_X"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", [1, 6])
def test_inputs_are_not_mutated(vectors, kernels, case):
    kern, native, back = kernels
    features, labels, n_classes = _case(vectors, case)
    array = native(features.copy())
    labels_copy = labels.copy()
    kern.sfda_score(array, labels_copy, n_classes, float("nan"))
    kern.ped_step(array, labels_copy, n_classes, np.zeros(features.shape[1]), np.ones(features.shape[1]),
                  0.6, 1.0, 0.1)
    np.testing.assert_array_equal(back(array), features)
    np.testing.assert_array_equal(labels_copy, labels)


@pytest.mark.parametrize("case", CASES)
def test_float32_option_within_documented_tolerance(vectors, case):
    """dtype="float32" trades precision for speed: scores stay within 1e-3 relative of float64."""
    kern = ArrayKernels(NumpyBackend(), dtype="float32")
    features, labels, n_classes = _case(vectors, case)
    evidence, _, _, _ = kern.logme(features, labels, n_classes, None, False)
    assert float(np.mean(evidence)) == pytest.approx(float(vectors[f"s{case}_logme"]), rel=1e-3)
    score, _ = kern.sfda_score(features, labels, n_classes, float("nan"))
    assert score == pytest.approx(float(vectors[f"s{case}_sfda"]), rel=1e-3)
    targets = vectors[f"s{case}_Yreg"]
    evidence, _, _, _ = kern.logme(features, None, 2, targets, False)
    assert float(np.mean(evidence)) == pytest.approx(float(vectors[f"s{case}_logme_regression"]), rel=1e-3)
