"""From a :class:`~pedrank.workflow.select.data.Data` to one model's input batches: images opened (PIL) and
prepared with the model's own transform or processor, arrays as tensors, texts tokenized; unreadable image files
raised or left out (``bad_images``), with a progress bar per model."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from pedrank._engine.progress import progress as progress_bar
from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.select.common import require_torch, short_reason
from pedrank.workflow.select.data import BadImageError, Data, bad_image_error
from pedrank.workflow.select.models import LoadedModel, default_transform

__all__ = ["Batches"]


class Batches:
    """(inputs, labels) batches of ``data`` prepared for ``loaded``, with a per-model progress bar.

    An image file that cannot be read raises :class:`BadImageError` (``bad_images="raise"``) or is left out of
    its batch, label included, and listed in :attr:`skipped` as ``(name, reason)`` (``bad_images="skip"``).

    Parameters
    ----------
    data : Data
        The samples and their labels (n,).
    loaded : LoadedModel
        The model the inputs are for: its transform, processor or tokenizer.
    batch_size : int
    image_size : int or None
        Arrays of images fed as they are are resized to it (image files go through the model's transform).
    desc : str
        The progress bar's label (the model's name).
    progress : bool or None
        The progress bar: None shows it on a terminal, after a second.
    on_batch : callable, optional
        Called before each batch is prepared.
    bad_images : {"raise", "skip"}, default "raise"

    Attributes
    ----------
    skipped : list of (str, str)
        The files left out by the last pass, with what reading them raised.
    """

    def __init__(self, data: Data, loaded: LoadedModel, batch_size: int, image_size: int | None, desc: str,
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
            reason = short_reason(exc)
            if self.bad_images == "raise":
                raise bad_image_error(self.data, name, reason) from exc
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
        torch = require_torch()
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
        transform = loaded.transform or default_transform(self.image_size)
        tensors = [transform(image) for image in images]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise PedrankValueError(f"data: images of different sizes {sorted(shapes)[:3]}; expected one size, or "
                                    "give image_size= (--image-size) to resize them")
        stacked = torch.stack(tensors)
        return {"pixel_values": stacked} if loaded.kind == "hf" else stacked

    def __iter__(self) -> Iterator[tuple[Any, np.ndarray]]:
        data = self.data
        self.skipped = []
        starts = range(0, len(data), self.batch_size)
        for start in progress_bar(starts, total=len(self), desc=self.desc, enabled=self.progress):
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
