"""Frozen features of a torch model over a data loader, ready for :func:`pedrank.rank`.

torch is imported only when :func:`extract_features` runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pedrank._engine.progress import progress as _progress
from pedrank._engine.validation import MissingDependencyError, PedrankValueError

__all__ = ["extract_features"]


def last_linear(model: Any):
    """The model's last ``nn.Linear`` in declaration order (``model.modules()``), or None.

    Not what :func:`extract_features` reads by default (the last ``nn.Linear`` the forward pass runs: a model
    may declare its head before its body); kept for the callers that inspect a model without running it.
    """
    import torch.nn as nn

    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last


def resolve_layer(model: Any, layer: Any):
    import torch.nn as nn

    if isinstance(layer, nn.Module):
        if not any(module is layer for module in model.modules()):
            raise PedrankValueError(f"layer: the module {type(layer).__name__} given is not part of the model")
        return layer
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError as exc:
            names = [name for name, _ in model.named_modules() if name]
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise PedrankValueError(f"layer: the model has no submodule {layer!r}; its submodules: {shown}") from exc
    raise PedrankValueError(f"layer: expected None, a submodule name or an nn.Module, found {type(layer).__name__}")


def last_linear_run(model: Any, forward: Any, inputs: Any, hook: Any = None, linears: list[Any] | None = None):
    """The classifier head as the forward pass sees it: run ``forward(inputs)`` once with every ``nn.Linear`` of
    ``model`` (or of ``linears``) hooked, and return the one called last (a module called several times counts
    by its last call), after passing that call ``(module, inputs, output)`` to ``hook`` when given.

    Not the last one declared: a model may declare its head before its body. Only the latest call's tensors are
    kept while the forward pass runs; the hooks are removed on the way out. Used by :func:`extract_features`,
    ``pedrank select`` and ``pedrank finetune`` (``head="replace"``), so all three read or replace the same layer.
    """
    if linears is None:
        import torch.nn as nn

        linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    last_call: list[Any] = []

    def spot(module, module_inputs, output):
        last_call[:] = [module, module_inputs, output]

    handles = [module.register_forward_hook(spot) for module in linears]
    try:
        forward(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if not last_call:
        raise PedrankValueError(
            f"layer: the forward pass of the {type(model).__name__} model ran none of its {len(linears)} "
            "nn.Linear layers (expected the classifier head's input by default); name the layer to read "
            "with layer=")
    target, module_inputs, output = last_call
    if hook is not None:
        hook(target, module_inputs, output)
    return target


def _pool(activation: Any):
    """Global average pooling of 4-D maps (N, C, H, W) -> (N, C); other shapes are flattened after N."""
    if activation.ndim == 4:
        return activation.mean(dim=(2, 3))
    if activation.ndim == 2:
        return activation
    return activation.reshape(activation.shape[0], -1)


def _split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, dict):
        for inputs_key, labels_key in (("inputs", "labels"), ("input", "label"), ("image", "label"),
                                       ("x", "y"), ("pixel_values", "labels")):
            if inputs_key in batch and labels_key in batch:
                return batch[inputs_key], batch[labels_key]
        raise PedrankValueError(f"loader: a dict batch needs inputs and labels keys (e.g. 'inputs'/'labels'); "
                         f"found {sorted(batch)}")
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise PedrankValueError(f"loader: each batch must be (inputs, labels); found {type(batch).__name__}")


def extract_features(
    model: Any,
    loader: Iterable[Any],
    *,
    layer: Any = None,
    capture: str | None = None,
    device: Any = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a torch model over a data loader and collect one layer's activations and the labels.

    Parameters
    ----------
    model : torch.nn.Module
        Put in eval mode for the run (its mode is restored afterwards); no gradients are computed.
    loader : iterable of batches
        Typically a ``torch.utils.data.DataLoader``; each batch is ``(inputs, labels, ...)`` or a dict with
        ``inputs``/``labels`` (also ``image``/``label``, ``x``/``y``).
    layer : None, str or torch.nn.Module
        None: the input of the last ``nn.Linear`` that the forward pass runs (the classifier head's input: the
        penultimate features), whatever the order the model declares its modules in. It is chosen on the first
        batch, by hooking every ``nn.Linear``; one that runs several times per forward counts by its last call,
        and later batches read the layer chosen there. Linear layers the forward pass does not call as
        modules (``F.linear`` on their weights, as ``nn.MultiheadAttention`` does with ``out_proj``) are not
        seen. A submodule name (as in ``model.named_modules()``) or the module itself: that layer.
    capture : {"input", "output"}, optional
        Which side of ``layer`` to record. Default: "input" when ``layer`` is None, else "output".
    device : str or torch.device, optional
        Where to run. Default: the device of the model's first parameter (CPU for a model without any).
    progress : bool or None
        A progress bar over the batches.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features)
        4-D activations (N, C, H, W) are globally average-pooled to (N, C); other shapes are flattened after
        the first dimension. float16/bfloat16 activations come back as float32.
    labels : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        No ``nn.Linear`` in the model (or none that its forward pass runs) and no ``layer``; an unknown
        ``layer``; batches without labels; an empty loader; a layer that the forward pass never reached.
    """
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("extract_features needs torch (pip install torch)") from exc

    if not isinstance(model, torch.nn.Module):
        raise PedrankValueError(f"model: expected a torch.nn.Module, found {type(model).__name__}")
    linears: list[Any] = []
    if layer is None:
        # The target is the last nn.Linear the first batch's forward pass runs (see last_linear_run), not
        # the last one declared: a model may declare its head before its body.
        linears = [module for module in model.modules() if isinstance(module, torch.nn.Linear)]
        if not linears:
            raise PedrankValueError("layer: the model has no nn.Linear layer; name the layer to read with layer=")
        target = None
    else:
        target = resolve_layer(model, layer)
    if capture is None:
        capture = "input" if layer is None else "output"
    if capture not in ("input", "output"):
        raise PedrankValueError(f"capture: expected 'input' or 'output', found {capture!r}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)

    captured: list[Any] = []

    def hook(_module, inputs, output):
        value = inputs[0] if capture == "input" else output
        if isinstance(value, (tuple, list)):
            value = value[0]
        value = _pool(value.detach())
        if value.dtype in (torch.float16, torch.bfloat16):
            value = value.float()  # numpy has no bfloat16, and scores compute in float64 anyway
        captured.append(value.cpu())

    def forward(inputs):
        if isinstance(inputs, torch.Tensor):
            model(inputs.to(device))
        else:
            model(inputs)

    handles = [] if target is None else [target.register_forward_hook(hook)]
    was_training = model.training
    features, labels = [], []
    try:
        model.eval()
        model.to(device)
        try:
            total = len(loader)  # type: ignore[arg-type]
        except TypeError:
            total = None
        with torch.no_grad():
            for batch in _progress(loader, total=total, desc="features", enabled=progress):
                inputs, batch_labels = _split_batch(batch)
                before = len(captured)
                if target is None:
                    target = last_linear_run(model, forward, inputs, hook, linears)
                    handles.append(target.register_forward_hook(hook))
                else:
                    forward(inputs)
                if len(captured) == before:
                    raise PedrankValueError("layer: the forward pass never reached the chosen layer")
                # A layer run several times per forward (shared modules) keeps its last activation.
                features.append(captured[-1])
                del captured[before:]
                labels.append(batch_labels.detach().cpu().numpy() if isinstance(batch_labels, torch.Tensor)
                              else np.asarray(batch_labels))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not features:
        raise PedrankValueError("loader: no batches; expected at least one")
    feature_array = torch.cat(features).numpy()
    label_array = np.concatenate(labels)
    if label_array.shape[0] != feature_array.shape[0]:
        raise PedrankValueError(f"loader: {label_array.shape[0]} labels for {feature_array.shape[0]} feature rows")
    return feature_array, label_array
