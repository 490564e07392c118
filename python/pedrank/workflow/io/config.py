"""PED config files: the JSON that ``pedrank tune`` writes and ``rank(..., ped=FILE)`` reads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.io.common import FeatureFileError, PathLike

__all__ = ["read_ped_config", "write_ped_config"]


def write_ped_config(path: PathLike, config: Mapping[str, Any]) -> Path:
    """Write a PED config (:meth:`pedrank.workflow.tune.TuneResult.config`) as indented JSON."""
    path = Path(path)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def read_ped_config(path: PathLike, metric: str) -> dict[str, Any] | bool:
    """The ``ped=`` value a config file gives ``metric``: False (PED off), True (defaults) or a dict of options.

    The file is JSON: either what :meth:`pedrank.workflow.tune.TuneResult.write_config` writes
    (``{"metrics": {metric: false | {...}}}``; a metric it does not list is an error) or a plain dict of PED options
    used for every metric.
    """
    from pedrank.scores.scoring import ped_options
    from pedrank.workflow.tune.settings import GRID_OPTIONS  # the tunable options; settings imports this module

    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(path, "no such PED config file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FeatureFileError(path, f"not a JSON PED config ({exc})") from exc
    if isinstance(data, Mapping) and "metrics" in data:
        table = data["metrics"]
        if not isinstance(table, Mapping):
            raise FeatureFileError(path, "'metrics' must map score names to false or a dict of PED options")
        if metric not in table:
            raise FeatureFileError(path, f"no PED setting for metric {metric!r}; it has {sorted(table)}")
        value = table[metric]
    else:
        value = data
    if value is None:
        value = False
    try:
        ped_options(value)
    except PedrankValueError as exc:
        raise FeatureFileError(path, f"metric {metric!r}: {exc}") from exc
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(GRID_OPTIONS))
        if unknown:
            raise FeatureFileError(path, f"metric {metric!r}: unknown PED option(s) {unknown}; expected some of "
                                         f"{list(GRID_OPTIONS)}")
        return dict(value)
    return bool(value)
