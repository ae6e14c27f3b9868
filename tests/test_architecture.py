"""The layering of ARCHITECTURE.md holds: import-linter's contracts (pyproject.toml).

``lint-imports`` builds the import graph of ``daskfit`` (every import, also
those inside functions) and checks the contracts in ``[tool.importlinter]``:
the layers (no upward import, no cycle between layers), the numerics and the
engines importing nothing above them, the planner importing no estimator,
and nothing but the CLI importing the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")


def _lint(config):
    """Run import-linter on this checkout's ``daskfit`` with ``config``; (rc, report)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", _RUN, str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def test_import_contracts_are_kept():
    rc, report = _lint(ROOT / "pyproject.toml")
    assert rc == 0, f"An import breaks the layering (see ARCHITECTURE.md):\n{report}"
    assert "0 broken" in report and " kept" in report


def test_the_linter_sees_daskfits_imports(tmp_path):
    # A contract that must break (the estimators do use the planner): guards
    # against a configuration that silently analyses nothing.
    config = tmp_path / "broken.ini"
    config.write_text("[importlinter]\nroot_package = daskfit\n\n"
                      "[importlinter:contract:canary]\nname = canary\ntype = forbidden\n"
                      "source_modules = daskfit.estimators\n"
                      "forbidden_modules = daskfit.planner\n")
    rc, report = _lint(config)
    assert rc != 0 and "BROKEN" in report, report
