"""Fine-tuning one model with one setting: the training loop of :func:`pedrank.workflow.finetune.finetune`.

torch is imported only when these functions run (:func:`torch_module`). A model gets a fresh linear head
(:func:`attach_head`), all its weights are trained by SGD with momentum on seeded batches (:func:`train_one`), and
its validation and test accuracy (and test accuracy at checkpoints) are measured (:func:`accuracy_and_loss`).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from typing import Any

import numpy as np

from pedrank._engine.validation import MissingDependencyError, PedrankValueError

__all__ = ["accuracy_and_loss", "as_tensors", "attach_head", "batches", "fingerprint", "instantiate", "last_linear",
           "torch_module", "train_one", "train_one_seeded"]


def torch_module():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise MissingDependencyError("pedrank.finetune needs torch (pip install torch)") from exc
    return torch


def as_tensors(inputs: Any, labels: Any, name: str):
    """(inputs, labels) or a torch Dataset -> float32 input tensor (n, ...) and int64 labels (n,) on the CPU.

    The caller's arrays are copied, never changed."""
    torch = torch_module()
    if labels is None:
        if not (hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__")):
            raise PedrankValueError(f"{name}: found {type(inputs).__name__} without labels; expected "
                                    "inputs and labels, or a torch Dataset of (input, label) pairs")
        items = [inputs[i] for i in range(len(inputs))]
        if not items:
            raise PedrankValueError(f"{name}: found an empty dataset; expected at least 2 samples")
        x = torch.stack([torch.as_tensor(np.asarray(item[0]) if not torch.is_tensor(item[0]) else item[0])
                         for item in items])
        y = torch.as_tensor([int(item[1]) for item in items])
    else:
        x = inputs.detach().cpu().clone() if torch.is_tensor(inputs) else torch.as_tensor(np.array(inputs))
        y = labels.detach().cpu().clone() if torch.is_tensor(labels) else torch.as_tensor(np.array(labels))
    x = x.to(torch.float32)
    if y.ndim != 1:
        raise PedrankValueError(f"{name} labels: found shape {tuple(y.shape)}; expected one label per sample (n,)")
    if x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise PedrankValueError(f"{name}: found {x.shape[0] if x.ndim else 0} inputs and {y.shape[0]} labels; "
                                "expected one label per input")
    if y.dtype.is_floating_point:
        if not torch.all(y == torch.round(y)):
            raise PedrankValueError(f"{name} labels: found non-integer values; expected class indices")
    y = y.to(torch.int64)
    if not torch.isfinite(x).all():
        raise PedrankValueError(f"{name} inputs: found NaN or infinite values; expected finite numbers")
    return x, y


def fingerprint(*tensors) -> str:
    digest = hashlib.sha1()
    for t in tensors:
        array = np.ascontiguousarray(t.numpy())
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------------ models


def instantiate(name: str, spec: Any):
    torch = torch_module()
    if isinstance(spec, torch.nn.Module):
        return copy.deepcopy(spec)  # the caller's module is never trained
    if callable(spec):
        model = spec()
        if not isinstance(model, torch.nn.Module):
            raise PedrankValueError(f"models[{name!r}]: its factory returned {type(model).__name__}; "
                                    "expected a torch.nn.Module")
        return model
    raise PedrankValueError(f"models[{name!r}]: found {type(spec).__name__}; expected a torch.nn.Module or a "
                            "zero-argument callable returning one")


def last_linear(model, sample):
    """The dotted name of the last nn.Linear that ``model(sample)`` runs (its classifier head; not the last one
    declared, which may be a body layer: :func:`pedrank.workflow.extract.last_linear_run`), or None without one."""
    from pedrank.workflow.extract import last_linear_run

    torch = torch_module()
    if not any(isinstance(module, torch.nn.Linear) for module in model.modules()):
        return None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            head = last_linear_run(model, model, sample)
    finally:
        model.train(was_training)
    return next(name for name, module in model.named_modules() if module is head)


def attach_head(name: str, model, head: str, n_classes: int, sample):
    """The model with a fresh linear head of ``n_classes`` outputs (replacing its last nn.Linear, or appended)."""
    torch = torch_module()
    if head == "replace":
        qualified = last_linear(model, sample)
        if qualified is None:
            raise PedrankValueError(
                f"models[{name!r}]: found no torch.nn.Linear layer to replace with a fresh head; expected a "
                "classifier ending in nn.Linear, or pass head='append' for a feature extractor")
        parent_name, _, child = qualified.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, child)
        setattr(parent, child, torch.nn.Linear(old.in_features, n_classes, bias=True))
        return model
    if head == "append":
        model.eval()
        with torch.no_grad():
            out = model(sample)
        if not torch.is_tensor(out) or out.ndim < 2:
            raise PedrankValueError(f"models[{name!r}]: its output is not a (batch, features) tensor; expected a "
                                    "feature extractor for head='append'")
        width = int(np.prod(out.shape[1:]))
        return torch.nn.Sequential(model, torch.nn.Flatten(), torch.nn.Linear(width, n_classes))
    raise PedrankValueError(f"head: found {head!r}; expected 'replace' or 'append'")


