"""Execute the notebooks top to bottom and write their outputs back into the ``.ipynb`` files.

The notebooks are committed with their outputs so that a repository page shows
them, plots included. After editing a notebook (or code it shows), refresh it
from the repository root::

    python notebooks/refresh.py                  # every notebook in notebooks/
    python notebooks/refresh.py quickstart       # only notebooks/quickstart.ipynb

Each notebook runs in a fresh kernel whose working directory is a new
temporary directory, against this checkout's ``daskfit`` (its root is put
first on ``PYTHONPATH``), at the notebooks' full sizes (a
``DASKFIT_NOTEBOOK_ROWS`` in the environment is ignored). A cell that raises
stops the refresh and leaves the file untouched. The fingerprint of the code
cells' sources is stored in the notebook's metadata; ``tests/test_notebooks.py``
compares it with the current sources, so a cell edited without a refresh fails
the tests.

``--rows N`` runs the notebooks at ``DASKFIT_NOTEBOOK_ROWS=N`` (the size the
docs build uses) and writes nothing: small outputs are never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent
ROOT = NOTEBOOKS.parent
#: The environment variable that shrinks the notebooks' data (read by the notebooks).
ROWS_VARIABLE = "DASKFIT_NOTEBOOK_ROWS"
#: Where in a notebook's metadata the fingerprint lives.
METADATA_KEY = "daskfit"
#: The command that refreshes the notebooks, for messages that ask for it.
COMMAND = "python notebooks/refresh.py"


def code_fingerprint(notebook):
    """SHA-256 of the notebook's code cells' sources, in order.

    Parameters
    ----------
    notebook : nbformat.NotebookNode

    Returns
    -------
    str
        Hex digest; changes when a code cell is edited, added, removed or moved.
    """
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources).encode("utf-8")).hexdigest()


def kernel_environment(rows):
    """Environment for the kernel: this checkout's daskfit, the requested size.

    Parameters
    ----------
    rows : int or None
        ``DASKFIT_NOTEBOOK_ROWS`` for the kernel; None removes it (full size).

    Returns
    -------
    dict
    """
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + paths)
    # The kernel must draw figures as inline PNG outputs, whatever backend the
    # caller's shell selects (MPLBACKEND=Agg would leave the plot cells empty).
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.pop(ROWS_VARIABLE, None)
    if rows is not None:
        env[ROWS_VARIABLE] = str(rows)
    return env


def check_nothing_left(workdir, name):
    """Raise if a notebook left files in the working directory it ran in.

    Parameters
    ----------
    workdir : path-like
        The directory the kernel ran in (empty when it started).
    name : str
        The notebook, for the message.

    Raises
    ------
    RuntimeError
        Naming the files: a notebook must write only into a temporary
        directory of its own, so that running it next to the repository's
        files (as Jupyter does) leaves nothing behind.
    """
    left = sorted(os.listdir(workdir))
    if left:
        raise RuntimeError(f"{name} wrote {', '.join(left)} into its working directory; a "
                           "notebook must write only into a temporary directory of its own "
                           "(tempfile.mkdtemp) and remove it in its last cell.")


def execute(path, *, rows=None, timeout=1800):
    """Run one notebook top to bottom in a temporary directory; return it executed.

    Parameters
    ----------
    path : path-like
        The ``.ipynb`` file (not modified).
    rows : int, optional
        ``DASKFIT_NOTEBOOK_ROWS`` for the kernel (default: the notebook's full size).
    timeout : float, default=1800
        Seconds one cell may run before the refresh fails.

    Returns
    -------
    nbformat.NotebookNode
        With fresh outputs, execution counts 1..n and the code fingerprint in
        ``metadata["daskfit"]``.

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        When a cell raises (the notebook is not returned, nothing is written).
    RuntimeError
        When the notebook left files in its working directory: notebooks
        write only into temporary directories of their own, so running one
        next to the repository's files leaves nothing behind.
    """
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="daskfit-notebook-") as workdir:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                record_timing=False,  # no timestamps: diffs show only real changes
                                resources={"metadata": {"path": workdir}})
        client.execute(env=kernel_environment(rows))
        check_nothing_left(workdir, Path(path).name)
    notebook.metadata[METADATA_KEY] = {"code_sha256": code_fingerprint(notebook),
                                       "refresh": COMMAND}
    return notebook


def selected(names):
    """The notebooks named (stems or file names), or all of them."""
    everything = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return everything
    by_stem = {p.stem: p for p in everything}
    unknown = [n for n in names if Path(n).stem not in by_stem]
    if unknown:
        raise SystemExit(f"No notebook {', '.join(unknown)} in {NOTEBOOKS}; "
                         f"there are: {', '.join(sorted(by_stem))}.")
    return [by_stem[Path(n).stem] for n in names]


def main(argv=None):
    """Command line: refresh the notebooks named (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: every notebook)")
    parser.add_argument("--rows", type=int, default=None,
                        help=f"run at {ROWS_VARIABLE}=ROWS and write nothing (a quick check)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds a cell may run (default: 1800)")
    args = parser.parse_args(argv)
    if args.rows is not None and args.rows < 1:
        parser.error("--rows must be a positive number of rows")
    total = time.perf_counter()
    for path in selected(args.names):
        start = time.perf_counter()
        notebook = execute(path, rows=args.rows, timeout=args.timeout)
        if args.rows is None:
            nbformat.write(notebook, path)
        done = "ran" if args.rows is not None else "refreshed"
        print(f"{done} {path.relative_to(ROOT)} in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"total {time.perf_counter() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
