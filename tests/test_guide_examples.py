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


def examples(run=True):
    """``(page, code)`` of every ```python block to run (``run=False``: those marked not run)."""
    found = []
    for page in PAGES:
        text = (GUIDE / f"{page}.md").read_text()
        for match in FENCE.finditer(text):
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if bool(SKIP.match(before)) == run:
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


@pytest.mark.parametrize(("page", "code"), examples(run=False))
def test_guide_example_not_run_here_still_compiles(page, code):
    compile(code, f"docs/guide/{page}.md", "exec")


def fenced(page, lang):
    """The ```LANG blocks of a guide page, in order."""
    text = (GUIDE / f"{page}.md").read_text()
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def test_pipelines_page_shows_what_daskfit_check_prints(tmp_path, monkeypatch, capsys):
    """The page's pipeline file is valid and its bad file gives the problems shown, verbatim."""
    from daskfit.cli import main

    good, bad = fenced("pipelines", "toml")[:2]
    shown_bad, shown_good = fenced("pipelines", "text")[:2]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regression.toml").write_text(good)
    (tmp_path / "bad.toml").write_text(bad)
    for name, code, shown in (("regression.toml", 0, shown_good), ("bad.toml", 2, shown_bad)):
        with pytest.raises(SystemExit) as info:
            main(["check", name])
        out, err = capsys.readouterr()
        assert info.value.code == code, (name, out, err)
        assert (out + err).strip() == shown.strip(), name


def test_every_page_has_examples_and_skips_say_why():
    """No page silently loses its examples, and a skip always names its reason."""
    for page in PAGES:
        text = (GUIDE / f"{page}.md").read_text()
        assert "```python" in text or "```pycon" in text, page
        for line in text.splitlines():
            if line.startswith("% not run"):
                assert SKIP.match(line), f"{page}.md: {line!r} gives no reason"
