"""The house's plan, enforced: the layers of docs/architecture.md, and no import circle between pedrank's modules.

Only module-level imports count (what importing a module loads); imports inside a function are the documented way
for a lower layer to reach a higher one lazily (docs/architecture.md names the two that do).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "pedrank"

#: docs/architecture.md's layers, lowest first. A module may import its own layer and the layers below.
LAYERS = {
    "engine": {"_core", "_constants", "_validation", "_config", "_progress", "_memory", "_registry", "_kernels",
               "_array_kernels", "backend", "_mixture"},
    "scores": {"logme", "sfda", "gbc", "ped", "nleep", "parc", "hscore", "transrate", "leep", "nce", "etran",
               "pactran", "ncti", "knn", "lead", "itm", "scoring", "reference"},
    "workflow": {"rank", "select", "tune", "finetune", "evaluate", "io", "_recommendation", "_bootstrap",
                 "confidence", "_pool", "extract", "paper", "reproduce"},
    "front ends": {"cli", "demo", "plot"},
}
ORDER = list(LAYERS)


def _layer(module: str) -> str:
    """The layer of ``pedrank.a.b``: that of its first part (``reference.*`` are scores); the package itself is
    above everything (it only re-exports)."""
    if module == "pedrank":
        return "package"
    first = module.split(".")[1]
    for layer, members in LAYERS.items():
        if first in members:
            return layer
    raise AssertionError(f"{module} is in no layer of docs/architecture.md: add it there and to LAYERS")


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
        if name == "pedrank":
            continue
        for target in targets:
            if target == "pedrank" or ORDER.index(_layer(target)) > ORDER.index(_layer(name)):
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
    (fake / "reference").mkdir(parents=True)
    (fake / "__init__.py").write_text("from .rank import rank\n")
    (fake / "_validation.py").write_text("import numpy\nfrom .rank import RankTable\n")
    (fake / "rank.py").write_text("from ._validation import check\n\ndef f():\n    from . import cli\n")
    (fake / "cli.py").write_text("from .rank import rank\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    graph = _graph()
    assert graph["pedrank._validation"] == {"pedrank.rank"} and graph["pedrank.rank"] == {"pedrank._validation"}
    with pytest.raises(AssertionError, match=r"_validation \(engine\) imports pedrank.rank \(workflow\)"):
        test_no_module_imports_a_higher_layer_at_module_level()
    with pytest.raises(AssertionError, match="import circles"):
        test_no_import_circle_at_module_level()
