"""No daskfit module imports an underscore-prefixed name from another module.

A name starting with ``_`` is its module's own business: the module may
change or drop it without looking elsewhere. Importing a *private module*
(``from ._base import LinearModelBase``) is fine; taking a *private name*
out of a different module (``from ..estimators._base import _rows_per_block``)
is not: such a name is made public in its module or moved where it belongs.
The scan reads the source (every ``import`` statement, also inside
functions), so it costs milliseconds.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "daskfit"

#: (importing module, imported module, name) allowed anyway, with the reason.
#: Third-party private names daskfit needs and cannot get otherwise belong
#: here too, each with a comment.
ALLOWED = {
    # scikit-learn documents _safe_indexing in its API reference (sklearn.utils),
    # underscore and all; it indexes arrays, frames and lists alike.
    ("daskfit.model_selection._split", "sklearn.utils", "_safe_indexing"),
}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(importer, node):
    """The absolute module name of ``from X import ...`` in module ``importer``
    (a package's ``__init__`` spelled ``pkg.__init__``)."""
    if node.level == 0:
        return node.module
    package = importer.split(".")[:-1]   # level 1: the package holding the module
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_names(source, importer):
    """``(imported module, name)`` of each private name ``source`` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = resolve(importer, node)
            found += [(module, alias.name) for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def private_imports():
    """``(importer, imported module, name)`` of every private name taken across modules."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path) + (".__init__" if path.name == "__init__.py" else "")
        found += [(importer.removesuffix(".__init__"), module, name)
                  for module, name in private_names(path.read_text(), importer)]
    return found


def test_no_module_imports_a_private_name_of_another_module():
    offending = [entry for entry in private_imports() if entry not in ALLOWED]
    assert not offending, (
        "private names imported across modules (make them public in their module or move "
        f"them where they are used): {offending}")


def test_the_scan_sees_private_names_in_relative_and_nested_imports():
    source = ("from ..estimators._base import _rows_per_block, LinearModelBase\n"
              "def f():\n    from ._run import data_errors, _columns\n"
              "from . import __version__\n")
    assert private_names(source, "daskfit.model_selection._logistic_cv") == [
        ("daskfit.estimators._base", "_rows_per_block"),
        ("daskfit.model_selection._run", "_columns")]
    node = ast.parse("from ._base import x").body[0]
    assert resolve("daskfit.estimators.__init__", node) == "daskfit.estimators._base"
