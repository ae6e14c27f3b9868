"""The run configuration: a TOML file, every key checked before any work.

Each key is declared once in :data:`SCHEMA` with its type, default, range
and meaning, and the rules between keys once in :data:`TOGETHER` and
:data:`CONFLICTS`; the checks below and the published JSON Schema
(:mod:`daskfit.cli._schema`) are both derived from these tables. Unknown
sections and keys are errors (a typo must not silently fall back to a
default in a scheduled job). Every problem is collected, not just the first
(:func:`check_raw`); :func:`load_config` raises them all at once, each
naming the file and the key (``runs.toml: [data.target] ...``), with exit
code ``BAD_CONFIG``. Relative paths are relative to the configuration file,
so a cron job works from any directory.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from pathlib import Path

from ._exit import ConfigError

__all__ = ["CONFLICTS", "Key", "SCHEMA", "TOGETHER", "check_raw", "did_you_mean",
           "load_config", "schema_help"]

FORMATS = ("csv", "parquet", "zarr")


@dataclass(frozen=True)
class Key:
    """One configuration key: accepted types, default, whether required, what it does.

    ``low``/``high`` bound a number (``low_open``: strictly above ``low``);
    ``items`` is the :class:`Key` every element of a list must satisfy and
    ``min_items`` the shortest list accepted.
    """

    types: tuple
    default: object = None
    required: bool = False
    doc: str = ""
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    items: "Key | None" = None
    min_items: int = 0


_str, _int, _num, _bool = (str,), (int,), (int, float), (bool,)
_list, _table = (list,), (dict,)
_column = Key(_str, doc="column name")

SCHEMA = {
    "data": {
        "path": Key(_str, required=True, doc="Parquet directory/glob, CSV glob or Zarr group; "
                                             "local path (relative to this file) or fsspec URL"),
        "format": Key(_str, doc="parquet, csv or zarr (default: from the path's extension)",
                      choices=FORMATS),
        "storage_options": Key(_table, {}, doc="fsspec storage options (credentials, endpoint)"),
        "target": Key(_str, required=True, doc="target column"),
        "features": Key(_list, doc="feature columns (default: every column but target/weight)",
                        items=_column, min_items=1),
        "categorical": Key(_list, doc="columns to one-hot encode (default: string, "
                                      "categorical and boolean columns)", items=_column),
        "sample_weight": Key(_str, doc="sample-weight column"),
        "offset": Key(_str, doc="offset column, added to the linear predictor (log exposure "
                                "for a rate); daskfit predict reads it too"),
        "blocksize": Key(_str + _int, "64MB", doc="CSV bytes per partition"),
    },
    "model": {
        "estimator": Key(_str, required=True, doc="daskfit estimator name, e.g. Ridge"),
        "params": Key(_table, {}, doc="estimator parameters, e.g. {alpha = 1.0}"),
        "standardize": Key(_bool, True, doc="centre and scale numeric features"),
    },
    "cv": {
        "folds": Key(_int, 5, doc="K-fold cross-validation and overfitting diagnosis "
                                  "(0 or 1: neither)", low=0),
        "scoring": Key(_str, doc="scikit-learn scorer name (default: the estimator's score)"),
        "random_state": Key(_int, 0, doc="seed of the shuffled folds"),
    },
    "overfitting": {
        "enabled": Key(_bool, True, doc="write the overfitting report (HTML, PNG)"),
        "param_name": Key(_str, doc="parameter of the validation curve (default: the "
                                    "estimator's regularisation strength)"),
        "param_range": Key(_list, doc="values of param_name to try",
                           items=Key(_num, doc="a value of param_name"), min_items=1),
        "train_sizes": Key(_list, doc="fractions of the training rows for the learning curve",
                           items=Key(_num, doc="a fraction of the training rows", low=0,
                                     low_open=True, high=1), min_items=1),
    },
    "output": {
        "dir": Key(_str, "runs", doc="runs are written to DIR/NAME-RUNID"),
        "name": Key(_str, doc="run name (default: the configuration file's stem)"),
    },
    "cluster": {
        "address": Key(_str, doc="scheduler address to attach to (tcp://host:8786); "
                                 "default: a loopback LocalCluster"),
        "n_workers": Key(_int, doc="LocalCluster workers (default: sized to the machine)", low=1),
        "threads_per_worker": Key(_int, doc="LocalCluster threads per worker", low=1),
        "memory_limit": Key(_str + _int, doc="LocalCluster memory limit per worker, e.g. '2GiB'"),
        "processes": Key(_bool, True, doc="LocalCluster workers as processes"),
        "dashboard_address": Key(_str + _int, "127.0.0.1:8787",
                                 doc="LocalCluster dashboard; a bare port binds 127.0.0.1"),
        "timeout": Key(_str + _int, "10s", doc="how long to wait for the scheduler"),
        "security": Key(_str, doc="'temporary': throw-away TLS certificates for the "
                                  "LocalCluster (the whole cluster speaks tls://)",
                        choices=("temporary",)),
        "tls_ca_file": Key(_str, doc="TLS: CA certificate (PEM path) of a remote scheduler"),
        "tls_client_cert": Key(_str, doc="TLS: this client's certificate (PEM path)"),
        "tls_client_key": Key(_str, doc="TLS: this client's private key (PEM path)"),
        "require_encryption": Key(_bool, False, doc="refuse any unencrypted (tcp://) "
                                                    "connection"),
    },
    "checkpoint": {
        "every": Key(_int, 0, doc="checkpoint the fit every N iterations (iterative solvers "
                                  "newton/lbfgs/gd/proximal; 0: never); `daskfit run --resume` "
                                  "continues a killed run from the last one", low=0),
    },
}

REQUIRED_SECTIONS = ("data", "model")
#: Keys whose values are credentials: never echoed in an error, masked in the saved copy.
SECRET_KEYS = ("data.storage_options",)
#: The [cluster] keys that are paths to PEM files (relative to the configuration file).
TLS_FILES = ("tls_ca_file", "tls_client_cert", "tls_client_key")

#: Keys of one section that go together: give all of them or none.
TOGETHER = (
    ("overfitting", ("param_name", "param_range"), "give both or neither"),
    ("cluster", TLS_FILES, "TLS needs all three PEM paths"),
)
#: (section, key, others, why): when ``key`` is given, none of ``others`` may be.
CONFLICTS = (
    ("cluster", "address", ("n_workers", "threads_per_worker", "memory_limit"),
     "applies to a LocalCluster only; drop it, or drop cluster.address"),
    ("cluster", "address", ("security",),
     "'temporary' certificates are for a LocalCluster; for a remote scheduler give the "
     "tls_* paths"),
    ("cluster", "security", TLS_FILES,
     "give certificate paths or security = 'temporary', not both"),
)


def schema_help():
    """Every section and key with its default, for ``--help`` and the README."""
    lines = []
    for section, keys in SCHEMA.items():
        lines.append(f"[{section}]")
        for name, key in keys.items():
            default = "required" if key.required else f"default {key.default!r}"
            lines.append(f"  {name}: {key.doc} ({default})")
    return "\n".join(lines)


def did_you_mean(name, choices):
    """`` Did you mean 'x'?`` for the closest of ``choices`` to a misspelt ``name``, or ``''``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    if not close:   # a case slip (alpha for Alpha) is too short for difflib to see
        close = [c for c in choices if str(c).lower() == str(name).lower()][:1]
    return f" Did you mean {close[0]!r}?" if close else ""


