"""Rules for the tests themselves.

Every ``pytest.raises`` names the message it expects (``match=``): an exception class alone passes on the wrong
error (a ``ValueError`` from a typo in the test, from NumPy, or from another check than the one under test).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: ``pytest.raises`` calls allowed without ``match=``, as "file.py::function" -> why. Keep it short and say why for
#: each (e.g. an exception whose message is not ours and not stable); empty today.
ALLOWED_WITHOUT_MATCH: dict[str, str] = {}


def _is_pytest_raises(call: ast.Call, raises_names: set[str]) -> bool:
    function = call.func
    if isinstance(function, ast.Attribute):
        return function.attr == "raises" and isinstance(function.value, ast.Name) and function.value.id == "pytest"
    return isinstance(function, ast.Name) and function.id in raises_names


def _raises_without_match(path: Path) -> list[str]:
    """``file.py:line (function)`` of every ``pytest.raises(...)`` in ``path`` with no ``match`` keyword that
    ALLOWED_WITHOUT_MATCH does not list (``from pytest import raises`` counts too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    raises_names = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module == "pytest" for alias in node.names if alias.name == "raises"}
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if (isinstance(child, ast.Call) and _is_pytest_raises(child, raises_names)
                    and not any(keyword.arg == "match" for keyword in child.keywords)
                    and f"{path.name}::{name}" not in ALLOWED_WITHOUT_MATCH):
                found.append(f"{path.name}:{child.lineno} ({name})")
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_every_pytest_raises_names_the_message_it_expects():
    found = [where for path in sorted(TESTS.rglob("*.py")) for where in _raises_without_match(path)]
    assert not found, ("pytest.raises without match= (name the message the test expects, a stable fragment of it, "
                       "regex metacharacters escaped):\n" + "\n".join(found))


def test_the_allowed_list_names_only_calls_that_exist_and_says_why():
    for key, reason in ALLOWED_WITHOUT_MATCH.items():
        file, _, function = key.partition("::")
        assert (TESTS / file).is_file() and function, f"{key}: expected file.py::function of an existing file"
        assert len(reason) > 20, f"{key}: say why this pytest.raises cannot name its message"


def test_the_check_sees_a_raises_without_match(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import pytest\nfrom pytest import raises as r\n\n"
        "def test_a():\n"
        "    with pytest.raises(ValueError, match='x'):\n        pass\n"
        "    with pytest.raises(\n        ValueError,\n    ):\n        pass\n\n"
        "def test_b():\n"
        "    with r(KeyError):\n        pass\n"
        "    pytest.raises(TypeError, int, 'x')\n"
        "    with pytest.raises((KeyError, ValueError), match='y') as info:\n        pass\n")
    assert _raises_without_match(sample) == ["test_sample.py:7 (test_a)", "test_sample.py:13 (test_b)",
                                             "test_sample.py:15 (test_b)"]


def test_the_allowed_list_lets_a_listed_call_through(tmp_path, monkeypatch):
    sample = tmp_path / "test_sample.py"
    sample.write_text("import pytest\n\ndef test_a():\n    with pytest.raises(ValueError):\n        pass\n")
    monkeypatch.setitem(ALLOWED_WITHOUT_MATCH, "test_sample.py::test_a", "an example of an allowed call, here only")
    assert _raises_without_match(sample) == []
