"""Every problem of a configuration at once, with its file, key and line: ``daskfit check``.

:func:`check_config` reads a pipeline file, applies the overrides
(environment, then ``--set``), and runs every check that needs no data and
no cluster: TOML syntax (each bad line, the rest still checked), the keys of
:data:`~daskfit.cli._config.SCHEMA` (unknown, wrong type, out of range,
conflicting), the estimator and each of its parameters against the
estimator's own parameter table, then the checks of :mod:`._checks`
(solver options, scorer, validation curve, checkpoint, offset). Problems
are collected, not raised one by one; :class:`ConfigErrors` reports them
all, sorted by line, and exits with ``BAD_CONFIG``. ``daskfit run`` calls
the same function first, so a bad file fails in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import errors
from ._config import check_raw, did_you_mean
from ._exit import CliError, ConfigError
from ._overrides import Overrides
from ._toml_lines import invalid_tables, key_lines, line_of, parse_recovering

__all__ = ["Checked", "ConfigErrors", "build_model", "check_config", "describe",
           "estimator_classes", "where"]


class ConfigErrors(ConfigError):
    """Several configuration problems, reported together (exit code ``BAD_CONFIG``).

    ``problems`` are :class:`ConfigError` s, each with ``line`` (1-based, or
    ``None``) and ``origin`` (the override that set the key, or ``None``);
    ``file`` and ``key`` are the first problem's, so code that handles one
    :class:`ConfigError` handles this one too.
    """

    def __init__(self, file, problems):
        self.problems = sorted(problems, key=lambda p: (_line(p) is None, _line(p) or 0))
        first = self.problems[0]
        self.file, self.key = file, first.key
        lines = [where(file, p) for p in self.problems]
        text = lines[0] if len(lines) == 1 else (
            f"{file}: {len(lines)} problems in the configuration:\n  " + "\n  ".join(lines))
        CliError.__init__(self, text)


def _line(problem):
    return getattr(problem, "line", None)


def where(file, problem):
    """One problem as ``FILE:LINE: [key] message`` (the form editors and CI logs link)."""
    message = str(problem)
    prefix = f"{problem.file}: "
    message = message[len(prefix):] if message.startswith(prefix) else message
    origin = getattr(problem, "origin", None)
    if origin is not None:
        return f"{file}: {message} (set by {origin.describe()})"
    line = _line(problem)
    return f"{file}:{line}: {message}" if line is not None else f"{file}: {message}"


@dataclass
class Checked:
    """What :func:`check_config` found: the configuration (with defaults), the unfitted
    estimator, the overrides applied, and every problem."""

    config: dict | None
    estimator: object | None = None
    overrides: Overrides = field(default_factory=Overrides)
    problems: list = field(default_factory=list)


def check_config(path, overrides=None, *, model=True, raising=True):
    """Check the configuration file ``path`` with ``overrides``; no data read, no cluster.

    Parameters
    ----------
    path : str or Path
        The pipeline's TOML file.
    overrides : Overrides, optional
        From the environment and ``--set`` (:meth:`Overrides.collect`).
    model : bool
        Also build the estimator and run the checks that need it.
    raising : bool
        Raise :class:`ConfigErrors` when there are problems (else return them).

    Returns
    -------
    Checked

    Raises
    ------
    ConfigErrors
        Every problem, each with its file, key and line.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Configuration file {path} does not exist.")
    overrides = overrides or Overrides()
    checked = Checked(None, overrides=overrides)
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"is not UTF-8 text: {exc}") from None
    document, syntax = parse_recovering(text)
    for line, message in syntax:
        checked.problems.append(_at(ConfigError(path, "", f"is not valid TOML: {message}"),
                                    line))
    if document is not None:
        for name in invalid_tables(document):   # a broken header's keys: already reported
            document.pop(name)
        applied = overrides.apply(path, document, checked.problems, _parameters_of)
        checked.config = check_raw(path, document, checked.problems)
        if model and checked.config["model"]["estimator"] is not None:
            checked.estimator = _check_model(checked.config, checked.problems)
        _locate(checked.problems, key_lines(text), applied)
    if checked.problems and raising:
        raise ConfigErrors(path, checked.problems)
    return checked


def _at(problem, line, origin=None):
    problem.line, problem.origin = line, origin
    return problem


def _locate(problems, lines, applied):
    """Give each problem its line, or the override that set its key (or a parent)."""
    for problem in problems:
        if getattr(problem, "line", None) is not None:
            continue
        key = problem.key or ""
        parts = key.split(".")
        origin = next((applied[".".join(parts[:n])] for n in range(len(parts), 0, -1)
                       if ".".join(parts[:n]) in applied), None)
        _at(problem, None if origin else line_of(lines, key), origin)


def _parameters_of(document):
    """The parameter names of the estimator ``document`` names (none if it names none)."""
    name = (document.get("model") or {}).get("estimator") \
        if isinstance(document.get("model"), dict) else None
    cls = estimator_classes().get(name) if isinstance(name, str) else None
    return list(cls().get_params(deep=False)) if cls is not None else []


def estimator_classes():
    """Estimators a configuration may name: daskfit's own."""
    from ..io._persistence import allowed_classes

    return {k: v for k, v in allowed_classes().items()
            if k not in ("FrameEncoder", "TabularModel")}


