"""NLEEP's Gaussian mixture (pedrank._mixture) against scikit-learn's GaussianMixture, fit for fit.

pedrank._mixture runs scikit-learn's EM (its k-means initialisation, iterates and stopping rule) with the work
that cannot change the result skipped, so every fitted quantity must equal scikit-learn's to rounding:

* weights, means, covariances, posteriors: WEIGHT_RTOL (relative to the largest entry) / POSTERIOR_ATOL.
  Measured on the problems below, the authors' vectors and NLEEP's PCA outputs of random problems: at most
  1e-13 and 1.8e-12;
* the lower bound (mean log-likelihood), which decides when EM stops (a change below tol = 1e-3): to
  LOWER_BOUND_RTOL, or LOWER_BOUND_ATOL (a hundredth of tol) where both sides' own rounding is that large:
  measured at most 9e-12 relative, except 2.4e-7 absolute (4.4e-8 relative) on the authors' ReLU features
  scaled by 100, whose covariances have condition numbers up to 2e11 (at kappa = 2e13 scikit-learn's own lower
  bound moves by 2e-4 when X is perturbed by 1 ulp);
* the precision Cholesky factors: inverting a covariance of condition number kappa loses up to kappa * eps of
  relative accuracy (on either side), so each component's factor is compared to PRECISION_KAPPA_EPS * kappa * eps
  relative to its largest entry (measured at most 4.7 kappa eps; kappa reaches 2e11 here: 6.2e-6 relative);
* which responsibilities are exactly 0 (the E-step skips pairs it proves to underflow, which an absolute
  tolerance cannot check): the same on both sides, bar values below UNDERFLOW_SLACK, within rounding of exp's
  underflow (measured: identical patterns; a skipping margin of 600 instead of 800 fails this check);
* the NLEEP value: NLEEP_RTOL, issue 26's acceptance tolerance (measured at most 1.3e-15).

Every tolerance is orders of magnitude below what a change of initialisation or stopping moves: another k-means
seed changes posteriors by O(1) on every problem below; one EM iteration more, where the fit is not yet at a
fixed point (problems 0, 1 and 6), changes posteriors by 6e-4 to 0.2 and means by 3e-5 to 3e-3 relative.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

import pedrank
import pedrank._engine.mixture as mixture_module
from conftest import MIXTURE_PROBLEMS, clustered  # tests/ is on sys.path under pytest
from pedrank._engine.mixture import MixtureFitError, fit_gaussian_mixture
from pedrank._engine.validation import PedrankValueError
from pedrank.reference.nleep import nleep as reference_nleep

WEIGHT_RTOL = 1e-9
POSTERIOR_ATOL = 1e-9
LOWER_BOUND_RTOL = 1e-9
LOWER_BOUND_ATOL = 1e-5
PRECISION_KAPPA_EPS = 100.0
NLEEP_RTOL = 1e-6
UNDERFLOW_SLACK = 1e-300

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def one_thread():
    # scikit-learn's k-means (the initialisation, run by both sides) crawls when its OpenMP threads compete with
    # other processes for the cores; the numbers are the same on any thread count.
    with threadpool_limits(limits=1):
        yield


def scikit_fit(features, n_components, random_state=0, **options):
    mixture = GaussianMixture(n_components=n_components, covariance_type="full", random_state=random_state,
                              **options).fit(features)
    return mixture, mixture.predict_proba(features)


def assert_same_fit(fit, mixture, posteriors):
    assert (fit.n_iter, fit.converged) == (mixture.n_iter_, mixture.converged_)
    for ours, theirs in [(fit.weights, mixture.weights_), (fit.means, mixture.means_),
                         (fit.covariances, mixture.covariances_)]:
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=WEIGHT_RTOL * np.abs(theirs).max())
    for ours, theirs, covariance in zip(fit.precisions_cholesky, mixture.precisions_cholesky_,
                                        mixture.covariances_):
        kappa = np.linalg.cond(covariance)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=PRECISION_KAPPA_EPS * kappa
                                   * np.finfo(np.float64).eps * np.abs(theirs).max())
    np.testing.assert_allclose(fit.lower_bound, mixture.lower_bound_, rtol=LOWER_BOUND_RTOL, atol=LOWER_BOUND_ATOL)
    np.testing.assert_allclose(fit.posteriors, posteriors, rtol=0, atol=POSTERIOR_ATOL)
    # The E-step may skip only pairs whose responsibility underflows to 0 on scikit-learn's side too, which the
    # absolute tolerance above cannot see: the zero patterns must agree, except for values within rounding of
    # exp's underflow (measured: identical patterns, with subnormal posteriors down to 1.5e-323 on both sides).
    assert not ((fit.posteriors == 0) & (posteriors > UNDERFLOW_SLACK)).any()
    assert not ((posteriors == 0) & (fit.posteriors > UNDERFLOW_SLACK)).any()


@pytest.mark.parametrize("prune", [None, True, False])
@pytest.mark.parametrize("problem", range(len(MIXTURE_PROBLEMS)))
def test_equals_scikit_learn_on_random_problems(problem, prune):
    n_samples, n_features, n_components, spread, relu = MIXTURE_PROBLEMS[problem]
    features = clustered(n_samples, n_features, n_components, spread, seed=problem, relu=relu)
    mixture, posteriors = scikit_fit(features, n_components, random_state=problem)
    fit = fit_gaussian_mixture(features, n_components, random_state=problem, prune=prune)
    assert_same_fit(fit, mixture, posteriors)


def authors_case(name):
    with np.load(DATA / "authors_rank_deficient.npz") as data:
        return data[f"{name}__X"], data[f"{name}__y"]


@pytest.mark.parametrize("name", ["digits_pixels", "digits_pixels_x16", "relu_dead", "relu_dead_x100", "relu_wide"])
def test_equals_scikit_learn_on_the_authors_vectors(name):
    """The mixtures NLEEP fits on the authors' rank-deficient vectors (13 to 100 PCA dimensions)."""
    features, labels = authors_case(name)
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(np.asarray(features, dtype=np.float64))
    n_components = 5 * np.unique(labels).size
    mixture, posteriors = scikit_fit(reduced, n_components)
    assert_same_fit(fit_gaussian_mixture(reduced, n_components, random_state=0), mixture, posteriors)


