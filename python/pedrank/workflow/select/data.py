"""The target data of :func:`pedrank.select`: an image folder, an ``.npz``, a CSV of texts, a Hugging Face dataset
saved to disk or an ``(inputs, labels)`` pair, read into a :class:`Data`; and the error of an unreadable image file.

Reading the data here lists and fingerprints it (the fingerprint is part of the feature cache's key); the images
themselves are opened batch by batch, for each model, by :class:`pedrank.workflow.select.batches.Batches`.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from pedrank._engine.validation import MissingDependencyError, PedrankValueError
from pedrank.workflow.select.common import file_digest, safe_dataset

__all__ = ["IMAGE_SUFFIXES", "BAD_IMAGES", "SUBSET_SEED", "BadImageError", "BadImageWarning", "Data", "load_data",
           "bad_image_error", "stratified_rows"]

#: The file suffixes of an image folder's images (any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


#: What :func:`select` does with an image file it cannot read: raise :class:`BadImageError`, or skip the file.
BAD_IMAGES = ("raise", "skip")


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


#: The seed of the rows kept by ``max_samples`` (:meth:`Data.subset`): the same rows for every model and run.
SUBSET_SEED = 0


def stratified_rows(labels: Any, n: int, *, seed: int = SUBSET_SEED) -> np.ndarray:
    """The rows of a stratified subset of ``n`` samples: each class keeps its share of them.

    Each class gets ``n`` times its share of the samples, rounded down, and at least one sample when ``n`` is at
    least the number of classes (when it is smaller, ``n`` classes keep one each: those with the largest shares);
    the rows left go to the classes with the largest remainders (the first class on a tie). Within a class, the rows
    are drawn at random without replacement, from ``numpy.random.default_rng(seed)``, class after class.

    Parameters
    ----------
    labels : array-like (N,)
        The samples' labels.
    n : int
        How many rows to keep (1 <= n <= N).
    seed : int, default SUBSET_SEED
        The draw's seed.

    Returns
    -------
    ndarray of int (n,)
        The kept rows, ascending (the data's own order).
    """
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    total = len(labels)
    if not 1 <= n <= total:
        raise PedrankValueError(f"max_samples: found {n}; expected 1 to {total}")
    exact = counts * n / total
    quota = np.floor(exact).astype(np.int64)
    if n >= len(counts):
        quota = np.maximum(quota, 1)
    while quota.sum() > n:  # the classes raised to one sample: the most over its share gives one back
        over = np.where(quota > 1, quota - exact, -np.inf)
        quota[int(np.argmax(over))] -= 1
    while quota.sum() < n:  # the largest remainder (of the classes with rows left) gets one more
        under = np.where(quota < counts, exact - quota, -np.inf)
        quota[int(np.argmax(under))] += 1
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(inverse == c), size=int(k), replace=False) for c, k in enumerate(quota) if k]
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)


class Data:
    """The target data of :func:`select`: images (PIL or arrays), vectors, or texts, with labels.

    Attributes
    ----------
    kind : {"images", "arrays", "texts"}
        "images": a list of image files (opened lazily); "arrays": an array (n, ...) of images or vectors;
        "texts": a list of str.
    items : list or ndarray (n, ...)
        The samples: image file paths or PIL images, an array, or texts.
    labels : ndarray (n,)
    name : str
        The dataset's name in the cache's file names.
    fingerprint : str
        A hash of the data's content (file names, sizes and bytes), with the columns read (a CSV's or a Hugging Face
        dataset's) and the subset kept (``max_samples``): part of the cache key.
    image_like : bool
        An array of images (an ``.npz``'s ``images``), not of vectors.
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
        """A stratified subset of ``n`` samples (:func:`stratified_rows`; the fingerprint notes the cut).

        Parameters
        ----------
        n : int
            How many samples to keep.

        Returns
        -------
        Data
            ``self`` when it has at most ``n`` samples, else ``n`` of them (items and labels (n,)), in their
            order in the data: each class keeps its share, at least one sample when ``n`` is at least the number of
            classes, drawn with the fixed seed :data:`SUBSET_SEED`, so every model (and every run) gets the same
            rows.
        """
        if n >= len(self):
            return self
        rows = stratified_rows(self.labels, n, seed=SUBSET_SEED)
        items = self.items[rows] if isinstance(self.items, np.ndarray) else [self.items[i] for i in rows]
        return Data(self.kind, items, self.labels[rows], self.name,
                    f"{self.fingerprint}:stratified{n}:seed{SUBSET_SEED}", self.image_like, self.root)

    def item_name(self, item: Any, index: int) -> str:
        """A sample's name in messages and in the cache: its file relative to :attr:`root` (machines that
        mount the data elsewhere agree on it), else its path, else its position.

        Parameters
        ----------
        item : object
            One of :attr:`items`: a file path, an array, a text or a PIL image.
        index : int
            Its position in the data.

        Returns
        -------
        str
            The name (``"item {index}"`` for anything but a path).
        """
        if not isinstance(item, (str, os.PathLike)):
            return f"item {index}"
        if self.root is not None:
            try:
                return Path(item).relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(item)

    def file_path(self, name: str) -> str:
        """The inverse of :meth:`item_name` for files: where the file is on this machine.

        Parameters
        ----------
        name : str
            A file's name as :meth:`item_name` gives it.

        Returns
        -------
        str
            Its path under :attr:`root` (``name`` itself when it is absolute or the data has no root).
        """
        return str(self.root / name) if self.root is not None and not Path(name).is_absolute() else name


def load_data(data: Any, *, dataset: str | None = None, text_column: str | None = None,
              label_column: str | None = None) -> Data:
    """Read :func:`select`'s ``data``: an image folder (a sub-folder per class), an ``.npz`` (``images``,
    ``inputs`` or ``features`` with ``labels``), a CSV of texts and labels, a Hugging Face ``datasets`` dataset
    saved to disk, a ``(inputs, labels)`` pair of arrays, or a :class:`Data`.

    Parameters
    ----------
    data : path, (inputs, labels) or Data
        A folder ``DATA/<class>/<image files>``; an ``.npz`` with ``images`` (n, H, W[, C]) or ``inputs`` /
        ``features`` (n, ...) and ``labels`` (n,); a ``.csv``/``.tsv`` of texts and labels; a folder written by
        ``datasets``' ``save_to_disk``; a pair of an array (n, ...) or a list of n texts and labels (n,); or a
        :class:`Data`, returned as it is.
    dataset : str, optional
        The dataset's name (default: the file's or folder's name; "data" for arrays).
    text_column, label_column : str, optional
        The columns of a CSV or of a Hugging Face dataset (default: the first of the usual names, else a CSV's first
        and last columns).

    Returns
    -------
    Data
        The samples (image files are listed, not opened), their labels (n,) and the data's fingerprint.

    Raises
    ------
    PedrankValueError
        No such file or folder, an unknown file type, an image folder without class folders or images, missing
        keys or columns, or not one label per sample.
    MissingDependencyError
        A Hugging Face dataset without the ``datasets`` package.
    """
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
    name = safe_dataset(dataset or path.stem)
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
    return Data("arrays", inputs, labels, name, file_digest(path), image_like=inputs_key == "images")


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
    # The columns read are part of the fingerprint: another --text-column / --label-column is other data.
    fingerprint = f"{file_digest(path)}|text:{text_index}|label:{label_index}"
    return Data("texts", texts, labels, name, fingerprint)


def _hf_dataset(path: Path, name: str, text_column: str | None, label_column: str | None) -> Data:
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError(f"data: {str(path)!r} is a Hugging Face dataset; reading it needs "
                                     "`pip install datasets`") from exc
    loaded = datasets.load_from_disk(str(path))
    split = None
    if isinstance(loaded, datasets.DatasetDict):
        split = "train" if "train" in loaded else next(iter(loaded))
        loaded = loaded[split]
    columns = list(loaded.column_names)
    label = label_column or next((c for c in ("label", "labels", "fine_label", "target") if c in columns), None)
    if label is None:
        raise PedrankValueError(f"label_column: the dataset {str(path)!r} has columns {columns}; name the label column")
    for option, column in (("label_column", label_column), ("text_column", text_column)):
        if column is not None and column not in columns:
            raise PedrankValueError(f"{option}: found {column!r}; the dataset {str(path)!r} has columns {columns}")
    image = next((c for c in ("image", "img", "pixel_values") if c in columns), None)
    text = text_column or next((c for c in ("text", "sentence", "content") if c in columns), None)
    labels = np.asarray(loaded[label])
    fingerprint = getattr(loaded, "_fingerprint", None) or file_digest(next(path.rglob("*.arrow")))
    # The split and the columns read are part of the fingerprint: other columns are other data.
    fingerprint = f"{fingerprint}|split:{split}|label:{label}"
    if image is not None and text_column is None:
        return Data("images", list(loaded[image]), labels, name, f"{fingerprint}|image:{image}")
    if text is None:
        raise PedrankValueError(f"text_column: the dataset {str(path)!r} has columns {columns}; expected an image or "
                                "a text column")
    return Data("texts", list(loaded[text]), labels, name, f"{fingerprint}|text:{text}")


def bad_image_error(data: Data, name: str, reason: str) -> BadImageError:
    """The error for an image file of ``data`` that cannot be read (``bad_images="raise"``).

    Parameters
    ----------
    data : Data
        The data the file belongs to.
    name : str
        The file's name as :meth:`Data.item_name` gives it (relative to the data's folder).
    reason : str
        What reading it raised.

    Returns
    -------
    BadImageError
        Naming the file where it is on this machine, the reason, and ``bad_images='skip'`` as the way out.
    """
    path = data.file_path(name)
    return BadImageError(f"data: cannot read the image file {path!r} ({reason}); expected an image PIL can open: "
                         "replace or remove it, or pass bad_images='skip' (--bad-images skip) to leave it out",
                         path, reason)
