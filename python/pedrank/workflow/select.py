"""From models and data to a ranked pool in one call: :func:`select` (and ``pedrank select``).

Each model of the pool is loaded (``timm:NAME``, ``torchvision:NAME``, ``hf:NAME_OR_PATH``, a local torch module,
a ``module:callable``, a checkpoint file, or ``ARCH@CHECKPOINT``), run over the data with its own preprocessing
through :func:`pedrank.extract_features`, and its features are cached on disk in the authors' layout
(``{model}_{dataset}_feature.npy`` beside ``_label.npy``, with a ``_key.json`` sidecar holding what they were
computed from: model, dataset fingerprint, layer and preprocessing). A second run reads the cache; an interrupted
run resumes at the first model without a complete cache entry. Then every model is scored (any metric
:func:`pedrank.rank` takes, with or without PED) and the pool is ranked. A model that cannot be loaded or run
gets a row with the reason; the others are ranked. An image file that cannot be read is bad input, the same for
every model: it raises :class:`BadImageError` naming the file, or with ``bad_images="skip"`` it is left out
(its label too) for every model, with a :class:`BadImageWarning` naming it.

One model is one task: pass ``executor=`` (any ``concurrent.futures.Executor``) or ``client=`` (a
``dask.distributed.Client``) and each task extracts, caches and scores its model where it runs, returning only
its row. torch, timm, torchvision, transformers and dask are imported only when needed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import secrets
import sys
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from pedrank._engine.progress import progress as _progress
from pedrank._engine.validation import MissingDependencyError, PedrankError, PedrankValueError
from pedrank.workflow.entry import RankRecord
from pedrank.workflow.rank import RankTable

__all__ = ["select", "SelectRecord", "SelectTable", "load_model", "load_data", "CACHE_KEY_SUFFIX", "BadImageError",
           "BadImageWarning", "BAD_IMAGES"]

PathLike = Union[str, "os.PathLike[str]"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")
CACHE_KEY_SUFFIX = "_key.json"
POOLINGS = ("mean", "cls", "max", "flatten")
CACHE_VERSION = 1
#: What :func:`select` does with an image file it cannot read: raise :class:`BadImageError`, or skip the file.
BAD_IMAGES = ("raise", "skip")
#: Words of the errors torch (and models' own checks) give for an input they do not take: a forward that fails
#: on the first batch with one of these is reported as an input-shape mismatch, anything else as the model's own
#: failure. A heuristic: a model's own message that happens to use one of these words is reported as a mismatch.
_SHAPE_WORDS = re.compile(r"shape|size|mat1|mat2|channel|dimension|\bdims?\b|\b\d-?d\b|must match", re.IGNORECASE)


class BadImageError(PedrankValueError):
    """An image file of the data cannot be read (``select(..., bad_images="raise")``, the default).

    Attributes
    ----------
    path : str
        The file.
    reason : str
        What reading it raised.
    """

    def __init__(self, message: str, path: str = "", reason: str = ""):
        super().__init__(message)
        self.path = path
        self.reason = reason


class BadImageWarning(UserWarning):
    """Image files left out by ``select(..., bad_images="skip")``: the message names them and says how many."""


class _ModelFailure(PedrankError, RuntimeError):
    """A model's own forward raised (not an input it rejects): the message holds the model's exception."""


class _ForwardRaised(PedrankError):
    """Carries an exception raised inside the model's own forward out of :func:`pedrank.extract_features`,
    apart from the errors of reading the data or of pedrank's own code around the call."""

    def __init__(self, error: Exception, shape: tuple[int, ...] | None, done: int):
        super().__init__(str(error))
        self.error, self.shape, self.done = error, shape, done


# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class SelectRecord(RankRecord):
    """A :class:`pedrank.workflow.rank.RankRecord` with the extraction's bookkeeping.

    Attributes
    ----------
    extract_seconds : float
        Wall time of the feature extraction (0 when the features came from the cache).
    cached : bool
        The features were read from the cache.
    n_features : int or None
    error : str or None
        Why the model has no score (its score is NaN); None when it was scored.
    """

    extract_seconds: float = 0.0
    cached: bool = False
    n_features: int | None = None
    error: str | None = None


class SelectTable(RankTable):
    """The ranking written by :func:`select`: a :class:`pedrank.RankTable` of :class:`SelectRecord`, best first
    (models that failed last, with their reason).

    Attributes
    ----------
    skipped : list of str
        The image files left out (``bad_images="skip"``), relative to the data folder; empty otherwise.
    """

    def __init__(self, records=(), *, skipped: Sequence[str] = (), **options: Any):
        super().__init__(records, **options)
        self.skipped = list(skipped)

    @property
    def errors(self) -> dict[str, str]:
        """``{model: reason}`` of the models without a score."""
        return {r.model: r.error for r in self if getattr(r, "error", None)}

    def _csv_columns(self) -> list[str]:
        columns = ["rank", "model", "score"]
        if self.n_resamples is not None:
            columns += ["p_best", "rank_low", "rank_high", "score_low", "score_high"]
        columns += ["seconds", "ped_steps", "metric", "extract_seconds", "cached", "n_features", "error"]
        if self.n_resamples is not None:
            columns += ["resamples", "top1_stability", "failed_resamples"]
        if self.dataset is not None:
            columns.append("dataset")
        return columns

    def to_string(self) -> str:
        lines = self._table_lines()
        extra = ["extract_s  cached"] + [
            f"{getattr(r, 'extract_seconds', 0.0):9.3f}  {'yes' if getattr(r, 'cached', False) else 'no':>6}"
            for r in self
        ]
        width = max(len(line) for line in lines[1:])
        body = [line.ljust(width) + "  " + more for line, more in zip(lines[1:], extra)]
        out = [lines[0], *body, *self._confidence_lines()]
        for name, reason in self.errors.items():
            out.append(f"error: {name}: {reason}")
        return "\n".join(out)


# ------------------------------------------------------------------------------------------ helpers


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("select needs torch to run models (pip install torch)") from exc
    return torch


def _safe(text: str) -> str:
    """A file-name-safe model name (underscores kept: the authors' layout splits on the last one)."""
    return re.sub(r"[^A-Za-z0-9_.@+-]+", "-", text).strip("-") or "model"


