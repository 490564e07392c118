"""ITM (Zheng, Wang, Zhou and Huang, NeurIPS 2025): implicit transferability modelling, scored by held-out accuracy.

"Implicit Modeling for Transferability Estimation of Vision Foundation Models" (arXiv 2510.23145). A small
learnable map ``W_z`` (the "implicit" model of the pre-trained model's transferability) sends each mini-batch of
frozen embeddings to a C-dimensional space, ``Theta = normalise(E W + b)``. Fine-tuning is imitated per mini-batch
(the divide-and-conquer variational approximation, DVA): a linear layer ``g`` trained by gradient descent under a
squared loss towards class prototypes ``P`` moves the batch's embeddings, in closed form, by

    E^(n+1) = (I - eta K) E^(n) + eta K P,      K = Theta Theta^T / B,      E^(0) = Theta,

so that ``E^(m) = P + (I - eta K)^m (Theta - P)`` (``K`` is held fixed: it enters without gradient). A linear
classifier on ``E^(m)`` is trained with the cross-entropy (AdamW, jointly with ``W_z``); the score is the best
accuracy of the evolved held-out embeddings over the evaluations. Higher is better; it lies in [0, 1].

docs/itm.md gives every step, each default and where it comes from (the paper's text could not be read here: its
description comes from published summaries and a third-party port of the authors' code; docs/itm.md says which).

One engine trains (:func:`_train`): the forward pass, the backward pass written out (cross-entropy, linear head,
the closed form with K held fixed, the row normalisation, the linear map) and AdamW in the operations of torch's
update, written once against a small array namespace, :class:`_NumpyArrays` or :class:`_TorchArrays` (matmul into
reused buffers, row gathers, row dot products, exp, log, sqrt, a floor, row reductions, argmax, in-place updates).
That is the project's design rule (POT's): one public function per method, a backend layer that runs the same code
on NumPy or torch, no per-backend copies of the math. On the CPU (NumPy arrays, lists, tensors on the CPU) it runs
on NumPy and needs no torch. A tensor on another device (a GPU), or ``backend="torch"``, runs it on torch on the
tensor's device (``pip install 'pedrank[torch]'``), in float64 too: the iterates agree to rounding (about 1e-13
relative), and so far the score has been the same in every run compared. The torch path was only run on the CPU
here (no GPU was available). Every random draw (row order, split, initial weights, mini-batches) comes from
``numpy.random.default_rng(random_state)`` on the host, in a documented order, so the pure-NumPy reference
(:mod:`pedrank.reference.itm`) retraces the same run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pedrank._engine.config import blas_on_policy, follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import (
    MissingDependencyError,
    PedrankValueError,
    check_classification,
    check_int,
    check_positive,
    finite_score,
    is_torch_tensor,
)
from pedrank.scores.lead import standardise, standardised_float64  # LEAD's standardisation (a score's helper)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["itm", "itm_terms", "check_itm_options", "standardise", "draw_plan", "evolve"]

#: The learning rate decays linearly from ``lr`` towards 0 over this many iterations (the port's
#: ``PolynomialLR(total_iters=10000, power=1)``): at iteration i (from 0) it is ``lr * (1 - i / LR_HORIZON)``.
LR_HORIZON = 10_000

#: AdamW's moment decay rates and denominator floor (torch's defaults, the port's setting).
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

#: Rows a block when the canonical order's keys are summed (a 1,024 x D temporary instead of N x D).
KEY_BLOCK = 1024

#: Rows of ``E W + b`` are divided by ``max(|row|, NORMALISE_EPS)`` (``torch.nn.functional.normalize``).
NORMALISE_EPS = 1e-12


def check_itm_options(batch_size: Any, n_iter: Any, eval_every: Any, eta: Any, n_steps: Any, lr: Any,
                      weight_decay: Any, holdout: Any, random_state: Any) -> tuple[int, int, int, float, int, float,
                                                                                   float, float, int]:
    """Validate ITM's options; returns them as (int, int, int, float, int, float, float, float, int)."""
    batch_size = check_int(batch_size, name="batch_size", minimum=1)
    n_iter = check_int(n_iter, name="n_iter", minimum=1)
    eval_every = check_int(eval_every, name="eval_every", minimum=1)
    eta = check_positive(eta, name="eta")
    n_steps = check_int(n_steps, name="n_steps", minimum=0)
    lr = check_positive(lr, name="lr")
    weight_decay = check_positive(weight_decay, name="weight_decay", allow_zero=True)
    holdout = check_positive(holdout, name="holdout")
    if holdout >= 1:
        raise PedrankValueError(f"holdout: expected a fraction in (0, 1), found {holdout!r}")
    random_state = check_int(random_state, name="random_state", minimum=0)
    return batch_size, n_iter, eval_every, eta, n_steps, lr, weight_decay, holdout, random_state


