"""The house's plan, enforced: the layers of docs/architecture.md, and no import circle between pedrank's modules.

Only module-level imports count (what importing a module loads); imports inside a function are the documented way
for a lower layer to reach a higher one lazily (docs/architecture.md names the two that do).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "pedrank"

#: docs/architecture.md's layers, lowest first: one package each (``reference`` sits beside the scores, the compiled
#: core under the engine). A module may import its own layer and the layers below.
LAYERS = {
    "engine": {"_engine", "_core"},
    "scores": {"scores", "reference"},
    "workflow": {"workflow"},
    "front ends": {"frontends"},
}
ORDER = list(LAYERS)
#: the package's own plumbing: it re-exports (``__init__``) and serves the old import paths (``_aliases``)
PACKAGE_LEVEL = {"pedrank", "pedrank._aliases", "pedrank.__main__"}


def _layer(module: str) -> str:
    """The layer of ``pedrank.a.b``: that of its package ``a``; the package level is above everything."""
    if module in PACKAGE_LEVEL:
        return "package"
    first = module.split(".")[1]
    for layer, members in LAYERS.items():
        if first in members:
            return layer
    raise AssertionError(f"{module} is in no layer of docs/architecture.md: put it in a layer's package")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("pedrank", *parts)).removesuffix(".__init__")
        found[name] = path
    return found


def _module_level_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The pedrank modules that importing ``name`` imports directly (statements outside functions and classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.If, ast.Try)):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name.startswith("pedrank"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                if not origin.startswith("pedrank"):
                    continue
                for alias in node.names:
                    candidate = f"{origin}.{alias.name}"
                    targets.add(candidate if candidate in modules or alias.name == "_core" else origin)

    visit(tree.body)
    targets.discard(name)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _module_level_imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    for name in _modules():
        _layer(name)


def test_no_module_imports_a_higher_layer_at_module_level():
    upward = []
    for name, targets in _graph().items():
        if name in PACKAGE_LEVEL:
            continue
        for target in targets:
            if target in PACKAGE_LEVEL or ORDER.index(_layer(target)) > ORDER.index(_layer(name)):
                upward.append(f"{name} ({_layer(name)}) imports {target} ({_layer(target)})")
    assert not upward, "imports against docs/architecture.md's layers:\n" + "\n".join(sorted(upward))


def test_no_import_circle_at_module_level():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def walk(node):
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target in graph and state.get(target) is None:
                walk(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            walk(node)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_checks_see_a_violation(tmp_path, monkeypatch):
    # The walk itself: an engine module importing the workflow at module level is reported.
    fake = tmp_path / "pedrank"
    for package in ("reference", "_engine", "workflow", "frontends"):
        (fake / package).mkdir(parents=True)
        (fake / package / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("from pedrank.workflow.rank import rank\n")
    (fake / "_engine" / "validation.py").write_text("import numpy\nfrom ..workflow.rank import RankTable\n")
    (fake / "workflow" / "rank.py").write_text(
        "from pedrank._engine.validation import check\n\ndef f():\n    from ..frontends import cli\n")
    (fake / "frontends" / "cli.py").write_text("from pedrank.workflow.rank import rank\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    graph = _graph()
    assert graph["pedrank._engine.validation"] == {"pedrank.workflow.rank"}
    assert graph["pedrank.workflow.rank"] == {"pedrank._engine.validation"}
    with pytest.raises(AssertionError, match=r"validation \(engine\) imports pedrank.workflow.rank \(workflow\)"):
        test_no_module_imports_a_higher_layer_at_module_level()
    with pytest.raises(AssertionError, match="import circles"):
        test_no_import_circle_at_module_level()


def _private_names_imported_across_modules() -> list[str]:
    """``from pedrank.x import _name`` (or ``from .x import _name``) anywhere in the package, module level or not: a
    module's underscored names are its own. The package's own plumbing (``_core``, ``_aliases``, ``__version__``)
    is not a module's private name."""
    found = []
    plumbing = {"_core", "_aliases", "__version__"}
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("pedrank")):
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name not in plumbing:
                        found.append(f"{name}:{node.lineno} imports {alias.name} from {node.module or '.'}")
    return found


def test_no_module_imports_another_modules_private_name():
    found = _private_names_imported_across_modules()
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def test_the_private_name_check_sees_one(tmp_path, monkeypatch):
    fake = tmp_path / "pedrank"
    (fake / "workflow").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "workflow" / "__init__.py").write_text("")
    (fake / "workflow" / "tune.py").write_text("def f():\n    from pedrank.workflow.rank import _where\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert _private_names_imported_across_modules() == [
        "pedrank.workflow.tune:2 imports _where from pedrank.workflow.rank"]


def test_the_architecture_page_names_every_module():
    # docs/architecture.md's tree is the map of the house: a module missing from it is a room nobody drew.
    page = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    tree = page[page.index("```text"):page.index("```", page.index("```text") + 7)]
    missing = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
               if path.name not in ("__init__.py", "__main__.py") and "reference" not in path.relative_to(PACKAGE).parts
               and path.stem.lstrip("_") not in tree and path.name not in tree]
    assert not missing, f"modules missing from docs/architecture.md's tree: {missing}"