def _safe_dataset(text: str) -> str:
    """The dataset part of ``{model}_{dataset}_feature.npy``: no underscore (the layout splits on the last one)."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "data"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha1()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        if size <= 64 << 20:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:  # large files: head and tail (and the size)
            digest.update(handle.read(8 << 20))
            handle.seek(-(8 << 20), os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()


def _describe(value: Any) -> str:
    """A stable text for a preprocessing object (its repr, without memory addresses)."""
    text = repr(value)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    from pedrank._engine.validation import PedrankError

    message = first if isinstance(error, PedrankError) else f"{type(error).__name__}: {first}"
    return message[:500]


# ------------------------------------------------------------------------------------------ data


class Data:
    """The target data of :func:`select`: images (PIL or arrays), vectors, or texts, with labels.

    Attributes
    ----------
    kind : {"images", "arrays", "texts"}
        "images": a list of image files (opened lazily); "arrays": an array (n, ...) of images or vectors;
        "texts": a list of str.
    labels : ndarray (n,)
    name : str
        The dataset's name in the cache's file names.
    fingerprint : str
        A hash of the data's content (file names, sizes and bytes), part of the cache key.
    root : Path or None
        The image folder the files are under (their names in messages and in the cache are relative to it).
    """

    def __init__(self, kind: str, items: Any, labels: np.ndarray, name: str, fingerprint: str,
                 image_like: bool = False, root: Path | None = None):
        self.kind = kind
        self.items = items
        self.labels = np.asarray(labels)
        self.name = name
        self.fingerprint = fingerprint
        self.image_like = image_like
        self.root = root

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int) -> Data:
        """The first ``n`` samples (the fingerprint notes the cut)."""
        if n >= len(self):
            return self
        return Data(self.kind, self.items[:n], self.labels[:n], self.name, f"{self.fingerprint}:first{n}",
                    self.image_like, self.root)

    def item_name(self, item: Any, index: int) -> str:
        """A sample's name in messages and in the cache: its file relative to :attr:`root` (machines that
        mount the data elsewhere agree on it), else its path, else its position."""
        if not isinstance(item, (str, os.PathLike)):
            return f"item {index}"
        if self.root is not None:
            try:
                return Path(item).relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(item)

    def file_path(self, name: str) -> str:
        """The inverse of :meth:`item_name` for files: where the file is on this machine."""
        return str(self.root / name) if self.root is not None and not Path(name).is_absolute() else name


def _folder_data(path: Path, name: str) -> Data:
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise PedrankValueError(f"data: the folder {str(path)!r} has no class sub-folders; expected "
                                "DATA/<class>/<image files>")
    files, labels = [], []
    digest = hashlib.sha1()
    for index, cls in enumerate(classes):
        for file in sorted((path / cls).rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                files.append(file)
                labels.append(index)
                stat = file.stat()
                digest.update(f"{cls}/{file.relative_to(path / cls)}:{stat.st_size}:{int(stat.st_mtime)}\n".encode())
    if not files:
        raise PedrankValueError(f"data: no image files ({', '.join(IMAGE_SUFFIXES)}) under the class folders of "
                                f"{str(path)!r}")
    return Data("images", files, np.asarray(labels, dtype=np.int64), name, digest.hexdigest(), root=path)


def _npz_data(path: Path, name: str) -> Data:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise PedrankValueError(f"data: {str(path)!r} is not a readable .npz ({exc})") from exc
    inputs_key = next((k for k in ("images", "inputs", "features", "x") if k in arrays), None)
    labels_key = next((k for k in ("labels", "label", "y", "targets") if k in arrays), None)
    if inputs_key is None or labels_key is None:
        raise PedrankValueError(f"data: {str(path)!r} holds keys {sorted(arrays)}; expected 'images' (or "
                                "'inputs'/'features') and 'labels'")
    inputs, labels = arrays[inputs_key], arrays[labels_key]
    if labels.ndim != 1 or len(labels) != len(inputs):
        raise PedrankValueError(f"data: {str(path)!r}: {labels_key!r} has shape {labels.shape}; expected "
                                f"({len(inputs)},), one label per row of {inputs_key!r}")
    return Data("arrays", inputs, labels, name, _file_digest(path), image_like=inputs_key == "images")


def _csv_data(path: Path, name: str, text_column: str | None, label_column: str | None) -> Data:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise PedrankValueError(f"data: {str(path)!r} has {len(rows)} row(s); expected a header and texts")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]

    def column(wanted: str | None, candidates: tuple[str, ...], fallback: int, what: str) -> int:
        if wanted is not None:
            if wanted not in header:
                raise PedrankValueError(f"{what}: {str(path)!r} has no column {wanted!r}; its columns: {header}")
            return header.index(wanted)
        for candidate in candidates:
            if candidate in lowered:
                return lowered.index(candidate)
        return fallback

    text_index = column(text_column, ("text", "sentence", "texts", "document", "content"), 0, "text_column")
    label_index = column(label_column, ("label", "labels", "class", "target", "y"), len(header) - 1,
                         "label_column")
    if text_index == label_index:
        raise PedrankValueError(f"data: {str(path)!r}: the text and label columns are both {header[text_index]!r}")
    texts = [row[text_index] for row in rows[1:] if row]
    raw = [row[label_index] for row in rows[1:] if row]
    try:
        labels = np.asarray([int(v) for v in raw])
    except ValueError:
        labels = np.asarray(raw)
    return Data("texts", texts, labels, name, _file_digest(path))


def load_data(data: Any, *, dataset: str | None = None, text_column: str | None = None,
              label_column: str | None = None) -> Data:
    """Read :func:`select`'s ``data``: an image folder (a sub-folder per class), an ``.npz`` (``images``,
    ``inputs`` or ``features`` with ``labels``), a CSV of texts and labels, a Hugging Face ``datasets`` dataset
    saved to disk, a ``(inputs, labels)`` pair of arrays, or a :class:`Data`."""
    if isinstance(data, Data):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        inputs, labels = data
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str):
            digest = hashlib.sha1("\n".join(inputs).encode() + np.asarray(labels).tobytes()).hexdigest()
            return Data("texts", list(inputs), np.asarray(labels), dataset or "data", digest)
        inputs = np.asarray(inputs)
        labels = np.asarray(labels)
        if len(inputs) != len(labels):
            raise PedrankValueError(f"data: {len(inputs)} inputs for {len(labels)} labels; expected one label each")
        digest = hashlib.sha1(np.ascontiguousarray(inputs).tobytes() + labels.tobytes()).hexdigest()
        return Data("arrays", inputs, labels, dataset or "data", digest)
    if not isinstance(data, (str, os.PathLike)):
        raise PedrankValueError(f"data: expected a folder, an .npz, a .csv or an (inputs, labels) pair; found "
                                f"{type(data).__name__}")
    path = Path(data)
    if not path.exists():
        raise PedrankValueError(f"data: found no file or folder {str(path)!r}; expected an image folder, .npz or .csv")
    name = _safe_dataset(dataset or path.stem)
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return _hf_dataset(path, name, text_column, label_column)
        return _folder_data(path, name)
    if path.suffix == ".npz":
        return _npz_data(path, name)
    if path.suffix in (".csv", ".tsv"):
        return _csv_data(path, name, text_column, label_column)
    raise PedrankValueError(f"data: unknown file type {path.suffix!r} ({str(path)!r}); expected an image folder, "
                            ".npz or .csv")


def _hf_dataset(path: Path, name: str, text_column: str | None, label_column: str | None) -> Data:
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError(f"data: {str(path)!r} is a Hugging Face dataset; reading it needs "
                                     "`pip install datasets`") from exc
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        split = "train" if "train" in loaded else next(iter(loaded))
        loaded = loaded[split]
    columns = list(loaded.column_names)
    label = label_column or next((c for c in ("label", "labels", "fine_label", "target") if c in columns), None)
    if label is None:
        raise PedrankValueError(f"label_column: the dataset {str(path)!r} has columns {columns}; name the label column")
    image = next((c for c in ("image", "img", "pixel_values") if c in columns), None)
    text = text_column or next((c for c in ("text", "sentence", "content") if c in columns), None)
    labels = np.asarray(loaded[label])
    fingerprint = getattr(loaded, "_fingerprint", None) or _file_digest(next(path.rglob("*.arrow")))
    if image is not None and text_column is None:
        return Data("images", list(loaded[image]), labels, name, str(fingerprint))
    if text is None:
        raise PedrankValueError(f"text_column: the dataset {str(path)!r} has columns {columns}; expected an image or "
                                "a text column")
    return Data("texts", list(loaded[text]), labels, name, str(fingerprint))


# ------------------------------------------------------------------------------------------ models


@dataclass
class _Loaded:
    """A model ready to run: the module, how to turn raw items into its inputs, and a description of that."""

    module: Any
    kind: str  # "torch", "hf", "sentence-transformers"
    transform: Any = None  # PIL image -> tensor (vision)
    processor: Any = None  # hf image processor or tokenizer
    preprocessing: str = "none"
    wants_images: bool = True


def load_callable(spec: str, *, name: str = "model") -> Any:
    """``module:attribute`` or ``path/to/file.py:attribute`` -> the object (modules imported from the current
    directory too). Errors name ``name`` (the argument or option the spec came from)."""
    import importlib
    import importlib.util

    where, sep, attribute = spec.rpartition(":")
    if not sep or not where or not attribute:
        raise PedrankValueError(f"{name}: found {spec!r}; expected MODULE:CALLABLE or path/to/file.py:CALLABLE")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise PedrankValueError(f"{name}: found no file {where!r}; expected path/to/file.py:CALLABLE")
        module_spec = importlib.util.spec_from_file_location(f"_pedrank_models_{_safe(path.stem)}", path)
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
    torch = _torch()
    if isinstance(value, torch.nn.Module):
        return value
    if callable(value):
        value = value()
        if isinstance(value, torch.nn.Module):
            return value
    raise PedrankValueError(f"model {spec!r}: expected a torch.nn.Module (or a callable returning one), found "
                            f"{type(value).__name__}")


def _torch_load(path: Path) -> Any:
    torch = _torch()
    if not path.is_file():
        raise PedrankValueError(f"model: found no checkpoint file {str(path)!r}; expected a file saved with torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which and why
        raise PedrankValueError(f"model: cannot read the checkpoint {str(path)!r} "
                                f"({type(exc).__name__}: {exc})") from exc


def _state_dict_of(checkpoint: Any, path: Path) -> dict[str, Any]:
    torch = _torch()
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


def _timm_model(name: str, pretrained: bool, image_size: int | None) -> _Loaded:
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
    return _Loaded(model, "torch", transform=transform, preprocessing=f"timm:{sorted(config.items())}")


def _torchvision_model(name: str, pretrained: bool, image_size: int | None) -> _Loaded:
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
    return _Loaded(model, "torch", transform=transform, preprocessing=f"torchvision:{_describe(transform)}")


def _hf_model(name: str, image_size: int | None) -> _Loaded:
    path = Path(name)
    if (path / "modules.json").is_file():
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(f"model 'hf:{name}': a sentence-transformers model; pip install "
                                         "sentence-transformers") from exc
        model = SentenceTransformer(str(path), device="cpu")
        return _Loaded(model, "sentence-transformers", preprocessing=f"st:max_seq_length={model.max_seq_length}",
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
        return _Loaded(model, "hf", processor=processor, preprocessing=description,
                       transform=None if processor is not None else _default_transform(size))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise PedrankValueError(f"model 'hf:{name}': it has no tokenizer ({type(exc).__name__}: {exc})") from exc
    return _Loaded(model, "hf", processor=tokenizer,
                   preprocessing=f"hf-text:{type(tokenizer).__name__}:{tokenizer.model_max_length}",
                   wants_images=False)


def _weights_digest(module: Any) -> str:
    """A hash of a module's parameters and buffers: a local module's cache entry follows its weights."""
    digest = hashlib.sha1()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().double().numpy().tobytes())
    return digest.hexdigest()[:16]


def _default_transform(size: int | None) -> Any:
    """PIL image -> float tensor (3, H, W) in [0, 1], resized to ``size`` x ``size`` when given."""
    torch = _torch()

    def transform(image: Any) -> Any:
        image = image.convert("RGB")
        if size:
            image = image.resize((size, size))
        array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    transform.__qualname__ = f"to_tensor(size={size})"
    return transform


def load_model(spec: Any, *, pretrained: bool = True, image_size: int | None = None) -> _Loaded:
    """Load one model of :func:`select`'s pool (see there for the forms of ``spec``)."""
    torch = _torch()
    if isinstance(spec, torch.nn.Module) or (callable(spec) and not isinstance(spec, (str, os.PathLike))):
        module = _as_module(spec, getattr(spec, "__name__", type(spec).__name__))
        return _Loaded(module, "torch", preprocessing=f"raw:size={image_size}|weights:{_weights_digest(module)}")
    if not isinstance(spec, (str, os.PathLike)):
        raise PedrankValueError(f"model: expected a name (timm:NAME, torchvision:NAME, hf:NAME, MODULE:CALLABLE, a "
                                f"checkpoint file) or a torch module, found {type(spec).__name__}")
    text = str(spec)
    architecture, at, weights = text.rpartition("@")
    if at and architecture and (weights.endswith(CHECKPOINT_SUFFIXES) or Path(weights).is_file()):
        loaded = load_model(architecture, pretrained=False, image_size=image_size)
        state = _state_dict_of(_torch_load(Path(weights)), Path(weights))
        try:
            loaded.module.load_state_dict(state)
        except RuntimeError as exc:
            raise PedrankValueError(f"model {text!r}: the weights in {weights!r} do not fit {architecture!r} "
                                    f"({str(exc).splitlines()[0]})") from exc
        loaded.preprocessing += f"|weights:{_file_digest(Path(weights))}"
        return loaded
    prefix, colon, name = text.partition(":")
    if colon and prefix == "timm":
        return _timm_model(name, pretrained, image_size)
    if colon and prefix == "torchvision":
        return _torchvision_model(name, pretrained, image_size)
    if colon and prefix == "hf":
        return _hf_model(name, image_size)
    if text.endswith(CHECKPOINT_SUFFIXES) or (Path(text).is_file() and ":" not in text):
        checkpoint = _torch_load(Path(text))
        if isinstance(checkpoint, torch.nn.Module):
            return _Loaded(checkpoint, "torch", preprocessing=f"raw:size={image_size}")
        raise PedrankValueError(f"model: the checkpoint {text!r} holds a {type(checkpoint).__name__}, not a saved "
                                "nn.Module; give its architecture too: ARCH@CHECKPOINT (e.g. timm:resnet18@w.pth or "
                                "mymodels:Net@w.pth)")
    if colon:
        return _Loaded(_as_module(load_callable(text), text), "torch", preprocessing=f"raw:size={image_size}")
    raise PedrankValueError(f"model: {text!r} is not a known form; expected timm:NAME, torchvision:NAME, "
                            "hf:NAME_OR_PATH, MODULE:CALLABLE, path/to/file.py:CALLABLE, a checkpoint file or "
                            "ARCH@CHECKPOINT")


