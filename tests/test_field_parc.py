"""PARC: ordering, parity with the reference, subsampling of matching rows, edge cases."""

import numpy as np
import pytest

from conftest import blobs  # tests/ is on sys.path under pytest
from pedrank.reference.parc import parc as reference_parc
from pedrank.scores.parc import parc


def test_separating_features_score_higher_than_noise():
    separated, labels = blobs(80, 10, 4, 5.0, 0)
    noise = np.random.default_rng(1).normal(size=(80, 10))
    high, low = parc(separated, labels), parc(noise, labels)
    assert high > 40 and abs(low) < 10 and -100 <= low <= high <= 100


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("shape, n_components", [((60, 12), 32), ((40, 50), 8), ((30, 3), 32)])
def test_matches_reference(shape, n_components, exact):
    features, labels = blobs(*shape, 3, 1.0, shape[1])
    np.testing.assert_allclose(
        parc(features, labels, n_components=n_components, exact=exact),
        reference_parc(features, labels, n_components=n_components, exact=exact),
        rtol=1e-8,
    )


def test_default_is_the_randomized_pca_and_exact_the_full_one():
    # Many weak directions: one power iteration of the randomized solver misses some of the leading ones.
    features, labels = blobs(200, 120, 4, 0.5, 8)
    default, exact = parc(features, labels), parc(features, labels, exact=True)
    assert abs(default - exact) > 1e-3 * abs(exact)
    assert default == parc(features, labels)  # the PCA's seed is fixed (the authors' 1919)
    with pytest.raises(ValueError, match=r"exact: expected True or False, found 'yes'"):
        parc(features, labels, exact="yes")


def test_subsampling_keeps_features_and_labels_together():
    features, labels = blobs(200, 6, 3, 6.0, 2)
    full = parc(features, labels)
    sub = parc(features, labels, max_samples=50, random_state=7)
    # the same rows of features and labels: the structure survives subsampling
    assert sub > 0.7 * full > 0
    assert sub == parc(features, labels, max_samples=50, random_state=7)
    rows = np.sort(np.random.default_rng(7).choice(200, 50, replace=False))
    np.testing.assert_allclose(sub, reference_parc(features[rows], labels[rows]), rtol=1e-8)


def test_invariant_to_relabelling_and_order_and_no_mutation():
    features, labels = blobs(50, 5, 3, 2.0, 3)
    before = features.copy()
    expected = parc(features, labels)
    order = np.random.default_rng(0).permutation(50)
    np.testing.assert_allclose(parc(features[order], (labels.astype(str))[order]), expected, rtol=1e-9)
    np.testing.assert_array_equal(features, before)


@pytest.mark.parametrize("exact", [False, True])
def test_sample_at_the_mean_is_uncorrelated_not_nan(exact):
    features, labels = blobs(30, 4, 2, 3.0, 4)
    features = np.vstack([features, features.mean(axis=0)])
    labels = np.append(labels, 0)
    score = parc(features, labels, exact=exact)
    assert np.isfinite(score)
    np.testing.assert_allclose(score, reference_parc(features, labels, exact=exact), rtol=1e-8)


@pytest.mark.parametrize("function", [parc, reference_parc])
@pytest.mark.parametrize("exact", [False, True])
def test_degenerate_inputs_raise(function, exact):
    with pytest.raises(ValueError, match="direction"):
        function(np.arange(10.0)[:, None], np.arange(10) % 2, exact=exact)
    features, _ = blobs(6, 4, 2, 1.0, 5)
    with pytest.raises(ValueError, match="different classes"):
        function(features, np.arange(6), exact=exact)
