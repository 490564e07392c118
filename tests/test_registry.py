"""The score registry: one declaration per score, read by every listing (pedrank._registry)."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pedrank
from pedrank import _core, reference
from pedrank._engine.array_kernels import CONTRACT, ArrayKernels
from pedrank._engine.kernels import KERNEL_NAMES, KernelSet
from pedrank.scores import registry as _registry

ROOT = Path(__file__).resolve().parent.parent


def test_every_listing_reads_the_registry():
    entries = _registry.scores()
    assert tuple(entries) == pedrank.METRICS == reference.METRICS
    for name, entry in entries.items():
        assert getattr(pedrank, name) is entry.function
        assert getattr(reference, name) is entry.reference_function()
        assert inspect.signature(entry.function).parameters.keys() - {"backend"} == (
            inspect.signature(entry.reference_function()).parameters.keys()
        ), name
    predictions = [name for name, entry in entries.items() if entry.inputs == "predictions"]
    assert predictions == ["leep", "nce"]


def test_every_registered_score_is_exported_by_name():
    # Explicit imports in pedrank/__init__.py (no loop over the registry): IDEs and type checkers see them.
    import ast

    tree = ast.parse((ROOT / "python/pedrank/__init__.py").read_text())
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    for name in _registry.scores():
        assert name in imported and name in pedrank.__all__, name
    assert "globals()" not in (ROOT / "python/pedrank/__init__.py").read_text()


def test_score_modules_are_found_by_their_reference_ports():
    names = _registry.score_module_names()
    assert set(names) == {path.stem for path in (ROOT / "python/pedrank/reference").glob("*.py")} - {"__init__"}
    modules = {entry.function.__module__ for entry in _registry.scores().values()}
    assert modules <= {f"pedrank.scores.{name}" for name in names}


def test_the_kernel_contract_is_stated_once():
    assert CONTRACT == KERNEL_NAMES
    assert isinstance(_core, KernelSet)
    assert isinstance(pedrank.backend.torch_kernels(), KernelSet) if _torch_available() else True
    assert all(hasattr(ArrayKernels, name) for name in KERNEL_NAMES)


def test_every_compiled_kernel_is_declared_with_its_fuzz_arguments():
    """A binding without a declaration would escape the fuzz harness: every kernel of _core is declared, and
    the declared argument names are the binding's own."""
    declared = _registry.kernel_arguments()
    not_kernels = {"set_blas", "set_eig_threads", "set_threads", "call_threads", "blas_backend", "blas_status",
                   "openblas_threads_local",
                   "num_threads", "_load_linalg"}
    compiled = {name for name in dir(_core) if callable(getattr(_core, name)) and not name.startswith("__")}
    assert compiled - not_kernels == set(declared)
    for kernel, specs in declared.items():
        signature = getattr(_core, kernel).__doc__.splitlines()[0]
        names = [spec[1] if len(spec) > 1 else spec[0] for spec in specs]
        bound = signature[signature.index("(") + 1: signature.index(")")]
        assert [part.split(":")[0].strip() for part in bound.split(",")] == names, kernel


def test_registration_is_checked():
    entry = _registry.scores()["logme"]
    with pytest.raises(pedrank.PedrankValueError, match="registered twice"):
        _registry.register(_registry.ScoreEntry(name="logme", function=lambda x, y: 0.0, reference=entry.reference))
    with pytest.raises(pedrank.PedrankValueError, match="unknown argument kind"):
        _registry.register(_registry.ScoreEntry(name="toy", function=lambda x, y: 0.0, reference="m:f",
                                                kernels={"toy": (("tensor",),)}))
    assert "toy" not in _registry.scores()


TOY = textwrap.dedent(
    '''
    """A toy score, added the way docs/architecture.md ("Adding a score") says: a module and its reference."""
    import numpy as np
    from pedrank._engine.kernels import select_kernels
    from pedrank._engine.validation import check_classification
    from pedrank.scores.registry import ScoreEntry, register


    def toy(features, labels, *, backend="auto"):
        checked, encoded, classes = check_classification(features, labels)
        kernels = select_kernels(checked, backend)
        counts, means = kernels.class_means(checked, encoded, classes.shape[0])
        return float(np.linalg.norm(np.asarray(means), axis=1).mean())


    register(ScoreEntry(name="toy", function=toy, reference="pedrank.reference.toy:toy", order=50))
    '''
)
TOY_REFERENCE = textwrap.dedent(
    '''
    import numpy as np
    from pedrank._engine.validation import check_classification


    def toy(features, labels):
        checked, encoded, classes = check_classification(features, labels)
        values = np.asarray(checked, dtype=np.float64)
        return float(np.mean([np.linalg.norm(values[encoded == c].mean(axis=0)) for c in range(len(classes))]))
    '''
)


