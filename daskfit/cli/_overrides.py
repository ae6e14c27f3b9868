"""Overrides of configuration keys: ``DASKFIT_*`` environment variables and ``--set``.

Precedence, lowest first: the file, the environment, ``--set``. Both name a
key by its dotted path, ``section.key`` or deeper (``model.params.alpha``):

* ``--set model.params.alpha=0.5`` (repeatable); the value is read as a TOML
  value (``0.5``, ``true``, ``[1, 2]``, ``{ C = 1.0 }``, ``"text"``), and as
  a plain string when it is not one (``--set model.estimator=Lasso``).
* ``DASKFIT_MODEL__PARAMS__ALPHA=0.5``: the name after ``DASKFIT_``, with
  ``__`` (two underscores) for each dot, lower-cased; the value is read as
  for ``--set``. Only names containing ``__`` are overrides, so daskfit's
  other variables (``DASKFIT_MODEL_KEY``) are never mistaken for one. A
  part that differs from an existing key only in case is that key
  (``DASKFIT_MODEL__PARAMS__C`` sets ``C``).

Every applied override is recorded (:meth:`Overrides.record`: source, key,
and the value unless the key is secret-ish) in the run's ``metrics.json``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field

from ._exit import ConfigError, UsageProblem
from ._redact import MASK, redact, register_secrets

__all__ = ["ENV_PREFIX", "Override", "Overrides", "env_name", "parse_value"]

ENV_PREFIX = "DASKFIT_"
#: Keys (dotted paths) whose values are credentials, and the names that say a value is one.
SECRET_PREFIXES = ("data.storage_options",)
_SECRET_WORDS = re.compile(r"password|passwd|secret|token|credential|api_?key|access_?key",
                           re.IGNORECASE)


def parse_value(text):
    """``text`` as a TOML value (number, boolean, list, inline table, quoted string), else
    the text itself as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def env_name(key):
    """The environment variable that overrides the dotted ``key``."""
    return ENV_PREFIX + key.replace(".", "__").upper()


def is_secret(key):
    """Whether the dotted ``key`` holds a credential (its value is never shown)."""
    return key.startswith(SECRET_PREFIXES) or bool(_SECRET_WORDS.search(key))


@dataclass(frozen=True)
class Override:
    """One key set from outside the file: where from (``--set`` or the variable) and to what."""

    source: str        # "env" or "--set"
    origin: str        # the variable's name, or the --set argument's key
    key: tuple         # the dotted path, split
    value: object

    @property
    def dotted(self):
        return ".".join(self.key)

    def describe(self):
        """How an error message names this override (never its value)."""
        return f"--set {self.dotted}" if self.source == "--set" else f"environment {self.origin}"


@dataclass
class Overrides:
    """The overrides of one command: the environment's, then ``--set``'s (applied in order)."""

    items: list = field(default_factory=list)
    applied: list = field(default_factory=list)   # set by apply(): what was set, in order

    @classmethod
    def collect(cls, sets=(), environ=None):
        """Overrides from ``environ`` (default ``os.environ``) and ``--set`` arguments.

        Raises
        ------
        UsageProblem
            A ``--set`` argument without ``=`` or with fewer than two key parts.
        """
        environ = os.environ if environ is None else environ
        items = []
        for name in sorted(environ):
            rest = name[len(ENV_PREFIX):]
            if name.startswith(ENV_PREFIX) and "__" in rest:
                key = tuple(part.lower() for part in rest.split("__"))
                items.append(Override("env", name, key, parse_value(environ[name])))
        for text in sets:
            key, sep, value = text.partition("=")
            parts = tuple(p.strip() for p in key.split("."))
            if not sep or len(parts) < 2 or not all(parts):
                raise UsageProblem(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. "
                                   "--set model.params.alpha=0.5 or --set cv.folds=3")
            items.append(Override("--set", key.strip(), parts, parse_value(value.strip())))
        for item in items:
            if is_secret(item.dotted):   # no message or log may quote it from here on
                register_secrets(item.value)
        return cls(items)

    def apply(self, path, document, problems, parameters=None):
        """Set each override in the parsed ``document`` (in place), environment first.

        ``parameters(document)``: the parameter names of the estimator the
        document names (so ``...__PARAMS__C`` finds ``C``). An override that
        cannot be placed (its parent is a value, not a table) is appended to
        ``problems``. Returns ``{dotted key: override}`` of the keys set.
        """
        applied = {}
        for item in sorted(self.items, key=lambda o: o.source != "env"):
            params = parameters(document) if parameters and item.key[:2] == ("model", "params") \
                else ()
            key = _canonical(document, item.key, params)
            table = document
            for i, part in enumerate(key[:-1]):
                table = table.setdefault(part, {})
                if not isinstance(table, dict):
                    problems.append(ConfigError(path, ".".join(key[:i + 1]),
                                                f"is not a table, so {item.describe()} "
                                                "cannot set a key inside it"))
                    break
            else:
                table[key[-1]] = item.value
                applied[".".join(key)] = Override(item.source, item.origin, key, item.value)
        self.applied = list(applied.values())
        return applied

    def record(self):
        """The applied overrides for the run's metrics.json: source, variable/key, value
        (``***`` for a secret-ish key; other values with any registered secret masked)."""
        return [{"source": o.source, "origin": o.origin, "key": o.dotted,
                 "value": MASK if is_secret(o.dotted) else _redacted(o.value)}
                for o in self.applied]


def _redacted(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _canonical(document, key, parameters=()):
    """``key`` with each part spelled as an existing key that differs only in case
    (environment names are upper case; ``C`` is a parameter)."""
    from ._config import SCHEMA

    out, table, known = [], document, SCHEMA
    for part in key:
        names = list(table) if isinstance(table, dict) else []
        if out == ["model", "params"]:
            known = dict.fromkeys(parameters)
        names += [n for n in known if n not in names] if isinstance(known, dict) else []
        same = [n for n in names if n.lower() == part.lower()]
        part = part if part in names or len(same) != 1 else same[0]
        out.append(part)
        table = table.get(part) if isinstance(table, dict) else None
        known = known.get(part) if isinstance(known, dict) else None
    return tuple(out)
