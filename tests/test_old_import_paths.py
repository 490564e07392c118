"""The old flat import paths keep working after the move into layer packages (docs/architecture.md).

Each old name is an alias: importing it gives the very module of the new home, never a copy, and the package's
functions of the same name (``pedrank.rank``, ``pedrank.logme``) are not replaced by modules.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import pedrank
from pedrank import _aliases


@pytest.mark.parametrize("old, home", sorted(_aliases.MOVED.items()))
def test_an_old_name_is_the_new_module(old, home):
    assert importlib.import_module(old) is importlib.import_module(home)
    assert importlib.import_module(home).__spec__.name == home  # the alias leaves the module's own spec alone


def test_the_old_names_named_in_the_issue_work_in_a_fresh_interpreter():
    # A fresh process: the aliases of modules that importing pedrank does not load (tune, finetune, cli, plot) are
    # served on first import, and the functions that share a module's old name stay functions.
    script = (
        "import pedrank.tune, pedrank.io, pedrank.evaluate, pedrank.finetune, pedrank.cli, pedrank.plot\n"
        "from pedrank.tune import read_ped_config\n"
        "from pedrank._validation import PedrankValueError\n"
        "import pedrank.rank, pedrank.logme\n"
        "import pedrank\n"
        "assert callable(pedrank.rank) and not hasattr(pedrank.rank, '__path__') and pedrank.rank.__name__ == 'rank'\n"
        "assert pedrank.logme.__name__ == 'logme' and pedrank.evaluate.__name__ == 'evaluate'\n"
        "assert pedrank.tune.__name__ == 'pedrank.workflow.tune'\n"
        "assert PedrankValueError is pedrank.PedrankValueError\n"
        "assert callable(pedrank.backend.torch_kernels)\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "OK"


def test_monkeypatching_the_old_name_patches_the_module(monkeypatch):
    import pedrank.tune as old

    from pedrank.workflow import tune as new

    monkeypatch.setattr(old, "DEFAULT_GRID_MARKER_FOR_THIS_TEST", 1, raising=False)
    assert new.DEFAULT_GRID_MARKER_FOR_THIS_TEST == 1


def test_an_unknown_old_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError, match="pedrank.no_such_module"):
        importlib.import_module("pedrank.no_such_module")


def test_every_alias_points_at_an_existing_module():
    for home in _aliases.MOVED.values():
        assert importlib.util.find_spec(home) is not None, home
    assert pedrank.backend is importlib.import_module("pedrank._engine.backend")


def test_a_module_inside_an_old_package_name_is_the_new_module():
    # pedrank.select and pedrank.tune are packages now: their modules under the old names are the same objects
    script = (
        "import sys\n"
        "import importlib\n"
        "from pedrank.select import models as old\n"  # (import pedrank.select.models: pedrank.select is the function)
        "old_settings = importlib.import_module('pedrank.tune.settings')\n"
        "import pedrank.workflow.select.models as new, pedrank.workflow.tune.settings as new_settings\n"
        "assert old is new and old_settings is new_settings\n"
        "assert new.__spec__.name == 'pedrank.workflow.select.models'\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "OK"
