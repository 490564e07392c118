"""Old import paths, kept working: ``pedrank.tune``, ``pedrank.io``, ``pedrank._validation``, ... .

Until version 0.1 every module sat in one flat folder; users' code and pickles may hold those names. Each old name
is an alias of the module's new home (docs/architecture.md): importing it returns the very same module object, so
there is one copy of every module and monkeypatching either name patches both. ``pedrank.backend`` is also the
public name of the backends (``pedrank.backend.torch_kernels``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: old module name -> its home since the move into layer packages
MOVED = {
    "pedrank._array_kernels": "pedrank._engine.array_kernels",
    "pedrank._config": "pedrank._engine.config",
    "pedrank._constants": "pedrank._engine.constants",
    "pedrank._kernels": "pedrank._engine.kernels",
    "pedrank._memory": "pedrank._engine.memory",
    "pedrank._mixture": "pedrank._engine.mixture",
    "pedrank._progress": "pedrank._engine.progress",
    "pedrank._validation": "pedrank._engine.validation",
    "pedrank.backend": "pedrank._engine.backend",
    "pedrank._registry": "pedrank.scores.registry",
    "pedrank.scoring": "pedrank.scores.scoring",
    "pedrank.logme": "pedrank.scores.logme",
    "pedrank.sfda": "pedrank.scores.sfda",
    "pedrank.gbc": "pedrank.scores.gbc",
    "pedrank.ped": "pedrank.scores.ped",
    "pedrank.nleep": "pedrank.scores.nleep",
    "pedrank.parc": "pedrank.scores.parc",
    "pedrank.hscore": "pedrank.scores.hscore",
    "pedrank.transrate": "pedrank.scores.transrate",
    "pedrank.leep": "pedrank.scores.leep",
    "pedrank.nce": "pedrank.scores.nce",
    "pedrank.etran": "pedrank.scores.etran",
    "pedrank.pactran": "pedrank.scores.pactran",
    "pedrank.ncti": "pedrank.scores.ncti",
    "pedrank.knn": "pedrank.scores.knn",
    "pedrank.lead": "pedrank.scores.lead",
    "pedrank.rank": "pedrank.workflow.rank",
    "pedrank.select": "pedrank.workflow.select",
    "pedrank.tune": "pedrank.workflow.tune",
    "pedrank.finetune": "pedrank.workflow.finetune",
    "pedrank.evaluate": "pedrank.workflow.evaluate",
    "pedrank.io": "pedrank.workflow.io",
    "pedrank._recommendation": "pedrank.workflow.recommendation",
    "pedrank._bootstrap": "pedrank.workflow.bootstrap",
    "pedrank.confidence": "pedrank.workflow.confidence",
    "pedrank._pool": "pedrank.workflow.pool",
    "pedrank.extract": "pedrank.workflow.extract",
    "pedrank.paper": "pedrank.workflow.paper",
    "pedrank.reproduce": "pedrank.workflow.reproduce",
    "pedrank.cli": "pedrank.frontends.cli",
    "pedrank.demo": "pedrank.frontends.demo",
    "pedrank.plot": "pedrank.frontends.plot",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.spec = module.__spec__  # the import system overwrites __spec__ before exec_module; put it back there
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        home = _home(fullname)
        if home is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(home))


def _home(fullname: str) -> str | None:
    """The new home of an old name, or of a module inside an old package (``pedrank.select.models`` is
    ``pedrank.workflow.select.models``); None for any other name."""
    if fullname in MOVED:
        return MOVED[fullname]
    parent, _, child = fullname.rpartition(".")
    if parent.startswith("pedrank.") and (parent_home := _home(parent)) is not None:
        return f"{parent_home}.{child}"
    return None


def install(loaded: dict[str, ModuleType]) -> None:
    """Serve the old names: those whose module is already imported (``loaded``, by its new name) at once, because
    the import system would otherwise bind the module over the package's function of the same name (``pedrank.rank``
    is the function); the others when first imported."""
    for old, home in MOVED.items():
        if home in loaded:
            sys.modules.setdefault(old, loaded[home])
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        # first: a module inside an old package name would otherwise be found again, as a second copy, on the
        # package's __path__ by the ordinary path finder
        sys.meta_path.insert(0, _AliasFinder())