def build_model(config):
    """The unfitted estimator of ``[model]``, every parameter checked.

    Raises
    ------
    ConfigErrors
        Every problem of ``[model]``, each naming its key.
    """
    problems = []
    estimator = _model(config, problems)
    if problems:
        raise ConfigErrors(config["_file"], problems)
    return estimator


def _check_model(config, problems):
    """The estimator (or ``None``), and the checks of :mod:`._checks` that need it."""
    from ._checks import (check_checkpoint, check_offset, check_scoring,
                          check_solver_options, check_validation_curve)

    before = len(problems)
    estimator = _model(config, problems)
    bad = _keys(problems[before:])
    checks = [check_offset]
    if estimator is not None:
        checks += [check_checkpoint]
        # Options are checked against the solver: only once the solver itself is valid.
        if not bad & {"model.params.solver", "model.params.solver_options", "model.params"}:
            checks += [check_solver_options]
        if config["cv"]["folds"] >= 2:   # folds < 2: neither CV nor diagnosis score anything
            checks += [check_scoring]
            # The curve's keys are checked together once each is valid on its own.
            if config["overfitting"]["enabled"] and not any(
                    k.startswith("overfitting.") for k in _keys(problems)):
                checks += [check_validation_curve]
    for check in checks:
        try:
            check(config, *(() if check is check_offset else (estimator,)))
        except ConfigError as exc:
            problems.append(exc)
    return estimator


def _keys(problems):
    return {p.key or "" for p in problems}


def _model(config, problems):
    """Build the estimator of ``[model]``, appending each problem; ``None`` if unknown.

    Each parameter is checked on its own against the estimator's table
    (``_parameter_constraints``), so every bad one is reported; the checks
    across parameters run once each one is valid. A bad parameter is left
    at its default in the returned estimator.
    """
    file, model = config["_file"], config["model"]
    classes = estimator_classes()
    name = model["estimator"]
    if name not in classes:
        problems.append(ConfigError(file, "model.estimator",
                                    f"{name!r} is not a daskfit estimator; choose one of "
                                    f"{sorted(classes)}.{did_you_mean(name, classes)}"))
        return None
    cls = classes[name]
    known = cls().get_params(deep=False)
    params = {k: (float("inf") if v == "inf" else v) for k, v in model["params"].items()}
    unknown = [k for k in params if k not in known]
    for key in unknown:
        problems.append(ConfigError(file, f"model.params.{key}",
                                    f"{name} has no parameter {key!r}.{did_you_mean(key, known)}"
                                    f" Its parameters are {sorted(known)}."))
    given = {k: v for k, v in params.items() if k in known}
    estimator = cls(**given)
    refused = []
    for param, constraint in getattr(cls, "_parameter_constraints", {}).items():
        try:
            constraint.check(param, getattr(estimator, param))
        except errors.ParameterError as exc:
            problems.append(ConfigError(file, f"model.params.{param}", str(exc)))
            refused.append(param)
    if refused:
        return cls(**{k: v for k, v in given.items() if k not in refused})
    validate = getattr(estimator, "_validate_common_params", None)
    if validate is not None:
        try:
            validate()   # the table again (cheap), then the checks across parameters
        except errors.ParameterError as exc:   # names its parameter: the key to fix
            key = f"model.params.{exc.parameter}" if exc.parameter in known else "model.params"
            problems.append(ConfigError(file, key, str(exc)))
        except (ValueError, TypeError) as exc:   # an untyped check: no key to name
            problems.append(ConfigError(file, "model.params", str(exc)))
    return estimator


def describe(checked, file):
    """What ``daskfit run`` would do with a valid configuration, in a few lines."""
    from ._input import infer_format
    from ._redact import redact

    config, est = checked.config, checked.estimator
    data, cv, over = config["data"], config["cv"], config["overfitting"]
    params = ", ".join(f"{k}={v!r}" for k, v in config["model"]["params"].items())
    features = data["features"] or "every other column"
    work = ["fit"]
    if cv["folds"] >= 2:
        work.append(f"{cv['folds']}-fold cross-validation "
                    f"(scoring: {cv['scoring'] or 'the estimator score'})")
        if over["enabled"]:
            curve = (f" over {over['param_name']} in {over['param_range']}"
                     if over["param_name"] else "")
            work.append(f"overfitting diagnosis{curve}")
    if config["checkpoint"]["every"]:
        work.append(f"checkpoint every {config['checkpoint']['every']} iterations")
    cluster = config["cluster"]
    name = config["output"]["name"] or config["_file"].stem
    lines = [
        f"{file}: OK (checked without reading data or starting a cluster)",
        f"  model:     {type(est).__name__}({params})",
        f"  data:      {data['path']} ({data['format'] or infer_format(data['path'])}), "
        f"target {data['target']!r}, features: {features}"
        + (f", categorical {data['categorical']}" if data["categorical"] else "")
        + (f", weights {data['sample_weight']!r}" if data["sample_weight"] else "")
        + (f", offset {data['offset']!r}" if data["offset"] else ""),
        f"  run:       {'; '.join(work)}",
        "  cluster:   " + (f"attach to {cluster['address']}" if cluster["address"]
                            else "a loopback LocalCluster"),
        f"  output:    {config['output']['dir']}/{name}-RUNID",
    ]
    if checked.overrides.applied:
        lines.append("  overrides: " + ", ".join(f"{o.dotted} ({o.describe()})"
                                                 for o in checked.overrides.applied))
    return redact("\n".join(lines))