def model_name(spec: Any, index: int) -> str:
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


# ------------------------------------------------------------------------------------------ extraction


def _pool(value: Any, pooling: str, mask: Any = None) -> Any:
    """(N, C, H, W) -> (N, C) and (N, T, D) -> (N, D) by ``pooling``; (N, D) as is; others flattened."""
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


def _all_layers(module: Any) -> list[str]:
    """The layers that ``layers="all"`` ranks: a timm model's stages (its ``feature_info``); otherwise the
    children of the model's longest block sequence (a ``Sequential``/``ModuleList``, or the model itself), those
    with parameters, the last ``nn.Linear`` head excepted."""
    torch = _torch()
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


def _make_wrapper(loaded: _Loaded, layers: list[Any], pooling: str, device: Any, dtype: Any) -> Any:
    """An nn.Module that runs ``loaded`` once per batch and returns every requested layer, pooled and
    concatenated, through its ``out`` (an ``nn.Identity``): what :func:`pedrank.extract_features` reads."""
    torch = _torch()
    from pedrank.workflow.extract import last_linear, resolve_layer

    module_base: Any = torch.nn.Module

    class Wrapper(module_base):
        def __init__(self) -> None:
            super().__init__()
            self.model = loaded.module
            self.out = torch.nn.Identity()
            self.widths: list[int] = []
            self.done = 0  # batches the model took: a failure after the first is not about the input's shape

        def _run_model(self, inputs: Any, function: Any, /, *args: Any, **kwargs: Any) -> Any:
            """``function(*args, **kwargs)``, the model's own code, with whatever it raises marked as raised
            there (see :func:`_forward_error`)."""
            try:
                output = function(*args, **kwargs)
            except Exception as exc:
                raise _ForwardRaised(exc, _sample_shape(inputs), self.done) from exc
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
            for index, layer in enumerate(layers):
                if layer is None:
                    target = last_linear(self.model)
                    side = "input"
                    if target is None:  # a feature extractor without a head: its output
                        target, side = self.model, "output"
                else:
                    target, side = resolve_layer(self.model, layer), "output"

                def hook(_m: Any, args: Any, output: Any, index: int = index, side: str = side) -> None:
                    value = args[0] if side == "input" else output
                    if isinstance(value, (tuple, list)):
                        value = value[0]
                    if side == "output" and channels_last and value.ndim == 4:
                        value = value.permute(0, 3, 1, 2)  # timm's NHWC stages (Swin, MambaOut) -> NCHW
                    captured[index] = value

                handles.append(target.register_forward_hook(hook))
            try:
                self._run_model(inputs, self.model, inputs)
            finally:
                for handle in handles:
                    handle.remove()
            missing = [layers[i] for i in range(len(layers)) if i not in captured]
            if missing:
                raise PedrankValueError(f"layer: the forward pass never reached {missing}")
            return self._finish([_pool(captured[i], pooling) for i in range(len(layers))])

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
                pooled.append(_pool(value, pooling, mask))
            return self._finish(pooled)

        def _forward_st(self, inputs: Any) -> Any:
            if layers == [None]:
                return self._finish([self._run_model(inputs, self.model, inputs)["sentence_embedding"]])
            transformer = self.model[0].auto_model
            model_inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            output = self._run_model(inputs, transformer, **model_inputs, output_hidden_states=True)
            hidden = output.hidden_states
            return self._finish([_pool(hidden[-1 if layer is None else int(layer)], pooling,
                                       inputs.get("attention_mask")) for layer in layers])

    wrapper = Wrapper()
    if dtype is not None:
        wrapper.model.to(dtype)
    return wrapper


