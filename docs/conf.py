"""Sphinx configuration of pedrank's documentation site.

Build (tests/test_docs.py does the same, warnings as errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Needs the ``docs`` extra (``pip install ".[docs]"``: sphinx, numpydoc, myst-parser, sphinx-gallery) and an installed
pedrank:
the API reference imports the package, so the compiled core must be built (the docs do not put
``python/`` on ``sys.path``, which would bypass the build).
"""

from __future__ import annotations

import threadpoolctl

import pedrank

project = "pedrank"
author = "pedrank contributors"
copyright = "pedrank contributors"
version = release = pedrank.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",  # the docstrings are NumPy style (Parameters / Returns / Raises sections)
    "myst_parser",  # the prose pages are Markdown, moved from the README with their tables as they were
    "sphinx_gallery.gen_gallery",  # the gallery: examples/plot_*.py run at build time, with their output and figures
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Markdown: anchors for headings down to ####, so pages link to each other's sections ("page.md#section");
# dollar signs are not maths in these pages (shell variables such as $M).
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

# autodoc: members in source order; the signatures' type hints stay in the signature (numpydoc documents the
# types in the Parameters sections already, so "description" mode would print them twice).
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"

# numpydoc:
# - numpydoc_show_class_members = False: autodoc's :members: already documents each public method and
#   attribute; numpydoc's own member tables would list them a second time and need autosummary stub pages.
# - numpydoc_class_members_toctree = False: for the same reason (no autosummary toctree of members).
# - numpydoc_validation_checks = set(): numpydoc's docstring *style* checks (GL01 summary on the first line,
#   SA01 "See Also" present, EX01 "Examples" present, ...) are not run. pedrank's docstrings document every
#   parameter and its semantics, often in prose paragraphs with the authors' quirks; requiring every style rule
#   would make the docs build a style linter. Malformed sections (a parse error) still warn, and -W fails on them.
# - numpydoc_xref_param_type = False (numpydoc's default): parameter types are shown as written, not turned into
#   cross-references that would warn for every type outside this site (numpy.ndarray, torch.Tensor).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

# sphinx-gallery: every script in examples/ is run at each build (docs/auto_examples/ is generated and
# git-ignored), its printed output and its matplotlib figures put on its page.
# - filename_pattern ".*": every example runs (the default runs only names starting with "plot"; all of ours do,
#   but a page whose code is shown and never run could silently rot).
# - abort_on_example_error: an example that raises stops the build (it would otherwise become a page showing a
#   traceback, and -W would not catch it).
# - within_subsection_order by file name: the examples are numbered in reading order (plot_1_... to plot_5_...).
# - Values are strings, not classes: Sphinx pickles its configuration and warns (an error under -W) when a value
#   cannot be pickled.
# - A warm build reruns only the examples whose source changed; tests/test_docs.py passes
#   ``-D sphinx_gallery_conf.run_stale_examples=1`` so every example runs each time.
# - The examples run in this process with one BLAS thread (threadpoolctl, a dependency of pedrank): their arrays
#   have hundreds of rows, where OpenBLAS's threads cost more than they give, and on a loaded machine much more:
#   on 2 cores shared with other jobs, scikit-learn's logistic-regression probes of the demo example took 0.9 s
#   of CPU with OpenBLAS's default threads, 8.8 s with OPENBLAS_CORETYPE=Haswell (which tests/conftest.py sets for
#   the parity vectors, and the test's build inherits), and 0.1-0.2 s with one thread. pedrank's own calls set
#   their threads per call by its thread policy (pedrank.set_threads) and restore this limit after them.
_one_blas_thread = threadpoolctl.threadpool_limits(limits=1, user_api="blas")
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": ".*",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 0,
}

html_theme = "alabaster"
html_title = f"pedrank {release}"
html_static_path: list[str] = []


def _skip_sklearn_request_setters(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_<method>_request`` methods (metadata routing) of the estimators.

    scikit-learn adds them to every estimator class; their docstrings are scikit-learn's and cross-reference its
    own glossary and user guide (``meta-estimator``, ``metadata_routing``), which do not exist on this site and
    would fail the build under -W. They are scikit-learn's API, documented there, not pedrank's.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def _directive(obj) -> str:
    if isinstance(obj, type):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    return "autofunction" if callable(obj) else "autodata"


def _add_unlisted_exports(app, docname, source):
    """Give every public name that api.rst does not list its entry, at the ``.. unlisted-exports: MODULE`` markers.

    api.rst groups ``pedrank.__all__`` and ``pedrank.reference.__all__`` by hand (scores, ranking, errors, ...). A
    name exported later (a new score) gets its entry here until someone files it under its group, so the
    reference never silently misses a public name (tests/test_docs.py checks that every exported name has one).
    """
    if docname != "api":
        return
    import importlib
    import re

    text = source[0]
    for module_name in ("pedrank", "pedrank.reference"):
        marker = f".. unlisted-exports: {module_name}\n"
        module = importlib.import_module(module_name)
        listed = set(re.findall(rf"^\.\. auto\w+:: {re.escape(module_name)}\.(\w+)\s*$", text, flags=re.M))
        missing = [name for name in module.__all__ if name not in listed]
        block = ""
        if missing:
            block = "Not yet filed under a group above:\n\n" + "".join(
                f".. {_directive(getattr(module, name))}:: {module_name}.{name}\n"
                + ("   :no-value:\n" if _directive(getattr(module, name)) == "autodata" else "")
                for name in missing
            )
        text = text.replace(marker, block)
    source[0] = text


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_request_setters)
    app.connect("source-read", _add_unlisted_exports)
