"""pedrank.reference against hand-computed cases and independent formulas."""

import numpy as np
import pytest
from scipy import stats

import pedrank.reference as reference
from conftest import make_problem
from pedrank.reference.logme import logme_fit
from pedrank.reference.sfda import sfda_fit
from pedrank.scores.scoring import FEATURE_METRICS


def test_logme_evidence_is_the_marginal_likelihood():
    # At the returned (alpha, beta) the evidence is log N(t | 0, I/beta + X X^T/alpha) / N;
    # the reference evaluates it with m2/res2 from the previous iterate (lam within 1e-3).
    features, labels = make_problem(60, 4, 3, seed=1)
    evidence, alphas, betas, _ = logme_fit(features, labels, exact_dimension=True)
    for c in range(3):
        target = (labels == c).astype(float)
        covariance = np.eye(60) / betas[c] + features @ features.T / alphas[c]
        exact = stats.multivariate_normal(np.zeros(60), covariance).logpdf(target) / 60
        assert evidence[c] == pytest.approx(exact, rel=1e-3)


def test_logme_weights_are_the_ridge_solution():
    features, labels = make_problem(80, 5, 2, seed=2)
    targets = np.stack([labels == 0, labels == 1], axis=1).astype(float)
    _, alphas, betas, weights = logme_fit(features, labels)
    for c in range(2):
        lam = alphas[c] / betas[c]
        ridge = np.linalg.solve(features.T @ features + lam * np.eye(5), features.T @ targets[:, c])
        # weights use the penultimate lam, within the 1e-3 stopping tolerance
        np.testing.assert_allclose(weights[:, c], ridge, rtol=1e-2, atol=1e-6)


def test_logme_dimension_quirk_only_matters_when_n_at_most_d():
    features, labels = make_problem(50, 8, 3, seed=3)
    assert reference.logme(features, labels) == pytest.approx(
        reference.logme(features, labels, exact_dimension=True), rel=1e-12
    )
    # N > D and rank-deficient: the default is the rank-consistent evidence (what the authors' code computes
    # there), so it equals the exact form.
    padded = np.hstack([features, np.zeros((50, 4))])  # rank 8 < D = 12 < N
    assert reference.logme(padded, labels) == pytest.approx(
        reference.logme(padded, labels, exact_dimension=True), rel=1e-12
    )
    # N <= D: the thin SVD has N components and the authors' D/2 log(alpha) is a genuine quirk.
    wide = np.hstack([features, np.zeros((50, 50))])  # D = 58 > N = 50
    assert reference.logme(wide, labels) != pytest.approx(reference.logme(wide, labels, exact_dimension=True))


def test_logme_rank_consistent_evidence_ignores_null_directions_and_their_scale():
    """Hand facts of the rank-consistent evidence (N > D): null columns and rotations change nothing, and the
    score of rank-deficient features does not depend on how their null space is spanned."""
    features, labels = make_problem(120, 6, 3, seed=5)
    base = reference.logme(features, labels)
    padded = np.hstack([features, np.zeros((120, 10))])
    assert reference.logme(padded, labels) == pytest.approx(base, rel=1e-10)
    # Duplicated columns add a direction with half the weight: rank unchanged, the evidence equals that of the
    # features with the duplicated column scaled by sqrt(2).
    duplicated = np.hstack([features, features[:, :1]])
    rescaled = features.copy()
    rescaled[:, 0] *= np.sqrt(2.0)
    assert reference.logme(duplicated, labels) == pytest.approx(reference.logme(rescaled, labels), rel=1e-10)
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(16, 16)))
    assert reference.logme(padded @ rotation, labels) == pytest.approx(base, rel=1e-9)


def test_sfda_coefficients_equal_the_cholesky_solve():
    features, labels = make_problem(200, 6, 4, seed=4)
    coef, _, shrinkage = sfda_fit(features, labels, 4)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(4)])
    priors = np.bincount(labels) / 200
    within = sum(priors[c] * np.cov(features[labels == c].T, bias=True) for c in range(4))
    shrunk = (1 - shrinkage) * within + shrinkage * np.trace(within) / 6 * np.eye(6)
    np.testing.assert_allclose(coef, np.linalg.solve(shrunk, means.T).T, rtol=1e-9)


def test_sfda_extremes():
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1, 2], 100)
    separated = np.eye(3)[labels] * 1000 + rng.normal(size=(300, 3))
    assert reference.sfda(separated, labels) == pytest.approx(1.0, abs=1e-6)
    noise = rng.normal(size=(300, 3))
    assert 0.2 < reference.sfda(noise, labels) < 0.5  # about 1/C when classes are indistinguishable


