"""Reference ITM (Zheng et al., NeurIPS 2025), written from the spec (docs/itm.md) in plain NumPy.

Plain and slow on purpose: the closed-form update is the B x B matrix ``(I - eta K)^m`` from
``numpy.linalg.matrix_power``; the gradients are derived by hand (cross-entropy, linear head, the closed form with
K held fixed, the row normalisation, the linear map); AdamW is written out from its update rule; the accuracy is
counted sample by sample. The random draws follow the spec's order, so that the run is the fast path's run.
"""

from __future__ import annotations

import numpy as np

from pedrank._engine.validation import PedrankValueError, check_classification, check_int, check_positive, to_numpy
from pedrank.reference.lead import standardise  # the same standardisation as LEAD's


def _options(batch_size, n_iter, eval_every, eta, n_steps, lr, weight_decay, holdout, random_state):
    checked = (check_int(batch_size, name="batch_size", minimum=1), check_int(n_iter, name="n_iter", minimum=1),
               check_int(eval_every, name="eval_every", minimum=1), check_positive(eta, name="eta"),
               check_int(n_steps, name="n_steps", minimum=0), check_positive(lr, name="lr"),
               check_positive(weight_decay, name="weight_decay", allow_zero=True),
               check_positive(holdout, name="holdout"), check_int(random_state, name="random_state", minimum=0))
    if checked[7] >= 1:
        raise PedrankValueError(f"holdout: expected a fraction in (0, 1), found {holdout!r}")
    return checked


def _plan(z, y, k, batch_size, n_iter, holdout, random_state):
    n, d = z.shape
    rng = np.random.default_rng(random_state)
    r = rng.standard_normal(d)
    keys = np.array([np.sum(z[i] * r) for i in range(n)])
    canonical = sorted(range(n), key=lambda i: keys[i])  # Python's sort is stable: equal keys keep input order
    permutation = rng.permutation(n)
    order = [canonical[p] for p in permutation]
    names: dict[int, int] = {}
    for i in order:
        names.setdefault(int(y[i]), len(names))
    renamed = np.array([names[int(c)] for c in y])
    n_held = min(max(int(round(holdout * n)), 1), n - 1)
    train, held = order[: n - n_held], order[n - n_held:]
    a, b = 1.0 / np.sqrt(d), 1.0 / np.sqrt(k)
    weights = [rng.uniform(-a, a, (d, k)), rng.uniform(-a, a, k), rng.uniform(-b, b, (k, k)), rng.uniform(-b, b, k)]
    batches: list[list[int]] = []
    while len(batches) < n_iter:
        epoch = rng.permutation(len(train))
        for start in range(0, len(train), batch_size):
            batches.append([train[j] for j in epoch[start:start + batch_size]])
    return renamed, held, weights, batches[:n_iter]


def _forward(z_batch, targets, weights, eta, n_steps):
    w, b, h, c = weights
    u = z_batch @ w + b
    norms = np.sqrt(np.sum(u * u, axis=1))
    theta = u / np.maximum(norms, 1e-12)[:, None]
    size = theta.shape[0]
    transition = np.linalg.matrix_power(np.eye(size) - eta * (theta @ theta.T) / size, n_steps)
    evolved = targets + transition @ (theta - targets)
    return u, norms, theta, transition, evolved, evolved @ h + c


def _softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _loss_and_gradients(z_batch, labels, weights, k, eta, n_steps):
    size = z_batch.shape[0]
    targets = np.eye(k)[labels]
    u, norms, theta, transition, evolved, logits = _forward(z_batch, targets, weights, eta, n_steps)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.mean(log_probabilities[np.arange(size), labels])
    d_logits = (_softmax(logits) - targets) / size          # d loss / d logits
    w, b, h, c = weights
    d_h = evolved.T @ d_logits
    d_c = d_logits.sum(axis=0)
    d_evolved = d_logits @ h.T
    d_theta = transition.T @ d_evolved                        # K is a constant: evolved is linear in theta
    d_u = np.empty_like(u)
    for i in range(size):                                     # theta_i = u_i / max(|u_i|, eps)
        if norms[i] > 1e-12:
            d_u[i] = (d_theta[i] - theta[i] * (theta[i] @ d_theta[i])) / norms[i]
        else:
            d_u[i] = d_theta[i] / 1e-12
    d_w = z_batch.T @ d_u
    d_b = d_u.sum(axis=0)
    return loss, [d_w, d_b, d_h, d_c]


def itm_terms(features, labels, *, batch_size=256, n_iter=500, eval_every=100, eta=0.5, n_steps=1, lr=0.005,
              weight_decay=0.01, holdout=0.2, random_state=0):
    """Reference ITM's parts: ``{"score", "losses", "accuracies", "weights"}``.

    See :func:`pedrank.scores.itm.itm_terms`.
    """
    batch_size, n_iter, eval_every, eta, n_steps, lr, weight_decay, holdout, random_state = _options(
        batch_size, n_iter, eval_every, eta, n_steps, lr, weight_decay, holdout, random_state)
    features, y, classes = check_classification(features, labels)
    z = standardise(np.array(to_numpy(features), dtype=np.float64))
    k = classes.shape[0]
    renamed, held, weights, batches = _plan(z, y, k, batch_size, n_iter, holdout, random_state)

    first, second = [np.zeros_like(w) for w in weights], [np.zeros_like(w) for w in weights]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    losses, accuracies = [], []
    for iteration, rows in enumerate(batches):
        loss, gradients = _loss_and_gradients(z[rows], renamed[rows], weights, k, eta, n_steps)
        losses.append(loss)
        rate = lr * max(0.0, 1.0 - iteration / 10_000)
        step = iteration + 1
        for p in range(len(weights)):                        # AdamW (Loshchilov and Hutter), torch's form
            weights[p] = weights[p] * (1.0 - rate * weight_decay)
            first[p] = beta1 * first[p] + (1.0 - beta1) * gradients[p]
            second[p] = beta2 * second[p] + (1.0 - beta2) * gradients[p] ** 2
            denominator = np.sqrt(second[p]) / np.sqrt(1.0 - beta2 ** step) + eps
            weights[p] = weights[p] - rate / (1.0 - beta1 ** step) * first[p] / denominator
        if step % eval_every == 0 or step == n_iter:
            correct = 0
            for start in range(0, len(held), batch_size):
                rows_held = held[start:start + batch_size]
                targets = np.eye(k)[renamed[rows_held]]
                logits = _forward(z[rows_held], targets, weights, eta, n_steps)[-1]
                for i, row in enumerate(rows_held):
                    correct += int(np.argmax(logits[i]) == renamed[row])
            accuracies.append(correct / len(held))
    return {"score": float(max(accuracies)), "losses": np.array(losses), "accuracies": np.array(accuracies),
            "weights": weights}


def itm(features, labels, *, batch_size=256, n_iter=500, eval_every=100, eta=0.5, n_steps=1, lr=0.005,
        weight_decay=0.01, holdout=0.2, random_state=0):
    """Reference ITM. See :func:`pedrank.itm`."""
    return itm_terms(features, labels, batch_size=batch_size, n_iter=n_iter, eval_every=eval_every, eta=eta,
                     n_steps=n_steps, lr=lr, weight_decay=weight_decay, holdout=holdout,
                     random_state=random_state)["score"]
