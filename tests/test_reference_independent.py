"""pedrank.reference is written again from the spec, never imported from the fast path (issue 24).

The reference is the parity oracle of the compiled core and the torch backend: if it imported the fast path's
math, a bug there would sit on both sides of every parity test and never show. So a reference module may import
NumPy, SciPy, scikit-learn, the standard library and other reference modules; from the rest of pedrank it may
import only validation, constants, memory guards and the option checks below, each named with its reason.
This test reads the source (AST, every import, module level or inside a function) and refuses anything else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "python" / "pedrank" / "reference"
PACKAGE = "pedrank.reference"
#: pedrank and its layer packages: ``from <one of them> import x`` imports the module x
PACKAGES = ("pedrank", PACKAGE, "pedrank._engine", "pedrank.scores", "pedrank.workflow", "pedrank.frontends")

#: Whole modules a reference may import from: no score math lives there.
ALLOWED_MODULES = {
    "pedrank._engine.validation": "argument and input validation (check_*), label encoding, to_numpy, the errors",
    "pedrank._engine.constants": "the numeric constants of the spec (floors, tolerances, iteration counts)",
}

#: Single names a reference may import from a module that also holds math, with the reason.
ALLOWED_NAMES = {
    # option and argument checks: they validate what the caller passed, they compute no score
    ("pedrank.scores.etran", "check_etran_options"): "option check (energy_fraction, log, regression)",
    ("pedrank.scores.gbc", "check_gbc_options"): "option check (n_components, covariance)",
    ("pedrank.scores.knn", "check_knn_options"): "option check (k, distance, block_size, binary)",
    ("pedrank.scores.lead", "check_lead_options"): "option check (t, eta, n_per_class, hidden, classifier, C, "
    "random_state)",
    ("pedrank.scores.leep", "check_probabilities"): "input check: rows of source probabilities",
    ("pedrank.scores.nce", "encode_label_pair"): "input check: validates and encodes the two label arrays "
    "(_validation.check_labels); no math",
    ("pedrank.scores.nleep", "check_nleep_options"): "option check (components_per_class, variance_kept)",
    ("pedrank.scores.nleep", "check_nleep_memory"): "memory guard before the PCA and the mixture",
    ("pedrank.scores.nleep", "check_nleep_scale"): "input check: features too small for the mixture's covariance "
    "floor",
    ("pedrank.scores.pactran", "check_pactran_options"): "option check (prior, lda_factor, variance_factor, ...)",
    ("pedrank.scores.pactran", "check_probabilities"): "input check: rows of p(z | x) with probabilities=True",
    ("pedrank.scores.pactran", "check_unit_scale"): "option check (unit_scale: a bool, not with probabilities)",
    ("pedrank.scores.parc", "check_pair_classes"): "input check: refuses labels whose pairs are all (or none) "
    "in the same class",
    ("pedrank.scores.ped", "check_ped_options"): "option check (radius, elastic, time_step, exit_ratio, ...)",
    ("pedrank.scores.transrate", "check_normalization"): "option check (normalization)",
    # memory guards: both implementations refuse the same inputs before allocating (tests/test_robustness_memory)
    ("pedrank._engine.memory", "guard"): "memory guard before the metric runs",
    ("pedrank._engine.memory", "check_memory"): "memory guard (PARC's m x m matrices)",
    ("pedrank._engine.memory", "parc_bytes"): "memory estimate for that guard",
    ("pedrank._engine.memory", "format_bytes"): "formats the guard's message",
    # types and texts shared so that both implementations answer alike
    ("pedrank.scores.ped", "PEDResult"): "the result type pedrank.ped returns (a dataclass, no math)",
    ("pedrank.scores.logme", "LOGME_DEGENERATE"): "the text of LogME's refusal of degenerate features",
    # the package's wiring (pedrank/reference/__init__.py): which scores exist, and score(..., ped=...)
    ("pedrank.scores.registry", "scores"): "the list of scores, to expose each one's reference function",
    ("pedrank.scores.scoring", "METRICS"): "the names of the metrics",
    ("pedrank.scores.scoring", "build_score"): "score(): runs the given PED and metric functions; no math of its own",
}


def _absolute(module: str | None, level: int) -> str:
    """The absolute module of ``from <level dots><module> import ...`` written inside pedrank.reference."""
    if level == 0:
        return module or ""
    base = PACKAGE.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_pedrank(module: str) -> bool:
    return module == "pedrank" or module.startswith("pedrank.")


def _is_reference(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def imported_names(source: str, filename: str = "<source>") -> list[tuple[str, str | None, int]]:
    """(module, name, line) of every import of pedrank outside pedrank.reference in ``source``.

    ``name`` is None for ``import pedrank.x`` (the whole module). ``from .. import parc`` is the module
    ``pedrank.parc`` as a whole.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_pedrank(alias.name) and not _is_reference(alias.name):
                    found.append((alias.name, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level)
            if not _is_pedrank(module):
                continue
            for alias in node.names:
                if (node.module is None and module in ("pedrank", PACKAGE)) or module in PACKAGES[2:]:
                    whole = f"{module}.{alias.name}"  # from ..scores import parc: a module
                    if not _is_reference(whole):
                        found.append((whole, None, node.lineno))
                elif not _is_reference(module):
                    found.append((module, alias.name, node.lineno))
    return found


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """The imports of ``source`` that neither ALLOWED_MODULES nor ALLOWED_NAMES allows, as readable lines."""
    bad = []
    for module, name, line in imported_names(source, filename):
        if module in ALLOWED_MODULES:
            continue
        if name is not None and (module, name) in ALLOWED_NAMES:
            continue
        what = f"import {module}" if name is None else f"from {module} import {name}"
        bad.append(f"{filename}:{line}: {what}")
    return bad


REFERENCE_FILES = sorted(REFERENCE_DIR.glob("*.py"))


def test_every_reference_module_is_checked():
    names = {path.stem for path in REFERENCE_FILES}
    assert {"__init__", "pactran", "parc", "ped", "etran", "logme", "sfda", "gbc"} <= names


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda path: path.name)
def test_reference_imports_no_math_from_the_fast_path(path):
    bad = forbidden_imports(path.read_text(encoding="utf-8"), path.name)
    assert not bad, (
        "pedrank.reference must write its math again from spec/ALGORITHMS.md, not import it from the fast "
        "path (only validation, constants, memory guards and the option checks of ALLOWED_NAMES):\n"
        + "\n".join(bad)
    )


