"""The notebooks in notebooks/ are committed executed, with the outputs of their current code;
the README's "Using it" snippet runs as a script.

The docs build (tests/test_docs.py; docs/conf.py's ``nb_execution_*``) executes
every notebook against the current code, at ``DASKFIT_NOTEBOOK_ROWS`` rows, and
fails on any error: that is where the notebooks run in CI. These tests check
the committed files that a repository page shows: executed top to bottom in one
session, no error among the outputs, figures present, and outputs that belong
to the code cells as they are now (a fingerprint that ``notebooks/refresh.py``
stores), so that editing a cell without refreshing fails here, naming the
command that refreshes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def load_refresh():
    """notebooks/refresh.py as a module (notebooks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("daskfit_notebooks_refresh",
                                                  ROOT / "notebooks" / "refresh.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


refresh = load_refresh()


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def stale(path, problem):
    return f"{path.name}: {problem}; run `{refresh.COMMAND} {path.stem}` and commit the result"


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def committed(request):
    """(path, the committed notebook as read from disk)."""
    return request.param, nbformat.read(request.param, as_version=4)


def test_there_are_notebooks_and_each_is_a_tutorial_page():
    """Every notebook is in the docs, through a symlink (one copy, never a stale duplicate)."""
    assert len(NOTEBOOKS) >= 4
    index = (ROOT / "docs" / "tutorials" / "index.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        page = ROOT / "docs" / "tutorials" / path.name
        assert page.is_symlink() and page.resolve() == path.resolve(), (
            f"docs/tutorials/{path.name} must be a symlink to ../../notebooks/{path.name}")
        assert re.search(rf"^{path.stem}$", index, re.M), f"{path.stem} not in the toctree"


def test_committed_notebook_was_executed_top_to_bottom_in_one_session(committed):
    path, notebook = committed
    counts = [cell.execution_count for cell in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), stale(
        path, f"execution counts {counts}, not 1..{len(counts)} (cells not run, or out of order)")


def test_committed_notebook_outputs_hold_no_error(committed):
    path, notebook = committed
    errors = [(cell.execution_count, out.get("ename")) for cell in code_cells(notebook)
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, stale(path, f"error outputs {errors}")


def test_committed_outputs_belong_to_the_current_code(committed):
    """A code cell edited, added, moved or removed since the last refresh fails here."""
    path, notebook = committed
    recorded = notebook.metadata.get(refresh.METADATA_KEY, {}).get("code_sha256")
    assert recorded == refresh.code_fingerprint(notebook), stale(
        path, "the code cells changed since their outputs were made" if recorded
        else "no fingerprint of the code that made its outputs")


def test_committed_notebook_shows_its_figures(committed):
    """A notebook that draws (matplotlib, ``.plot()``) carries the PNGs a repository page shows."""
    path, notebook = committed
    draws = any(re.search(r"matplotlib|\.plot\(", cell.source) for cell in code_cells(notebook))
    pngs = sum("image/png" in out.get("data", {}) for cell in code_cells(notebook)
               for out in cell.get("outputs", []))
    if not draws:
        pytest.skip(f"{path.name} draws no figure")
    assert pngs > 0, stale(path, "draws figures but carries no image/png output")


def test_refresh_runs_a_notebook_in_a_temporary_directory_against_this_checkout(tmp_path):
    """The refresh script's kernel: this checkout's daskfit, the size asked for, counts 1..n."""
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os, daskfit\nos.environ['DASKFIT_NOTEBOOK_ROWS']"),
        nbformat.v4.new_code_cell("daskfit.__file__"),
    ])
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    done = refresh.execute(path, rows=123, timeout=60)
    assert [cell.execution_count for cell in done.cells] == [1, 2]
    assert done.cells[0].outputs[0]["data"]["text/plain"] == "'123'"
    assert str(ROOT / "daskfit") in done.cells[1].outputs[0]["data"]["text/plain"]
    assert done.metadata["daskfit"]["code_sha256"] == refresh.code_fingerprint(notebook)
    assert os.listdir(tmp_path) == ["tiny.ipynb"]          # ran elsewhere, wrote nothing here


def test_refresh_refuses_a_notebook_that_leaves_files_where_it_ran(tmp_path):
    refresh.check_nothing_left(tmp_path, "tidy.ipynb")      # an empty directory passes
    (tmp_path / "report.html").write_text("x")
    with pytest.raises(RuntimeError, match="report.html"):
        refresh.check_nothing_left(tmp_path, "leaky.ipynb")


def test_code_fingerprint_changes_with_any_code_cell_but_not_with_markdown():
    cells = [nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_markdown_cell("text"),
             nbformat.v4.new_code_cell("a")]
    base = refresh.code_fingerprint(nbformat.v4.new_notebook(cells=cells))
    edited = [cells[0], nbformat.v4.new_markdown_cell("other text"), cells[2]]
    assert refresh.code_fingerprint(nbformat.v4.new_notebook(cells=edited)) == base
    for variant in ([nbformat.v4.new_code_cell("a = 2"), cells[2]], [cells[2], cells[0]],
                    [cells[0]], [cells[0], cells[2], nbformat.v4.new_code_cell("")]):
        assert refresh.code_fingerprint(nbformat.v4.new_notebook(cells=variant)) != base


def test_the_docs_build_executes_the_notebooks_small_and_fails_on_an_error(monkeypatch):
    """docs/conf.py: every notebook executed afresh, in a temporary directory, against this
    checkout, at a small size unless the environment sets one, and an error fails the build.

    (A scratch site with these settings and a cell that raises fails to build,
    naming the notebook; that takes a Sphinx run and a kernel, so it is checked
    by the full docs build of tests/test_docs.py rather than here.)
    """
    import runpy

    monkeypatch.setattr(os, "environ", dict(os.environ))   # conf.py sets the kernel's env
    os.environ.pop(refresh.ROWS_VARIABLE, None)
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    assert conf["nb_execution_mode"] == "force"
    assert conf["nb_execution_in_temp"] and conf["nb_execution_raise_on_error"]
    assert not conf.get("nb_execution_allow_errors", False)
    assert 0 < int(os.environ[refresh.ROWS_VARIABLE]) <= 50_000
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT.resolve())


def test_readme_snippet_runs_as_a_script_on_make_data_output(tmp_path):
    from daskfit.cli import main

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Using it"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    # What the comment in the snippet says to run (the command's defaults), small.
    with pytest.raises(SystemExit) as done:
        main(["make-data", str(tmp_path / "data" / "classification"), "--task", "classification",
              "--rows", "2000", "--features", "4", "--partition-rows", "500", "--no-progress"])
    assert done.value.code == 0
    script = tmp_path / "using_it.py"
    script.write_text(snippet)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Dask dashboard: http://127.0.0.1:" in res.stdout
    assert "[0 1]" in res.stdout                          # classes_
    # Without the __main__ guard every worker process re-ran the script and
    # failed with multiprocessing's bootstrapping error. (Distributed may log
    # a comm traceback while the cluster shuts down; that is not ours.)
    assert "bootstrapping phase" not in res.stderr
    assert "freeze_support" not in res.stderr
