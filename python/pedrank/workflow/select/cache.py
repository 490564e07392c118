"""The feature cache of :func:`pedrank.select`, in the authors' layout: ``{model}_{dataset}_feature.npy`` beside
``_label.npy``, with a ``{model}_{dataset}_key.json`` sidecar holding what the features were computed from.

Every file is written atomically (a temporary file, renamed over the target once complete) and the key goes last,
so an interrupted run leaves no entry that counts. The key's parts that come from the model's spec (whether hub
weights matter, the digests of local files it names, whether its weights must be hashed once it is loaded) are
worked out here too.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pedrank.workflow.select.common import file_digest, safe_name
from pedrank.workflow.select.models import CHECKPOINT_SUFFIXES, spec_form

__all__ = ["CACHE_KEY_SUFFIX", "CACHE_VERSION", "cache_paths", "atomic_save", "cache_read", "cache_write",
           "hub_weights", "key_needs_model", "spec_files", "weights_changed"]

#: The end of a cache entry's key file name: ``{model}_{dataset}_key.json``.
CACHE_KEY_SUFFIX = "_key.json"

#: The version written in every key file.
CACHE_VERSION = 1


def cache_paths(cache_dir: Path, model: str, dataset: str) -> tuple[Path, Path, Path]:
    """The three files of a cache entry.

    Parameters
    ----------
    cache_dir : Path
        The cache's folder.
    model : str
        The row's name (made file-name safe here).
    dataset : str
        The data's name (already without underscores: :func:`~pedrank.workflow.select.common.safe_dataset`).

    Returns
    -------
    tuple of Path
        ``{model}_{dataset}_feature.npy``, ``_label.npy`` and ``_key.json``, in ``cache_dir``.
    """
    stem = f"{safe_name(model)}_{dataset}"
    return (cache_dir / f"{stem}_feature.npy", cache_dir / f"{stem}_label.npy", cache_dir / f"{stem}{CACHE_KEY_SUFFIX}")


def atomic_save(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file in its folder, renamed over it once complete.

    The temporary file is created with mode 0666 and the process umask applied by the system, as ``open(path,
    "wb")`` would (``tempfile.mkstemp`` gives 0600, which locks other users of a shared cache out).

    Parameters
    ----------
    path : Path
        The file to write.
    write : callable
        ``write(handle)`` writes the content to a binary file handle.
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


def cache_read(cache_dir: Path | None, model: str, dataset: str,
               key: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]] | None:
    """``(features, labels, skipped)`` of a cache entry whose key is ``key``, else None.

    Parameters
    ----------
    cache_dir : Path or None
        The cache's folder (None: no cache, nothing read).
    model, dataset : str
        The entry's names (:func:`cache_paths`).
    key : dict
        What the features must have been computed from.

    Returns
    -------
    tuple or None
        ``features`` (N, D), ``labels`` (N,) and ``skipped``, the ``(file, reason)`` pairs left out when the entry
        was extracted (entries written before the list existed had none: a bad file failed the run then). None when
        there is no entry, its key differs, or its files cannot be read or disagree.
    """
    if cache_dir is None:
        return None
    feature_path, label_path, key_path = cache_paths(cache_dir, model, dataset)
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


def cache_write(cache_dir: Path | None, model: str, dataset: str, key: dict[str, Any], features: np.ndarray,
                labels: np.ndarray, skipped: Sequence[tuple[str, str]] = ()) -> None:
    """Write a cache entry: the features, the labels, then the key file (an entry counts once its key is there).

    Parameters
    ----------
    cache_dir : Path or None
        The cache's folder, created if needed (None: nothing written).
    model, dataset : str
        The entry's names (:func:`cache_paths`).
    key : dict
        What the features were computed from.
    features : ndarray (N, D)
    labels : ndarray (N,)
    skipped : sequence of (str, str)
        The image files left out, with their reasons: written beside the key.
    """
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    feature_path, label_path, key_path = cache_paths(cache_dir, model, dataset)
    # The key file goes last: a cache entry counts only once its key is there (and matches).
    try:
        key_path.unlink()
    except FileNotFoundError:
        pass
    atomic_save(feature_path, lambda handle: np.save(handle, features, allow_pickle=False))
    atomic_save(label_path, lambda handle: np.save(handle, labels, allow_pickle=False))
    # The files left out are beside the key, not in it: the rows follow from the data (its fingerprint is in the
    # key), and a run with bad_images="raise" must still see them to raise as a fresh run would.
    text = json.dumps({"version": CACHE_VERSION, "key": key, "shape": list(features.shape),
                       "digest": hashlib.sha1(features.tobytes()).hexdigest(),
                       "skipped": [list(pair) for pair in skipped]}, indent=1)
    atomic_save(key_path, lambda handle: handle.write(text.encode()))


def hub_weights(spec: Any) -> bool:
    """Whether ``pretrained`` matters for ``spec`` (part of its cache key): a timm:/torchvision: name, not
    ARCH@CHECKPOINT (built without hub weights whatever ``pretrained`` says) nor a local module.

    Parameters
    ----------
    spec : object
        A model's spec (:func:`~pedrank.workflow.select.models.load_model`).

    Returns
    -------
    bool
    """
    return spec_form(spec) in ("timm", "torchvision")


def key_needs_model(spec: Any) -> bool:
    """Whether the cache key of ``spec`` is known only once the model is loaded: its weights are fingerprinted by a
    hash of the loaded module's state_dict, as no file of the spec fingerprints them (an ``nn.Module`` or a
    callable, ``MODULE:CALLABLE``, ``path/file.py:CALLABLE``: the callable may read weights from a file of its own).

    Hub names (their weights follow from the name and ``pretrained``), a saved module's file, a local ``hf:``
    folder and ARCH@CHECKPOINT (the digests of their files) are keyed by their spec: a cached entry is read without
    loading them.

    Parameters
    ----------
    spec : object
        A model's spec.

    Returns
    -------
    bool
    """
    return spec_form(spec) not in ("timm", "torchvision", "hf", "checkpoint", "arch@checkpoint")


def spec_files(spec: Any) -> dict[str, str]:
    """Digests of the local files a spec names (a model's .py, a checkpoint, the files of a local ``hf:`` folder): an
    edited file misses the cache.

    Parameters
    ----------
    spec : object
        A model's spec.

    Returns
    -------
    dict of str to str
        ``{file as named in the spec (a folder's files under its name): its digest}``; empty for hub names and
        modules.
    """
    form = spec_form(spec)
    if form == "object":
        return {}
    files = {}
    text = str(spec)
    if form == "checkpoint":  # a saved module, whatever its file's suffix
        return {text: file_digest(Path(text))} if Path(text).is_file() else {}
    if form == "hf":
        folder = text.partition(":")[2]
        root = Path(folder)
        if root.is_dir():  # weights, config and tokenizer (a sentence-transformers folder's modules too)
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root)
                if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                    files[f"{folder}/{relative.as_posix()}"] = file_digest(path)
        return files
    architecture, at, weights = text.rpartition("@")
    parts = [architecture, weights] if form == "arch@checkpoint" else [text]
    for part in parts:
        where = part.rpartition(":")[0] if part.rpartition(":")[0].endswith(".py") else part
        path = Path(where)
        if path.suffix in (".py", *CHECKPOINT_SUFFIXES) and path.is_file():
            files[where] = file_digest(path)
    return files


def weights_changed(spec: Any, stored_key: dict[str, Any]) -> bool:
    """For ARCH@CHECKPOINT, the weight file's digest is in the preprocessing: a changed file misses.

    Parameters
    ----------
    spec : object
        A model's spec.
    stored_key : dict
        The key of a cache entry.

    Returns
    -------
    bool
        True when ``spec`` is ARCH@CHECKPOINT and the entry was not computed from the file as it is now.
    """
    if spec_form(spec) != "arch@checkpoint":
        return False
    weights = Path(str(spec).rpartition("@")[2])
    if not weights.is_file():
        return False
    return f"weights:{file_digest(weights)}" not in str(stored_key.get("preprocessing", ""))