def load_config(path, overrides=None):
    """Read and check a configuration file; return ``{section: {key: value}}`` with defaults.

    ``overrides`` (:class:`~daskfit.cli._overrides.Overrides`) replace keys of
    the file (environment, then ``--set``). Only the file's own keys are
    checked here; :func:`daskfit.cli._validate.check_config` also checks the
    estimator and its parameters.

    Raises
    ------
    ConfigError
        Every problem at once (:class:`~daskfit.cli._validate.ConfigErrors`),
        each naming the file, the key and its line: unreadable TOML, unknown
        section or key, wrong type, value out of range, required key missing.
    FileNotFoundError
        The file does not exist.
    """
    from ._validate import check_config

    return check_config(path, overrides, model=False).config


def check_raw(path, raw, problems):
    """Check the parsed document ``raw`` key by key; return the configuration with defaults.

    Every problem is appended to ``problems`` (a list of :class:`ConfigError`)
    instead of raised. A key with a problem gets its default, so the checks
    that follow see a usable configuration (a missing required key is
    ``None``: the checks that need it are skipped).
    """
    _register_secrets(raw)   # first: no error below may quote a credential
    for section in raw:
        if section not in SCHEMA:
            kind = "section" if isinstance(raw[section], dict) else "top-level key"
            problems.append(ConfigError(path, section, f"unknown {kind}; sections are "
                                        f"{list(SCHEMA)}.{did_you_mean(section, SCHEMA)}"))
    config = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            problems.append(ConfigError(path, section, "must be a table ([section])"))
            given = {}
        if section in REQUIRED_SECTIONS and section not in raw:
            problems.append(ConfigError(path, section, "section is required"))
        for name in given:
            if name not in keys:
                problems.append(ConfigError(
                    path, f"{section}.{name}", f"unknown key; keys of [{section}] are "
                    f"{list(keys)}.{did_you_mean(name, keys)}"))
        values = {}
        for name, key in keys.items():
            where = f"{section}.{name}"
            if name not in given:
                if key.required and section in raw:
                    problems.append(ConfigError(path, where, f"is required: {key.doc}"))
                values[name] = copy.deepcopy(key.default)
                continue
            problem = _check(path, where, given[name], key)
            if problem is not None:
                problems.append(problem)
            values[name] = copy.deepcopy(key.default) if problem else given[name]
        config[section] = values
    for check in (_check_together, _check_conflicts, _check_memory_limit):
        problems.extend(check(path, config))
    name_problem = _check_output_name(path, config["output"]["name"])
    if name_problem is not None:
        problems.append(name_problem)
    config["_file"] = Path(path).resolve()
    return config


