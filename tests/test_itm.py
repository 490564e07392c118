"""ITM (Zheng et al., NeurIPS 2025): the closed-form update against its iterated and gradient-descent forms; the
engine's written-out gradients against torch's autograd and against finite differences; the engine (one, on an
array namespace) on NumPy against the hand-derived NumPy reference, and on torch against its NumPy run; the
invariances, and the behaviour a transferability score must have. Without torch the NumPy runs and the finite
differences are tested, and ``backend="torch"``'s refusal; the tests that need torch take the ``torch`` fixture."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import pedrank
from pedrank import reference
from pedrank.reference.itm import itm_terms as reference_terms
from pedrank.scores.itm import draw_plan, evolve, itm_terms, standardise


@pytest.fixture
def torch():
    """torch, or the test is skipped."""
    return pytest.importorskip("torch")


#: Few iterations keep the suite fast; the defaults (500) are exercised by the registration tests.
QUICK = dict(batch_size=32, n_iter=60, eval_every=20)


def _problem(seed, n=120, d=8, k=3, separation=1.5):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    rng.shuffle(labels)
    centres = rng.normal(size=(k, d)) * separation
    return centres[labels] + rng.normal(size=(n, d)), labels


def _unit_rows(rng, b, c):
    theta = rng.normal(size=(b, c))
    return theta / np.linalg.norm(theta, axis=1, keepdims=True)


# --- the closed form --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_steps", [0, 1, 2, 5])
@pytest.mark.parametrize("eta", [0.1, 0.5, 1.7])
def test_closed_form_equals_the_iterated_update(n_steps, eta):
    # E^(n+1) = (I - eta K) E^(n) + eta K P from E^(0) = theta, K = theta theta^T / B, iterated n times by hand,
    # against evolve()'s factorised form and the B x B matrix power (the reference's form).
    rng = np.random.default_rng(n_steps)
    b, c = 11, 4
    theta = _unit_rows(rng, b, c)
    targets = np.eye(c)[rng.integers(0, c, b)]
    kernel = theta @ theta.T / b
    iterated = theta.copy()
    for _ in range(n_steps):
        iterated = (np.eye(b) - eta * kernel) @ iterated + eta * kernel @ targets
    power = targets + np.linalg.matrix_power(np.eye(b) - eta * kernel, n_steps) @ (theta - targets)
    np.testing.assert_allclose(evolve(theta, targets, eta=eta, n_steps=n_steps), iterated, rtol=0, atol=1e-13)
    np.testing.assert_allclose(power, iterated, rtol=0, atol=1e-13)


@pytest.mark.parametrize("n_steps", [1, 3])
def test_closed_form_is_gradient_descent_on_a_linear_layer(n_steps, torch):
    # The "deparametric approximation": n steps of gradient descent (rate eta) on a linear map g, started at the
    # identity, under |theta G - P|^2 / (2 B), move the embeddings theta G exactly as the closed form does.
    rng = np.random.default_rng(7)
    b, c, eta = 9, 5, 0.8
    theta = _unit_rows(rng, b, c)
    targets = np.eye(c)[rng.integers(0, c, b)]
    inputs, goal = torch.from_numpy(theta), torch.from_numpy(targets)
    layer = torch.eye(c, dtype=torch.float64, requires_grad=True)
    for _ in range(n_steps):
        loss = ((inputs @ layer - goal) ** 2).sum() / (2 * b)
        (gradient,) = torch.autograd.grad(loss, layer)
        layer = (layer - eta * gradient).detach().requires_grad_(True)
    trained = (inputs @ layer).detach().numpy()
    np.testing.assert_allclose(evolve(theta, targets, eta=eta, n_steps=n_steps), trained, rtol=0, atol=1e-13)


def test_evolve_on_torch_matches_numpy_and_passes_no_gradient_through_the_kernel(torch):
    rng = np.random.default_rng(8)
    theta = _unit_rows(rng, 6, 3)
    targets = np.eye(3)[rng.integers(0, 3, 6)]
    tensor = torch.from_numpy(theta).requires_grad_(True)
    moved = evolve(tensor, torch.from_numpy(targets), eta=0.5, n_steps=2, kernel_rows=tensor.detach())
    np.testing.assert_allclose(moved.detach().numpy(), evolve(theta, targets, eta=0.5, n_steps=2), rtol=0,
                               atol=1e-15)
    # with K fixed, the map theta -> moved is linear: its Jacobian is (I - eta K)^2 applied row-wise
    moved.sum().backward()
    transition = np.linalg.matrix_power(np.eye(6) - 0.5 * theta @ theta.T / 6, 2)
    np.testing.assert_allclose(tensor.grad.numpy(), transition.T @ np.ones((6, 3)), rtol=0, atol=1e-14)


# --- the written-out gradients -----------------------------------------------------------------------------------

def _tiny_step(seed, b=7, d=5, c=3, zero_rows=()):
    """One batch and parameters, as the engine sees them (``Z_B``, labels, ``[W, b, H, c]``); the rows in
    ``zero_rows`` are zero and ``b = 0`` there is not wanted, so the bias is zero when any row is zero."""
    rng = np.random.default_rng(seed)
    batch = rng.normal(size=(b, d))
    targets = np.arange(b) % c
    rng.shuffle(targets)
    parameters = [rng.uniform(-0.5, 0.5, (d, c)), rng.uniform(-0.5, 0.5, c), rng.uniform(-0.6, 0.6, (c, c)),
                  rng.uniform(-0.6, 0.6, c)]
    if zero_rows:
        batch[list(zero_rows)] = 0.0
        parameters[1] = np.zeros(c)
    return batch, targets, parameters


def _autograd_loss_and_gradients(torch, batch, targets, parameters, *, eta, n_steps):
    """The same loss built from torch's own pieces (``normalize``, :func:`evolve` with K detached,
    ``cross_entropy``), differentiated by autograd: what the removed torch engine trained with."""
    functional = torch.nn.functional
    leaves = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in parameters]
    weight, bias, head, head_bias = leaves
    labels = torch.from_numpy(targets)
    theta = functional.normalize(torch.from_numpy(batch) @ weight + bias, p=2.0, dim=1, eps=1e-12)
    prototypes = torch.eye(weight.shape[1], dtype=torch.float64)[labels]
    moved = evolve(theta, prototypes, eta=eta, n_steps=n_steps, kernel_rows=theta.detach())
    loss = functional.cross_entropy(moved @ head + head_bias, labels)
    loss.backward()
    return float(loss.detach()), [leaf.grad.numpy() for leaf in leaves]


@pytest.mark.parametrize("n_steps,eta,zero_rows", [(0, 0.5, ()), (1, 0.5, ()), (3, 1.3, ()), (2, 0.5, (0, 4))])
def test_the_written_out_gradients_are_autograds(n_steps, eta, zero_rows, torch):
    # One step's loss and gradients (the engine's backward pass, on the NumPy and on the torch namespace) against
    # torch's autograd through normalize / evolve (K detached) / cross_entropy, on a tiny batch; with zero rows
    # (u = 0: the norm takes the 1e-12 floor, no gradient through the clamp, d_u = d / 1e-12).
    from pedrank.scores.itm import _loss_and_gradients, _NumpyArrays, _TorchArrays

    batch, targets, parameters = _tiny_step(30 + n_steps, zero_rows=zero_rows)
    expected_loss, expected = _autograd_loss_and_gradients(torch, batch, targets, parameters, eta=eta,
                                                           n_steps=n_steps)
    loss, gradients = _loss_and_gradients(_NumpyArrays(), batch, targets, [p.copy() for p in parameters], eta=eta,
                                          n_steps=n_steps)
    xp = _TorchArrays(torch, "cpu")
    on_torch_loss, on_torch = _loss_and_gradients(xp, torch.from_numpy(batch), torch.from_numpy(targets),
                                                  [torch.from_numpy(p.copy()) for p in parameters], eta=eta,
                                                  n_steps=n_steps)
    assert loss == pytest.approx(expected_loss, rel=1e-14)
    assert float(on_torch_loss) == pytest.approx(expected_loss, rel=1e-14)
    for got, got_torch, reference_gradient in zip(gradients, on_torch, expected):
        scale = np.abs(reference_gradient).max()
        np.testing.assert_allclose(got, reference_gradient, rtol=1e-12, atol=1e-13 * scale)
        np.testing.assert_allclose(got_torch.numpy(), reference_gradient, rtol=1e-12, atol=1e-13 * scale)
    if zero_rows:  # the floor is taken: the zero rows' gradient is d / 1e-12, huge against the others
        assert np.abs(gradients[1]).max() > 1e6


@pytest.mark.parametrize("n_steps", [0, 1, 2])
def test_the_written_out_gradients_match_finite_differences(n_steps):
    # Without torch: central differences of the loss (K held fixed at the unperturbed Theta, as in the method) on
    # every parameter entry, against the backward pass.
    from pedrank.scores.itm import _backward, _forward, _NumpyArrays

    xp = _NumpyArrays()
    batch, targets, parameters = _tiny_step(40 + n_steps)
    eta = 0.7
    cache = _forward(xp, batch, targets, parameters, eta=eta, n_steps=n_steps)
    _, gradients = _backward(xp, batch, targets, [p.copy() for p in parameters], cache, eta=eta, n_steps=n_steps)
    fixed_theta = cache[2]

    def loss_at(values):
        weight, bias, head, head_bias = values
        mapped = batch @ weight + bias
        theta = mapped / np.linalg.norm(mapped, axis=1, keepdims=True)
        prototypes = np.eye(head.shape[0])[targets]
        moved = evolve(theta, prototypes, eta=eta, n_steps=n_steps, kernel_rows=fixed_theta)
        logits = moved @ head + head_bias
        logits = logits - logits.max(axis=1, keepdims=True)
        return -np.mean(logits[np.arange(len(targets)), targets] - np.log(np.exp(logits).sum(axis=1)))

    step = 1e-6
    for which, gradient in enumerate(gradients):
        numeric = np.empty_like(gradient)
        for index in np.ndindex(gradient.shape):
            up = [p.copy() for p in parameters]
            down = [p.copy() for p in parameters]
            up[which][index] += step
            down[which][index] -= step
            numeric[index] = (loss_at(up) - loss_at(down)) / (2 * step)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8)


# --- parity ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,options", [
    (0, dict()),
    (1, dict(batch_size=50, n_steps=0)),
    (2, dict(batch_size=7, n_steps=3, eta=1.2, weight_decay=0.0, holdout=0.35)),
    (3, dict(batch_size=1000, lr=0.02, eval_every=7)),
])
def test_fast_path_matches_the_reference(seed, options):
    rng = np.random.default_rng(200 + seed)
    n, d, k = int(rng.integers(40, 130)), int(rng.integers(2, 40)), int(rng.integers(2, 6))
    features, labels = _problem(seed, n=n, d=d, k=k)
    merged = {**QUICK, **options, "random_state": seed}
    fast = itm_terms(features, labels, **merged)
    slow = reference_terms(features, labels, **merged)
    score = slow["score"]
    assert fast["score"] == score
    np.testing.assert_array_equal(fast["accuracies"], slow["accuracies"])
    np.testing.assert_allclose(fast["losses"], slow["losses"], rtol=1e-8, atol=0)
    for got, expected in zip(fast["weights"], slow["weights"]):
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())
    assert pedrank.itm(features, labels, **merged) == score


def _largest_relative_difference(got, expected):
    return max(float(np.abs(g - e).max() / np.abs(e).max()) for g, e in zip(got, expected))


@pytest.mark.parametrize("seed,options,redrawn", [
    (0, dict(), False),
    (1, dict(batch_size=50, n_steps=0), False),
    (2, dict(batch_size=7, n_steps=3, eta=1.2, weight_decay=0.0, holdout=0.35), True),
    (3, dict(batch_size=1000, lr=0.02, eval_every=7), False),
    (4, dict(n_steps=2, eval_every=13), True),
])
def test_the_engine_on_torch_retraces_its_run_on_numpy(seed, options, redrawn, torch):
    # One engine, two array namespaces: NumPy (the CPU default) and torch (backend="torch", and a tensor on another
    # device). The same score and accuracies, the losses and trained weights to rounding (measured: 5e-16 and
    # 2e-14 relative to each weight array's largest). "redrawn": half the labels redrawn at random, a harder run.
    rng = np.random.default_rng(300 + seed)
    n, d, k = int(rng.integers(60, 200)), int(rng.integers(2, 40)), int(rng.integers(2, 7))
    features, labels = _problem(seed, n=n, d=d, k=k)
    if redrawn:
        half = rng.random(n) < 0.5
        labels[half] = rng.integers(0, k, int(half.sum()))
    merged = {**QUICK, **options, "random_state": seed}
    on_numpy = itm_terms(features, labels, **merged)
    on_torch = itm_terms(features, labels, backend="torch", **merged)
    assert on_torch["score"] == on_numpy["score"]
    np.testing.assert_array_equal(on_numpy["accuracies"], on_torch["accuracies"])
    np.testing.assert_array_equal(on_numpy["checkpoints"], on_torch["checkpoints"])
    np.testing.assert_allclose(on_torch["losses"], on_numpy["losses"], rtol=1e-12, atol=0)
    assert _largest_relative_difference(on_torch["weights"], on_numpy["weights"]) <= 1e-12
    # a tensor trains on its own values: with backend="torch" the same run as its array's; on the CPU with "auto"
    # the NumPy namespace (bitwise the array's run)
    tensor = torch.from_numpy(features)
    features_copy = features.copy()
    tensor_on_torch = itm_terms(tensor, labels, backend="torch", **merged)
    np.testing.assert_array_equal(tensor.numpy(), features_copy)  # the caller's values and the drawn plan unwritten
    for name in ("order", "labels", "train", "held_out"):
        np.testing.assert_array_equal(on_torch["plan"][name], on_numpy["plan"][name])
    for returned, drawn in zip(on_torch["plan"]["weights"], on_numpy["plan"]["weights"]):
        np.testing.assert_array_equal(returned, drawn)
    np.testing.assert_array_equal(tensor_on_torch["losses"], on_torch["losses"])
    for got, expected in zip(tensor_on_torch["weights"], on_torch["weights"]):
        np.testing.assert_array_equal(got, expected)
    tensor_terms = itm_terms(tensor, labels, **merged)
    np.testing.assert_array_equal(tensor_terms["losses"], on_numpy["losses"])
    for got, expected in zip(tensor_terms["weights"], on_numpy["weights"]):
        np.testing.assert_array_equal(got, expected)


def test_a_row_mapped_to_zero_takes_the_floor_on_both_namespaces(torch):
    # normalise divides by max(|u|, 1e-12): a row with u = 0 (a zero row of Z with b = 0) takes the floor, where the
    # gradient is d / 1e-12 (torch's clamp passes none through the norm; the gradient test above checks it against
    # autograd). The whole run on both namespaces, on the same crafted plan.
    from pedrank.scores.itm import _NumpyArrays, _TorchArrays, _train

    features, labels = _problem(22, n=40, d=4, k=2)
    z = standardise(features)
    z[::7] = 0.0
    options = dict(eval_every=5, eta=0.5, n_steps=2, lr=0.01, weight_decay=0.01, batch_size=8)
    plan = draw_plan(z, labels, 2, batch_size=8, n_iter=12, holdout=0.25, random_state=0)
    weight, _, head, head_bias = plan["weights"]
    plan["weights"] = (weight, np.zeros_like(plan["weights"][1]), head, head_bias)
    on_numpy = _train(_NumpyArrays(), z, plan, 2, **options)
    on_torch = _train(_TorchArrays(torch, "cpu"), z, plan, 2, **options)
    np.testing.assert_array_equal(on_numpy["accuracies"], on_torch["accuracies"])
    np.testing.assert_allclose(on_numpy["losses"], on_torch["losses"], rtol=1e-12, atol=0)
    assert _largest_relative_difference(on_torch["weights"], on_numpy["weights"]) <= 1e-12


def test_the_callers_arrays_and_the_drawn_plan_are_left_as_they_were():
    features, labels = _problem(21, n=80, d=5, k=3)
    features_copy, labels_copy = features.copy(), labels.copy()
    terms = itm_terms(features, labels, **QUICK)
    np.testing.assert_array_equal(features, features_copy)
    np.testing.assert_array_equal(labels, labels_copy)
    plan = draw_plan(standardise(features), labels, 3, batch_size=QUICK["batch_size"], n_iter=QUICK["n_iter"],
                     holdout=0.2, random_state=0)
    for returned, drawn in zip(terms["plan"]["weights"], plan["weights"]):
        np.testing.assert_array_equal(returned, drawn)  # the engine trained copies
    assert not np.array_equal(terms["weights"][0], plan["weights"][0])


def test_the_plan_draws_in_the_documented_order():
    features, labels = _problem(4, n=50, d=5, k=3)
    z = standardise(features)
    plan = draw_plan(z, labels, 3, batch_size=16, n_iter=7, holdout=0.2, random_state=3)
    rng = np.random.default_rng(3)
    canonical = np.argsort((z * rng.standard_normal(5)).sum(axis=1), kind="stable")
    order = canonical[rng.permutation(50)]
    np.testing.assert_array_equal(plan["order"], order)
    np.testing.assert_array_equal(plan["held_out"], order[40:])  # round(0.2 * 50) = 10 held out
    first_seen = list(dict.fromkeys(labels[order].tolist()))
    np.testing.assert_array_equal(plan["labels"], [first_seen.index(c) for c in labels])
    np.testing.assert_array_equal(plan["weights"][0], rng.uniform(-1 / np.sqrt(5), 1 / np.sqrt(5), (5, 3)))
    assert [len(batch) for batch in plan["batches"]] == [16, 16, 8, 16, 16, 8, 16]  # 40 training rows an epoch


# --- invariances -------------------------------------------------------------------------------------------------

def test_invariant_to_row_order():
    # the rows are put in a canonical order before anything is drawn: a permutation of the rows is the same run
    features, labels = _problem(5, n=150, d=6, k=4, separation=0.8)
    base = itm_terms(features, labels, **QUICK)
    permutation = np.random.default_rng(1).permutation(150)
    moved = itm_terms(features[permutation], labels[permutation], **QUICK)
    np.testing.assert_array_equal(moved["accuracies"], base["accuracies"])
    np.testing.assert_allclose(moved["losses"], base["losses"], rtol=1e-10)


def test_invariant_to_relabelling_the_classes():
    features, labels = _problem(6, n=150, d=6, k=4, separation=0.8)
    base = itm_terms(features, labels, **QUICK)
    for renamed in (np.array([3, 0, 2, 1])[labels], np.array(["zebra", "ant", "moose", "bee"])[labels],
                    np.array([-7, 100, 3, 42])[labels]):
        other = itm_terms(features, renamed, **QUICK)
        np.testing.assert_array_equal(other["accuracies"], base["accuracies"])
        np.testing.assert_allclose(other["losses"], base["losses"], rtol=1e-10)


def test_invariant_to_per_column_affine_maps_of_the_features():
    features, labels = _problem(7, n=100, d=5, k=3)
    shifted = features * np.array([1e3, 1e-3, 5.0, 1.0, 2.0]) + 7.0
    assert pedrank.itm(shifted, labels, **QUICK) == pedrank.itm(features, labels, **QUICK)


def test_deterministic_for_a_seed_and_seed_dependent():
    features, labels = _problem(9, n=200, d=10, k=4, separation=0.6)
    first = itm_terms(features, labels, **QUICK, random_state=4)
    again = itm_terms(features, labels, **QUICK, random_state=4)
    np.testing.assert_array_equal(again["losses"], first["losses"])
    other = itm_terms(features, labels, **QUICK, random_state=5)
    assert not np.array_equal(other["losses"], first["losses"])


# --- behaviour -------------------------------------------------------------------------------------------------

def test_informative_features_score_above_shuffled_labels_and_noise():
    features, labels = _problem(10, n=300, d=12, k=4, separation=1.0)
    noise = np.random.default_rng(11).normal(size=features.shape)
    shuffled = np.random.default_rng(12).permutation(labels)
    informative = pedrank.itm(features, labels)
    assert informative > pedrank.itm(features, shuffled) + 0.2
    assert informative > pedrank.itm(noise, labels) + 0.2
    assert 0 <= informative <= 1


def test_more_separable_features_score_higher():
    scores = [pedrank.itm(*_problem(13, n=300, d=8, k=4, separation=s)) for s in (0.2, 0.6, 2.0)]
    assert scores[0] < scores[1] < scores[2]


def test_a_dead_model_never_ranks_above_an_informative_one():
    features, labels = _problem(14, n=120, d=6, k=3)
    pool = {"dead": np.full((120, 6), 0.3), "jitter": 0.7 * (1 + np.random.default_rng(0).integers(
        -2, 3, size=(120, 6)) * np.finfo(np.float64).eps), "good": features}
    table = pedrank.rank(pool, labels, metric="itm", errors="row")
    assert table.models[0] == "good" and np.isnan(table.scores["dead"]) and np.isnan(table.scores["jitter"])
    with pytest.raises(pedrank.UninformativeFeaturesError, match="carry no information"):
        pedrank.itm(pool["dead"], labels)
    with pytest.raises(pedrank.UninformativeFeaturesError, match="carry no information"):
        reference.itm(pool["dead"], labels)


def test_tiny_inputs_keep_a_row_on_each_side():
    features, labels = _problem(15, n=4, d=3, k=2)
    terms = itm_terms(features, labels, n_iter=3, eval_every=1)
    assert terms["plan"]["held_out"].shape == (1,) and terms["plan"]["train"].shape == (3,)
    assert terms["accuracies"].shape == (3,) and set(terms["accuracies"]) <= {0.0, 1.0}


# --- errors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options,message", [
    (dict(batch_size=0), r"batch_size: expected an integer >= 1, found 0"),
    (dict(n_iter=2.5), r"n_iter: expected an integer >= 1, found 2.5"),
    (dict(eval_every=0), r"eval_every: expected an integer >= 1, found 0"),
    (dict(eta=0.0), r"eta: expected a finite number > 0, found 0.0"),
    (dict(n_steps=-1), r"n_steps: expected an integer >= 0, found -1"),
    (dict(lr=-0.1), r"lr: expected a finite number > 0"),
    (dict(weight_decay=float("nan")), r"weight_decay: expected a finite number >= 0"),
    (dict(holdout=1.0), r"holdout: expected a fraction in \(0, 1\), found 1.0"),
    (dict(holdout=0), r"holdout: expected a finite number > 0, found 0"),
    (dict(random_state=None), r"random_state: expected an integer >= 0, found None"),
    (dict(backend="cuda"), r"backend: .*'cuda'"),
])
def test_bad_options_are_refused_by_name(options, message):
    features, labels = _problem(16, n=20, d=3, k=2)
    with pytest.raises(pedrank.PedrankValueError, match=message):
        pedrank.itm(features, labels, **options)
    if "backend" not in options:
        with pytest.raises(pedrank.PedrankValueError, match=message):
            reference.itm(features, labels, **options)


def test_bad_shapes_are_refused_by_name():
    features, labels = _problem(17, n=20, d=3, k=2)
    with pytest.raises(pedrank.PedrankValueError, match=r"features: expected a 2-D array"):
        pedrank.itm(features[:, 0], labels)
    with pytest.raises(pedrank.PedrankValueError, match=r"labels: found 19 labels but the features have 20 rows"):
        pedrank.itm(features, labels[:-1])
    with pytest.raises(pedrank.PedrankValueError, match=r"labels: found 1 distinct class"):
        pedrank.itm(features, np.zeros(20, dtype=int))


def test_without_torch_the_numpy_run_works_and_backend_torch_is_refused(monkeypatch):
    features, labels = _problem(18, n=20, d=3, k=2)
    expected = itm_terms(features, labels, **QUICK)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    terms = itm_terms(features, labels, **QUICK)
    np.testing.assert_array_equal(terms["losses"], expected["losses"])
    np.testing.assert_array_equal(terms["accuracies"], expected["accuracies"])
    with pytest.raises(pedrank.MissingDependencyError, match=r"torch backend needs torch.*pedrank\[torch\]"):
        pedrank.itm(features, labels, backend="torch", **QUICK)


# --- registration ------------------------------------------------------------------------------------------------

def test_registered_everywhere(tmp_path, capsys, torch):
    from pedrank.frontends.cli import main

    assert "itm" in pedrank.METRICS and "itm" in pedrank.__all__
    features, labels = _problem(19, n=90, d=5, k=3)
    direct = pedrank.itm(features, labels)
    assert pedrank.score(features, labels, "itm") == direct
    assert reference.score(features, labels, "itm") == direct
    assert pedrank.itm(torch.from_numpy(features), labels) == direct
    moved = pedrank.score(features, labels, "itm", ped=True)
    assert 0 <= moved <= 1 and moved == reference.score(features, labels, "itm", ped=True)
    table = pedrank.rank({"full": features, "noise": np.random.default_rng(0).normal(size=(90, 5))}, labels,
                         metric="itm", ped=True)
    assert table.models == ["full", "noise"]
    for name, values in (("full", features), ("half", features[:, :2])):
        np.savez(tmp_path / f"{name}.npz", features=values, labels=labels)
    code = main(["rank", str(tmp_path / "full.npz"), str(tmp_path / "half.npz"), "--metric", "itm", "--ped"])
    assert code in (0, None) and "itm" in capsys.readouterr().out
