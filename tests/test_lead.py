"""LEAD (Hu et al., CVPR 2024): the fast path against the reference, the closed form against the ODE and a hand
computation, the NTK against finite differences, and the behaviour a transferability score must have."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import pedrank
from pedrank import reference
from pedrank.scores.lead import lead_terms, ntk_diagonal, standardise, standardised_float64


def _problem(seed, n=60, d=6, k=3, separation=1.0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    rng.shuffle(labels)
    centres = rng.normal(size=(k, d)) * separation
    return centres[labels] + rng.normal(size=(n, d)), labels


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("classifier", ["logistic", "least_squares"])
@pytest.mark.parametrize("hidden", [(), (16,), (24, 12)])
def test_fast_path_matches_the_reference(seed, classifier, hidden):
    rng = np.random.default_rng(100 + seed)
    n, d, k = int(rng.integers(20, 70)), int(rng.integers(2, 90)), int(rng.integers(2, 5))
    features, labels = _problem(seed, n=n, d=d, k=k)
    options = dict(classifier=classifier, hidden=hidden, n_per_class=int(rng.integers(3, 12)),
                   t=float(rng.uniform(0.2, 3.0)), eta=float(rng.uniform(0.5, 2.0)), C=float(rng.uniform(0.1, 10)),
                   random_state=seed)
    fast = pedrank.lead(features, labels, **options)
    slow = reference.lead(features, labels, **options)
    assert fast == pytest.approx(slow, rel=1e-10, abs=0)


def test_hand_computed_tiny_case():
    # z = x / sqrt(2.5); the ridge head (C = 1) gives F_0 = 0.5 -+ 0.24 x: true-class probabilities
    # 0.98, 0.74, 0.74, 0.98. A linear head's NTK is z z' / D: lambda = mean z^2 = (4 + 1) / 2 / 2.5 = 1 for both
    # classes. F_t = y + e^{-eta t} (F_0 - y): the true-class margin is 1 - 2 e^{-eta t} (1 - p).
    features = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    labels = np.array([0, 0, 1, 1])
    terms = lead_terms(features, labels, hidden=(), classifier="least_squares", C=1.0, t=1.0, eta=0.5)
    np.testing.assert_allclose(terms["initial_logits"], [[0.98, 0.02], [0.74, 0.26], [0.26, 0.74], [0.02, 0.98]],
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(terms["eigenvalues"], [1.0, 1.0], rtol=1e-14)
    decay = np.exp(-0.5)
    expected = np.mean([-np.log1p(np.exp(-(1 - 2 * decay * (1 - p)))) for p in (0.98, 0.74, 0.74, 0.98)])
    assert terms["score"] == pytest.approx(expected, rel=1e-13)
    assert pedrank.lead(features, labels, hidden=(), classifier="least_squares", t=1.0, eta=0.5) == terms["score"]
    assert reference.lead(features, labels, hidden=(), classifier="least_squares", t=1.0, eta=0.5) == pytest.approx(
        expected, rel=1e-13)


@pytest.mark.parametrize("hidden", [(), (32, 16)])
def test_closed_form_solves_the_class_aware_ode(hidden):
    # dF_i/dt = -eta lambda_{y_i} (F_i - y_i), integrated numerically from F_0, lands on final_logits at t.
    features, labels = _problem(3, n=12, d=4, k=2)
    t, eta = 0.7, 1.3
    terms = lead_terms(features, labels, hidden=hidden, t=t, eta=eta, n_per_class=5)
    start = terms["initial_logits"]
    onehot = np.eye(2)[labels]
    rates = eta * terms["eigenvalues"][labels][:, None]

    def derivative(_, flat):
        return (-rates * (flat.reshape(start.shape) - onehot)).ravel()

    solution = solve_ivp(derivative, (0.0, t), start.ravel(), rtol=1e-11, atol=1e-13, method="DOP853")
    np.testing.assert_allclose(solution.y[:, -1].reshape(start.shape), terms["final_logits"], rtol=1e-8, atol=1e-10)


def test_the_ntk_eigenvalue_is_the_mean_squared_gradient_of_the_head():
    # Finite differences of g(x) = sum_j F_j(x) / sqrt(C) over every weight of a small head, drawn as the spec
    # says (W_1, W_2, W_out ~ N(0, 1) from default_rng(random_state), in that order; classes of 2 <= n_per_class
    # keep every sample).
    features = np.array([[0.3, -1.2], [1.1, 0.4], [-0.7, 0.9], [-0.5, -0.8]])
    labels = np.array([0, 0, 1, 1])
    hidden = (3, 2)
    terms = lead_terms(features, labels, hidden=hidden, n_per_class=4, random_state=7)
    z = (features - features.mean(0)) / features.std(0)
    rng = np.random.default_rng(7)
    weights = [rng.standard_normal((2, 3)), rng.standard_normal((3, 2)), rng.standard_normal((2, 2))]

    def g(x, ws):
        a = x
        for w in ws[:-1]:
            a = np.maximum(np.sqrt(2.0 / w.shape[0]) * (a @ w), 0.0)
        return (a @ ws[-1] / np.sqrt(ws[-1].shape[0])).sum() / np.sqrt(2)

    def squared_gradient(x):
        total, step = 0.0, 1e-6
        for index, w in enumerate(weights):
            for position in np.ndindex(w.shape):
                up = [v.copy() for v in weights]
                down = [v.copy() for v in weights]
                up[index][position] += step
                down[index][position] -= step
                total += ((g(x, up) - g(x, down)) / (2 * step)) ** 2
        return total / len(weights)  # the kernel is averaged over the weight layers

    expected = [np.mean([squared_gradient(x) for x in z[labels == c]]) for c in (0, 1)]
    np.testing.assert_allclose(terms["eigenvalues"], expected, rtol=1e-6)


def _plain_ntk_diagonal(rows, layers, output):
    # The NTK diagonal written plainly (every activation kept, a new array per step): the fast form must give
    # these values bitwise, since it runs the same operations in the same order in fewer buffers.
    activations, gates = [rows], []
    for weights in layers:
        pre = np.sqrt(2.0 / weights.shape[0]) * (activations[-1] @ weights)
        gates.append(pre > 0)
        activations.append(np.maximum(pre, 0.0))
    width, n_classes = output.shape
    diagonal = np.einsum("ij,ij->i", activations[-1], activations[-1]) / width
    if not layers:
        return diagonal
    delta = gates[-1] * (output.sum(axis=1) / np.sqrt(width * n_classes))
    for index in range(len(layers) - 1, -1, -1):
        gain = 2.0 / layers[index].shape[0]
        below = activations[index]
        diagonal += gain * np.einsum("ij,ij->i", below, below) * np.einsum("ij,ij->i", delta, delta)
        if index > 0:
            delta = gates[index - 1] * (np.sqrt(gain) * (delta @ layers[index].T))
    return diagonal / (len(layers) + 1)


@pytest.mark.parametrize("hidden", [(), (7,), (9, 5), (6, 8, 4)])
def test_the_ntk_diagonal_is_the_plain_forms_bitwise_and_leaves_its_rows(hidden):
    rng = np.random.default_rng(len(hidden))
    rows = rng.normal(size=(13, 6))
    widths = (6,) + hidden
    layers = [rng.normal(size=shape) for shape in zip(widths[:-1], widths[1:])]
    output = rng.normal(size=(widths[-1], 3))
    kept = rows.copy()
    np.testing.assert_array_equal(ntk_diagonal(rows, layers, output), _plain_ntk_diagonal(rows, layers, output))
    np.testing.assert_array_equal(rows, kept)


def test_standardise_matches_the_two_pass_form_and_writes_only_what_it_may():
    rng = np.random.default_rng(14)
    features = rng.normal(size=(300, 5)) * np.array([1e3, 1e-3, 5.0, 1.0, 2.0]) + 7.0
    features[:, 3] = 4.0  # a constant column: only centred
    kept = features.copy()
    expected = (features - features.mean(0)) / np.where(np.arange(5) == 3, 1.0, features.std(0))
    np.testing.assert_allclose(standardise(features), expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(features, kept)  # not written
    np.testing.assert_array_equal(standardised_float64(features), standardise(features))
    np.testing.assert_array_equal(features, kept)  # a float64 array is the caller's: not written
    single = features.astype(np.float32)
    single_kept = single.copy()
    np.testing.assert_array_equal(standardised_float64(single), standardise(single.astype(np.float64)))
    np.testing.assert_array_equal(single, single_kept)
    copy = features.copy()
    assert standardise(copy, overwrite=True) is copy
    np.testing.assert_array_equal(copy, standardise(features))


def test_the_callers_features_are_left_as_they_were():
    features, labels = _problem(15, n=60, d=5, k=3)
    kept = features.copy()
    for classifier in ("logistic", "least_squares"):
        lead_terms(features, labels, hidden=(8,), classifier=classifier)
        np.testing.assert_array_equal(features, kept)
    torch = pytest.importorskip("torch")
    tensor = torch.from_numpy(features)
    assert pedrank.lead(tensor, labels, hidden=(8,)) == pedrank.lead(features, labels, hidden=(8,))
    np.testing.assert_array_equal(tensor.numpy(), kept)


@pytest.mark.parametrize("classifier", ["logistic", "least_squares"])
def test_informative_features_score_above_shuffled_labels_and_noise(classifier):
    features, labels = _problem(5, n=240, d=12, k=4, separation=1.5)
    noise = np.random.default_rng(6).normal(size=features.shape)
    shuffled = np.random.default_rng(7).permutation(labels)
    options = dict(classifier=classifier, hidden=(64, 64))
    informative = pedrank.lead(features, labels, **options)
    assert informative > pedrank.lead(features, shuffled, **options) + 0.01
    assert informative > pedrank.lead(noise, labels, **options) + 0.01
    assert informative <= 0


def test_more_separable_features_score_higher():
    scores = [pedrank.lead(*_problem(8, n=200, d=8, k=4, separation=s), hidden=(32,)) for s in (0.3, 1.0, 3.0)]
    assert scores[0] < scores[1] < scores[2]


def test_deterministic_for_a_seed_and_seed_dependent():
    features, labels = _problem(9, n=80, d=10, k=3)
    first = pedrank.lead(features, labels, hidden=(32, 32), random_state=4)
    assert pedrank.lead(features, labels, hidden=(32, 32), random_state=4) == first
    assert pedrank.lead(features, labels, hidden=(32, 32), random_state=5) != first
    # a linear head with every sample of each class used draws nothing: no seed dependence at all
    linear = [pedrank.lead(features, labels, hidden=(), n_per_class=100, random_state=s) for s in (0, 1)]
    assert linear[0] == linear[1]


def test_feature_scale_and_label_values_do_not_matter():
    features, labels = _problem(10, n=60, d=5, k=3)
    base = pedrank.lead(features, labels, hidden=(16,))
    shifted = features * np.array([1e3, 1e-3, 5.0, 1.0, 2.0]) + 7.0
    assert pedrank.lead(shifted, labels, hidden=(16,)) == pytest.approx(base, rel=1e-9)
    assert pedrank.lead(features, np.array(["a", "b", "c"])[labels], hidden=(16,)) == base


def test_t_zero_scores_the_classifier_alone():
    features, labels = _problem(11, n=60, d=5, k=3)
    terms = lead_terms(features, labels, t=0.0, hidden=(8,))
    np.testing.assert_allclose(terms["final_logits"], terms["initial_logits"], rtol=0, atol=1e-15)
    assert pedrank.lead(features, labels, t=0.0, hidden=(8,)) == pytest.approx(
        pedrank.lead(features, labels, t=0.0, hidden=(4,)), rel=1e-14)


def test_dead_features_and_bad_options_are_refused():
    labels = np.array([0, 1] * 10)
    with pytest.raises(pedrank.UninformativeFeaturesError, match="carry no information"):
        pedrank.lead(np.ones((20, 4)), labels)
    with pytest.raises(pedrank.UninformativeFeaturesError, match="carry no information"):
        reference.lead(np.ones((20, 4)), labels)
    features = np.random.default_rng(0).normal(size=(20, 3))
    for options, message in ((dict(t=-1.0), r"t: expected a finite number >= 0, found -1.0"),
                             (dict(eta=0.0), r"eta: expected a finite number > 0"),
                             (dict(n_per_class=0), r"n_per_class: expected an integer >= 1"),
                             (dict(hidden=(8, 0)), r"hidden: expected an integer >= 1, found 0"),
                             (dict(hidden="wide"), r"hidden: expected a sequence of layer widths .* found 'wide'"),
                             (dict(classifier="svm"), r"classifier: expected one of .* found 'svm'"),
                             (dict(C=0.0), r"C: expected a finite number > 0"),
                             (dict(random_state=-1), r"random_state: expected an integer >= 0, found -1"),
                             (dict(random_state=None), r"random_state: expected an integer >= 0, found None"),
                             (dict(backend="cuda"), r"backend: .*'cuda'")):
        with pytest.raises(pedrank.PedrankValueError, match=message):
            pedrank.lead(features, labels, **options)


def test_registered_everywhere():
    assert "lead" in pedrank.METRICS
    features, labels = _problem(12, n=60, d=5, k=3)
    direct = pedrank.lead(features, labels, hidden=(16,))
    assert pedrank.score(features, labels, "lead", hidden=(16,)) == direct
    assert reference.score(features, labels, "lead", hidden=(16,)) == pytest.approx(direct, rel=1e-10)
    assert np.isfinite(pedrank.score(features, labels, "lead", ped=True, hidden=(16,)))
    other, _ = _problem(13, n=60, d=5, k=3, separation=0.1)
    table = pedrank.rank({"good": features, "bad": other}, labels, metric="lead", hidden=(16,))
    assert table.models[0] == "good"
    assert table[0].score == pytest.approx(direct, rel=1e-12)
