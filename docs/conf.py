"""Sphinx configuration for daskfit's documentation.

Build (warnings are errors, as ``tests/test_docs.py`` and so CI do; the output
and the doctree cache go outside the checkout, so a build writes nothing into
it)::

    python -m sphinx -W --keep-going -b html docs /tmp/daskfit-html -d /tmp/daskfit-doctrees

The API reference (``docs/api/``) is hand-written pages of ``autoclass`` /
``autofunction`` directives, so no stub files are generated into the source
tree; the command reference is rendered from the click application itself
(sphinx-click). No extension reaches the network (no intersphinx).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect

from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

import daskfit

logger = logging.getLogger(__name__)

project = "daskfit"
author = "the daskfit developers"
copyright = "the daskfit developers"
release = daskfit.__version__
version = release

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx_click",
    "sphinx_copybutton",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_theme_options = {"show_toc_level": 2}
html_title = f"daskfit {release}"

# --- autodoc -----------------------------------------------------------------
# Members in source order (the order a reader meets them in the code), the base
# classes named, and the signature in the heading only (the types are in the
# numpydoc "Parameters" sections).
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# Undocumented members are listed too, so that numpydoc's GL08 (below) fails the
# build on a public method without a docstring instead of autodoc leaving it out.
autodoc_default_options = {
    "show-inheritance": True,
    "undoc-members": True,
}


def skip_members(app, what, name, obj, skip, options):
    """Leave out members an estimator inherits from scikit-learn, and data attributes.

    ``get_params``, ``set_params`` and the metadata-routing methods
    (``set_fit_request``...) are scikit-learn's API, documented there; their
    docstrings cross-reference scikit-learn's own glossary, which this site
    does not have (the build would warn).

    Parameters
    ----------
    app, what, name, obj, skip, options
        Sphinx's ``autodoc-skip-member`` arguments.

    Returns
    -------
    bool or None
        ``True`` to skip the member, ``None`` to let autodoc decide.
    """
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] == "sklearn":
        return True
    # A class's data attributes (dataclass fields, class constants) are
    # documented in its numpydoc "Attributes" section (tests/test_docs.py
    # checks each is there); listed again they would be empty entries.
    if what == "class" and not (callable(obj) or isinstance(obj, property)):
        return True
    return None


def imported_from(module_name, attr):
    """Where ``module_name`` imports ``attr`` from (``from .x import attr``).

    Parameters
    ----------
    module_name : str
        A module that re-exports ``attr``, such as ``"daskfit.cli"``.
    attr : str
        The name as that module spells it.

    Returns
    -------
    tuple of (str, str) or None
        The module it comes from and its name there; ``None`` if it is not
        imported by a ``from ... import`` statement.
    """
    module = importlib.import_module(module_name)
    package = module.__name__ if hasattr(module, "__path__") else module.__package__
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            if (alias.asname or alias.name) == attr:
                source = importlib.util.resolve_name("." * node.level + (node.module or ""),
                                                     package)
                return source, alias.name
    return None


def constant_comment(qualified_name):
    """The ``#:`` comment above a constant's assignment, following re-exports.

    autodoc reads ``#:`` comments only in the module a directive names, and
    the public constants (``daskfit.cli.BAD_CONFIG``) are assigned, with their
    comment, in a private module and imported into the public one.

    Parameters
    ----------
    qualified_name : str
        The constant's public dotted name.

    Returns
    -------
    list of str or None
        The comment's lines, or ``None`` if no assignment has one.
    """
    module_name, _, attr = qualified_name.rpartition(".")
    for _ in range(10):  # a re-export chain is one or two modules long
        docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        if ("", attr) in docs:
            return [line for line in docs[("", attr)] if line.strip()]
        origin = imported_from(module_name, attr)
        if origin is None:
            return None
        module_name, attr = origin
    return None


def document_constants(app, what, name, obj, options, lines):
    """Give a documented constant its ``#:`` comment instead of its type's docstring.

    Without this, ``autodata`` of a re-exported ``int`` prints ``int``'s own
    docstring. A public constant without a comment is a warning, so the build
    (``-W``) fails as numpydoc's GL08 does for a function without a docstring.

    Parameters
    ----------
    app, what, name, obj, options, lines
        Sphinx's ``autodoc-process-docstring`` arguments; ``lines`` is
        replaced in place.
    """
    if what != "data" or getattr(obj, "__doc__", None) != getattr(type(obj), "__doc__", 0):
        return
    comment = constant_comment(name)
    if comment is None:
        logger.warning("%s has no '#:' comment above its assignment: document it there.", name)
        comment = []
    lines[:] = comment


def setup(app):
    """Connect the hooks above (Sphinx calls this for ``conf.py``).

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The application being built.
    """
    app.connect("autodoc-skip-member", skip_members)
    # Before numpydoc (priority 500) reads the lines.
    app.connect("autodoc-process-docstring", document_constants, priority=400)


# --- numpydoc ----------------------------------------------------------------
# Members are documented by ``:members:`` on each ``autoclass``; numpydoc's own
# member tables would need autosummary stub pages in the source tree.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Every documented object has a docstring (GL08), its sections parse as
# numpydoc (GL06 unknown section, GL07 order), and its Parameters section
# names exactly the signature's parameters (PR01 missing, PR02 unknown).
# Warnings are errors (-W), so a public object added without a docstring, or
# a parameter added without its line, fails the build. (Types and return
# sections are not checked: the docstrings use plain-language types.)
numpydoc_validation_checks = {"GL08", "GL06", "GL07", "PR01", "PR02"}
# Private helpers never reach the rendered pages; dunder methods are Python's.
numpydoc_validation_exclude = {r"\._[a-z]", r"\.__\w+__$"}

# --- MyST / myst-nb ----------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# No "--" to en-dash in prose: option names (`daskfit run --set`) must stay as typed.
smartquotes_action = "qe"

# --- copy buttons ------------------------------------------------------------
# Copy only the code of ">>> " / "$ " examples, not the prompts or the output.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# --- notebooks: the tutorials (owned by the notebooks' maintainers) ----------
# docs/tutorials/*.ipynb are symlinks to notebooks/*.ipynb: one copy, the one
# `python notebooks/refresh.py` keeps with full-size outputs for the repository
# page. The build executes every notebook afresh ("force": the committed outputs
# are never shown stale), in a temporary directory, against this checkout's
# daskfit; a cell that raises fails the build, naming the notebook (the cell's
# traceback is in the log file Sphinx names).
import os  # noqa: E402
from pathlib import Path  # noqa: E402

# The notebooks read their size from DASKFIT_NOTEBOOK_ROWS (progress.ipynb:
# 2,000,000 rows by default); the site runs them small unless told otherwise.
os.environ.setdefault("DASKFIT_NOTEBOOK_ROWS", "20000")
# The kernel is a separate process: put this checkout first on its path.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(Path(__file__).resolve().parents[1])]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True  # the progress lines of a cell as one block, not one per write
nb_execution_timeout = 300  # seconds per cell; a cell takes a few at the docs' size
