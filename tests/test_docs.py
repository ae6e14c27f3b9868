"""The documentation site: every public object in the API reference, a warning-free build.

One Sphinx build (module-scoped: it is the slow part) with warnings as
errors, written into pytest's temporary directory; the tests read its
result. The ``>>>`` examples of ``docs/**/*.md`` run separately, as doctests
(``--doctest-glob`` in pyproject.toml).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_PAGES = sorted((DOCS / "api").glob("*.md"))

#: The packages whose ``__all__`` is the public API (issue 16: "every API object documented").
PUBLIC_MODULES = ("daskfit", "daskfit.estimators", "daskfit.model_selection",
                  "daskfit.overfitting", "daskfit.io", "daskfit.errors", "daskfit.cli")

#: ``.. autoclass:: daskfit.Ridge`` (reST, also inside MyST's eval-rst) or
#: ``{autoclass} daskfit.Ridge`` (a MyST directive), and sphinx-click's
#: ``.. click:: daskfit.cli:cli``.
DIRECTIVE = re.compile(
    r"(?:\.\.\s+|\{)(?:py:)?(?:auto)?(class|function|exception|data|module|method|attribute|click)"
    r"(?:::|\})[ \t]+(\S+)")


def sphinx_command(source, out, doctrees, builder="html"):
    """The build command of docs/conf.py's docstring, warnings as errors."""
    return [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
            str(source), str(out), "-d", str(doctrees)]


def checkout_env():
    """This checkout's daskfit first on the path, also for the Sphinx subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def git_status():
    """The checkout's changed, untracked and ignored paths; None outside a git checkout.

    Ignored paths count too (a build into ``docs/_build`` or a notebook cache
    is ignored by .gitignore but still written into the checkout); Python's
    ``__pycache__`` directories, which any import may create, do not.
    """
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return None
    return sorted(line for line in proc.stdout.splitlines() if "__pycache__" not in line)


def directive_targets():
    """(page, directive kind, dotted target) of every API directive in docs/api/."""
    return [(page.name, kind, target) for page in API_PAGES
            for kind, target in DIRECTIVE.findall(page.read_text(encoding="utf-8"))]


def resolve(target):
    """The object a directive's target names: ``a.b.C``, ``a.b.C.method`` or ``a.b:attr``."""
    if ":" in target:
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def short_name(target):
    return re.split(r"[.:]", target)[-1]


@pytest.fixture(scope="module")
def docs_build(tmp_path_factory):
    """Build the site once into a temporary directory; (process, html dir, status before, after)."""
    tmp = tmp_path_factory.mktemp("docs")
    before = git_status()
    proc = subprocess.run(sphinx_command(DOCS, tmp / "html", tmp / "doctrees"), cwd=ROOT,
                          env=checkout_env(), capture_output=True, text=True, timeout=600)
    return proc, tmp / "html", before, git_status()


def test_api_directives_name_real_objects():
    """A directive whose target moved or was renamed is caught here, by name."""
    targets = directive_targets()
    assert len(targets) > 40, targets
    unresolved = []
    for page, _, target in targets:
        try:
            resolve(target)
        except (ImportError, AttributeError):
            unresolved.append(f"{page}: {target}")
    assert not unresolved, f"API directives naming nothing: {unresolved}"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(module_name):
    """Each name of the module's ``__all__`` has a directive, under any public alias.

    ``daskfit.Ridge`` documents ``daskfit.estimators.Ridge`` too: the
    directive's last name must match and name the very same object.
    """
    module = importlib.import_module(module_name)
    documented = [(short_name(target), resolve(target)) for _, _, target in directive_targets()]
    missing = [name for name in module.__all__
               if not any(short == name and obj is getattr(module, name)
                          for short, obj in documented)]
    assert not missing, (f"{module_name}.__all__ names not in docs/api/*.md: {missing}; add an "
                         "autoclass/autofunction/autodata directive to the page of their group")


def public_data_attributes(cls):
    """Dataclass fields and class-level constants of ``cls`` and its daskfit bases."""
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != "daskfit":
            continue
        names |= {name for name, value in vars(klass).items()
                  if not (callable(value) or isinstance(value, (property, classmethod,
                                                                staticmethod))
                          # scikit-learn's set_*_request descriptors: its API, not ours
                          or type(value).__module__.split(".")[0] == "sklearn")}
    return sorted(name for name in names if not name.startswith("_"))


