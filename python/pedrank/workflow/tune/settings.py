"""PED's settings as :func:`pedrank.workflow.tune.tune` compares them: the options a grid may vary and their
defaults, a grid turned into its list of settings, the settings' labels, and the config file that
:meth:`~pedrank.workflow.tune.result.TuneResult.write_config` writes and ``rank(..., ped=FILE)`` reads
(:func:`read_ped_config`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from typing import Any, Union

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.io.config import read_ped_config as read_ped_config

__all__ = ["PathLike", "PED_DEFAULTS", "GRID_OPTIONS", "DEFAULT_GRID", "CONFIG_FORMAT", "Setting", "setting_key",
           "grid_settings", "setting_label", "setting_options", "read_ped_config"]

#: A path given as text or as an ``os.PathLike``.
PathLike = Union[str, "os.PathLike[str]"]


#: PED's defaults (:func:`pedrank.ped`): the "default setting" of the report.
PED_DEFAULTS: dict[str, Any] = {"radius": 0.6, "elastic": 1.0, "time_step": 0.1, "exit_ratio": 0.5, "max_steps": 6}


#: The options a grid may vary (PED's scalar options).
GRID_OPTIONS = tuple(PED_DEFAULTS)


#: The default grid: the supplementary's k values (Table 1) times the radius coefficients 0.3 and 0.6 the authors
#: use, and 1.0.
DEFAULT_GRID: dict[str, tuple] = {"elastic": (0.6, 0.8, 1.0, 1.2, 1.5, 2.0), "radius": (0.3, 0.6, 1.0)}


#: Marks the file :meth:`TuneResult.write_config` writes.
CONFIG_FORMAT = "pedrank-ped-config"


Setting = Union[None, tuple]  # None: PED off; else a tuple of (option, value) pairs in GRID_OPTIONS order


def setting_key(options: Mapping[str, Any] | None) -> Setting:
    """The canonical key of a PED setting: every scalar option, defaults filled in; None for PED off.

    Parameters
    ----------
    options : mapping or None
        Some of :data:`GRID_OPTIONS` (None: PED off).

    Returns
    -------
    tuple of (str, number) or None
        Every option of :data:`GRID_OPTIONS`, in that order, as ``(name, value)`` pairs.

    Raises
    ------
    PedrankValueError
        An unknown option or a value PED does not take.
    """
    if options is None:
        return None
    unknown = sorted(set(options) - set(GRID_OPTIONS))
    if unknown:
        raise PedrankValueError(f"grid: unknown PED option(s) {unknown}; expected some of {list(GRID_OPTIONS)}")
    merged = {**PED_DEFAULTS, **options}
    from pedrank.scores.ped import check_ped_options

    check_ped_options(**merged)
    return tuple((name, int(merged[name]) if name == "max_steps" else float(merged[name])) for name in GRID_OPTIONS)


def grid_settings(grid: Any) -> list[Setting]:
    """A grid as a list of settings: a mapping of option -> values (their product) or a sequence of settings
    (dicts of options; False/None for PED off, True for the defaults).

    Parameters
    ----------
    grid : mapping, sequence or None
        ``{option: values}`` or a list of settings; None: :data:`DEFAULT_GRID`.

    Returns
    -------
    list
        The distinct settings (:func:`setting_key`), in the grid's order.

    Raises
    ------
    PedrankValueError
        An unknown option, an option without values, an entry that is not a setting, or no setting at all.
    """
    if grid is None:
        grid = DEFAULT_GRID
    settings: list[Setting] = []
    if isinstance(grid, Mapping):
        unknown = sorted(set(grid) - set(GRID_OPTIONS))
        if unknown:
            raise PedrankValueError(f"grid: unknown PED option(s) {unknown}; expected some of {list(GRID_OPTIONS)}")
        names = list(grid)
        values = []
        for name in names:
            candidates = grid[name]
            if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Iterable):
                candidates = [candidates]
            candidates = list(candidates)
            if not candidates:
                raise PedrankValueError(f"grid: no values for {name!r}")
            values.append(candidates)
        for combination in itertools.product(*values):
            settings.append(setting_key(dict(zip(names, combination))))
    elif isinstance(grid, Iterable) and not isinstance(grid, (str, bytes)):
        for entry in grid:
            if entry is False or entry is None:
                settings.append(None)
            elif entry is True:
                settings.append(setting_key({}))
            elif isinstance(entry, Mapping):
                settings.append(setting_key(entry))
            else:
                raise PedrankValueError(f"grid: expected dicts of PED options, True or False, found {entry!r}")
    else:
        raise PedrankValueError(f"grid: expected a mapping of option -> values or a list of settings, found {grid!r}")
    unique: list[Setting] = []
    for setting in settings:
        if setting not in unique:
            unique.append(setting)
    if not unique:
        raise PedrankValueError("grid: no settings")
    return unique


def setting_label(setting: Setting) -> str:
    """``off``, ``default``, or the options that differ from PED's defaults (``radius=0.3 elastic=1.2``).

    Parameters
    ----------
    setting : tuple or None
        A setting (:func:`setting_key`).

    Returns
    -------
    str
    """
    if setting is None:
        return "off"
    changed = [f"{name}={value:g}" for name, value in setting if value != PED_DEFAULTS[name]]
    return " ".join(changed) if changed else "default"


def setting_options(setting: Setting) -> dict[str, Any] | bool:
    """The setting as ``ped=`` accepts it: False for PED off, else the dict of options.

    Parameters
    ----------
    setting : tuple or None
        A setting (:func:`setting_key`).

    Returns
    -------
    dict or bool
    """
    return False if setting is None else dict(setting)