def held_out_count(n_samples: int, holdout: float) -> int:
    """Rows held out: ``round(holdout * N)``, kept within 1 .. N - 1 so that both sides have a row."""
    return min(max(int(round(holdout * n_samples)), 1), n_samples - 1)


def draw_plan(standardised: np.ndarray, encoded: np.ndarray, n_classes: int, *, batch_size: int, n_iter: int,
              holdout: float, random_state: int) -> dict[str, Any]:
    """Every random draw of one ITM run, from ``numpy.random.default_rng(random_state)``, in this order.

    1. ``r`` ~ N(0, 1)^D; the rows are put in a canonical order, ``argsort((Z * r).sum(axis=1))`` (stable): the
       run does not depend on the order the rows were given in (rows that are equal tie, and stay in input order);
    2. one permutation of the N rows: ``order = canonical[permutation]``; the classes are renamed 0, 1, ... in the
       order of their first member in ``order`` (so the run does not depend on the classes' names or order);
    3. the held-out rows are the last ``round(holdout * N)`` of ``order`` (at least 1, at most N - 1), the
       training rows the others;
    4. the initial weights, PyTorch's ``nn.Linear`` distribution: ``W`` (D x C) and ``b`` (C) uniform on
       [-1/sqrt(D), 1/sqrt(D)), then ``H`` (C x C) and ``c`` (C) uniform on [-1/sqrt(C), 1/sqrt(C)), each by
       ``Generator.uniform`` in that order;
    5. the mini-batches: epochs over the training rows, each a fresh ``permutation(n_train)`` cut into consecutive
       batches of ``batch_size`` (the last may be smaller), as many as ``n_iter`` needs.

    Returns ``{"order", "labels" (renamed, per row), "train", "held_out", "weights" (W, b, H, c), "batches"
    (indices into "train")}``.
    """
    n_samples, n_features = standardised.shape
    rng = np.random.default_rng(random_state)
    direction = rng.standard_normal(n_features)
    # (Z * r).sum(axis=1) a block of rows at a time: each row's sum is the same (bitwise), no N x D temporary
    keys = np.concatenate([(standardised[start:start + KEY_BLOCK] * direction).sum(axis=1)
                           for start in range(0, n_samples, KEY_BLOCK)])
    canonical = np.argsort(keys, kind="stable")
    order = canonical[rng.permutation(n_samples)]
    _, first = np.unique(encoded[order], return_index=True)
    renamed = np.empty(n_classes, dtype=np.int64)
    renamed[np.argsort(first, kind="stable")] = np.arange(n_classes)
    n_held = held_out_count(n_samples, holdout)
    train, held_out = order[: n_samples - n_held], order[n_samples - n_held:]
    bound_in, bound_out = 1.0 / np.sqrt(n_features), 1.0 / np.sqrt(n_classes)
    weights = (rng.uniform(-bound_in, bound_in, (n_features, n_classes)), rng.uniform(-bound_in, bound_in, n_classes),
               rng.uniform(-bound_out, bound_out, (n_classes, n_classes)), rng.uniform(-bound_out, bound_out,
                                                                                       n_classes))
    batches: list[np.ndarray] = []
    while len(batches) < n_iter:
        epoch = rng.permutation(train.shape[0])
        batches.extend(epoch[start:start + batch_size] for start in range(0, epoch.shape[0], batch_size))
    return {"order": order, "labels": renamed[encoded], "train": train, "held_out": held_out, "weights": weights,
            "batches": batches[:n_iter]}