def test_every_data_attribute_of_a_documented_class_is_in_its_attributes_section():
    """docs/conf.py leaves data attributes to the "Attributes" section: each must be there."""
    from numpydoc.docscrape import ClassDoc

    missing = []
    for _, kind, target in directive_targets():
        cls = resolve(target)
        if kind not in ("class", "exception") or not isinstance(cls, type):
            continue
        doc = ClassDoc(cls, config={"show_class_members": False})
        listed = {name.strip() for entry in doc["Attributes"] for name in entry.name.split(",")}
        missing += [f"{target}.{name}" for name in public_data_attributes(cls)
                    if name not in listed]
    assert not missing, f"not in their class's Attributes section: {missing}"


def test_docs_build_with_warnings_as_errors(docs_build):
    proc, html, _, _ = docs_build
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-6000:])
    assert (html / "index.html").is_file()


def test_every_documented_object_is_on_a_built_page(docs_build):
    """The rendered API pages carry an anchor for every autodoc target (none silently empty)."""
    proc, html, _, _ = docs_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = "".join(page.read_text(encoding="utf-8") for page in (html / "api").glob("*.html"))
    anchor = {"module": "module-{}"}  # Sphinx's id of a module's target; others: the name
    missing = [target for _, kind, target in directive_targets()
               if kind != "click" and f'id="{anchor.get(kind, "{}").format(target)}"' not in built]
    assert not missing, missing
    # The command reference is rendered from the click application: every command is there.
    from daskfit.cli import cli
    cli_page = (html / "api" / "cli.html").read_text(encoding="utf-8")
    missing = [name for name in cli.commands if f'id="daskfit-{name}"' not in cli_page]
    assert not missing, f"commands missing from the CLI reference: {missing}"


def test_docs_build_writes_nothing_into_the_checkout(docs_build):
    _, _, before, after = docs_build
    if before is None:
        pytest.skip("not a git checkout: nothing to compare")
    assert after == before


def test_an_undocumented_public_object_fails_the_build(tmp_path):
    """numpydoc's checks and the ``#:`` rule of docs/conf.py turn missing docs into errors.

    A scratch project with docs/conf.py's settings documents a function without
    a docstring (GL08), a method without one (listed, not left out, so GL08
    sees it), one with an undocumented parameter (PR01) and a constant
    without a ``#:`` comment; the build must fail and name all four.
    """
    src = tmp_path / "src"
    src.mkdir()
    (src / "scratchmod.py").write_text(textwrap.dedent('''\
        """A module."""
        LIMIT = 3


        def undocumented(x):
            return x


        def half_documented(x, y):
            """Add.

            Parameters
            ----------
            x : int
            """
            return x + y


        class Thing:
            """A class."""

            def act(self):
                return 1
        '''))
    (src / "conf.py").write_text(f"exec(open({str(DOCS / 'conf.py')!r}).read())\n")
    (src / "index.rst").write_text("T\n=\n\n.. autofunction:: scratchmod.undocumented\n\n"
                                   ".. autofunction:: scratchmod.half_documented\n\n"
                                   ".. autoclass:: scratchmod.Thing\n   :members:\n\n"
                                   ".. autodata:: scratchmod.LIMIT\n")
    env = checkout_env()
    env["PYTHONPATH"] = os.pathsep.join([str(src), env["PYTHONPATH"]])
    # The checks run while reading the sources: no HTML needs writing ("dummy").
    proc = subprocess.run(sphinx_command(src, tmp_path / "out", tmp_path / "dt", "dummy"),
                          cwd=src, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "GL08" in proc.stderr and "scratchmod.undocumented" in proc.stderr, proc.stderr
    assert "scratchmod.Thing.act" in proc.stderr, proc.stderr
    assert "PR01" in proc.stderr and "scratchmod.half_documented" in proc.stderr, proc.stderr
    assert "scratchmod.LIMIT" in proc.stderr, proc.stderr


def test_the_test_extra_installs_the_docs_extra():
    """The README's install (``.[test]``) must bring what the docs build above needs."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert extras["docs"] and set(extras["docs"]) <= set(extras["test"])


def test_every_test_file_is_in_the_test_inventory():
    """docs/testing.md names every test file in a bullet, so the
    inventory a reader trusts cannot silently fall behind the suite."""
    bullets = [line for line in (ROOT / "docs" / "testing.md").read_text().splitlines()
               if line.startswith("- ")]
    missing = [path.name for path in sorted((ROOT / "tests").glob("test_*.py"))
               if not any(f"`tests/{path.name}`" in line for line in bullets)]
    assert not missing, f"add these to docs/testing.md: {missing}"