def _register_secrets(raw):
    """Register the credentials of the parsed file, whatever their TOML spelling or type.

    Every leaf of ``[data] storage_options`` (also a wrong-typed one: a
    string where a table belongs) and a password inside ``[data] path``
    (``s3://user:secret@host/...``). These are parsed values, so escapes,
    ``\\u`` sequences and multi-line strings are already resolved.
    """
    from urllib.parse import urlsplit

    from ._redact import register_secrets

    data = raw.get("data")
    if not isinstance(data, dict):
        return
    register_secrets(data.get("storage_options"))
    if isinstance(data.get("path"), str):
        try:
            password = urlsplit(data["path"]).password
        except ValueError:   # a malformed URL (bad port, brackets): no password to find
            password = None
        register_secrets({"url_password": password})


def _check_output_name(path, name):
    """``[output] name`` is one path component: never ``..``, a separator or absolute."""
    if name is None:
        return None
    import ntpath
    import posixpath

    if (not name.strip() or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name or posixpath.isabs(name) or ntpath.isabs(name)
            or ntpath.splitdrive(name)[0]):
        return ConfigError(path, "output.name",
                           f"must be a plain name (no '/', '\\', '..', drive or absolute "
                           f"path), since runs are written to output.dir/NAME-RUNID; got "
                           f"{name!r}. Choose the directory with output.dir.")
    return None


def _check(path, where, value, key):
    """The problem of ``value`` for ``key`` (a :class:`ConfigError`), or ``None``."""
    # bool is an int in Python; a TOML `true` is never a count.
    if (isinstance(value, bool) and bool not in key.types) or not isinstance(value, key.types):
        # A secret's key never echoes its value, even a wrong-typed one.
        shown = f"a {type(value).__name__}" if where in SECRET_KEYS else \
            f"{value!r} ({type(value).__name__})"
        return ConfigError(path, where, f"must be {_names(key.types)}; got {shown}")
    if key.choices and value not in key.choices:
        return ConfigError(path, where, f"must be one of {list(key.choices)}; got {value!r}."
                           + did_you_mean(value, key.choices))
    if key.low is not None and (value < key.low or (key.low_open and value == key.low)):
        return ConfigError(path, where, f"must be {'>' if key.low_open else '>='} {key.low}; "
                                        f"got {value!r}")
    if key.high is not None and value > key.high:
        return ConfigError(path, where, f"must be <= {key.high}; got {value!r}")
    if key.items is not None:
        return _check_items(path, where, value, key)
    return None


def _check_items(path, where, items, key):
    if len(items) < key.min_items:
        return ConfigError(path, where, f"must have at least {key.min_items} "
                                        f"element(s); got {items!r}")
    for item in items:
        problem = _check(path, where, item, key.items)
        if problem is not None:   # the element's problem, said of the list
            return ConfigError(path, where, f"each element must be {key.items.doc}: "
                               + str(problem).split("] ", 1)[1])
    return None


def _names(types):
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _check_together(path, config):
    """:data:`TOGETHER`: a missing partner of a given key is a problem of the missing one."""
    for section, names, why in TOGETHER:
        given = [n for n in names if config[section][n] is not None]
        for missing in (n for n in names if given and config[section][n] is None):
            yield ConfigError(path, f"{section}.{missing}",
                              f"{' and '.join(names)} go together ({why}); "
                              f"{', '.join(given)} given without {missing}")


def _check_conflicts(path, config):
    """:data:`CONFLICTS`: each other key given along with the key it conflicts with."""
    for section, name, others, why in CONFLICTS:
        if config[section][name] is None:
            continue
        for other in others:
            if config[section][other] is not None:
                yield ConfigError(path, f"{section}.{other}", f"{why} (with {section}.{name})")


def _check_memory_limit(path, config):
    from .._cluster import check_memory_limit

    try:  # a limit too small for a worker would restart the workers for ever
        check_memory_limit(config["cluster"]["memory_limit"])
    except ValueError as exc:
        yield ConfigError(path, "cluster.memory_limit", str(exc))


def resolve_path(config, value):
    """A path from the configuration: URLs as given, local paths relative to the file."""
    if "://" in value or "::" in value:
        return value
    p = Path(value).expanduser()
    import os

    return os.path.normpath(p if p.is_absolute() else config["_file"].parent / p)
