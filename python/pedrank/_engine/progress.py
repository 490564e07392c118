"""Progress reporting over a loop: tqdm when it is installed, a plain stderr counter otherwise.

``progress=None`` (the default everywhere in pedrank) means "only when it helps": the bar appears after
``delay`` seconds and only on an interactive terminal, so short runs, pipes and test logs stay clean.
``True`` forces it on (to stderr), ``False`` turns it off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress"]

T = TypeVar("T")

_DEFAULT_DELAY = 1.0


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    enabled: bool | None = None,
    delay: float = _DEFAULT_DELAY,
) -> Iterator[T]:
    """Iterate over ``iterable`` while reporting progress on stderr.

    Parameters
    ----------
    iterable : iterable
        The work items.
    total : int, optional
        Number of items, when ``len(iterable)`` is not available.
    desc : str, optional
        A short label shown before the counter.
    enabled : bool or None, default None
        None: report only on an interactive terminal and only once the loop has run for ``delay`` seconds.
        True: always report (from the start). False: never.
    delay : float, default 1.0
        Seconds before the bar appears in the automatic mode.
    """
    if enabled is False:
        yield from iterable
        return
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    automatic = enabled is None
    if automatic and not _stderr_is_terminal():
        yield from iterable
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield from _stderr_counter(iterable, total, desc, delay if automatic else 0.0)
        return
    yield from tqdm(
        iterable,
        total=total,
        desc=desc,
        file=sys.stderr,
        delay=delay if automatic else 0.0,
        leave=False,
        dynamic_ncols=True,
    )


def _stderr_counter(iterable: Iterable[T], total: int | None, desc: str | None, delay: float) -> Iterator[T]:
    start = time.perf_counter()
    prefix = f"{desc}: " if desc else ""
    shown = False
    count = 0
    for item in iterable:
        yield item
        count += 1
        if time.perf_counter() - start >= delay:
            of_total = f"/{total}" if total is not None else ""
            sys.stderr.write(f"\r{prefix}{count}{of_total}")
            sys.stderr.flush()
            shown = True
    if shown:
        sys.stderr.write("\n")
        sys.stderr.flush()
