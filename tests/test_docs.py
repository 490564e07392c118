"""The documentation site builds: ``python -m sphinx -W --keep-going -b html docs <tmp>``, warnings as errors.

The API reference is generated from the docstrings (autodoc + numpydoc), so a docstring that numpydoc cannot
parse, a broken cross-reference between pages or a page left out of the table of contents fails this test. Skipped
only when Sphinx (or the extensions docs/conf.py names) is not installed: ``pip install ".[docs]"`` installs them,
and the ``test`` extra includes them. About 10 s on 2 busy cores.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

#: The packages docs/conf.py needs (import name -> the pip name in the docs extra).
REQUIRED = {"sphinx": "sphinx", "numpydoc": "numpydoc", "myst_parser": "myst-parser"}


def _missing() -> list[str]:
    return [pip for module, pip in REQUIRED.items() if importlib.util.find_spec(module) is None]


@pytest.mark.skipif(bool(_missing()), reason=f"the docs extra is not installed (missing: {', '.join(_missing())}); "
                    "pip install '.[docs]' to build the documentation")
def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(DOCS), str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert result.returncode == 0, f"sphinx failed (warnings are errors):\n{result.stdout}\n{result.stderr}"
    pages = {path.stem for path in out.glob("*.html")}
    expected = {"index", "api", "architecture", "scores", "choosing", "confidence", "workflow", "cli", "parity",
                "robustness", "performance", "zoo"}
    assert expected <= pages, expected - pages
    api = (out / "api.html").read_text(encoding="utf-8")
    # every public name has its entry in the API reference, generated from its docstring
    import pedrank
    import pedrank.reference

    for name in pedrank.__all__:  # evaluate and select are documented under their modules (same names)
        assert f'id="pedrank.{name}"' in api or f'id="pedrank.workflow.{name}.{name}"' in api, name
    for name in pedrank.reference.__all__:
        assert f'id="pedrank.reference.{name}"' in api, name
    for module in ("io", "evaluate", "tune", "select", "finetune", "confidence"):
        assert f'id="module-pedrank.workflow.{module}"' in api, module


def test_readme_links_into_the_docs_resolve():
    # README.md is short and points into docs/ for everything moved there: every such link names a file that exists.
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|rst))(?:#[\w-]+)?\)", text)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        assert (REPO / link).is_file(), link