def evolve(theta: Any, targets: Any, *, eta: float, n_steps: int, kernel_rows: Any = None) -> Any:
    """DVA's closed form ``targets + (I - eta K)^n_steps (theta - targets)``, ``K = R R^T / B``, ``R = kernel_rows``
    (default ``theta``; the fast path passes ``theta`` detached, so that no gradient flows through K).

    Works on NumPy arrays and torch tensors (B x C). ``K`` (B x B) is never formed: each step applies
    ``K E = R (R^T E) / B``, C x C work instead of B x B. Equal to iterating ``E <- (I - eta K) E + eta K P`` from
    ``E = theta``, and to ``n_steps`` gradient-descent steps of rate ``eta`` on a linear map ``g`` (from the
    identity) under the loss ``|theta G - P|^2 / (2 B)`` (tests/test_itm.py checks both).
    """
    rows = theta if kernel_rows is None else kernel_rows
    scale = eta / theta.shape[0]
    moved = theta - targets
    for _ in range(n_steps):
        moved = moved - scale * (rows @ (rows.T @ moved))
    return moved + targets


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("itm: the torch backend needs torch: pip install 'pedrank[torch]'") from exc
    return torch


class _NumpyArrays:
    """The engine's array namespace on NumPy (the host): each method is the NumPy call the engine makes, with the
    same arguments, so the NumPy run is the one the engine has always made (bitwise)."""

    name = "numpy"

    def asarray(self, values: np.ndarray) -> np.ndarray:
        """A plan's array (host, NumPy), as it is: read, never written."""
        return values

    def parameter(self, values: np.ndarray) -> np.ndarray:
        """A float64 copy to train (the plan's arrays stay as drawn)."""
        return np.array(values, dtype=np.float64)

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape)

    def empty_like(self, values: np.ndarray) -> np.ndarray:
        return np.empty_like(values)

    def zeros_like(self, values: np.ndarray) -> np.ndarray:
        return np.zeros_like(values)

    def arange(self, stop: int) -> np.ndarray:
        return np.arange(stop)

    def take_rows(self, source: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.take(source, rows, axis=0, out=out, mode="clip")  # the rows are valid indices

    def matmul(self, left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.matmul(left, right, out=out)

    def row_dots(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``sum_j left_ij right_ij`` per row, without a product temporary."""
        return np.einsum("ij,ij->i", left, right)

    def clamp_min(self, values: np.ndarray, floor: float) -> np.ndarray:
        return np.maximum(values, floor)

    def exp(self, values: np.ndarray) -> np.ndarray:
        return np.exp(values)

    def log(self, values: np.ndarray) -> np.ndarray:
        return np.log(values)

    def sqrt(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.sqrt(values, out=out)

    def subtract(self, left: np.ndarray, right: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.subtract(left, right, out=out)

    def multiply(self, left: np.ndarray, right: Any, out: np.ndarray) -> np.ndarray:
        return np.multiply(left, right, out=out)

    def row_max(self, values: np.ndarray) -> np.ndarray:
        return values.max(axis=1, keepdims=True)

    def row_sum(self, values: np.ndarray) -> np.ndarray:
        return values.sum(axis=1)

    def column_sum(self, values: np.ndarray) -> np.ndarray:
        return values.sum(axis=0)

    def mean(self, values: np.ndarray) -> Any:
        return np.mean(values)

    def argmax_rows(self, values: np.ndarray) -> np.ndarray:
        return values.argmax(axis=1)  # the first index on ties

    def copy(self, values: np.ndarray) -> np.ndarray:
        return values.copy()

    def count_nonzero(self, values: np.ndarray) -> int:
        return int(np.count_nonzero(values))

    def to_numpy(self, values: np.ndarray) -> np.ndarray:
        return values


class _TorchArrays:
    """The engine's array namespace on torch, on one device, in float64: the same operations as
    :class:`_NumpyArrays` (torch's own kernels: the run agrees with NumPy's to rounding)."""

    name = "torch"

    def __init__(self, torch: Any, device: Any) -> None:
        self.torch = torch
        self.device = torch.device(device)

    def asarray(self, values: np.ndarray) -> Any:
        """A plan's array on the device (shares the host memory on the CPU)."""
        return self.torch.from_numpy(np.ascontiguousarray(values)).to(self.device)

    def parameter(self, values: np.ndarray) -> Any:
        return self.torch.tensor(values, dtype=self.torch.float64, device=self.device)

    def empty(self, shape: tuple[int, ...]) -> Any:
        return self.torch.empty(shape, dtype=self.torch.float64, device=self.device)

    def empty_like(self, values: Any) -> Any:
        return self.torch.empty_like(values)

    def zeros_like(self, values: Any) -> Any:
        return self.torch.zeros_like(values)

    def arange(self, stop: int) -> Any:
        return self.torch.arange(stop, device=self.device)

    def take_rows(self, source: Any, rows: Any, out: Any) -> Any:
        return self.torch.index_select(source, 0, rows, out=out)

    def matmul(self, left: Any, right: Any, out: Any = None) -> Any:
        return self.torch.matmul(left, right) if out is None else self.torch.matmul(left, right, out=out)

    def row_dots(self, left: Any, right: Any) -> Any:
        return self.torch.einsum("ij,ij->i", left, right)

    def clamp_min(self, values: Any, floor: float) -> Any:
        return self.torch.clamp_min(values, floor)

    def exp(self, values: Any) -> Any:
        return self.torch.exp(values)

    def log(self, values: Any) -> Any:
        return self.torch.log(values)

    def sqrt(self, values: Any, out: Any = None) -> Any:
        return self.torch.sqrt(values) if out is None else self.torch.sqrt(values, out=out)

    def subtract(self, left: Any, right: Any, out: Any) -> Any:
        return self.torch.sub(left, right, out=out)

    def multiply(self, left: Any, right: Any, out: Any) -> Any:
        return self.torch.mul(left, right, out=out)

    def row_max(self, values: Any) -> Any:
        return values.amax(dim=1, keepdim=True)

    def row_sum(self, values: Any) -> Any:
        return values.sum(dim=1)

    def column_sum(self, values: Any) -> Any:
        return values.sum(dim=0)

    def mean(self, values: Any) -> Any:
        return values.mean()

    def argmax_rows(self, values: Any) -> Any:
        return values.argmax(dim=1)  # the first index on ties, as NumPy's

    def copy(self, values: Any) -> Any:
        return values.clone()

    def count_nonzero(self, values: Any) -> int:
        return int(self.torch.count_nonzero(values).item())

    def to_numpy(self, values: Any) -> np.ndarray:
        return values.cpu().numpy()


def _forward(xp: Any, batch: Any, targets: Any, parameters: list[Any], *, eta: float, n_steps: int,
             mapped_out: Any = None) -> tuple[Any, ...]:
    """One batch's forward pass: ``(norms, clamped norms, Theta, E, logits)``, for the backward pass.

    ``Theta = normalise(Z_B W + b)`` (rows over ``max(|row|, eps)``), ``E = P + (I - eta K)^m (Theta - P)`` with
    ``K E = Theta (Theta^T E) / B`` (K held fixed), logits ``E H + c``. ``Z_B W`` is written into ``mapped_out``
    when given (a reused buffer)."""
    weight, bias, head, head_bias = parameters
    size = batch.shape[0]
    mapped = xp.matmul(batch, weight, out=mapped_out)
    mapped += bias
    norms = xp.sqrt(xp.row_dots(mapped, mapped))
    clamped = xp.clamp_min(norms, NORMALISE_EPS)
    theta = mapped / clamped[:, None]
    index = xp.arange(size)
    moved = xp.copy(theta)
    moved[index, targets] -= 1.0  # theta - P, P one-hot
    step_scale = eta / size
    for _ in range(n_steps):
        moved -= step_scale * (theta @ (theta.T @ moved))
    moved[index, targets] += 1.0
    logits = moved @ head
    logits += head_bias
    return norms, clamped, theta, moved, logits


def _backward(xp: Any, batch: Any, targets: Any, parameters: list[Any], cache: tuple[Any, ...], *, eta: float,
              n_steps: int, d_weight: Any = None) -> tuple[Any, list[Any]]:
    """The batch's mean cross-entropy and its gradients ``[dW, db, dH, dc]``, written out (``dW`` into
    ``d_weight`` when given): softmax minus one-hot, the head, the closed form's transpose (K fixed), the row
    normalisation (``d_u = (d - Theta (Theta . d)) / |u|``, or ``d / eps`` where the floor holds: no gradient
    through a clamped norm, as torch's ``normalize``), the linear map."""
    head = parameters[2]
    norms, clamped, theta, moved, logits = cache
    size = batch.shape[0]
    index = xp.arange(size)
    shifted = logits - xp.row_max(logits)
    exponentials = xp.exp(shifted)
    totals = xp.row_sum(exponentials)
    loss = -xp.mean(shifted[index, targets] - xp.log(totals))
    d_logits = exponentials / totals[:, None]  # softmax - onehot, over the batch
    d_logits[index, targets] -= 1.0
    d_logits /= size
    d_head = moved.T @ d_logits
    d_head_bias = xp.column_sum(d_logits)
    d_theta = d_logits @ head.T
    step_scale = eta / size
    for _ in range(n_steps):  # (I - eta K)^m is symmetric: its transpose is the same m steps
        d_theta -= step_scale * (theta @ (theta.T @ d_theta))
    d_mapped = d_theta - theta * xp.row_dots(theta, d_theta)[:, None]
    floored = norms <= NORMALISE_EPS
    if floored.any():
        d_mapped[floored] = d_theta[floored]
    d_mapped /= clamped[:, None]
    d_weight = xp.matmul(batch.T, d_mapped, out=d_weight)
    d_bias = xp.column_sum(d_mapped)
    return loss, [d_weight, d_bias, d_head, d_head_bias]


def _loss_and_gradients(xp: Any, batch: Any, targets: Any, parameters: list[Any], *, eta: float,
                        n_steps: int) -> tuple[Any, list[Any]]:
    """One batch's loss and written-out gradients (fresh arrays): what tests/test_itm.py checks against torch's
    autograd and finite differences."""
    cache = _forward(xp, batch, targets, parameters, eta=eta, n_steps=n_steps)
    return _backward(xp, batch, targets, parameters, cache, eta=eta, n_steps=n_steps)


def _adamw_step(xp: Any, parameters: list[Any], gradients: list[Any], first: list[Any], second: list[Any],
                scratch: list[tuple[Any, Any]], *, rate: float, step: int, weight_decay: float) -> None:
    """One AdamW step in place, in the operations and order of ``torch.optim.AdamW``'s single-tensor update
    (decoupled decay ``p *= 1 - rate wd``; ``m.lerp_(g, 1 - beta1)``; ``v.mul_(beta2).addcmul_(g, g, 1 - beta2)``;
    ``p.addcdiv_(m, sqrt(v) / sqrt(1 - beta2^t) + eps, value=-rate / (1 - beta1^t))``), each into the step's
    scratch arrays (no allocation)."""
    beta1, beta2 = ADAM_BETAS
    correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
    step_size, correction2_sqrt = rate / correction1, correction2 ** 0.5
    decay = 1 - rate * weight_decay
    for parameter, gradient, mean, square, (work, denominator) in zip(parameters, gradients, first, second, scratch):
        if weight_decay != 0:
            parameter *= decay
        xp.subtract(gradient, mean, out=work)  # lerp with weight < 0.5: m + w (g - m)
        work *= 1 - beta1
        mean += work
        square *= beta2
        xp.multiply(gradient, 1 - beta2, out=work)  # addcmul: v + (value g) g
        work *= gradient
        square += work
        xp.sqrt(square, out=denominator)
        denominator /= correction2_sqrt
        denominator += ADAM_EPS
        xp.multiply(mean, -step_size, out=work)  # addcdiv: p + (value m) / denominator
        work /= denominator
        parameter += work


def _train(xp: Any, standardised: np.ndarray, plan: dict[str, Any], n_classes: int, *, eval_every: int,
           eta: float, n_steps: int, lr: float, weight_decay: float, batch_size: int) -> dict[str, Any]:
    """The engine: ``n_iter`` steps of the forward pass, the written-out backward pass and AdamW, with the
    held-out evaluations, on the array namespace ``xp`` (:class:`_NumpyArrays`, or :class:`_TorchArrays` on a
    device), in float64. The plan's draws come from the host (NumPy); the batch's rows and their map are gathered
    into buffers reused by every step (no N x D temporary, no 2 MB allocation a step)."""
    features = xp.asarray(standardised)
    labels = xp.asarray(plan["labels"])
    train, held_out = xp.asarray(plan["train"]), xp.asarray(plan["held_out"])
    parameters = [xp.parameter(w) for w in plan["weights"]]  # copies: the plan's arrays stay as drawn
    first = [xp.zeros_like(p) for p in parameters]
    second = [xp.zeros_like(p) for p in parameters]
    scratch = [(xp.empty_like(p), xp.empty_like(p)) for p in parameters]
    most = min(batch_size, max(train.shape[0], held_out.shape[0]))
    rows_buffer = xp.empty((most, standardised.shape[1]))
    mapped_buffer = xp.empty((most, n_classes))
    d_weight = xp.empty_like(parameters[0])

    def forward(rows: Any) -> tuple[Any, Any, tuple[Any, ...]]:
        size = rows.shape[0]
        batch = xp.take_rows(features, rows, out=rows_buffer[:size])
        targets = labels[rows]
        return batch, targets, _forward(xp, batch, targets, parameters, eta=eta, n_steps=n_steps,
                                        mapped_out=mapped_buffer[:size])

    n_iter = len(plan["batches"])
    losses = xp.empty((n_iter,))
    checkpoints, accuracies = [], []
    for iteration, batch_rows in enumerate(plan["batches"]):
        batch, targets, cache = forward(train[xp.asarray(batch_rows)])
        losses[iteration], gradients = _backward(xp, batch, targets, parameters, cache, eta=eta, n_steps=n_steps,
                                                 d_weight=d_weight)
        _adamw_step(xp, parameters, gradients, first, second, scratch,
                    rate=lr * max(0.0, 1.0 - iteration / LR_HORIZON), step=iteration + 1, weight_decay=weight_decay)
        if (iteration + 1) % eval_every == 0 or iteration + 1 == n_iter:
            hits = 0
            for start in range(0, held_out.shape[0], batch_size):
                _, held_targets, held_cache = forward(held_out[start:start + batch_size])
                hits += xp.count_nonzero(xp.argmax_rows(held_cache[-1]) == held_targets)
            checkpoints.append(iteration + 1)
            accuracies.append(hits)
    return {"losses": xp.to_numpy(losses), "checkpoints": np.array(checkpoints),
            "accuracies": np.array(accuracies, dtype=np.float64) / held_out.shape[0],
            "weights": tuple(xp.to_numpy(p) for p in parameters)}


@follows_thread_policy
def itm_terms(features: Any, labels: Any, *, batch_size: int = 256, n_iter: int = 500, eval_every: int = 100,
              eta: float = 0.5, n_steps: int = 1, lr: float = 0.005, weight_decay: float = 0.01,
              holdout: float = 0.2, random_state: int = 0, backend: Any = "auto") -> dict[str, Any]:
    """ITM's parts: ``{"score", "accuracies", "checkpoints", "losses", "weights", "plan"}``.

    ``accuracies[k]`` is the held-out accuracy after ``checkpoints[k]`` iterations (every ``eval_every`` and the
    last); ``score = max(accuracies)``; ``losses`` the training cross-entropy of each iteration; ``weights`` the
    trained ``(W, b, H, c)``; ``plan`` the random draws (:func:`draw_plan`). Options as :func:`itm`.
    """
    batch_size, n_iter, eval_every, eta, n_steps, lr, weight_decay, holdout, random_state = check_itm_options(
        batch_size, n_iter, eval_every, eta, n_steps, lr, weight_decay, holdout, random_state)
    features, encoded, classes = check_classification(features, labels)
    select_kernels(features, backend)  # validates the backend
    device = features.device if is_torch_tensor(features) else "cpu"
    use_torch = (isinstance(backend, str) and backend == "torch") or str(device) != "cpu"
    # Each step works on one batch (B x D): on the CPU the BLAS (NumPy's, or torch's) runs on the thread policy for
    # that size (one thread below 2e6 entries; spinning workers made small calls 25x slower on a busy machine),
    # which the compiled core states. On a GPU torch's setting is left alone.
    batch_shape = (min(batch_size, encoded.shape[0]), features.shape[1])
    standardised = standardised_float64(features)
    n_classes = classes.shape[0]
    plan = draw_plan(standardised, encoded, n_classes, batch_size=batch_size, n_iter=n_iter, holdout=holdout,
                     random_state=random_state)
    if use_torch:
        torch = _torch()
        previous = torch.get_num_threads()
        if str(device) == "cpu":
            core = select_kernels(np.empty((0, 0)), "numpy")
            torch.set_num_threads(int(core.call_threads(*batch_shape)))
        try:
            run = _train(_TorchArrays(torch, device), standardised, plan, n_classes, eval_every=eval_every, eta=eta,
                         n_steps=n_steps, lr=lr, weight_decay=weight_decay, batch_size=batch_size)
        finally:
            torch.set_num_threads(previous)
    else:
        with blas_on_policy(*batch_shape):
            run = _train(_NumpyArrays(), standardised, plan, n_classes, eval_every=eval_every, eta=eta,
                         n_steps=n_steps, lr=lr, weight_decay=weight_decay, batch_size=batch_size)
    return {"score": float(run["accuracies"].max()), **run, "plan": plan}


@finite_score("itm")
def itm(features: Any, labels: Any, *, batch_size: int = 256, n_iter: int = 500, eval_every: int = 100,
        eta: float = 0.5, n_steps: int = 1, lr: float = 0.005, weight_decay: float = 0.01, holdout: float = 0.2,
        random_state: int = 0, backend: Any = "auto") -> float:
    """ITM transferability score (Zheng et al., NeurIPS 2025): held-out accuracy after implicit modelling.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model (standardised per column before use). A tensor is trained on
        its own device.
    labels : array_like of shape (n_samples,)
        Target labels, any values.
    batch_size : int, default=256
        Rows per mini-batch (the DVA's subspace, ``B``), for training and for the held-out evaluation (paper).
    n_iter : int, default=500
        Training iterations (paper).
    eval_every : int, default=100
        Iterations between held-out evaluations (paper); the last iteration is always evaluated.
    eta : float, default=0.5
        Step of the closed-form update ``(I - eta K)`` (> 0; the third-party port's ``coeff``).
    n_steps : int, default=1
        Closed-form steps ``m`` per batch (>= 0; 1 in the port and the earlier version; 0 trains a linear probe
        on the normalised map without evolution).
    lr : float, default=0.005
        AdamW's learning rate, decayed linearly over :data:`LR_HORIZON` iterations (port).
    weight_decay : float, default=0.01
        AdamW's decoupled weight decay, on every parameter (port).
    holdout : float, default=0.2
        Fraction of the rows held out for the accuracy (in (0, 1); the port's 80/20 split).
    random_state : int, default=0
        Seeds the row order, the split, the initial weights and the mini-batches (:func:`draw_plan`).
    backend : {"auto", "numpy", "torch"}, default="auto"
        Which arrays the one engine runs on, in float64: "auto" and "numpy" NumPy for features on the CPU, and
        torch on the tensor's device for a tensor on another device ("auto"); "torch" torch always (on the CPU for
        an array). The two retrace one run to rounding (docs/itm.md).

    Returns
    -------
    float
        The best held-out accuracy over the evaluations, in [0, 1]; higher is better.

    Raises
    ------
    MissingDependencyError
        When the torch engine is asked for (``backend="torch"``) and torch is not installed.

    Notes
    -----
    The held-out rows are evolved like the training rows, batch by batch, towards the prototypes of their own
    labels (as the method does): the update mixes each row with the labels of the other rows of its batch through
    ``K``, so the accuracy is not that of a classifier that never saw the held-out labels. Depends on
    ``random_state`` through the split and the initialisation; invariant (to rounding) to the order of the rows
    and to renaming the classes (docs/itm.md measures the seed dependence).
    """
    return itm_terms(features, labels, batch_size=batch_size, n_iter=n_iter, eval_every=eval_every, eta=eta,
                     n_steps=n_steps, lr=lr, weight_decay=weight_decay, holdout=holdout, random_state=random_state,
                     backend=backend)["score"]


register(ScoreEntry(name="itm", function=itm, reference="pedrank.reference.itm:itm", order=16, held_out=True,
                    scale_range=(0.0, math.inf)))
