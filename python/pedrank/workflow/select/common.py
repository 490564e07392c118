"""Small helpers every part of :func:`pedrank.select` uses: torch on demand, file-name-safe names, file digests,
stable descriptions of preprocessing objects, and the one-line reason a row gives for an error."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Union

from pedrank._engine.validation import MissingDependencyError, PedrankError

__all__ = ["PathLike", "require_torch", "safe_name", "safe_dataset", "file_digest", "describe", "short_reason"]

#: A path given as text or as an ``os.PathLike``.
PathLike = Union[str, "os.PathLike[str]"]


def require_torch() -> Any:
    """torch, imported when a model is first run.

    Returns
    -------
    module
        The ``torch`` module.

    Raises
    ------
    MissingDependencyError
        torch is not installed.
    """
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("select needs torch to run models (pip install torch)") from exc
    return torch


def safe_name(text: str) -> str:
    """A file-name-safe model name (underscores kept: the authors' layout splits on the last one).

    Parameters
    ----------
    text : str
        A model's (or row's) name.

    Returns
    -------
    str
        ``text`` with every run of other characters than letters, digits and ``_.@+-`` replaced by ``-``;
        ``"model"`` when nothing is left.
    """
    return re.sub(r"[^A-Za-z0-9_.@+-]+", "-", text).strip("-") or "model"


def safe_dataset(text: str) -> str:
    """The dataset part of ``{model}_{dataset}_feature.npy``: no underscore (the layout splits on the last one).

    Parameters
    ----------
    text : str
        A dataset's name.

    Returns
    -------
    str
        ``text`` with every run of other characters than letters, digits and ``.+-`` replaced by ``-``;
        ``"data"`` when nothing is left.
    """
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "data"


def file_digest(path: Path) -> str:
    """A SHA-1 of a file's size and bytes (of its first and last 8 MiB beyond 64 MiB): a changed file misses the
    cache.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    str
        The hex digest.
    """
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


def describe(value: Any) -> str:
    """A stable text for a preprocessing object (its repr, without memory addresses).

    Parameters
    ----------
    value : object
        A transform, a processor, a layer name, a model spec.

    Returns
    -------
    str
        ``repr(value)`` without its memory addresses (``at 0x...``), the same from one run to the next.
    """
    text = repr(value)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def short_reason(error: BaseException) -> str:
    """The reason a row gives for an error: its message's first line, after its type unless it is pedrank's own.

    Parameters
    ----------
    error : BaseException
        What was raised.

    Returns
    -------
    str
        At most 500 characters: ``"TypeName: first line"``, or the first line of a
        :class:`pedrank.PedrankError`'s message (already worded for the user).
    """
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    message = first if isinstance(error, PedrankError) else f"{type(error).__name__}: {first}"
    return message[:500]
