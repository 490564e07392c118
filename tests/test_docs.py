"""The documentation site builds: ``python -m sphinx -W --keep-going -b html docs <tmp>``, warnings as errors.

The API reference is generated from the docstrings (autodoc + numpydoc), so a docstring that numpydoc cannot
parse, a broken cross-reference between pages or a page left out of the table of contents fails this test. The
gallery (sphinx-gallery) runs every script of examples/ during the build, and an example that raises stops it
(``abort_on_example_error``), so every example runs here; its page and its figures are checked below. Skipped
only when Sphinx (or the extensions docs/conf.py names) is not installed: ``pip install ".[docs]"`` installs them,
and the ``test`` extra includes them. Measured on 2 cores shared with other jobs: 30-40 s in all, of which the
examples take 12-16 s (docs/auto_examples/sg_execution_times.rst lists each); 21 s before the gallery.

sphinx-gallery writes the examples' pages into the source tree (docs/auto_examples/, git-ignored) and, in a warm
tree, reruns only the examples whose source changed; the build here passes ``run_stale_examples`` so that every
example runs each time.
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
REQUIRED = {"sphinx": "sphinx", "numpydoc": "numpydoc", "myst_parser": "myst-parser",
            "sphinx_gallery": "sphinx-gallery"}

#: The gallery's examples (examples/*.py, each a page of docs/auto_examples/): the demo, select on packaged
#: weights, PED's trajectory, tuning PED and the confidence of a ranking.
EXAMPLES = {"plot_1_demo", "plot_2_ped_trajectory", "plot_3_select", "plot_4_tune", "plot_5_confidence"}
#: Examples that draw their figures only with an optional package (they print that they skipped otherwise).
OPTIONAL = {"plot_3_select": "torch"}


def _missing() -> list[str]:
    return [pip for module, pip in REQUIRED.items() if importlib.util.find_spec(module) is None]


@pytest.mark.skipif(bool(_missing()), reason=f"the docs extra is not installed (missing: {', '.join(_missing())}); "
                    "pip install '.[docs]' to build the documentation")
def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         "-D", "sphinx_gallery_conf.run_stale_examples=1", str(DOCS), str(out)],
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
    _check_gallery(out)


def _check_gallery(out: Path) -> None:
    """The gallery's index links every example; each example has its page and drew at least one figure."""
    scripts = {path.stem for path in (REPO / "examples").glob("*.py")}
    assert EXAMPLES <= scripts, EXAMPLES - scripts
    gallery = out / "auto_examples"
    index = (gallery / "index.html").read_text(encoding="utf-8")
    assert 'href="auto_examples/index.html"' in (out / "index.html").read_text(encoding="utf-8")
    for stem in sorted(scripts):
        page = gallery / f"{stem}.html"
        assert page.is_file(), stem
        assert f'href="{stem}.html"' in index, stem
        html = page.read_text(encoding="utf-8")
        figures = list((out / "_images").glob(f"sphx_glr_{stem}_[0-9][0-9][0-9].png"))
        needs = OPTIONAL.get(stem)
        if needs is not None and importlib.util.find_spec(needs) is None:
            printed = [block.split("</pre>", 1)[0] for block in html.split('class="sphx-glr-script-out')[1:]]
            assert any(f"{needs} is not installed" in block for block in printed), stem  # it says why no figure
            continue
        assert figures, f"{stem} drew no figure"
        for figure in figures:
            assert figure.stat().st_size > 1000, figure
            assert figure.name in html, figure.name


def test_readme_links_into_the_docs_resolve():
    # README.md is short and points into docs/ for everything moved there: every such link names a file that exists.
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|rst))(?:#[\w-]+)?\)", text)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        assert (REPO / link).is_file(), link