def test_a_new_score_needs_only_its_module_its_reference_and_its_export(tmp_path):
    """Copy the Python package, add pedrank/scores/toy.py and pedrank/reference/toy.py and export it in
    pedrank/__init__.py, nothing else: the toy score is then in METRICS, pedrank.toy, pedrank.score, pedrank.rank,
    pedrank.reference and the CLI."""
    import shutil

    package = tmp_path / "pedrank"
    shutil.copytree(ROOT / "python/pedrank", package, ignore=shutil.ignore_patterns("__pycache__"))
    for built in Path(_core.__file__).parent.glob("_core*"):
        shutil.copy(built, package / built.name)
    (package / "scores" / "toy.py").write_text(TOY)
    (package / "reference" / "toy.py").write_text(TOY_REFERENCE)
    # the one line that exports it: pedrank/__init__.py names every public score explicitly
    init = package / "__init__.py"
    init.write_text(init.read_text() + "\nfrom pedrank.scores.toy import toy  # noqa: E402\n__all__.append(\"toy\")\n")
    script = textwrap.dedent(
        """
        import sys
        # an editable install's import hook would load the checkout's pedrank instead of the copy
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
        import numpy as np, pedrank, pedrank.reference
        assert pedrank.__file__.startswith(sys.argv[1]), pedrank.__file__
        rng = np.random.default_rng(0)
        labels = np.arange(90) % 3
        features = rng.normal(size=(90, 4)) + labels[:, None]
        assert "toy" in pedrank.METRICS and "toy" in pedrank.reference.METRICS
        value = pedrank.toy(features, labels)
        assert abs(value - pedrank.reference.toy(features, labels)) <= 1e-12 * abs(value)
        assert pedrank.score(features, labels, "toy") == value
        assert pedrank.score(features, labels, "toy", ped=True) != value
        table = pedrank.rank({"a": features, "b": features * 2}, labels, metric="toy")
        assert table.models[0] == "b", table
        print("OK", value)
        """
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("OK")


def test_memory_estimates_come_from_the_entries():
    entries = _registry.scores()
    for name in ("logme", "sfda", "gbc", "nleep", "parc"):
        assert entries[name].memory(50_000, 2048, 100, dtype_size=4, implementation="core") > 0, name
    assert entries["logme"].memory(50_000, 2048, 100, dtype_size=4, implementation="reference") > entries[
        "logme"].memory(50_000, 2048, 100, dtype_size=4, implementation="core")


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def test_torch_kernels_find_kernels_registered_with_a_score():
    pytest.importorskip("torch")
    import torch

    calls = []

    def double_sum(kernels, X, factor):
        calls.append(type(kernels).__name__)
        return float(kernels.backend.to_numpy(X).sum()) * factor

    entry = _registry.ScoreEntry(name="toy_torch", function=lambda x, y: 0.0, reference="m:f",
                                 array_kernels={"double_sum": double_sum})
    _registry.register(entry)
    try:
        kernels = pedrank.backend.torch_kernels()
        assert kernels.double_sum(torch.ones(3, 2), 2.0) == 12.0
        assert calls == ["ArrayKernels"]
        with pytest.raises(AttributeError, match="has no kernel 'not_a_kernel'"):
            kernels.not_a_kernel
    finally:
        _registry._SCORES.pop("toy_torch")
    assert np.isfinite(pedrank.logme(np.eye(6) + 1, np.arange(6) % 2))


@pytest.mark.parametrize("metric, pool_function", [("ncti", "ncti_pool"), ("etran", "etran_pool")])
def test_rank_uses_the_pool_step_of_pool_relative_scores(metric, pool_function):
    """NCTI's and ETran's authors scale each term over the pool: rank() gives their pool numbers, not the sum of
    one model's unscaled terms."""
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    pool = {f"m{i}": rng.normal(size=(300, 20)) + labels[:, None] * i * 0.3 for i in range(4)}
    table = pedrank.rank(pool, labels, metric=metric)
    import importlib

    expected = getattr(importlib.import_module(f"pedrank.{metric}"), pool_function)(pool, labels)
    assert table.scores == pytest.approx(expected.scores, rel=1e-12)
    assert table.models[0] == "m3"
    unscaled = {name: getattr(pedrank, metric)(features, labels) for name, features in pool.items()}
    assert table.scores != pytest.approx(unscaled)


def test_named_forms_work_wherever_a_metric_is_named(tmp_path, capsys):
    """'<metric>:<form>' names the quirk-free form in score, reference.score, rank and the CLI."""
    from pedrank.frontends import cli

    rng = np.random.default_rng(0)
    labels = np.arange(120) % 3
    features = np.hstack([rng.normal(size=(120, 10)) + labels[:, None], np.zeros((120, 200))])  # N < D
    exact = pedrank.logme(features, labels, exact_dimension=True)
    assert exact != pytest.approx(pedrank.logme(features, labels))
    assert pedrank.score(features, labels, "logme:exact") == exact
    assert reference.score(features, labels, "logme:exact") == pytest.approx(exact, rel=1e-10)
    table = pedrank.rank({"a": features, "b": features * 2}, labels, metric="logme:exact")
    assert table.scores["a"] == exact
    assert "logme:exact" in pedrank.scores.scoring.METRIC_NAMES and "gbc:exact" in pedrank.scores.scoring.METRIC_NAMES
    with pytest.raises(pedrank.PedrankValueError, match="contradicts the form"):
        pedrank.score(features, labels, "logme:exact", exact_dimension=False)
    with pytest.raises(pedrank.PedrankValueError, match="has no form"):
        pedrank.score(features, labels, "sfda:exact")
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}_d_feature.npy", features * (1 if name == "a" else 2))
        np.save(tmp_path / f"{name}_d_label.npy", labels)
    assert cli.main(["rank", str(tmp_path), "--metric", "logme:exact", "--json", "-"]) == 0
    assert f"{exact:.6f}"[:8] in capsys.readouterr().out
