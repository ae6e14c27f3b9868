"""Every ```python example of the user guide runs as written.

The guide's ``>>>`` examples are doctests (pytest collects ``docs/**/*.md``);
its longer ```python examples are scripts, run here one by one, each in a
fresh namespace and a temporary working directory, on small in-process data
(no cluster), so a page never shows code that the current API rejects.

An example that cannot run here says so on the line before its fence with a
MyST comment, ``% not run here: <why>`` (for example, the GLM guide's snippet,
which ``tests/test_guide_glm.py`` runs on simulated policies, or a snippet
that needs a scheduler service); the reason is required.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).parent.parent / "docs" / "guide"
#: The pages whose examples this test owns (deployment.md has its own tests).
PAGES = ("estimators", "solvers", "strategies", "overfitting", "glm", "pipelines", "errors")
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"^% not run here: \S")


def examples():
    """``(page, line, code)`` of every ```python block not marked as not run."""
    found = []
    for page in PAGES:
        text = (GUIDE / f"{page}.md").read_text()
        for match in FENCE.finditer(text):
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if SKIP.match(before):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append(pytest.param(page, match.group(1), id=f"{page}.md:{line}"))
    return found


@pytest.mark.parametrize(("page", "code"), examples())
def test_guide_example_runs(page, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    names = {"__name__": f"guide_{page}"}
    exec(compile(code, f"docs/guide/{page}.md", "exec"), names)
    capsys.readouterr()  # the examples print; what they print is for the reader


def test_every_page_has_examples_and_skips_say_why():
    """No page silently loses its examples, and a skip always names its reason."""
    for page in PAGES:
        text = (GUIDE / f"{page}.md").read_text()
        assert "```python" in text or "```pycon" in text, page
        for line in text.splitlines():
            if line.startswith("% not run"):
                assert SKIP.match(line), f"{page}.md: {line!r} gives no reason"
