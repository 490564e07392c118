"""NLEEP on torch (pedrank._engine.mixture_torch) against the host path (scikit-learn's PCA, pedrank._engine.mixture).

Both run scikit-learn's PCA semantics, scikit-learn's k-means initialisation (on the host, the same call) and the
same EM with the same skipping and stopping rule, so they must agree to rounding:

* NLEEP values: NLEEP_RTOL = 1e-6 relative, issue 26's acceptance tolerance (measured: at most 1.2e-16);
* posteriors: POSTERIOR_ATOL = 1e-6 absolute, i.e. relative to their largest possible value 1 (measured: at most
  5.5e-12, on the overlapping mixture of 28 EM iterations), the same exact zeros and the same EM iteration count;
* the fit's weights, means and covariances: FIT_RTOL relative to the largest entry (measured at most 3.6e-15), and
  the lower bound to FIT_RTOL relative (measured at most 1.3e-12);
* the PCA's output against scikit-learn's ``fit_transform``: PCA_RTOL relative to the largest entry (measured at
  most 2.6e-13 on the authors' vectors), with the same number of components.

Every tolerance is far below what a change of initialisation or one EM iteration more moves (O(1) and 6e-4 to 0.2
on posteriors: tests/test_nleep_em.py). The device is ``PEDRANK_TEST_DEVICE`` (default "cpu"): on this project's
machines only CPU torch has run these.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import pedrank
import pedrank._engine.mixture as mixture_module
from conftest import MIXTURE_PROBLEMS, blobs, clustered  # tests/ is on sys.path under pytest
from pedrank._engine import mixture_torch
from pedrank._engine.array_kernels import ArrayKernels
from pedrank._engine.backend import NumpyBackend, TorchBackend
from pedrank._engine.kernels import torch_kernels
from pedrank._engine.mixture import MixtureFitError, fit_gaussian_mixture
from pedrank._engine.mixture_torch import fit_gaussian_mixture_torch, pca_reduce
from pedrank.scores.nleep import mixture_device, mixture_posteriors

torch = pytest.importorskip("torch")  # pedrank's modules above import torch only when called

NLEEP_RTOL = 1e-6
POSTERIOR_ATOL = 1e-6
FIT_RTOL = 1e-9
PCA_RTOL = 1e-9
#: Precision factors invert covariances of condition number up to 1.8e8 here (kappa * eps = 4e-8): measured at most
#: 3.5e-9 relative to the largest entry.
PRECISION_RTOL = 1e-6

DEVICE = os.environ.get("PEDRANK_TEST_DEVICE", "cpu")
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def one_thread():
    # scikit-learn's k-means (run by both sides) crawls when its OpenMP threads compete with other processes.
    with threadpool_limits(limits=1):
        yield


def tensor(array):
    return torch.as_tensor(np.asarray(array), device=DEVICE)


def authors_case(name):
    with np.load(DATA / "authors_rank_deficient.npz") as data:
        return np.asarray(data[f"{name}__X"], dtype=np.float64), data[f"{name}__y"]


AUTHORS = ["digits_pixels", "digits_pixels_x16", "relu_dead", "relu_dead_x100", "relu_wide"]


def assert_same_fit(ours, host):
    """A torch fit against the host fit of the same inputs."""
    assert (ours.n_iter, ours.converged) == (host.n_iter, host.converged)
    for mine, theirs in [(ours.weights, host.weights), (ours.means, host.means),
                         (ours.covariances, host.covariances)]:
        np.testing.assert_allclose(mine.cpu().numpy(), theirs, rtol=0, atol=FIT_RTOL * np.abs(theirs).max())
    np.testing.assert_allclose(ours.lower_bound, host.lower_bound, rtol=FIT_RTOL)
    posteriors = ours.posteriors.cpu().numpy()
    np.testing.assert_allclose(posteriors, host.posteriors, rtol=0, atol=POSTERIOR_ATOL)
    # Pairs proven to underflow are skipped on both sides: the same exact zeros.
    np.testing.assert_array_equal(posteriors == 0, host.posteriors == 0)


@pytest.mark.parametrize("prune", [None, True, False])
@pytest.mark.parametrize("problem", range(len(MIXTURE_PROBLEMS)))
def test_the_torch_fit_is_the_host_fit(problem, prune):
    n_samples, n_features, n_components, spread, relu = MIXTURE_PROBLEMS[problem]
    features = clustered(n_samples, n_features, n_components, spread, seed=problem, relu=relu)
    host = fit_gaussian_mixture(features, n_components, random_state=problem, prune=prune)
    ours = fit_gaussian_mixture_torch(tensor(features), n_components, random_state=problem, prune=prune)
    assert ours.posteriors.device.type == torch.device(DEVICE).type
    assert_same_fit(ours, host)
    np.testing.assert_allclose(ours.precisions_cholesky.cpu().numpy(), host.precisions_cholesky, rtol=0,
                               atol=PRECISION_RTOL * np.abs(host.precisions_cholesky).max())


@pytest.mark.parametrize("name", AUTHORS)
def test_pca_is_scikit_learns(name):
    features, _ = authors_case(name)
    theirs = PCA(n_components=0.8, svd_solver="full").fit_transform(features)
    ours = pca_reduce(tensor(features), 0.8).cpu().numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=PCA_RTOL * np.abs(theirs).max())


@pytest.mark.parametrize("variance_kept", [0.3, 0.8, 0.95])
def test_pca_keeps_as_many_components_as_scikit_learn(variance_kept):
    features = clustered(300, 20, 4, 1.0, seed=3)
    theirs = PCA(n_components=variance_kept, svd_solver="full").fit_transform(features)
    ours = pca_reduce(tensor(features), variance_kept).cpu().numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=PCA_RTOL * np.abs(theirs).max())


def nleep_both_ways(features, labels, **options):
    """(host value, torch value, host posteriors, torch posteriors)."""
    host_value = pedrank.nleep(features, labels, **options)
    torch_value = pedrank.nleep(tensor(features), labels, **options)
    n_classes = np.unique(labels).size
    settings = {"components_per_class": options.get("components_per_class", 5), "variance_kept": 0.8,
                "random_state": options.get("random_state", 0)}
    host_posteriors = mixture_posteriors(np.asarray(features, dtype=np.float64), n_classes, **settings)
    torch_posteriors = mixture_posteriors(tensor(features).to(torch.float64), n_classes, **settings)
    return host_value, torch_value, host_posteriors, torch_posteriors.cpu().numpy()


@pytest.mark.parametrize("name", AUTHORS)
def test_nleep_on_torch_equals_the_host_and_the_authors_on_their_vectors(name):
    features, labels = authors_case(name)
    host_value, torch_value, host_posteriors, torch_posteriors = nleep_both_ways(features, labels)
    np.testing.assert_allclose(torch_value, host_value, rtol=NLEEP_RTOL)
    np.testing.assert_allclose(torch_posteriors, host_posteriors, rtol=0, atol=POSTERIOR_ATOL)
    # The PED authors' NLEEP (scikit-learn's PCA and GaussianMixture, after np.random.seed(0)) on these inputs.
    with np.load(DATA / "authors_rank_deficient_field.npz") as field:
        np.testing.assert_allclose(torch_value, float(field[f"{name}__nleep"]), rtol=NLEEP_RTOL)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("log", [False, True])
def test_nleep_on_torch_equals_the_host_on_random_problems(seed, log):
    # Noise-dominated features keep most of their 120 dimensions through the PCA: the bounded E-step runs.
    rng = np.random.default_rng(100 + seed)
    n_classes = int(rng.integers(3, 7))
    features, labels = blobs(240, 120, n_classes, 1.5, seed)
    host_value, torch_value, host_posteriors, torch_posteriors = nleep_both_ways(features, labels, log=log,
                                                                                 random_state=seed)
    np.testing.assert_allclose(torch_value, host_value, rtol=NLEEP_RTOL)
    np.testing.assert_allclose(torch_posteriors, host_posteriors, rtol=0, atol=POSTERIOR_ATOL)


def record_e_step_shares(monkeypatch):
    """The share of the K x N pairs each E-step of the torch fit evaluates, appended as the fits run."""
    shares = []
    exact = mixture_torch._e_step

    def recording(*args):
        result = exact(*args)
        shares.append(result[2])
        return result

    monkeypatch.setattr(mixture_torch, "_e_step", recording)
    return shares


def test_overlapping_components_over_many_iterations(monkeypatch):
    """Components that overlap: 28 EM iterations, the bounded E-step gives way to every pair, as on the host."""
    features, labels = blobs(1500, 50, 2, 0.5, seed=0)
    shares = record_e_step_shares(monkeypatch)
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(features)
    assert reduced.shape[1] >= mixture_module.MIN_DIM_TO_PRUNE  # the bound is tried first
    host = fit_gaussian_mixture(reduced, 10, random_state=0)
    ours = fit_gaussian_mixture_torch(tensor(reduced), 10, random_state=0)
    assert host.n_iter > 20
    assert_same_fit(ours, host)
    assert shares[0] > mixture_module.USELESS_SHARE and len(shares) == ours.n_iter + 1
    host_value, torch_value, host_posteriors, torch_posteriors = nleep_both_ways(features, labels)
    np.testing.assert_allclose(torch_value, host_value, rtol=NLEEP_RTOL)
    np.testing.assert_allclose(torch_posteriors, host_posteriors, rtol=0, atol=POSTERIOR_ATOL)


def test_separated_components_skip_most_pairs(monkeypatch):
    features = clustered(300, 64, 30, 3.0, seed=5)
    shares = record_e_step_shares(monkeypatch)
    ours = fit_gaussian_mixture_torch(tensor(features), 30, random_state=5)
    assert max(shares) < 0.1
    assert_same_fit(ours, fit_gaussian_mixture(features, 30, random_state=5))


def test_stops_at_max_iter_with_scikit_learns_warning(monkeypatch):
    features = clustered(300, 5, 10, 0.5, seed=9)
    monkeypatch.setattr(mixture_module, "MAX_ITER", 1)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ours = fit_gaussian_mixture_torch(tensor(features), 10, random_state=2)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        host = fit_gaussian_mixture(features, 10, random_state=2)
    assert not ours.converged and ours.n_iter == 1
    assert_same_fit(ours, host)


def test_random_state_objects_are_used_as_on_the_host():
    features = clustered(200, 6, 10, 1.0, seed=8)
    ours, theirs = np.random.RandomState(11), np.random.RandomState(11)
    assert_same_fit(fit_gaussian_mixture_torch(tensor(features), 10, random_state=ours),
                    fit_gaussian_mixture(features, 10, random_state=theirs))
    assert ours.randint(1 << 30) == theirs.randint(1 << 30)


def test_a_collapsed_component_fails_as_on_the_host():
    features = np.random.default_rng(0).normal(size=(60, 8)) * 1e6
    with pytest.raises(MixtureFitError, match="not positive definite"):
        fit_gaussian_mixture_torch(tensor(features), 15, random_state=0)
    with pytest.raises(ValueError, match="lower components_per_class"):
        pedrank.nleep(tensor(features), np.arange(60) % 3)


def test_rejects_a_component_count_outside_one_to_n():
    with pytest.raises(ValueError, match=re.escape("n_components: expected an integer between 1 and the 20")):
        fit_gaussian_mixture_torch(tensor(clustered(20, 4, 3, 1.0, seed=0)), 21)


def test_constant_features_raise():
    with pytest.raises(ValueError, match="constant"):
        pedrank.nleep(tensor(np.ones((10, 3))), np.arange(10) % 2)


def test_input_is_not_written_and_float32_or_grad_tensors_are_read():
    features, labels = blobs(240, 60, 4, 1.0, seed=7)
    single = tensor(features.astype(np.float32)).requires_grad_(True)
    before = single.detach().clone()
    value = pedrank.nleep(single, labels)
    assert torch.equal(single.detach(), before) and single.grad is None
    np.testing.assert_allclose(value, pedrank.nleep(features.astype(np.float32), labels), rtol=NLEEP_RTOL)
    double = tensor(features)
    copy = double.clone()
    fit_gaussian_mixture_torch(double, 20, random_state=0)
    pca_reduce(double, 0.8)
    assert torch.equal(double, copy)


def test_which_backend_runs_the_mixture_on_torch():
    features, labels = blobs(120, 40, 3, 1.0, seed=2)
    array, on_device = np.asarray(features), tensor(features)
    assert mixture_device(on_device, "auto", None) == on_device.device
    assert mixture_device(array, "torch", None) == "cpu"
    assert mixture_device(array, "auto", None) is None
    assert mixture_device(array, "numpy", None) is None
    assert mixture_device(array, torch_kernels("float32"), torch_kernels("float32")) == "cpu"
    on_numpy = ArrayKernels(NumpyBackend())
    assert mixture_device(array, on_numpy, on_numpy) is None
    on_torch = ArrayKernels(TorchBackend(DEVICE))
    assert mixture_device(array, on_torch, on_torch) == torch.device(DEVICE)
    host_value = pedrank.nleep(array, labels)
    read_only = array.astype(np.float32)
    read_only.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning from torch
        for backend in ("torch", torch_kernels("float32"), on_torch):
            np.testing.assert_allclose(pedrank.nleep(array, labels, backend=backend), host_value, rtol=NLEEP_RTOL)
        np.testing.assert_allclose(pedrank.nleep(read_only, labels, backend="torch"),
                                   pedrank.nleep(read_only, labels), rtol=NLEEP_RTOL)


def test_cpu_threads_are_restored():
    before = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a converging fit warns about nothing
        fit_gaussian_mixture_torch(tensor(clustered(300, 4, 3, 5.0, seed=13)), 3, random_state=0)
    assert torch.get_num_threads() == before
