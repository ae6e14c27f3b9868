"""Sphinx configuration for daskfit's documentation.

Build (warnings are errors, as CI does)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import daskfit

project = "daskfit"
author = "the daskfit developers"
release = daskfit.__version__
version = release

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "pydata_sphinx_theme"
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"

# --- notebooks: the tutorials (owned by the notebooks' maintainers) ----------
# docs/tutorials/*.ipynb are symlinks to notebooks/*.ipynb: one copy, the one
# `python notebooks/refresh.py` keeps with full-size outputs for the repository
# page. The build executes every notebook afresh ("force": the committed outputs
# are never shown stale), in a temporary directory, against this checkout's
# daskfit; a cell that raises fails the build, naming the notebook (the cell's
# traceback is in the log file Sphinx names). These lines override the
# skeleton's nb_execution_mode = "off" above.
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