# ------------------------------------------------------------------------------------------ training


def accuracy_and_loss(model, x, y, device, batch_size: int) -> tuple[float, float]:
    torch = torch_module()
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device)
            logits = model(xb)
            loss += float(torch.nn.functional.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    return correct / len(y), loss / len(y)


def batches(n: int, batch_size: int, iterations: int, generator):
    """``iterations`` index batches: shuffled epochs, a new permutation when one runs out (seeded)."""
    torch = torch_module()
    order = torch.zeros(0, dtype=torch.int64)
    for _ in range(iterations):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        batch, order = order[:batch_size], order[batch_size:]
        yield batch


def train_one(name, spec, data, setting, protocol, device):
    """One fine-tuning run; returns its record (without the cache bookkeeping).

    Runs inside ``torch.random.fork_rng``: the caller's global random state is left as it was."""
    torch = torch_module()
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return train_one_seeded(name, spec, data, setting, protocol, device)


def train_one_seeded(name, spec, data, setting, protocol, device):
    torch = torch_module()
    x_train, y_train, x_val, y_val, x_test, y_test, n_classes = data
    seed = protocol["seed"]
    torch.manual_seed(seed)  # a factory's random init and the head's init
    model = instantiate(name, spec)
    model = attach_head(name, model, protocol["head"], n_classes, x_train[:2])
    model.to(device)
    lr, wd = setting
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr,
                                momentum=protocol["momentum"], weight_decay=wd)
    iterations = protocol["iterations"]
    if protocol["schedule"] == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / iterations)))
    else:
        scheduler = None
    generator = torch.Generator().manual_seed(seed)
    checkpoints = set(protocol["checkpoints"])
    eval_batch = protocol["eval_batch_size"]
    curve, losses = {}, []
    start = time.perf_counter()
    for iteration, rows in enumerate(batches(len(y_train), protocol["batch_size"], iterations, generator), 1):
        model.train()
        xb, yb = x_train[rows].to(device), y_train[rows].to(device)
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        if not torch.isfinite(loss):
            losses.append(math.inf)
            break  # diverged: the setting is recorded with its accuracies so far (val at the end)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.detach()))
        if iteration in checkpoints:
            curve[iteration] = accuracy_and_loss(model, x_test, y_test, device, eval_batch)[0]
    val_accuracy, val_loss = accuracy_and_loss(model, x_val, y_val, device, eval_batch)
    test_accuracy = accuracy_and_loss(model, x_test, y_test, device, eval_batch)[0]
    for iteration in checkpoints:  # a diverged run stays at its final accuracy for the later checkpoints
        curve.setdefault(iteration, test_accuracy)
    tail = losses[-max(1, len(losses) // 10):]
    return {
        "val_accuracy": val_accuracy,
        "val_loss": val_loss if math.isfinite(val_loss) else None,
        "test_accuracy": test_accuracy,
        "curve": {str(k): curve[k] for k in sorted(curve)},
        "train_loss": float(np.mean(tail)) if all(math.isfinite(v) for v in tail) else None,
        "iterations_done": len(losses),
        "diverged": not math.isfinite(losses[-1]) if losses else False,
        "seconds": time.perf_counter() - start,
    }
