"""NLEEP: determinism, parity with the reference, ordering, edge cases."""

import re

import numpy as np
import pytest

from conftest import blobs  # tests/ is on sys.path under pytest
from pedrank.reference.nleep import nleep as reference_nleep
from pedrank.scores.nleep import nleep


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


def test_more_mixture_components_than_samples_is_capped():
    features, labels = blobs(8, 3, 4, 3.0, 5)
    assert np.isfinite(nleep(features, labels, components_per_class=5))


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
