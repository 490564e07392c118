"""NLEEP: determinism, parity with the reference, ordering, edge cases."""

import re

import numpy as np
import pytest

from conftest import blobs  # tests/ is on sys.path under pytest
from pedrank import PedrankValueError
from pedrank.reference.nleep import nleep as reference_nleep
from pedrank.scores.nleep import mixture_posteriors, nleep


def test_deterministic_given_random_state():
    features, labels = blobs(90, 6, 3, 2.0, 0)
    assert nleep(features, labels, random_state=3) == nleep(features, labels, random_state=3)


@pytest.mark.parametrize("log", [False, True])
def test_matches_reference(log):
    features, labels = blobs(90, 6, 3, 1.0, 1)
    np.testing.assert_allclose(
        nleep(features, labels, log=log, random_state=5),
        reference_nleep(features, labels, log=log, random_state=5),
        rtol=1e-8,
    )


def test_range_and_separated_classes_beat_noise():
    separated, labels = blobs(90, 5, 3, 20.0, 2)
    noise = np.random.default_rng(3).normal(size=(90, 5))
    high = nleep(separated, labels)
    assert 0.9 < high <= 1.0 + 1e-12
    assert 0 < nleep(noise, labels) < high
    assert nleep(separated, labels, log=True) <= 0
    assert nleep(noise, labels, log=True) < nleep(separated, labels, log=True)


def test_invariant_to_relabelling_and_no_mutation():
    features, labels = blobs(60, 4, 3, 1.0, 4)
    before = features.copy()
    names = np.array(["cat", "ant", "bee"])[labels]
    np.testing.assert_allclose(nleep(features, names), nleep(features, labels), rtol=1e-12)
    np.testing.assert_array_equal(features, before)


TOO_MANY_COMPONENTS = [
    # (n_samples, n_classes, components_per_class, the advice)
    (8, 4, 5, "lower components_per_class to at most (n_samples - 1) // C = 1, or give more samples"),
    (300, 60, 5, "lower components_per_class to at most (n_samples - 1) // C = 4, or give more samples"),
    (6, 6, 1, "give more samples (at least C + 1 = 7 for one component per class)"),
]


@pytest.mark.parametrize("implementation", [nleep, reference_nleep], ids=["public", "reference"])
@pytest.mark.parametrize(("n_samples", "n_classes", "per_class", "advice"), TOO_MANY_COMPONENTS)
def test_as_many_mixture_components_as_samples_are_refused(implementation, n_samples, n_classes, per_class, advice):
    # scikit-learn's GaussianMixture (the authors' code) raises for more components than samples; capping the
    # mixture at N made every sample its own component, and NLEEP 1.0 for any features (5 samples per class).
    features = np.random.default_rng(0).normal(size=(n_samples, 8))
    labels = np.arange(n_samples) % n_classes
    expected = (f"components_per_class: components_per_class * C = {per_class} * {n_classes} classes = "
                f"{per_class * n_classes} mixture components for n_samples = {n_samples} samples")
    for message in (expected, "needs fewer components than samples", advice):
        with pytest.raises(ValueError, match=re.escape(message)):
            implementation(features, labels, components_per_class=per_class)


def test_five_samples_per_class_no_longer_score_any_features_1():
    # The audit's case: default 5 components per class, 5 samples per class; both used to give exactly 1.0.
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 60
    noise = rng.normal(size=(300, 32))
    good = noise + 5.0 * np.eye(60, 32)[labels]
    for features in (good, noise):
        with pytest.raises(PedrankValueError, match=r"300 mixture components for n_samples = 300 samples"):
            nleep(features, labels)
    assert nleep(good, labels, components_per_class=4) > nleep(noise, labels, components_per_class=4)


def test_mixture_posteriors_refuse_as_many_components_as_samples():
    features = np.random.default_rng(1).normal(size=(20, 4))
    with pytest.raises(PedrankValueError, match=re.escape("4 * 5 classes = 20 mixture components")):
        mixture_posteriors(features, 5, components_per_class=4, variance_kept=0.8, random_state=0)


def test_torch_path_refuses_as_many_components_as_samples():
    torch = pytest.importorskip("torch")
    features = np.random.default_rng(2).normal(size=(40, 6))
    labels = np.arange(40) % 8
    with pytest.raises(PedrankValueError, match=re.escape("5 * 8 classes = 40 mixture components")):
        nleep(torch.as_tensor(features), labels)
    with pytest.raises(PedrankValueError, match=re.escape("5 * 8 classes = 40 mixture components")):
        nleep(features, labels, backend="torch")


def test_one_component_fewer_than_samples_is_fitted():
    # components_per_class * C = N - 1 (61 samples, 12 classes, 60 components): scikit-learn fits it, so it
    # stays allowed. It is close to the degenerate case: one component holds two samples, every other one
    # sample, so the score is near 1 for any features.
    rng = np.random.default_rng(3)
    labels = np.arange(61) % 12
    features = rng.normal(size=(61, 8))
    value = nleep(features, labels)
    assert np.isfinite(value) and 0 < value < 1
    np.testing.assert_allclose(value, reference_nleep(features, labels), rtol=1e-8)


@pytest.mark.parametrize(("options", "message"), [
    ({"variance_kept": 1.0}, "variance_kept: expected a fraction strictly between 0 and 1, found 1.0"),
    ({"variance_kept": 0}, "variance_kept: expected a fraction strictly between 0 and 1, found 0"),
    ({"components_per_class": 0}, "components_per_class: expected an integer >= 1, found 0"),
])
def test_rejects_bad_options(options, message):
    features, labels = blobs(30, 3, 2, 1.0, 6)
    with pytest.raises(ValueError, match=re.escape(message)):
        nleep(features, labels, **options)


def test_constant_features_raise():
    with pytest.raises(ValueError, match="constant"):
        nleep(np.ones((10, 3)), np.arange(10) % 2)


def test_unfittable_mixture_raises_a_clear_error():
    # 15 components on 60 samples of magnitude 1e6: the absolute covariance floor cannot
    # keep a collapsed component positive definite
    features = np.random.default_rng(0).normal(size=(60, 8)) * 1e6
    with pytest.raises(ValueError, match="components_per_class"):
        nleep(features, np.arange(60) % 3)


@pytest.mark.parametrize("implementation", [nleep, reference_nleep])
@pytest.mark.parametrize("factor", [1e-4, 1e-6])
def test_features_below_the_mixtures_covariance_floor_are_refused(implementation, factor):
    # They scored about 1/C (0.25 here) whatever they encoded, below pure noise at scale 1 (0.29).
    features, labels = blobs(200, 6, 4, 3.0, 7)
    with pytest.raises(ValueError, match=r"^features: found a scale \(RMS of the centred features\) of .*, below "
                                         r"0\.002: NLEEP's Gaussian mixture"):
        implementation(features * factor, labels)


def test_features_just_above_the_floor_still_score():
    features, labels = blobs(200, 6, 4, 3.0, 7)
    scale = float(np.sqrt(features.var(axis=0).mean()))
    assert nleep(features * (0.0025 / scale), labels) > 0.5


def test_log_must_be_a_bool():
    features, labels = blobs(60, 4, 3, 1.0, 4)
    with pytest.raises(ValueError, match=r"^log: expected True or False, found 'no'"):
        nleep(features, labels, log="no")