@pytest.mark.parametrize("seed", range(4))
def test_nleep_equals_the_scikit_learn_reference(seed):
    # Noise-dominated features keep most dimensions through the PCA (here 60 to 100): the bounded E-step runs.
    rng = np.random.default_rng(100 + seed)
    n_classes = int(rng.integers(3, 7))
    labels = np.arange(240) % n_classes
    features = rng.normal(scale=1.5, size=(n_classes, 120))[labels] + rng.normal(size=(240, 120))
    for log in (False, True):
        np.testing.assert_allclose(pedrank.nleep(features, labels, log=log),
                                   reference_nleep(features, labels, log=log), rtol=NLEEP_RTOL)


def count_evaluated_pairs(monkeypatch):
    evaluated = [0]
    exact = mixture_module._mahalanobis

    def counting(features, rows, *args):
        evaluated[0] += features.shape[0] if rows is None else len(rows)
        return exact(features, rows, *args)

    monkeypatch.setattr(mixture_module, "_mahalanobis", counting)
    return evaluated


def test_separated_components_skip_most_pairs(monkeypatch):
    """The bound does skip pairs (else the tests above would not exercise it) and the fit stays scikit-learn's."""
    features = clustered(300, 64, 30, 3.0, seed=5)
    evaluated = count_evaluated_pairs(monkeypatch)
    fit = fit_gaussian_mixture(features, 30, random_state=5)
    e_steps = fit.n_iter + 1
    assert evaluated[0] < 0.1 * e_steps * 300 * 30
    assert_same_fit(fit, *scikit_fit(features, 30, random_state=5))


