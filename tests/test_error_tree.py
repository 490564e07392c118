"""One error tree: every error pedrank raises on purpose is a ``pedrank.PedrankError``.

* Invalid input is a ``PedrankValueError`` (a ``ValueError``), file errors included; the CLI's usage errors too.
* Running out of memory (detected before allocating) is ``InsufficientMemoryError`` (a ``MemoryError``).
* A missing optional dependency is ``MissingDependencyError`` (an ``ImportError``).

The source walk below fails on any new ``raise ValueError(...)`` (or other builtin exception) in the package, so
the tree cannot erode; the few internal exceptions allowed are listed with their reasons.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import pedrank
from pedrank import InsufficientMemoryError, MissingDependencyError, PedrankError, PedrankValueError

PACKAGE_DIR = Path(pedrank.__file__).resolve().parent

#: Builtin exception classes a ``raise`` may name, and why.
ALLOWED_BUILTINS = {
    "AssertionError": "an unreachable branch (a bug in pedrank, not a user error)",
    "NotImplementedError": "abstract methods of the Backend interface",
    "KeyboardInterrupt": "re-raised so Ctrl-C stops the work",
}

#: Allowed only inside ``__getattr__`` (Python's attribute protocol requires it).
GETATTR_ONLY = {"AttributeError"}

#: Foreign exception classes a ``raise`` may name, and why.
ALLOWED_FOREIGN = {
    "argparse.ArgumentTypeError": "argparse reports it as a usage error (exit status 2) with the option's name",
    "np.linalg.LinAlgError": "the torch Backend's cholesky mirrors NumPy's contract; its callers catch it",
}

#: Functions whose result a ``raise`` may raise: they return a PedrankError.
ALLOWED_FACTORIES = {"with_context", "bad_image_error", "forward_error"}  # the last two: pedrank.workflow.select


def _modules():
    yield pedrank
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="pedrank."):
        if info.name == "pedrank._core":
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError as exc:  # an optional dependency (torch) missing: its source is still walked below
            if not isinstance(exc, MissingDependencyError) and "torch" not in str(exc):
                raise


def _pedrank_error_classes():
    classes = {}
    for module in _modules():
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, PedrankError):
                classes[name] = value
    return classes


def _dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _source_files():
    return sorted(PACKAGE_DIR.rglob("*.py"))


def _bad_raises(path, error_classes):
    bad = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    in_getattr = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name in ("__getattr__", "__getattribute__")
        for node in ast.walk(function)
    }
    for node in sorted(ast.walk(tree), key=lambda node: getattr(node, "lineno", 0)):
        if not isinstance(node, ast.Raise) or node.exc is None:  # a bare `raise` re-raises
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        name = _dotted(target)
        where = f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno}: raise {ast.unparse(node.exc)[:90]}"
        if name is None:
            bad.append(f"{where} (cannot tell what is raised)")
        elif isinstance(getattr(builtins, name, None), type):
            if name not in ALLOWED_BUILTINS and not (name in GETATTR_ONLY and id(node) in in_getattr):
                bad.append(f"{where} (a builtin exception: raise PedrankValueError or a subclass instead)")
        elif name in ALLOWED_FOREIGN or name in ALLOWED_FACTORIES:
            continue
        elif name in error_classes:
            continue
        elif isinstance(node.exc, ast.Name) and name[0].islower():
            continue  # `raise error`: re-raising a caught exception
        else:
            bad.append(f"{where} (not a PedrankError subclass)")
    return bad


def test_the_package_raises_only_pedrank_errors():
    error_classes = _pedrank_error_classes()
    files = _source_files()
    assert len(files) > 30 and any(path.name == "rank.py" for path in files)
    bad = [line for path in files for line in _bad_raises(path, error_classes)]
    assert not bad, "raises outside the error tree:\n" + "\n".join(bad)


def test_the_source_walk_catches_a_builtin_raise(tmp_path):
    source = tmp_path / "pedrank" / "sample.py"
    source.parent.mkdir()
    source.write_text(
        "def f(x):\n"
        "    if x:\n"
        "        raise ValueError(f'x: found {x}')\n"
        "    raise TypeError\n"
        "def g():\n"
        "    raise PedrankValueError('x: fine')\n"
        "def h():\n"
        "    raise NotImplementedError\n"
        "def __getattr__(name):\n"
        "    raise AttributeError(name)\n"
        "def k():\n"
        "    raise AttributeError('k')\n"
    )
    global PACKAGE_DIR
    saved, PACKAGE_DIR = PACKAGE_DIR, source.parent
    try:
        bad = _bad_raises(source, {"PedrankValueError": PedrankValueError})
    finally:
        PACKAGE_DIR = saved
    assert len(bad) == 3 and "ValueError" in bad[0] and "TypeError" in bad[1] and ":12:" in bad[2], bad


def test_every_exception_class_of_the_package_is_a_pedrank_error():
    from pedrank.frontends.cli import UsageError
    from pedrank.workflow.evaluate import TruthFileError
    from pedrank.workflow.io import FeatureFileError

    public = [
        PedrankError,
        PedrankValueError,
        InsufficientMemoryError,
        MissingDependencyError,
        FeatureFileError,
        TruthFileError,
        UsageError,
    ]
    defined = [
        value
        for module in _modules()
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__.startswith("pedrank")
        and not issubclass(value, Warning)  # warnings (select's BadImageWarning) are not errors
    ]
    assert set(public) <= set(defined)
    for cls in set(defined):
        assert issubclass(cls, PedrankError), cls
    for cls in (PedrankValueError, FeatureFileError, TruthFileError, UsageError):
        assert issubclass(cls, PedrankValueError) and issubclass(cls, ValueError), cls
    assert issubclass(InsufficientMemoryError, MemoryError)
    assert issubclass(MissingDependencyError, ImportError)
    assert "PedrankError" in pedrank.__all__ and pedrank.PedrankError is PedrankError


def test_the_compiled_core_raises_pedrank_value_error():
    with pytest.raises(PedrankValueError, match="at least one row"):
        pedrank._core.covariance(np.zeros((0, 3)))
    with pytest.raises(PedrankValueError, match="labels"):
        pedrank._core.class_means(np.zeros((4, 3)), np.zeros(3, dtype=np.int64), 2)


def test_rank_names_the_model_and_keeps_the_file_error(tmp_path):
    from pedrank.workflow.io import FeatureFileError

    bad = tmp_path / "m_feature.npy"
    bad.write_text("not an array")
    with pytest.raises(FeatureFileError, match="model 'm'") as info:
        pedrank.rank({"m": bad}, np.arange(4) % 2)
    assert "model 'm'" in str(info.value) and str(bad) in str(info.value)
    assert info.value.path == bad


def test_rank_wraps_other_value_errors_as_pedrank_value_error():
    with pytest.raises(PedrankValueError, match=r"model 'm': .*labels"):
        pedrank.rank({"m": np.arange(12.0).reshape(4, 3)}, np.arange(5))


def test_every_user_error_of_the_public_api_is_a_pedrank_error(monkeypatch):
    features = np.random.default_rng(0).normal(size=(12, 3))
    labels = np.arange(12) % 3
    calls = [
        (lambda: pedrank.rank([features], labels), "pool must be a mapping of model names to features, found list"),
        (lambda: pedrank.rank({}, labels), "pool is empty"),
        (lambda: pedrank.rank({"m": features}, labels, metric="nope"), "metric: expected one of .*found 'nope'"),
        (lambda: pedrank.score(features, labels, "nope"), "metric: expected one of .*found 'nope'"),
        (lambda: pedrank.logme(features, labels, backend="nope"), "backend: expected one of .*found 'nope'"),
        (lambda: pedrank.sfda(features[:, :0], labels), r"features: found 0 feature columns \(shape \(12, 0\)\)"),
        (lambda: pedrank.evaluate({"a": 1.0}, {"b": 0.5}), r"accuracies has no value for 1 scored model\(s\): \['a'\]"),
    ]
    for call, message in calls:
        with pytest.raises(PedrankError, match=message):
            call()
    from pedrank._engine import memory as _memory

    monkeypatch.setenv(_memory.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(PedrankValueError, match=_memory.MEMORY_LIMIT_ENV):
        _memory.available_bytes()
    monkeypatch.setenv(_memory.MEMORY_LIMIT_ENV, "1000")
    with pytest.raises(InsufficientMemoryError, match=r"logme \(core\) on 2000 x 50 features .* only 1000 B") as info:
        pedrank.logme(np.random.default_rng(0).normal(size=(2000, 50)), np.arange(2000) % 2)
    assert isinstance(info.value, PedrankError) and isinstance(info.value, MemoryError)


def test_cli_usage_errors_exit_2_without_a_traceback(capsys):
    from pedrank.frontends.cli import main

    assert main(["evaluate", "missing_scores.csv", "--random", "-1"]) == 2
    assert "--random" in capsys.readouterr().err


def test_allowed_lists_name_real_things():
    assert all(isinstance(getattr(builtins, name), type) for name in ALLOWED_BUILTINS)
    assert argparse.ArgumentTypeError and np.linalg.LinAlgError