class _Batches:
    """(inputs, labels) batches of ``data`` prepared for ``loaded``, with a per-model progress bar.

    An image file that cannot be read raises :class:`BadImageError` (``bad_images="raise"``) or is left out of
    its batch, label included, and listed in :attr:`skipped` as ``(name, reason)`` (``bad_images="skip"``).
    """

    def __init__(self, data: Data, loaded: _Loaded, batch_size: int, image_size: int | None, desc: str,
                 progress: bool | None, on_batch: Any = None, bad_images: str = "raise"):
        self.data, self.loaded, self.batch_size = data, loaded, batch_size
        self.image_size, self.desc, self.progress, self.on_batch = image_size, desc, progress, on_batch
        self.bad_images = bad_images
        self.skipped: list[tuple[str, str]] = []
        self._dropped: list[int] = []

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def _open(self, path: Any, index: int) -> Any:
        from PIL import Image

        try:
            with Image.open(path) as image:
                return image.convert("RGB")  # decodes the whole file: a truncated one fails here, not later
        except MemoryError:
            raise
        except Exception as exc:  # PIL reports broken files as OSError, SyntaxError, ValueError, EOFError, ...
            name = self.data.item_name(path, index)
            reason = _short(exc)
            if self.bad_images == "raise":
                raise _bad_image_error(self.data, name, reason) from exc
            self.skipped.append((name, reason))
            return None

    def _images(self, chunk: Any, start: int = 0) -> list[Any]:
        from PIL import Image

        images = []
        for offset, item in enumerate(chunk):
            if isinstance(item, (str, os.PathLike)):
                image = self._open(item, start + offset)
                if image is None:
                    self._dropped.append(offset)
                else:
                    images.append(image)
            elif isinstance(item, np.ndarray):
                array = item
                if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
                    array = np.moveaxis(array, 0, -1)
                if array.dtype != np.uint8:
                    array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
                if array.ndim == 3 and array.shape[-1] == 1:
                    array = array[..., 0]
                images.append(Image.fromarray(array).convert("RGB"))
            else:  # a PIL image (Hugging Face datasets)
                images.append(item.convert("RGB"))
        return images

    def _inputs(self, chunk: Any, start: int = 0) -> Any:
        """The model's inputs for ``chunk`` (the samples from ``start``); None when every one was skipped."""
        torch = _torch()
        data, loaded = self.data, self.loaded
        if data.kind == "texts":
            if loaded.kind == "sentence-transformers":
                tokenize = getattr(loaded.module, "preprocess", None) or loaded.module.tokenize
                return tokenize(list(chunk))
            if loaded.kind == "hf" and not loaded.wants_images:
                return dict(loaded.processor(list(chunk), padding=True, truncation=True, return_tensors="pt"))
            raise PedrankValueError("data: texts, but the model takes images or tensors; expected an hf: text model "
                                    "(hf:NAME or a sentence-transformers folder)")
        if not loaded.wants_images:
            raise PedrankValueError(f"data: {data.kind}, but the model is a text model; expected a CSV of texts")
        needs_images = loaded.transform is not None or loaded.processor is not None or data.kind == "images"
        if data.kind == "arrays" and not needs_images:
            batch = np.asarray(chunk)
            if data.image_like and batch.ndim == 3:  # grey (N, H, W) -> (N, 1, H, W)
                batch = batch[:, None]
            elif data.image_like and batch.ndim == 4 and batch.shape[-1] in (1, 3) and batch.shape[1] not in (1, 3):
                batch = np.moveaxis(batch, -1, 1)  # channels last -> (N, C, H, W), as torch modules expect
            if batch.dtype == np.uint8:
                return torch.from_numpy(batch.astype(np.float32) / 255.0)
            tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            if self.image_size and tensor.ndim == 4:
                tensor = torch.nn.functional.interpolate(tensor, size=(self.image_size, self.image_size),
                                                         mode="bilinear", align_corners=False)
            return tensor
        if data.kind == "arrays" and not (data.image_like or np.asarray(chunk).ndim >= 3):
            raise PedrankValueError("data: vectors ('features'), but the model needs images; expected 'images'")
        images = self._images(chunk, start)
        if not images:
            return None
        if loaded.processor is not None:
            return {"pixel_values": loaded.processor(images=images, return_tensors="pt")["pixel_values"]}
        transform = loaded.transform or _default_transform(self.image_size)
        tensors = [transform(image) for image in images]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise PedrankValueError(f"data: images of different sizes {sorted(shapes)[:3]}; expected one size, or "
                                    "give image_size= (--image-size) to resize them")
        stacked = torch.stack(tensors)
        return {"pixel_values": stacked} if loaded.kind == "hf" else stacked

    def __iter__(self):
        data = self.data
        self.skipped = []
        starts = range(0, len(data), self.batch_size)
        for start in _progress(starts, total=len(self), desc=self.desc, enabled=self.progress):
            chunk = data.items[start:start + self.batch_size]
            labels = data.labels[start:start + self.batch_size]
            if self.on_batch is not None:
                self.on_batch()
            self._dropped = []
            inputs = self._inputs(chunk, start)
            if self._dropped:
                labels = np.delete(labels, self._dropped)  # a copy: the data's labels stay whole
            if inputs is not None:
                yield inputs, labels
        if len(self.skipped) == len(data):
            name, reason = self.skipped[0]
            raise BadImageError(f"data: none of the {len(data)} image files can be read (the first, "
                                f"{data.file_path(name)!r}: {reason}); expected image files PIL can open",
                                data.file_path(name), reason)


