"""Every notebook in notebooks/ runs headless, top to bottom, without errors; so does the
README's "Using it" snippet, as a script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # progress.ipynb fits 2,000,000 rows (its committed outputs); a few thousand here.
    monkeypatch.setenv("DASKFIT_NOTEBOOK_ROWS", "20000")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [out for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors


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
