"""One model's forward pass as :func:`pedrank.extract_features` runs it: a wrapper module that runs the model once
per batch and returns every requested layer pooled and concatenated, the layers ``layers="all"`` ranks, and what an
exception raised inside the model's own forward is reported as (an input it rejects, or its own failure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pedrank._engine.validation import PedrankError, PedrankValueError
from pedrank.workflow.select.common import require_torch
from pedrank.workflow.select.models import LoadedModel

__all__ = ["POOLINGS", "SHAPE_WORDS", "ModelFailure", "ForwardRaised", "pool_output", "all_layers", "make_wrapper",
           "hidden_count", "sample_shape", "forward_error"]

#: How token/patch outputs (N, T, D) and maps (N, C, H, W) become one vector per sample.
POOLINGS = ("mean", "cls", "max", "flatten")


#: Words of the errors torch (and models' own checks) give for an input they do not take: a forward that fails
#: on the first batch with one of these is reported as an input-shape mismatch, anything else as the model's own
#: failure. A heuristic: a model's own message that happens to use one of these words is reported as a mismatch.
SHAPE_WORDS = re.compile(r"shape|size|mat1|mat2|channel|dimension|\bdims?\b|\b\d-?d\b|must match", re.IGNORECASE)


class ModelFailure(PedrankError, RuntimeError):
    """A model's own forward raised (not an input it rejects): the message holds the model's exception."""


class ForwardRaised(PedrankError):
    """Carries an exception raised inside the model's own forward out of :func:`pedrank.extract_features`,
    apart from the errors of reading the data or of pedrank's own code around the call.

    Attributes
    ----------
    error : Exception
        What the model raised.
    shape : tuple of int or None
        One sample's shape as a batch of one, (1, ...) (:func:`sample_shape`).
    done : int
        The batches the model took before.
    """

    def __init__(self, error: Exception, shape: tuple[int, ...] | None, done: int):
        super().__init__(str(error))
        self.error, self.shape, self.done = error, shape, done


def pool_output(value: Any, pooling: str, mask: Any = None) -> Any:
    """(N, C, H, W) -> (N, C) and (N, T, D) -> (N, D) by ``pooling``; (N, D) as is; others flattened.

    Parameters
    ----------
    value : torch.Tensor (N, ...)
        A layer's output.
    pooling : {"mean", "cls", "max", "flatten"}
        "mean" over positions (mask-aware for (N, T, D) with ``mask``), "cls" the first token (the mean for maps),
        "max" over positions, "flatten" everything after N.
    mask : torch.Tensor (N, T), optional
        The attention mask of a text batch: padding left out of the mean.

    Returns
    -------
    torch.Tensor (N, D)
    """
    if pooling == "flatten" or value.ndim == 2:
        return value.reshape(value.shape[0], -1)
    if value.ndim == 4:
        if pooling == "max":
            return value.amax(dim=(2, 3))
        return value.mean(dim=(2, 3))  # "cls" has no meaning for maps: mean
    if value.ndim == 3:
        if pooling == "cls":
            return value[:, 0]
        if pooling == "max":
            return value.amax(dim=1)
        if mask is not None and mask.shape[:2] == value.shape[:2]:
            weights = mask.to(value.dtype).unsqueeze(-1)
            return (value * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        return value.mean(dim=1)
    return value.reshape(value.shape[0], -1)


def all_layers(module: Any) -> list[str]:
    """The layers that ``layers="all"`` ranks: a timm model's stages (its ``feature_info``); otherwise the
    children of the model's longest block sequence (a ``Sequential``/``ModuleList``, or the model itself), those
    with parameters, the last ``nn.Linear`` head excepted.

    Parameters
    ----------
    module : torch.nn.Module
        The model.

    Returns
    -------
    list of str
        The submodules' dotted names, in the model's order.
    """
    torch = require_torch()
    from pedrank.workflow.extract import last_linear

    # A timm model names its stages itself (what its features_only mode returns): use those.
    info = getattr(module, "feature_info", None)
    if isinstance(info, list) and info and all(isinstance(entry, Mapping) for entry in info):
        modules = dict(module.named_modules())
        stages = [entry.get("module") for entry in info]
        if all(isinstance(stage, str) and stage in modules for stage in stages):
            return list(dict.fromkeys(stages))
    containers = [("", module)] + [(name, m) for name, m in module.named_modules()
                                   if name and isinstance(m, (torch.nn.Sequential, torch.nn.ModuleList))]
    best_name, best = max(containers, key=lambda item: len(list(item[1].children())))
    names = []
    children = list(best.named_children())
    for index, (child_name, child) in enumerate(children):
        if not any(True for _ in child.parameters()):
            continue
        if index == len(children) - 1 and child is last_linear(module):
            continue  # the classifier head
        names.append(f"{best_name}.{child_name}" if best_name else child_name)
    return names


def make_wrapper(loaded: LoadedModel, layers: list[Any], pooling: str, device: Any, dtype: Any) -> Any:
    """An nn.Module that runs ``loaded`` once per batch and returns every requested layer, pooled and
    concatenated, through its ``out`` (an ``nn.Identity``): what :func:`pedrank.extract_features` reads.

    Parameters
    ----------
    loaded : LoadedModel
        The model.
    layers : list
        None (the input of the last ``nn.Linear`` the forward pass runs; the last hidden state of an ``hf:``
        model), submodule names,
        or hidden-state indices of ``hf:`` models.
    pooling : str
        One of :data:`POOLINGS` (:func:`pool_output`).
    device : str or torch.device
        Where the batches go.
    dtype : torch.dtype or None
        The model and its floating-point inputs cast to it (None: as they are).

    Returns
    -------
    torch.nn.Module
        Its forward returns (N, D_1 + ... + D_L), float32; after a batch, its ``widths`` holds each layer's D.
        An exception raised inside the model's own code comes out as :class:`ForwardRaised`.
    """
    torch = require_torch()
    from pedrank.workflow.extract import last_linear_run, resolve_layer

    module_base: Any = torch.nn.Module

    class Wrapper(module_base):
        def __init__(self) -> None:
            super().__init__()
            self.model = loaded.module
            self.out = torch.nn.Identity()
            self.widths: list[int] = []
            self.done = 0  # batches the model took: a failure after the first is not about the input's shape
            self.head: Any = None  # the last nn.Linear the forward pass runs, found on the first batch
            self.head_known = False

        def _run_model(self, inputs: Any, function: Any, /, *args: Any, **kwargs: Any) -> Any:
            """``function(*args, **kwargs)``, the model's own code, with whatever it raises marked as raised
            there (see :func:`forward_error`)."""
            try:
                output = function(*args, **kwargs)
            except Exception as exc:
                raise ForwardRaised(exc, sample_shape(inputs), self.done) from exc
            self.done += 1
            return output

        def _to_device(self, inputs: Any) -> Any:
            if isinstance(inputs, Mapping):
                return {k: self._to_device(v) for k, v in inputs.items()}
            if isinstance(inputs, torch.Tensor):
                inputs = inputs.to(device)
                if inputs.is_floating_point() and dtype is not None:
                    inputs = inputs.to(dtype)
                return inputs
            return inputs

        def forward(self, inputs: Any) -> Any:
            inputs = self._to_device(inputs)
            if loaded.kind == "sentence-transformers":
                return self._forward_st(inputs)
            if loaded.kind == "hf":
                return self._forward_hf(inputs)
            return self._forward_torch(inputs)

        def _finish(self, pooled: list[Any]) -> Any:
            self.widths = [int(p.shape[1]) for p in pooled]
            return self.out(torch.cat([p.float() for p in pooled], dim=1))

        def _forward_torch(self, inputs: Any) -> Any:
            captured: dict[int, Any] = {}
            handles = []
            channels_last = getattr(self.model, "output_fmt", None) == "NHWC"
            # The head (layer None) is the last nn.Linear the forward pass runs, not the last declared; the first
            # batch's forward pass finds it (last_linear_run) while it computes the batch, so no extra pass.
            find_head = None in layers and not self.head_known and any(
                isinstance(m, torch.nn.Linear) for m in self.model.modules())

            def capture(index: int, side: str) -> Any:
                def hook(_m: Any, args: Any, output: Any) -> None:
                    value = args[0] if side == "input" else output
                    if isinstance(value, (tuple, list)):
                        value = value[0]
                    if side == "output" and channels_last and value.ndim == 4:
                        value = value.permute(0, 3, 1, 2)  # timm's NHWC stages (Swin, MambaOut) -> NCHW
                    captured[index] = value
                return hook

            for index, layer in enumerate(layers):
                if layer is None:
                    if find_head:
                        continue
                    target, side = self.head, "input"
                    if target is None:  # a feature extractor without a head: its output
                        target, side = self.model, "output"
                else:
                    target, side = resolve_layer(self.model, layer), "output"
                handles.append(target.register_forward_hook(capture(index, side)))
            try:
                if find_head:
                    head_hooks = [capture(i, "input") for i, layer in enumerate(layers) if layer is None]

                    def take_head(module: Any, args: Any, output: Any) -> None:
                        for hook in head_hooks:
                            hook(module, args, output)

                    self.head = last_linear_run(self.model, lambda x: self._run_model(x, self.model, x), inputs,
                                                take_head)
                else:
                    self._run_model(inputs, self.model, inputs)
            finally:
                for handle in handles:
                    handle.remove()
            self.head_known = True
            missing = [layers[i] for i in range(len(layers)) if i not in captured]
            if missing:
                raise PedrankValueError(f"layer: the forward pass never reached {missing}")
            return self._finish([pool_output(captured[i], pooling) for i in range(len(layers))])

        def _forward_hf(self, inputs: Any) -> Any:
            output = self._run_model(inputs, self.model, **inputs, output_hidden_states=True)
            hidden = output.hidden_states
            mask = inputs.get("attention_mask")
            pooled = []
            for layer in layers:
                if layer is None:
                    value = getattr(output, "last_hidden_state", None)
                    if value is None:
                        value = hidden[-1]
                else:
                    index = int(layer)
                    if not -len(hidden) <= index < len(hidden):
                        raise PedrankValueError(f"layer: found {layer}; expected a hidden-state index in "
                                                f"[{-len(hidden)}, {len(hidden) - 1}]")
                    value = hidden[index]
                pooled.append(pool_output(value, pooling, mask))
            return self._finish(pooled)

        def _forward_st(self, inputs: Any) -> Any:
            if layers == [None]:
                return self._finish([self._run_model(inputs, self.model, inputs)["sentence_embedding"]])
            transformer = self.model[0].auto_model
            model_inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            output = self._run_model(inputs, transformer, **model_inputs, output_hidden_states=True)
            hidden = output.hidden_states
            return self._finish([pool_output(hidden[-1 if layer is None else int(layer)], pooling,
                                       inputs.get("attention_mask")) for layer in layers])

    wrapper = Wrapper()
    if dtype is not None:
        wrapper.model.to(dtype)
    return wrapper


def hidden_count(loaded: LoadedModel) -> int:
    """The hidden states of an ``hf:`` (or sentence-transformers) model: ``layers="all"`` ranks each.

    Parameters
    ----------
    loaded : LoadedModel
        A transformers or sentence-transformers model.

    Returns
    -------
    int
        The config's ``num_hidden_layers`` + 1 (the embeddings' output, then each block's).

    Raises
    ------
    PedrankValueError
        The config does not say.
    """
    module = loaded.module[0].auto_model if loaded.kind == "sentence-transformers" else loaded.module
    config = module.config
    count = getattr(config, "num_hidden_layers", None)
    if count is None:
        raise PedrankValueError("layers: 'all' needs the model's number of hidden layers; its config has none")
    return int(count) + 1  # the embeddings' output, then each block's


def sample_shape(inputs: Any) -> tuple[int, ...] | None:
    """The shape of one sample of a batch, as a batch of one: (1, C, H, W), (1, T), ... (None if unknown).

    Parameters
    ----------
    inputs : torch.Tensor (N, ...) or mapping
        A batch (a mapping's first value is read).

    Returns
    -------
    tuple of int or None
    """
    if isinstance(inputs, Mapping):
        inputs = next(iter(inputs.values()), None)
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return (1, *(int(size) for size in tuple(shape)[1:]))


def forward_error(raised: ForwardRaised, batches: int) -> PedrankError:
    """What to report for an exception raised inside a model's forward.

    An input-shape mismatch (:class:`PedrankValueError`, "incompatible input of shape ...") only when the model
    took no batch before (every batch has the same sample shape) and the exception is a RuntimeError, ValueError
    or IndexError whose message speaks of shapes, sizes, channels or dimensions (:data:`SHAPE_WORDS`), as
    torch's layers do; otherwise the model's own failure (out of memory included). Both carry the model's
    exception type and message.

    Parameters
    ----------
    raised : ForwardRaised
        The exception, the sample shape and the batches taken before.
    batches : int
        The number of batches of the data.

    Returns
    -------
    PedrankError
        A :class:`PedrankValueError` for an input the model rejects, else a :class:`ModelFailure`.
    """
    error = raised.error
    lines = str(error).strip().splitlines()
    text = lines[0][:400] if lines else ""
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    out_of_memory = "OutOfMemory" in type(error).__name__ or "out of memory" in text.lower()
    if raised.done == 0 and isinstance(error, (RuntimeError, ValueError, IndexError)) \
            and not isinstance(error, PedrankError) and not out_of_memory and SHAPE_WORDS.search(text):
        of_shape = f" of shape {raised.shape}" if raised.shape is not None else ""
        return PedrankValueError(f"incompatible input{of_shape}: the model's forward rejects it ({detail})")
    where = "on its first batch" if raised.done == 0 else \
        f"on batch {raised.done + 1} of {batches}, after taking {raised.done}"
    return ModelFailure(f"the model failed inside its own forward: {detail} ({where})")