# ------------------------------------------------------------------------------------------ cache


def _cache_paths(cache_dir: Path, model: str, dataset: str) -> tuple[Path, Path, Path]:
    stem = f"{_safe(model)}_{dataset}"
    return (cache_dir / f"{stem}_feature.npy", cache_dir / f"{stem}_label.npy", cache_dir / f"{stem}{CACHE_KEY_SUFFIX}")


def _atomic_save(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file in its folder, renamed over it once complete.

    The temporary file is created with mode 0666 and the process umask applied by the system, as ``open(path,
    "wb")`` would (``tempfile.mkstemp`` gives 0600, which locks other users of a shared cache out).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            descriptor = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:  # another writer's temporary name: draw again
            continue
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _cache_read(cache_dir: Path | None, model: str, dataset: str, key: dict[str, Any]):
    """``(features, labels, skipped)`` of a cache entry whose key is ``key``, else None. ``skipped``: the
    ``(file, reason)`` pairs left out when it was extracted (entries written before the list existed had none:
    a bad file failed the run then)."""
    if cache_dir is None:
        return None
    feature_path, label_path, key_path = _cache_paths(cache_dir, model, dataset)
    try:
        stored = json.loads(key_path.read_text())
        if stored.get("key") != key:
            return None
        skipped = [(str(name), str(reason)) for name, reason in stored.get("skipped", [])]
        features = np.load(feature_path, allow_pickle=False)
        labels = np.load(label_path, allow_pickle=False)
    except (OSError, ValueError, TypeError):
        return None
    if features.ndim != 2 or len(features) != len(labels):
        return None
    return features, labels, skipped


def _cache_write(cache_dir: Path | None, model: str, dataset: str, key: dict[str, Any], features: np.ndarray,
                 labels: np.ndarray, skipped: Sequence[tuple[str, str]] = ()) -> None:
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    feature_path, label_path, key_path = _cache_paths(cache_dir, model, dataset)
    # The key file goes last: a cache entry counts only once its key is there (and matches).
    try:
        key_path.unlink()
    except FileNotFoundError:
        pass
    _atomic_save(feature_path, lambda handle: np.save(handle, features, allow_pickle=False))
    _atomic_save(label_path, lambda handle: np.save(handle, labels, allow_pickle=False))
    # The files left out are beside the key, not in it: the rows follow from the data (its fingerprint is in the
    # key), and a run with bad_images="raise" must still see them to raise as a fresh run would.
    text = json.dumps({"version": CACHE_VERSION, "key": key, "shape": list(features.shape),
                       "digest": hashlib.sha1(features.tobytes()).hexdigest(),
                       "skipped": [list(pair) for pair in skipped]}, indent=1)
    _atomic_save(key_path, lambda handle: handle.write(text.encode()))


# ------------------------------------------------------------------------------------------ one task


def _row_name(model: str, layer: Any, explicit: bool) -> str:
    return model if not explicit else f"{model}@{layer}"


def _extract_model(name: str, spec: Any, data: Data, layers: Any, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Extract (or read from the cache) every requested layer of one model. Returns one dict per layer:
    ``name``, ``features``, ``labels``, ``cached``, ``extract_seconds``, ``skipped`` (the ``(file, reason)``
    pairs left out); or raises (:class:`BadImageError` for an unreadable image file, also when a cache entry
    records one and ``bad_images`` is "raise": a fresh run would meet it)."""
    torch = _torch()
    cache_dir = options["cache_dir"]
    pooling, dtype_name = options["pooling"], options["dtype"]
    base_key = {"model": _describe(spec) if not isinstance(spec, (str, os.PathLike)) else str(spec),
                "dataset": data.name, "data": data.fingerprint, "pooling": pooling, "dtype": dtype_name,
                "pretrained": options["pretrained"] if _hub_weights(spec) else None,
                "image_size": options["image_size"]}
    base_key["files"] = _spec_files(spec)
    explicit = layers is not None
    wanted: list[Any] = [None] if layers is None else list(layers) if not isinstance(layers, str) or layers != "all" \
        else ["all"]
    loaded = None
    if wanted == ["all"]:
        loaded = load_model(spec, pretrained=options["pretrained"], image_size=options["image_size"])
        if loaded.kind == "torch":
            wanted = _all_layers(loaded.module)
        else:
            count = _hidden_count(loaded)
            wanted = list(range(count))
    results: dict[Any, dict[str, Any]] = {}
    missing = []
    # The preprocessing is part of the key; it is known once the model is loaded. For named models
    # the spec determines it, so a first look at the cache needs no loading (the key records it).
    for layer in wanted:
        row = _row_name(name, layer, explicit)
        key_file = _cache_paths(cache_dir, row, data.name)[2] if cache_dir is not None else None
        stored_key = None
        if key_file is not None and key_file.is_file():
            try:
                stored_key = json.loads(key_file.read_text()).get("key")
            except (OSError, ValueError):
                stored_key = None
        if stored_key is not None and {k: stored_key.get(k) for k in base_key} == base_key \
                and stored_key.get("layer") == _describe(layer) and loaded is None \
                and isinstance(spec, (str, os.PathLike)) and not _weights_changed(spec, stored_key):
            hit = _cache_read(cache_dir, row, data.name, stored_key)
            if hit is not None:
                results[layer] = {"name": row, "features": hit[0], "labels": hit[1], "cached": True,
                                  "extract_seconds": 0.0, "skipped": hit[2]}
                continue
        missing.append(layer)
    if missing:
        if loaded is None:
            loaded = load_model(spec, pretrained=options["pretrained"], image_size=options["image_size"])
        key_base = dict(base_key, preprocessing=loaded.preprocessing)
        # A local module (no name to key on): its cache entry is checked with the full key.
        still = []
        for layer in missing:
            row = _row_name(name, layer, explicit)
            key = dict(key_base, layer=_describe(layer))
            hit = _cache_read(cache_dir, row, data.name, key)
            if hit is not None:
                results[layer] = {"name": row, "features": hit[0], "labels": hit[1], "cached": True,
                                  "extract_seconds": 0.0, "skipped": hit[2]}
            else:
                still.append(layer)
        if still:
            from pedrank.workflow.extract import extract_features

            dtype = None if dtype_name in (None, "float32") else getattr(torch, dtype_name)
            wrapper = _make_wrapper(loaded, still, pooling, options["device"], dtype)
            batches = _Batches(data, loaded, options["batch_size"], options["image_size"], desc=name,
                               progress=options["progress"], on_batch=options.get("on_batch"),
                               bad_images=options.get("bad_images", "raise"))
            start = time.perf_counter()
            try:
                features, labels = extract_features(wrapper, batches, layer="out", capture="output",
                                                    device=options["device"], progress=False)
            except _ForwardRaised as raised:
                raise _forward_error(raised, len(batches)) from raised.error
            seconds = time.perf_counter() - start
            offset = 0
            for layer, width in zip(still, wrapper.widths):
                row = _row_name(name, layer, explicit)
                part = np.ascontiguousarray(features[:, offset:offset + width])
                offset += width
                key = dict(key_base, layer=_describe(layer))
                _cache_write(cache_dir, row, data.name, key, part, labels, batches.skipped)
                results[layer] = {"name": row, "features": part, "labels": labels, "cached": False,
                                  "extract_seconds": seconds / len(still), "skipped": list(batches.skipped)}
    if options.get("bad_images", "raise") == "raise":
        for layer in wanted:
            if results[layer]["skipped"]:
                raise _bad_image_error(data, *results[layer]["skipped"][0])
    return [results[layer] for layer in wanted]


def _hub_weights(spec: Any) -> bool:
    """Whether ``pretrained`` matters for ``spec`` (part of its cache key): a timm:/torchvision: name, not
    ARCH@CHECKPOINT (built without hub weights whatever ``pretrained`` says) nor a local module."""
    if not isinstance(spec, (str, os.PathLike)):
        return False
    text = str(spec)
    architecture, at, weights = text.rpartition("@")
    if at and architecture and (weights.endswith(CHECKPOINT_SUFFIXES) or Path(weights).is_file()):
        return False
    return text.startswith(("timm:", "torchvision:"))


def _spec_files(spec: Any) -> dict[str, str]:
    """Digests of the local files a spec names (a model's .py, a checkpoint): an edited file misses the cache."""
    if not isinstance(spec, (str, os.PathLike)):
        return {}
    files = {}
    text = str(spec)
    architecture, at, weights = text.rpartition("@")
    parts = [architecture, weights] if at and architecture else [text]
    for part in parts:
        where = part.rpartition(":")[0] if part.rpartition(":")[0].endswith(".py") else part
        path = Path(where)
        if path.suffix in (".py", *CHECKPOINT_SUFFIXES) and path.is_file():
            files[where] = _file_digest(path)
    return files


def _weights_changed(spec: Any, stored_key: dict[str, Any]) -> bool:
    """For ARCH@CHECKPOINT, the weight file's digest is in the preprocessing: a changed file misses."""
    text = str(spec)
    architecture, at, weights = text.rpartition("@")
    if not (at and architecture and Path(weights).is_file()):
        return False
    return f"weights:{_file_digest(Path(weights))}" not in str(stored_key.get("preprocessing", ""))


def _hidden_count(loaded: _Loaded) -> int:
    module = loaded.module[0].auto_model if loaded.kind == "sentence-transformers" else loaded.module
    config = module.config
    count = getattr(config, "num_hidden_layers", None)
    if count is None:
        raise PedrankValueError("layers: 'all' needs the model's number of hidden layers; its config has none")
    return int(count) + 1  # the embeddings' output, then each block's


def _sample_shape(inputs: Any) -> tuple[int, ...] | None:
    """The shape of one sample of a batch, as a batch of one: (1, C, H, W), (1, T), ... (None if unknown)."""
    if isinstance(inputs, Mapping):
        inputs = next(iter(inputs.values()), None)
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return (1, *(int(size) for size in tuple(shape)[1:]))


def _forward_error(raised: _ForwardRaised, batches: int) -> PedrankError:
    """What to report for an exception raised inside a model's forward.

    An input-shape mismatch (:class:`PedrankValueError`, "incompatible input of shape ...") only when the model
    took no batch before (every batch has the same sample shape) and the exception is a RuntimeError, ValueError
    or IndexError whose message speaks of shapes, sizes, channels or dimensions (:data:`_SHAPE_WORDS`), as
    torch's layers do; otherwise the model's own failure (out of memory included). Both carry the model's
    exception type and message.
    """
    error = raised.error
    lines = str(error).strip().splitlines()
    text = lines[0][:400] if lines else ""
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    out_of_memory = "OutOfMemory" in type(error).__name__ or "out of memory" in text.lower()
    if raised.done == 0 and isinstance(error, (RuntimeError, ValueError, IndexError)) \
            and not isinstance(error, PedrankError) and not out_of_memory and _SHAPE_WORDS.search(text):
        of_shape = f" of shape {raised.shape}" if raised.shape is not None else ""
        return PedrankValueError(f"incompatible input{of_shape}: the model's forward rejects it ({detail})")
    where = "on its first batch" if raised.done == 0 else \
        f"on batch {raised.done + 1} of {batches}, after taking {raised.done}"
    return _ModelFailure(f"the model failed inside its own forward: {detail} ({where})")


def _bad_image_error(data: Data, name: str, reason: str) -> BadImageError:
    path = data.file_path(name)
    return BadImageError(f"data: cannot read the image file {path!r} ({reason}); expected an image PIL can open: "
                         "replace or remove it, or pass bad_images='skip' (--bad-images skip) to leave it out",
                         path, reason)


def _score_rows(extracted: list[dict[str, Any]], score_options: dict[str, Any]) -> list[SelectRecord]:
    from pedrank.workflow.rank import rank

    records = []
    for item in extracted:
        try:
            table = rank({item["name"]: (item["features"], item["labels"])}, **score_options)
            record = table[0]
            records.append(SelectRecord(item["name"], record.score, record.seconds, record.ped_steps,
                                        extract_seconds=item["extract_seconds"], cached=item["cached"],
                                        n_features=int(item["features"].shape[1])))
        except Exception as exc:  # one model's score failing leaves the others
            records.append(SelectRecord(item["name"], float("nan"), 0.0, None,
                                        extract_seconds=item["extract_seconds"], cached=item["cached"],
                                        n_features=int(item["features"].shape[1]), error=f"scoring: {_short(exc)}"))
    return records


def _task(name: str, spec: Any, data: Any, layers: Any, options: dict[str, Any], score_options: dict[str, Any] | None,
          data_options: dict[str, Any]) -> Any:
    """One model: extract (or read the cache), then score. Runs wherever the executor puts it.

    Returns ``(output, skipped)``: ``output`` a list of :class:`SelectRecord` (``score_options`` given) or the
    extracted layers (pool-relative metrics, scored together afterwards); ``skipped`` the ``(file, reason)``
    pairs left out of the data (``bad_images="skip"``), None when the model failed before reading it all. Never
    raises for a model's own failure: its row says why. Raises :class:`BadImageError`: a bad file is the data's
    fault, the same for every model."""
    try:
        data = load_data(data, **data_options)
        if options.get("max_samples"):
            data = data.subset(int(options["max_samples"]))
        options = dict(options)
        if options["cache_dir"] is not None:
            options["cache_dir"] = Path(options["cache_dir"])
        extracted = _extract_model(name, spec, data, layers, options)
    except (KeyboardInterrupt, BadImageError):
        raise
    except Exception as exc:  # a model that cannot be loaded or run: its row says why
        if os.environ.get("PEDRANK_DEBUG"):
            traceback.print_exc()
        reason = _short(exc)
        return [SelectRecord(name, float("nan"), 0.0, None, error=reason)], None
    skipped = sorted({pair for item in extracted for pair in item["skipped"]})
    if score_options is None:
        return extracted, skipped
    return _score_rows(extracted, score_options), skipped


# ------------------------------------------------------------------------------------------ select


def _executor_from(client: Any, executor: Any, scheduler: str | None) -> tuple[Any, bool]:
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError as exc:
            raise MissingDependencyError("scheduler: a Dask cluster needs dask.distributed "
                                         "(pip install dask distributed, or pip install 'pedrank[dask]')") from exc
        return Client(scheduler), True
    if client is not None and executor is not None:
        raise PedrankValueError("client/executor: give one of them, not both")
    chosen = client if client is not None else executor
    if chosen is None:
        return None, False
    if not callable(getattr(chosen, "submit", None)):
        raise PedrankValueError(f"executor: expected a concurrent.futures.Executor or a dask.distributed Client, "
                                f"found {type(chosen).__name__}")
    return chosen, False


def _is_dask(executor: Any) -> bool:
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "scheduler_info")


def select(
    models: Sequence[Any] | Mapping[str, Any],
    data: Any,
    *,
    metric: str | None = None,
    ped: bool | Mapping[str, Any] | PathLike = False,
    layers: Any = None,
    cache_dir: PathLike | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    dtype: str | None = None,
    pooling: str = "mean",
    image_size: int | None = None,
    pretrained: bool = True,
    max_samples: int | None = None,
    dataset: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    bad_images: str = "raise",
    backend: str = "auto",
    executor: Any = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    confidence: int | None = None,
    random_state: Any = None,
    **metric_options: Any,
) -> SelectTable:
    """Extract features of a pool of models on a dataset, score them and rank them, best first.

    Parameters
    ----------
    models : sequence or mapping of model specs
        Each spec is one of: ``"timm:NAME"`` (timm's architecture with its pretrained weights and its data
        config's preprocessing), ``"torchvision:NAME"`` (the DEFAULT weights and their transforms),
        ``"hf:NAME_OR_PATH"`` (transformers ``AutoModel`` with its image processor or tokenizer; a
        sentence-transformers folder gives its sentence embedding), ``"MODULE:CALLABLE"`` or
        ``"path/file.py:CALLABLE"`` (a callable returning an ``nn.Module``), a checkpoint file (a whole module
        saved with ``torch.save``), ``"ARCH@CHECKPOINT"`` (the architecture ARCH, any of the forms above, built
        without pretrained weights, then the state_dict in CHECKPOINT loaded: the offline way to use hub
        architectures), an ``nn.Module``, or a zero-argument callable returning one. A mapping gives the names
        of the rows; otherwise they are derived from the specs.
    data : path or (inputs, labels)
        An image folder (one sub-folder per class), an ``.npz`` with ``images`` (n, H, W[, C]) or ``inputs`` /
        ``features`` (n, ...) and ``labels``, a CSV of texts and labels (columns ``text`` and ``label``, or the
        first and last), a Hugging Face ``datasets`` folder (``save_to_disk``), or an ``(inputs, labels)`` pair.
        Local torch modules receive array inputs as stored (uint8 scaled to [0, 1]) and image files as float
        tensors (N, 3, H, W) in [0, 1].
    metric, ped, backend, **metric_options
        As for :func:`pedrank.rank` (None, the default: the recommended score; any metric name, including forms
        such as ``"logme:exact"``; PED as a bool, a dict of options or a ``pedrank tune`` config file).
    confidence, random_state
        As for :func:`pedrank.rank`: B stratified bootstrap resamples of the target rows, every model rescored on
        each (P(best), rank and score intervals, top-1 stability as columns). The models' features are then scored
        together after extraction, in this process, instead of in each model's task.
    layers : None, str, int, list or "all"
        None: the input of the model's last ``nn.Linear`` (the penultimate features; for ``hf:`` models the last
        hidden state). A submodule name (or hidden-state index for ``hf:``) or a list of them: one row per layer,
        named ``MODEL@LAYER``. ``"all"``: every block of the model (its longest ``Sequential``/``ModuleList``;
        every hidden state of an ``hf:`` model), to rank the layers of one model.
    cache_dir : path, optional
        Where features are kept, in the authors' layout ``{model}_{dataset}_feature.npy`` + ``_label.npy``
        (so ``pedrank rank CACHE_DIR --dataset DATASET`` reads them), with a ``{model}_{dataset}_key.json``
        recording the model, the data's fingerprint, the layer, pooling, dtype and preprocessing. A matching
        entry is read instead of extracted; files are written atomically (temporary file, then rename), so an
        interrupted run resumes with the models it had finished.
    batch_size, device, dtype, pooling, image_size
        The forward passes: ``dtype`` one of float32 (default), float16, bfloat16; ``pooling`` of token/patch
        outputs (N, T, D) and maps (N, C, H, W): "mean" (default; mask-aware for text), "cls", "max",
        "flatten"; ``image_size`` resizes images (and overrides timm's/torchvision's input size).
    pretrained : bool, default True
        Hub weights for ``timm:``/``torchvision:`` names (False: the architecture's random initialisation).
    max_samples : int, optional
        Only the first ``max_samples`` samples.
    dataset : str, optional
        The dataset's name in the table and the cache (default: the data's file or folder name).
    bad_images : {"raise", "skip"}, default "raise"
        An image file of the folder that cannot be read (corrupt, truncated, not an image): "raise" raises
        :class:`BadImageError` naming it; "skip" leaves it out, with its label, for every model alike (a cached
        entry records the files it left out, so cached and fresh rows agree) and warns once
        (:class:`BadImageWarning`) with their number and names (also in the table's ``skipped``).
    executor, client, scheduler
        Spread the pool: one task per model (extraction, cache and score where it runs; only the row comes
        back). ``executor``: any ``concurrent.futures.Executor``; ``client``: a ``dask.distributed.Client``;
        ``scheduler``: the address of a Dask scheduler (``tcp://host:8786``) to connect to. The models, the data
        path and the cache directory must be reachable from the workers.
    progress : bool or None
        A progress bar per model over its batches (None: on a terminal, after a second).

    Returns
    -------
    SelectTable
        A :class:`pedrank.RankTable` of :class:`SelectRecord`, best first; models that failed come last with
        a NaN score and their ``error``: one that cannot be loaded, rejects the input ("incompatible input of
        shape ...", with the model's message), or fails inside its own forward (the model's exception type and
        message).

    Raises
    ------
    PedrankValueError
        A bad argument or unreadable data; :class:`BadImageError` (a subclass) for an image file that cannot be
        read, with ``bad_images="raise"``.
    """
    if metric is None:  # as pedrank.rank and the command line: the recommended score
        from pedrank.workflow.recommendation import RECOMMENDED

        metric = RECOMMENDED.metric
    if isinstance(models, Mapping):
        items = [(str(name), spec) for name, spec in models.items()]
    elif isinstance(models, (str, os.PathLike)) or not isinstance(models, Sequence):
        items = [(model_name(models, 0), models)]
    else:
        items = [(model_name(spec, i), spec) for i, spec in enumerate(models)]
    if not items:
        raise PedrankValueError("models: empty; expected at least one model")
    names = [name for name, _ in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PedrankValueError(f"models: the names {duplicates} appear more than once; give a mapping of names")
    if pooling not in POOLINGS:
        raise PedrankValueError(f"pooling: found {pooling!r}; expected one of {', '.join(POOLINGS)}")
    if dtype not in (None, "float32", "float16", "bfloat16"):
        raise PedrankValueError(f"dtype: found {dtype!r}; expected float32, float16 or bfloat16")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise PedrankValueError(f"batch_size: found {batch_size!r}; expected a positive integer")
    if bad_images not in BAD_IMAGES:
        raise PedrankValueError(f"bad_images: found {bad_images!r}; expected one of {', '.join(BAD_IMAGES)}")
    if isinstance(layers, str) and layers != "all":
        layers = [layers]
    elif isinstance(layers, int):
        layers = [layers]
    from pedrank.scores.registry import resolve_metric

    entry, _ = resolve_metric(metric, dict(metric_options))
    if confidence is not None:
        from pedrank._engine.validation import check_int

        confidence = check_int(confidence, name="confidence", minimum=1)
    # Pool-relative metrics, and the bootstrap (every model rescored on the same resampled rows), score the pool's
    # features together after extraction; the others score each model in its own task.
    pool_metric = entry.pool is not None or confidence is not None
    data_options = {"dataset": dataset, "text_column": text_column, "label_column": label_column}
    # Fail early on the data (the same for every model), and name the dataset.
    local_data = load_data(data, **data_options)
    dataset_name = local_data.name
    task_data = data if isinstance(data, (str, os.PathLike)) else local_data
    options = {"cache_dir": None if cache_dir is None else str(cache_dir), "batch_size": batch_size,
               "device": device, "dtype": dtype, "pooling": pooling, "image_size": image_size,
               "pretrained": pretrained, "max_samples": max_samples, "progress": progress,
               "bad_images": bad_images}
    score_options = None if pool_metric else {"metric": metric, "ped": ped, "backend": backend,
                                              "dataset": dataset_name, "progress": False, **metric_options}
    runner, owned = _executor_from(client, executor, scheduler)
    outputs: list[Any] = []
    try:
        if runner is None:
            for name, spec in items:
                outputs.append(_task(name, spec, task_data, layers, options, score_options, data_options))
        else:
            dask = _is_dask(runner)
            futures = [runner.submit(_task, name, spec, task_data, layers, options, score_options, data_options,
                                     **({"pure": False, "key": f"pedrank-select-{_safe(name)}-{os.getpid()}-"
                                                                f"{time.time_ns()}"} if dask else {}))
                       for name, spec in items]
            for (name, _), future in zip(items, futures):
                try:
                    outputs.append(future.result())
                except BadImageError:
                    for other in futures:
                        other.cancel()
                    raise
                except Exception as exc:  # a worker lost, a task that could not be sent
                    outputs.append(([SelectRecord(name, float("nan"), 0.0, None, error=f"task: {_short(exc)}")],
                                    None))
    finally:
        if owned:
            runner.close()
    skipped = _warn_skipped([name for name, _ in items], [found for _, found in outputs], local_data,
                            max_samples)
    outputs = [output for output, _ in outputs]
    records: list[SelectRecord] = []
    bootstrap: dict[str, Any] = {}
    if pool_metric:
        records = _score_pool(outputs, metric, ped, backend, dataset_name, metric_options, confidence,
                              random_state, bootstrap)
    else:
        for output in outputs:
            records.extend(output)

    def best_first(i: int) -> tuple[bool, float, int]:
        value = records[i].score
        return (math.isnan(value), 0.0 if math.isnan(value) else -value, i)

    ordered = [records[i] for i in sorted(range(len(records)), key=best_first)]
    from pedrank.scores.scoring import ped_options as parse_ped_options

    with_ped = ped is not False and not isinstance(ped, (str, os.PathLike)) and parse_ped_options(ped) is not None
    if isinstance(ped, (str, os.PathLike)):
        from pedrank.workflow.tune import read_ped_config

        with_ped = read_ped_config(ped, metric) not in (False, None)
    return SelectTable(ordered, metric=metric, ped=with_ped, dataset=dataset_name, skipped=skipped, **bootstrap)


def _warn_skipped(names: list[str], found: list[list[tuple[str, str]] | None], data: Data,
                  max_samples: int | None) -> list[str]:
    """One :class:`BadImageWarning` for the files the tasks left out (each task found them on its own, or in
    its cache entry; None: a task that failed first); returns their names."""
    reasons: dict[str, str] = {}
    for pairs in found:
        for name, reason in pairs or ():
            reasons.setdefault(name, reason)  # keyed by file: workers' PIL versions may word a reason apart
    union = sorted(reasons.items())
    if not union:
        return []
    total = len(data) if not max_samples else min(len(data), int(max_samples))
    shown = [f"{name} ({reason})" for name, reason in union[:10]]
    if len(union) > 10:
        shown.append(f"and {len(union) - 10} more")
    where = f" in {str(data.root)!r}" if data.root is not None else ""
    message = (f"data: skipped {len(union)} unreadable image file(s) of {total}{where} (bad_images='skip'), "
               f"with their labels: {'; '.join(shown)}")
    # Every task reads the same files, so they agree unless a file changed or failed to read only once.
    differing = [name for name, pairs in zip(names, found)
                 if pairs is not None and {file for file, _ in pairs} != set(reasons)]
    if differing:
        message += f"; not the same files for every model: {', '.join(differing)} skipped fewer"
    warnings.warn(message, BadImageWarning, stacklevel=3)
    return [name for name, _ in union]


def _score_pool(outputs: list[Any], metric: str, ped: Any, backend: str, dataset: str,
                metric_options: dict[str, Any], confidence: int | None = None, random_state: Any = None,
                bootstrap: dict[str, Any] | None = None) -> list[SelectRecord]:
    """The extracted features of every model scored together: pool-relative metrics (NCTI, ETran) and
    ``confidence=B`` (``bootstrap`` receives the table's resamples, seed and top-1 stability)."""
    from pedrank.workflow.rank import rank

    failed, pool, info = [], {}, {}
    for output in outputs:
        for item in output:
            if isinstance(item, SelectRecord):
                failed.append(item)
            else:
                pool[item["name"]] = (item["features"], item["labels"])
                info[item["name"]] = item
    records = []
    if pool:
        try:
            table = rank(pool, metric=metric, ped=ped, backend=backend, dataset=dataset, progress=False,
                         confidence=confidence, random_state=random_state, errors="row", **metric_options)
            by_name = {r.model: r for r in table}
            for name, item in info.items():
                r = by_name[name]
                records.append(SelectRecord(name, r.score, r.seconds, r.ped_steps, error=r.error, p_best=r.p_best,
                                            rank_low=r.rank_low, rank_high=r.rank_high, score_low=r.score_low,
                                            score_high=r.score_high, failed_resamples=r.failed_resamples,
                                            extract_seconds=item["extract_seconds"], cached=item["cached"],
                                            n_features=int(item["features"].shape[1])))
            if bootstrap is not None and confidence is not None:
                bootstrap.update(n_resamples=table.n_resamples, seed=table.seed,
                                 top1_stability=table.top1_stability)
        except Exception as exc:  # the pool's score failed: every row says why
            records = [SelectRecord(name, float("nan"), 0.0, None, extract_seconds=item["extract_seconds"],
                                    cached=item["cached"], error=f"scoring: {_short(exc)}")
                       for name, item in info.items()]
    return records + failed