def test_every_allowed_name_exists_and_is_used():
    """A stale entry would allow an import nobody makes; a missing one would make the test above lie."""
    import importlib

    used = set()
    for path in REFERENCE_FILES:
        for module, name, _ in imported_names(path.read_text(encoding="utf-8"), path.name):
            used.add((module, name))
    for module, name in ALLOWED_NAMES:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name} no longer exists"
        assert (module, name) in used, f"ALLOWED_NAMES lists {module}.{name}, which no reference imports"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ..scores.parc import check_pair_classes, parc_inputs",
         ["x.py:1: from pedrank.scores.parc import parc_inputs"]),
        ("from ..scores.ped import run_ped_loop", ["x.py:1: from pedrank.scores.ped import run_ped_loop"]),
        ("def f():\n    from pedrank.scores.pactran import gmm_posteriors", [
            "x.py:2: from pedrank.scores.pactran import gmm_posteriors"]),
        ("import pedrank.scores.etran", ["x.py:1: import pedrank.scores.etran"]),
        ("import pedrank", ["x.py:1: import pedrank"]),
        ("from ..scores import parc", ["x.py:1: import pedrank.scores.parc"]),
        ("from pedrank import etran", ["x.py:1: from pedrank import etran"]),
        ("from .._engine.kernels import select_kernels",
         ["x.py:1: from pedrank._engine.kernels import select_kernels"]),
        # allowed: another reference module, validation, constants, an option check, third-party code
        ("from .pactran import pac_gauss\nfrom . import ped\nimport pedrank.reference.parc", []),
        ("from .._engine.validation import check_int\nfrom .._engine.constants import PED_SCALE_FLOOR", []),
        ("from ..scores.etran import check_etran_options\nimport numpy as np\nfrom scipy import linalg", []),
    ],
)
def test_the_checker_sees_every_form_of_import(source, expected):
    assert forbidden_imports(source, "x.py") == expected