def test_gbc_two_gaussians_by_hand():
    features = np.array([[-1.0], [1.0], [2.0], [4.0]])
    labels = np.array([0, 0, 1, 1])
    # means 0 and 3, variances 1 and 1: DB = 9/8, each ordered pair counts once
    assert reference.gbc(features, labels) == pytest.approx(-2 * np.exp(-9 / 8), rel=1e-12)


def test_gbc_logdet_term_by_hand():
    features = np.array([[-1.0, 0.0], [1.0, 0.0], [3.0, 2.0], [3.0, -2.0]])
    labels = np.array([0, 0, 1, 1])
    # PCA keeps both axes; class 0 variances (1, 0 -> floored 1e-4), class 1 (0 -> 1e-4, 4)
    var0, var1 = np.array([1.0, 1e-4]), np.array([1e-4, 4.0])
    mean0, mean1 = np.array([0.0, 0.0]), np.array([3.0, 0.0])

    def expected(v0, v1, logdet_scale):
        pooled = (v0 + v1) / 2
        distance = np.sum((mean0 - mean1) ** 2 / pooled) / 8
        logdet = np.sum(np.log(pooled)) - 0.5 * np.sum(np.log(v0)) - 0.5 * np.sum(np.log(v1))
        return -2 * np.exp(-(distance + 0.5 * logdet * logdet_scale))

    assert reference.gbc(features, labels, covariance="diagonal") == pytest.approx(expected(var0, var1, 1), rel=1e-9)
    s0, s1 = np.full(2, var0.mean()), np.full(2, var1.mean())
    assert reference.gbc(features, labels, exact_logdet=True) == pytest.approx(expected(s0, s1, 1), rel=1e-9)
    # the authors' spherical quirk: the log-det of the scalar variance, once (half the exact term in 2-D)
    assert reference.gbc(features, labels) == pytest.approx(expected(s0, s1, 0.5), rel=1e-9)


def test_gbc_bounds():
    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(5), 40)
    same = rng.normal(size=(200, 10))
    assert -20 <= reference.gbc(same, labels) < -15  # overlapping classes: near -C(C-1)
    far = np.eye(5)[labels] * 100 + rng.normal(size=(200, 5))
    assert reference.gbc(far, labels) == pytest.approx(0.0, abs=1e-10)


def test_ped_two_clusters_by_hand():
    features = np.array([[-1.0], [1.0], [0.0], [2.0]])
    labels = np.array([0, 0, 1, 1])
    result = reference.ped(features, labels, reference=(np.zeros(1), np.ones(1)), max_steps=1)
    # radii 1 and 1, distance 1: overlap 0.6 + 0.6 - 1 = 0.2; s = 0.5 * 0.1^2 * 1 * 0.2 = 0.001
    np.testing.assert_allclose(result.features, features + np.array([[-0.001], [-0.001], [0.001], [0.001]]))
    assert result.movements == [pytest.approx(0.002)]
    assert result.energies[0] == pytest.approx(0.5 * 0.2**2)
    assert result.energies[1] == pytest.approx(0.5 * (0.2 - 0.002) ** 2)


def test_ped_phase_position_is_capped_by_the_overlap():
    features = np.array([[-1.0], [1.0], [0.0], [2.0]])
    labels = np.array([0, 0, 1, 1])
    # t^2 k / 2 = 50: uncapped the clusters would jump 10 apart; the cap moves each by the overlap
    result = reference.ped(features, labels, reference=(np.zeros(1), np.ones(1)), time_step=10.0, max_steps=1)
    np.testing.assert_allclose(result.features[:, 0], [-1.2, 0.8, 0.2, 2.2])


def test_ped_radius_zero_changes_nothing():
    features, labels = make_problem(100, 5, 4, seed=7)
    result = reference.ped(features, labels, radius=0.0)
    assert result.steps == 0 and result.energies == [0.0]
    np.testing.assert_array_equal(result.features, features)


def test_reference_never_mutates_inputs():
    features, labels = make_problem(120, 6, 3, seed=8)
    original_features, original_labels = features.copy(), labels.copy()
    for metric in FEATURE_METRICS:
        reference.score(features, labels, metric, ped=True)
    np.testing.assert_array_equal(features, original_features)
    np.testing.assert_array_equal(labels, original_labels)
