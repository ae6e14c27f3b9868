"""The run configuration: a TOML file, every key checked before any work.

Each key is declared once in :data:`SCHEMA` with its type, default and
meaning; unknown sections and keys are errors (a typo must not silently fall
back to a default in a scheduled job). Every error names the file and the
key (``runs.toml: [data.target] ...``) and exits with ``BAD_CONFIG``.
Relative paths are relative to the configuration file, so a cron job works
from any directory.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ._exit import ConfigError

__all__ = ["SCHEMA", "load_config", "schema_help"]

FORMATS = ("csv", "parquet", "zarr")


@dataclass(frozen=True)
class Key:
    """One configuration key: accepted types, default, whether required, what it does."""

    types: tuple
    default: object = None
    required: bool = False
    doc: str = ""
    choices: tuple = ()
    low: float | None = None


_str, _int, _num, _bool = (str,), (int,), (int, float), (bool,)
_list, _table = (list,), (dict,)

SCHEMA = {
    "data": {
        "path": Key(_str, required=True, doc="Parquet directory/glob, CSV glob or Zarr group; "
                                             "local path (relative to this file) or fsspec URL"),
        "format": Key(_str, doc="parquet, csv or zarr (default: from the path's extension)",
                      choices=FORMATS),
        "storage_options": Key(_table, {}, doc="fsspec storage options (credentials, endpoint)"),
        "target": Key(_str, required=True, doc="target column"),
        "features": Key(_list, doc="feature columns (default: every column but target/weight)"),
        "categorical": Key(_list, doc="columns to one-hot encode (default: string, "
                                      "categorical and boolean columns)"),
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
        "param_range": Key(_list, doc="values of param_name to try"),
        "train_sizes": Key(_list, doc="fractions of the training rows for the learning curve"),
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


def schema_help():
    """Every section and key with its default, for ``--help`` and the README."""
    lines = []
    for section, keys in SCHEMA.items():
        lines.append(f"[{section}]")
        for name, key in keys.items():
            default = "required" if key.required else f"default {key.default!r}"
            lines.append(f"  {name}: {key.doc} ({default})")
    return "\n".join(lines)


def load_config(path):
    """Read and check a configuration file; return ``{section: {key: value}}`` with defaults.

    Raises
    ------
    ConfigError
        Naming the file and the key: unreadable TOML, unknown section or
        key, wrong type, value out of range, required key missing.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Configuration file {path} does not exist.")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"is not UTF-8 text: {exc}") from None
    _register_secrets(raw)   # first: no error below may quote a credential
    unknown = sorted(set(raw) - set(SCHEMA))
    if unknown:
        raise ConfigError(path, unknown[0], f"unknown section; sections are {sorted(SCHEMA)}")
    config = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(path, section, "must be a table ([section])")
        if section in REQUIRED_SECTIONS and section not in raw:
            raise ConfigError(path, section, "section is required")
        extra = sorted(set(given) - set(keys))
        if extra:
            raise ConfigError(path, f"{section}.{extra[0]}",
                              f"unknown key; keys of [{section}] are {sorted(keys)}")
        values = {}
        for name, key in keys.items():
            where = f"{section}.{name}"
            if name not in given:
                if key.required:
                    raise ConfigError(path, where, f"is required: {key.doc}")
                values[name] = copy.deepcopy(key.default)
                continue
            values[name] = _check(path, where, given[name], key)
        config[section] = values
    _check_lists(path, config)
    _check_output_name(path, config["output"]["name"])
    config["_file"] = path.resolve()
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
        return
    import ntpath
    import posixpath

    if (not name.strip() or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name or posixpath.isabs(name) or ntpath.isabs(name)
            or ntpath.splitdrive(name)[0]):
        raise ConfigError(path, "output.name",
                          f"must be a plain name (no '/', '\\', '..', drive or absolute path), "
                          f"since runs are written to output.dir/NAME-RUNID; got {name!r}. "
                          "Choose the directory with output.dir.")


def _check(path, where, value, key):
    # bool is an int in Python; a TOML `true` is never a count.
    if isinstance(value, bool) and bool not in key.types:
        raise ConfigError(path, where, f"must be {_names(key.types)}; got {value!r}")
    if not isinstance(value, key.types):
        # A secret's key never echoes its value, even a wrong-typed one.
        shown = f"a {type(value).__name__}" if where in SECRET_KEYS else \
            f"{value!r} ({type(value).__name__})"
        raise ConfigError(path, where, f"must be {_names(key.types)}; got {shown}")
    if key.choices and value not in key.choices:
        raise ConfigError(path, where, f"must be one of {list(key.choices)}; got {value!r}")
    if key.low is not None and value < key.low:
        raise ConfigError(path, where, f"must be >= {key.low}; got {value!r}")
    return value


def _names(types):
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _check_lists(path, config):
    data, over = config["data"], config["overfitting"]
    for name in ("features", "categorical"):
        items = data[name]
        if items is not None and not all(isinstance(v, str) for v in items):
            raise ConfigError(path, f"data.{name}", f"must be a list of column names; got {items!r}")
    if data["features"] is not None and not data["features"]:
        raise ConfigError(path, "data.features", "must name at least one column")
    for name in ("param_range", "train_sizes"):
        items = over[name]
        if items is not None and not (items and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)):
            raise ConfigError(path, f"overfitting.{name}",
                              f"must be a non-empty list of numbers; got {items!r}")
    if over["train_sizes"] is not None and not all(0 < v <= 1 for v in over["train_sizes"]):
        raise ConfigError(path, "overfitting.train_sizes",
                          f"fractions must be in (0, 1]; got {over['train_sizes']!r}")
    if (over["param_range"] is None) != (over["param_name"] is None):
        key = "overfitting.param_range" if over["param_range"] is None else "overfitting.param_name"
        raise ConfigError(path, key, "param_name and param_range go together: give both or neither")
    cluster = config["cluster"]
    tls = [k for k in TLS_FILES if cluster[k] is not None]
    if tls and cluster["security"] is not None:
        raise ConfigError(path, f"cluster.{tls[0]}", "give certificate paths or "
                          "security = 'temporary', not both")
    if tls and len(tls) < len(TLS_FILES):
        missing = sorted(set(TLS_FILES) - set(tls))
        raise ConfigError(path, f"cluster.{missing[0]}", f"TLS needs all of {list(TLS_FILES)}")
    if cluster["security"] is not None and cluster["address"] is not None:
        raise ConfigError(path, "cluster.security", "'temporary' certificates are for a "
                          "LocalCluster; for a remote scheduler give the tls_* paths")
    local = [k for k in ("n_workers", "threads_per_worker", "memory_limit")
             if cluster[k] is not None]
    if cluster["address"] is not None and local:
        raise ConfigError(path, f"cluster.{local[0]}", "applies to a LocalCluster only; "
                          "drop it, or drop cluster.address")
    from .._cluster import check_memory_limit

    try:  # a limit too small for a worker would restart the workers for ever
        check_memory_limit(cluster["memory_limit"])
    except ValueError as exc:
        raise ConfigError(path, "cluster.memory_limit", str(exc)) from None


def resolve_path(config, value):
    """A path from the configuration: URLs as given, local paths relative to the file."""
    if "://" in value or "::" in value:
        return value
    p = Path(value).expanduser()
    import os

    return os.path.normpath(p if p.is_absolute() else config["_file"].parent / p)