def test_overlapping_components_fall_back_to_every_pair(monkeypatch):
    features = clustered(500, 40, 8, 0.1, seed=6)
    evaluated = count_evaluated_pairs(monkeypatch)
    fit = fit_gaussian_mixture(features, 8, random_state=6, prune=True)
    assert evaluated[0] > 0.75 * (fit.n_iter + 1) * 500 * 8
    assert_same_fit(fit, *scikit_fit(features, 8, random_state=6))


def test_as_many_components_as_samples():
    features = clustered(12, 3, 4, 3.0, seed=7)
    assert_same_fit(fit_gaussian_mixture(features, 12, random_state=1), *scikit_fit(features, 12, random_state=1))


def test_random_state_objects_and_none_are_used_as_scikit_learn_uses_them():
    features = clustered(200, 6, 10, 1.0, seed=8)
    ours, theirs = np.random.RandomState(11), np.random.RandomState(11)
    fit = fit_gaussian_mixture(features, 10, random_state=ours)
    assert_same_fit(fit, *scikit_fit(features, 10, random_state=theirs))
    assert ours.randint(1 << 30) == theirs.randint(1 << 30)  # both states advanced alike

    np.random.seed(3)
    fit = fit_gaussian_mixture(features, 10, random_state=None)
    np.random.seed(3)
    assert_same_fit(fit, *scikit_fit(features, 10, random_state=None))


def test_stops_at_max_iter_with_scikit_learns_warning(monkeypatch):
    features = clustered(300, 5, 10, 0.5, seed=9)
    monkeypatch.setattr(mixture_module, "MAX_ITER", 1)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit = fit_gaussian_mixture(features, 10, random_state=2)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        mixture, posteriors = scikit_fit(features, 10, random_state=2, max_iter=1)
    assert not fit.converged and fit.n_iter == 1
    assert_same_fit(fit, mixture, posteriors)


def test_a_collapsed_component_fails_where_scikit_learn_fails():
    # The absolute covariance floor (1e-6) cannot keep components of features of magnitude 1e6 positive definite.
    features = np.random.default_rng(0).normal(size=(60, 8)) * 1e6
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):  # scikit-learn's message
        GaussianMixture(n_components=15, covariance_type="full", random_state=0).fit(features)
    with pytest.raises(MixtureFitError, match="not positive definite"):
        fit_gaussian_mixture(features, 15, random_state=0)
    assert issubclass(MixtureFitError, ValueError)


def test_input_is_not_written_and_any_layout_or_float_dtype_is_read():
    features = clustered(200, 40, 10, 1.0, seed=10)
    before = features.copy()
    fit = fit_gaussian_mixture(features, 10, random_state=0)
    np.testing.assert_array_equal(features, before)
    fortran = fit_gaussian_mixture(np.asfortranarray(features), 10, random_state=0)
    np.testing.assert_allclose(fortran.posteriors, fit.posteriors, rtol=0, atol=POSTERIOR_ATOL)
    single = features.astype(np.float32)
    mixture, posteriors = scikit_fit(single.astype(np.float64), 10)
    assert_same_fit(fit_gaussian_mixture(single, 10, random_state=0), mixture, posteriors)


@pytest.mark.parametrize("n_components", [0, 201, -1])
def test_rejects_a_component_count_outside_one_to_n(n_components):
    with pytest.raises(PedrankValueError, match="n_components"):
        fit_gaussian_mixture(clustered(200, 4, 3, 1.0, seed=0), n_components)


def test_posteriors_are_distributions():
    fit = fit_gaussian_mixture(clustered(300, 40, 12, 1.0, seed=12), 12, random_state=0)
    assert fit.posteriors.shape == (300, 12)
    assert (fit.posteriors >= 0).all()
    np.testing.assert_allclose(fit.posteriors.sum(axis=1), 1.0, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fit that converges warns about nothing
        fit_gaussian_mixture(clustered(300, 4, 3, 5.0, seed=13), 3, random_state=0)
