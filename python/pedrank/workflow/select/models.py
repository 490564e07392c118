"""The models of :func:`pedrank.select`'s pool, loaded per library: ``timm:NAME`` (timm's architecture and data
config), ``torchvision:NAME`` (the DEFAULT weights' transforms), ``hf:NAME_OR_PATH`` (transformers ``AutoModel``
with its image processor or tokenizer; sentence-transformers folders), and local ones: an ``nn.Module``, a
``MODULE:CALLABLE`` or ``path/file.py:CALLABLE``, a checkpoint file, or ``ARCH@CHECKPOINT``.

Each loader returns a :class:`LoadedModel`: the module, how raw items become its inputs, and a description of that
preprocessing (part of the feature cache's key). torch, timm, torchvision and transformers are imported only here,
and only when a model of theirs is asked for.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pedrank._engine.validation import MissingDependencyError, PedrankValueError
from pedrank.workflow.select.common import describe, file_digest, require_torch, safe_name

__all__ = ["CHECKPOINT_SUFFIXES", "LoadedModel", "load_model", "spec_form", "model_name", "load_callable",
           "default_transform"]

#: The suffixes of checkpoint files (a saved module, or a state_dict after ``ARCH@``).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")


@dataclass
class LoadedModel:
    """A model ready to run: the module, how to turn raw items into its inputs, and a description of that.

    Attributes
    ----------
    module : torch.nn.Module
        The model (a ``SentenceTransformer`` for ``kind="sentence-transformers"``).
    kind : {"torch", "hf", "sentence-transformers"}
        How it is called: on a tensor (N, C, H, W) or (N, ...), on a transformers batch dict, or on tokenized texts.
    transform : callable or None
        PIL image -> tensor (3, H, W) (vision models without a processor).
    processor : object or None
        A transformers image processor or tokenizer.
    preprocessing : str
        A description of the preprocessing (and of a local module's weights): part of the cache key.
    wants_images : bool
        False for text models.
    """

    module: Any
    kind: str  # "torch", "hf", "sentence-transformers"
    transform: Any = None  # PIL image -> tensor (vision)
    processor: Any = None  # hf image processor or tokenizer
    preprocessing: str = "none"
    wants_images: bool = True


def load_model(spec: Any, *, pretrained: bool = True, image_size: int | None = None) -> LoadedModel:
    """Load one model of :func:`select`'s pool.

    Parameters
    ----------
    spec : str, path, torch.nn.Module or callable
        ``"timm:NAME"``, ``"torchvision:NAME"``, ``"hf:NAME_OR_PATH"``, ``"MODULE:CALLABLE"``,
        ``"path/file.py:CALLABLE"``, a checkpoint file (a whole saved module), ``"ARCH@CHECKPOINT"`` (ARCH built
        without pretrained weights, then CHECKPOINT's state_dict loaded), an ``nn.Module``, or a zero-argument
        callable returning one (see :func:`select`).
    pretrained : bool, default True
        Hub weights for ``timm:``/``torchvision:`` names (False: the random initialisation).
    image_size : int, optional
        Images resized to ``image_size`` x ``image_size`` (overrides timm's/torchvision's input size).

    Returns
    -------
    LoadedModel
        The module with its preprocessing.

    Raises
    ------
    PedrankValueError
        An unknown form or name, weights that cannot be loaded or do not fit the architecture, a checkpoint that
        cannot be read.
    MissingDependencyError
        torch, or the library the spec names (timm, torchvision, transformers, sentence-transformers), is not
        installed.
    """
    return _load(spec, pretrained, image_size, own_weights=True)


def spec_form(spec: Any) -> str:
    """How :func:`load_model` reads ``spec``, without loading anything.

    Parameters
    ----------
    spec : object
        A model's spec (:func:`load_model`).

    Returns
    -------
    str
        ``"object"`` (an ``nn.Module`` or a callable, not text), ``"arch@checkpoint"``, ``"timm"``,
        ``"torchvision"``, ``"hf"``, ``"checkpoint"`` (a saved module's file), ``"callable"`` (``MODULE:CALLABLE``
        or ``path/file.py:CALLABLE``), or ``"unknown"``.
    """
    if not isinstance(spec, (str, os.PathLike)):
        return "object"
    text = str(spec)
    architecture, at, weights = text.rpartition("@")
    if at and architecture and (weights.endswith(CHECKPOINT_SUFFIXES) or Path(weights).is_file()):
        return "arch@checkpoint"
    prefix, colon, _ = text.partition(":")
    if colon and prefix in ("timm", "torchvision", "hf"):
        return prefix
    if text.endswith(CHECKPOINT_SUFFIXES) or (Path(text).is_file() and ":" not in text):
        return "checkpoint"
    return "callable" if colon else "unknown"


def _load(spec: Any, pretrained: bool, image_size: int | None, own_weights: bool) -> LoadedModel:
    """:func:`load_model`; ``own_weights=False`` for the architecture of ARCH@CHECKPOINT, whose weights (replaced by
    the checkpoint's, which are fingerprinted by the file's digest) are not hashed."""
    torch = require_torch()
    form = spec_form(spec)
    if form == "object":
        if not (isinstance(spec, torch.nn.Module) or callable(spec)):
            raise PedrankValueError(f"model: expected a name (timm:NAME, torchvision:NAME, hf:NAME, MODULE:CALLABLE, "
                                    f"a checkpoint file) or a torch module, found {type(spec).__name__}")
        module = _as_module(spec, getattr(spec, "__name__", type(spec).__name__))
        return LoadedModel(module, "torch", preprocessing=f"raw:size={image_size}|weights:{_weights_digest(module)}")
    text = str(spec)
    if form == "arch@checkpoint":
        architecture, _, weights = text.rpartition("@")
        loaded = _load(architecture, False, image_size, own_weights=False)
        state = _state_dict_of(_torch_load(Path(weights)), Path(weights))
        try:
            loaded.module.load_state_dict(state)
        except RuntimeError as exc:
            raise PedrankValueError(f"model {text!r}: the weights in {weights!r} do not fit {architecture!r} "
                                    f"({str(exc).splitlines()[0]})") from exc
        loaded.preprocessing += f"|weights:{file_digest(Path(weights))}"
        return loaded
    name = text.partition(":")[2]
    if form == "timm":
        return _timm_model(name, pretrained, image_size)
    if form == "torchvision":
        return _torchvision_model(name, pretrained, image_size)
    if form == "hf":
        return _hf_model(name, image_size)
    if form == "checkpoint":
        checkpoint = _torch_load(Path(text))
        if isinstance(checkpoint, torch.nn.Module):
            return LoadedModel(checkpoint, "torch", preprocessing=f"raw:size={image_size}")
        raise PedrankValueError(f"model: the checkpoint {text!r} holds a {type(checkpoint).__name__}, not a saved "
                                "nn.Module; give its architecture too: ARCH@CHECKPOINT (e.g. timm:resnet18@w.pth or "
                                "mymodels:Net@w.pth)")
    if form == "callable":
        module = _as_module(load_callable(text), text)
        # Whatever the callable builds or loads (weights it reads from a file of its own, a seed in the code) is
        # in its state_dict; an importable module's code is its file (a file.py's digest is in the key already).
        description = f"raw:size={image_size}"
        where = text.rpartition(":")[0]
        source = getattr(sys.modules.get(where), "__file__", None) if not where.endswith(".py") else None
        if source and Path(source).is_file():
            description += f"|code:{file_digest(Path(source))}"
        if own_weights:
            description += f"|weights:{_weights_digest(module)}"
        return LoadedModel(module, "torch", preprocessing=description)
    raise PedrankValueError(f"model: {text!r} is not a known form; expected timm:NAME, torchvision:NAME, "
                            "hf:NAME_OR_PATH, MODULE:CALLABLE, path/to/file.py:CALLABLE, a checkpoint file or "
                            "ARCH@CHECKPOINT")


def model_name(spec: Any, index: int) -> str:
    """The row's name of a model given without one (a sequence of specs, not a mapping).

    Parameters
    ----------
    spec : str, path, torch.nn.Module or callable
        The model's spec, as :func:`load_model` takes it.
    index : int
        Its position in the pool (numbers anonymous containers: ``Sequential0``).

    Returns
    -------
    str
        ``timm-NAME``, ``torchvision-NAME``, ``hf-FOLDER``, ``ARCH+CHECKPOINT_STEM``, a checkpoint's stem, a
        callable's name, or a module's class name.
    """
    if isinstance(spec, (str, os.PathLike)):
        text = str(spec)
        architecture, at, weights = text.rpartition("@")
        if at and architecture:
            return f"{model_name(architecture, index)}+{Path(weights).stem}"
        prefix, colon, name = text.partition(":")
        if colon and prefix in ("timm", "torchvision", "hf"):
            return f"{prefix}-{Path(name).name if prefix == 'hf' else name}"
        if text.endswith(CHECKPOINT_SUFFIXES):
            return Path(text).stem
        return text.rpartition(":")[2] or text
    name = getattr(spec, "__name__", None) or type(spec).__name__
    return f"{name}{index}" if name in ("Sequential", "Module", "ModuleList") else name


def load_callable(spec: str, *, name: str = "model") -> Any:
    """``module:attribute`` or ``path/to/file.py:attribute`` -> the object (modules imported from the current
    directory too).

    Parameters
    ----------
    spec : str
        ``MODULE:ATTRIBUTE`` or ``path/to/file.py:ATTRIBUTE``.
    name : str, default "model"
        The argument or option the spec came from: the errors name it.

    Returns
    -------
    object
        The attribute.

    Raises
    ------
    PedrankValueError
        Not of that form, no such file or module, or no such attribute.
    """
    import importlib
    import importlib.util

    where, sep, attribute = spec.rpartition(":")
    if not sep or not where or not attribute:
        raise PedrankValueError(f"{name}: found {spec!r}; expected MODULE:CALLABLE or path/to/file.py:CALLABLE")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise PedrankValueError(f"{name}: found no file {where!r}; expected path/to/file.py:CALLABLE")
        module_spec = importlib.util.spec_from_file_location(f"_pedrank_models_{safe_name(path.stem)}", path)
        if module_spec is None or module_spec.loader is None:
            raise PedrankValueError(f"{name}: cannot load {where!r}; expected a Python file")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise PedrankValueError(f"{name}: cannot import module {where!r} ({exc}); "
                                    "expected MODULE:CALLABLE") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise PedrankValueError(f"{name}: module {where!r} has no attribute {attribute!r}") from None


def _as_module(value: Any, spec: str) -> Any:
    torch = require_torch()
    if isinstance(value, torch.nn.Module):
        return value
    if callable(value):
        value = value()
        if isinstance(value, torch.nn.Module):
            return value
    raise PedrankValueError(f"model {spec!r}: expected a torch.nn.Module (or a callable returning one), found "
                            f"{type(value).__name__}")


def _torch_load(path: Path) -> Any:
    torch = require_torch()
    if not path.is_file():
        raise PedrankValueError(f"model: found no checkpoint file {str(path)!r}; expected a file saved with torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which and why
        raise PedrankValueError(f"model: cannot read the checkpoint {str(path)!r} "
                                f"({type(exc).__name__}: {exc})") from exc


def _state_dict_of(checkpoint: Any, path: Path) -> dict[str, Any]:
    torch = require_torch()
    if isinstance(checkpoint, torch.nn.Module):
        return checkpoint.state_dict()
    if isinstance(checkpoint, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            inner = checkpoint.get(key)
            if isinstance(inner, Mapping):
                checkpoint = inner
                break
        state = {str(k).removeprefix("module."): v for k, v in checkpoint.items()}
        if all(isinstance(v, torch.Tensor) for v in state.values()):
            return state
    raise PedrankValueError(f"model: the checkpoint {str(path)!r} holds a {type(checkpoint).__name__}; expected a "
                            "state_dict (or a dict with 'state_dict') or a saved nn.Module")


def _timm_model(name: str, pretrained: bool, image_size: int | None) -> LoadedModel:
    try:
        import timm
        import timm.data
    except ImportError as exc:
        raise MissingDependencyError(f"model 'timm:{name}': timm is not installed (pip install timm)") from exc
    if not timm.is_model(name):
        close = timm.list_models(f"*{name[:6]}*")[:8]
        raise PedrankValueError(f"model 'timm:{name}': timm has no architecture {name!r}"
                                + (f"; close names: {', '.join(close)}" if close else ""))
    try:
        model = timm.create_model(name, pretrained=pretrained)
    except Exception as exc:  # the hub is unreachable, the weights are missing
        raise PedrankValueError(f"model 'timm:{name}': cannot load its pretrained weights "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                                "offline, give a local checkpoint: timm:NAME@weights.pth") from exc
    overrides = {"input_size": (3, image_size, image_size)} if image_size else {}
    config = timm.data.resolve_data_config(overrides, model=model)
    transform = timm.data.create_transform(**config)
    return LoadedModel(model, "torch", transform=transform, preprocessing=f"timm:{sorted(config.items())}")


def _torchvision_model(name: str, pretrained: bool, image_size: int | None) -> LoadedModel:
    try:
        import torchvision
    except ImportError as exc:
        raise MissingDependencyError(f"model 'torchvision:{name}': torchvision is not installed "
                                     "(pip install torchvision, matching your torch)") from exc
    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError as exc:
        raise PedrankValueError(f"model 'torchvision:{name}': torchvision has no model {name!r}") from exc
    try:
        # The DEFAULT weights' entry (metadata only: nothing is downloaded until the builder gets it) holds the
        # model's own transforms, used with pretrained=False too (a checkpoint fine-tuned from those weights).
        default = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):  # an architecture without published weights
        default = None
    weights = default if pretrained else None
    try:
        model = builder(weights=weights)
    except Exception as exc:
        raise PedrankValueError(f"model 'torchvision:{name}': cannot load its weights ({type(exc).__name__}: {exc}); "
                                "offline, give a local checkpoint: torchvision:NAME@weights.pth") from exc
    if default is not None:
        transform = default.transforms()
    else:
        from torchvision import transforms as T

        size = image_size or 224
        transform = T.Compose([T.Resize(int(size * 256 / 224)), T.CenterCrop(size), T.ToTensor(),
                               T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    if image_size and default is not None:
        from torchvision import transforms as T

        interpolation = getattr(transform, "interpolation", T.InterpolationMode.BILINEAR)  # the weights' own
        transform = T.Compose([T.Resize(image_size, interpolation=interpolation), T.CenterCrop(image_size),
                               T.ToTensor(), T.Normalize(list(transform.mean), list(transform.std))])
    return LoadedModel(model, "torch", transform=transform, preprocessing=f"torchvision:{describe(transform)}")


def _hf_model(name: str, image_size: int | None) -> LoadedModel:
    path = Path(name)
    if (path / "modules.json").is_file():
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(f"model 'hf:{name}': a sentence-transformers model; pip install "
                                         "sentence-transformers") from exc
        model = SentenceTransformer(str(path), device="cpu")
        return LoadedModel(model, "sentence-transformers", preprocessing=f"st:max_seq_length={model.max_seq_length}",
                       wants_images=False)
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(f"model 'hf:{name}': transformers is not installed (pip install transformers)") \
            from exc
    try:
        config = transformers.AutoConfig.from_pretrained(name)
        model = transformers.AutoModel.from_pretrained(name)
    except Exception as exc:  # unknown name, no hub, missing weight file
        raise PedrankValueError(f"model 'hf:{name}': cannot load it ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    processor: Any = None
    vision = hasattr(config, "image_size") or hasattr(config, "num_channels")
    if vision:
        try:
            processor = transformers.AutoImageProcessor.from_pretrained(name)
        except Exception:  # no preprocessor_config.json: resize + normalise to the config's size
            processor = None
        size = image_size or int(getattr(config, "image_size", 224) or 224)
        description = f"hf-image:{processor.to_json_string() if processor is not None else size}"
        return LoadedModel(model, "hf", processor=processor, preprocessing=description,
                       transform=None if processor is not None else default_transform(size))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise PedrankValueError(f"model 'hf:{name}': it has no tokenizer ({type(exc).__name__}: {exc})") from exc
    return LoadedModel(model, "hf", processor=tokenizer,
                   preprocessing=f"hf-text:{type(tokenizer).__name__}:{tokenizer.model_max_length}",
                   wants_images=False)


def _weights_digest(module: Any) -> str:
    """A hash of a module's parameters and buffers (its state_dict): the cache entry of a model whose weights no file
    of its spec fingerprints (an ``nn.Module``, a callable, ``MODULE:CALLABLE``) follows its weights."""
    torch = require_torch()
    digest = hashlib.sha1()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        if not isinstance(value, torch.Tensor):  # a module's extra state (get_extra_state)
            digest.update(describe(value).encode())
            continue
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().double().numpy().tobytes())
    return digest.hexdigest()[:16]


def default_transform(size: int | None) -> Any:
    """PIL image -> float tensor (3, H, W) in [0, 1], resized to ``size`` x ``size`` when given.

    Parameters
    ----------
    size : int or None
        The side of the square images (None: as they are).

    Returns
    -------
    callable
        The transform; its ``__qualname__`` (part of the cache key) names the size.
    """
    torch = require_torch()

    def transform(image: Any) -> Any:
        image = image.convert("RGB")
        if size:
            image = image.resize((size, size))
        array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    transform.__qualname__ = f"to_tensor(size={size})"
    return transform
