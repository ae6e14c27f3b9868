"""Checks of a configuration that need the estimator: all of them before any work.

:func:`load_config` checks each key on its own (types, ranges, unknown
keys); the checks here need the estimator built from ``[model]``: is the
scorer one that exists and that this estimator can be scored with, are the
``solver_options`` keys ones its solver takes, does every value of the
validation curve make a valid estimator, does the estimator checkpoint,
does an offset fit the rest. A scheduled job that would fail after half a
minute of reading and fitting fails here, in milliseconds, with
``BAD_CONFIG`` and the key to fix. Each check raises its own
:class:`ConfigError`; :func:`daskfit.cli._validate.check_config` runs them
all and reports every one.
"""

from __future__ import annotations

import inspect

from .. import errors
from ._exit import ConfigError

__all__ = ["auto_candidates", "check_before_work", "check_checkpoint", "check_offset",
           "check_scoring", "check_solver_options", "check_validation_curve",
           "solver_option_names"]

#: Arguments every row-chunk solver gets from the estimator itself, never from solver_options.
_SET_BY_FIT = frozenset({"objective", "coef0", "tol", "max_iter", "stop"})
#: The modules of scikit-learn's metrics that need class labels (or scores of classes).
_CLASSIFICATION_METRICS = ("sklearn.metrics._classification", "sklearn.metrics._ranking")


def check_before_work(config, estimator):
    """Every check of this module, in the order the keys appear in the file.

    Raises
    ------
    ConfigError
        Naming the file and the key (exit code ``BAD_CONFIG``).
    """
    check_checkpoint(config, estimator)
    check_offset(config)
    check_solver_options(config, estimator)
    if config["cv"]["folds"] >= 2:   # folds < 2: neither CV nor diagnosis score anything
        check_scoring(config, estimator)
        if config["overfitting"]["enabled"]:
            check_validation_curve(config, estimator)


def check_checkpoint(config, estimator):
    """``[checkpoint] every`` needs an estimator whose ``fit`` takes a checkpoint."""
    if config["checkpoint"]["every"] and "checkpoint" not in inspect.signature(
            estimator.fit).parameters:
        raise ConfigError(config["_file"], "checkpoint.every",
                          f"{type(estimator).__name__} does not checkpoint its fit; set "
                          "every = 0")


def check_offset(config):
    """An offset column is no feature (it enters the fit, the folds and the scores)."""
    data, file = config["data"], config["_file"]
    if data["offset"] is None:
        return
    if data["offset"] in (data["features"] or []):
        raise ConfigError(file, "data.features", f"must not contain the offset column "
                                                 f"{data['offset']!r}")


def solver_option_names(solver):
    """The ``solver_options`` keys solver ``solver`` accepts (a set of names)."""
    from ..solvers import SOLVERS

    return set(inspect.signature(SOLVERS[solver].function).parameters) - _SET_BY_FIT


def auto_candidates(estimator):
    """The solvers ``solver="auto"`` may choose for ``estimator``, whatever the data's shape.

    :func:`daskfit.solvers.choose_solver` decides from the loss, the penalty
    and the numbers of features and parameters: asking it on both sides of
    each of its thresholds gives every solver a fit may end up with.
    """
    from ..solvers import GRAM_MAX_FEATURES, NEWTON_MAX_PARAMS, choose_solver

    params = estimator.get_params(deep=False)
    kind = estimator._penalty_rule()(1.0).kind
    losses = (estimator._loss_name,) + (("multinomial",) if estimator._loss_name == "logistic"
                                        else ())
    return sorted({choose_solver(loss, kind, n_features, n_params,
                                 early_stopping=bool(params.get("early_stopping")))[0]
                   for loss in losses for n_features in (1, GRAM_MAX_FEATURES + 1)
                   for n_params in (2, NEWTON_MAX_PARAMS + 1)})


def check_solver_options(config, estimator):
    """``solver_options`` keys must be taken by the solver the fit will use.

    With an explicit solver, by that solver. With ``solver="auto"`` the
    solver depends on the data, so a key must be taken by every solver
    ``"auto"`` may choose (:func:`auto_candidates`); otherwise the fit would
    raise half-way, after reading the data.
    """
    params = estimator.get_params(deep=False)
    options = params.get("solver_options")
    if not options:
        return
    solver = params.get("solver", "auto")
    choices = auto_candidates(estimator) if solver == "auto" else [solver]
    known = {name: solver_option_names(name) for name in choices}
    taken_by_all = set.intersection(*known.values())
    unknown = sorted(set(options) - taken_by_all)
    if unknown:
        per_solver = "; ".join(f"{name}: {sorted(keys) or 'none'}" for name, keys in known.items())
        hint = (" With solver='auto' the solver depends on the data (it may be any of "
                f"{choices}): name the solver in params to pass its options."
                if solver == "auto" else "")
        raise ConfigError(config["_file"], "model.params.solver_options",
                          f"option(s) {unknown} are not taken by solver={solver!r}.{hint} "
                          f"Options each solver takes: {per_solver}.")


def check_scoring(config, estimator):
    """``[cv] scoring`` names a scikit-learn scorer that fits this estimator.

    A name scikit-learn does not know (``accuracy_score``, ``nonsense``), a
    classification metric for a regressor, or a scorer that needs a method
    the estimator lacks (``roc_auc`` needs ``predict_proba`` or
    ``decision_function``) is a configuration error.
    """
    from sklearn.base import is_regressor
    from sklearn.metrics import get_scorer, get_scorer_names

    name = config["cv"]["scoring"]
    if name is None:
        return
    key = "cv.scoring"
    try:
        scorer = get_scorer(name)
    except ValueError:
        import difflib

        close = difflib.get_close_matches(name, get_scorer_names(), n=3, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise ConfigError(config["_file"], key,
                          f"{name!r} is not a scikit-learn scorer name.{hint} The names are "
                          "listed by sklearn.metrics.get_scorer_names().") from None
    kind = type(estimator).__name__
    metric = getattr(getattr(scorer, "_score_func", None), "__module__", "")
    if is_regressor(estimator) and metric in _CLASSIFICATION_METRICS:
        raise ConfigError(config["_file"], key,
                          f"{name!r} scores class predictions, but {kind} is a regressor; "
                          "use a regression scorer such as 'r2' or "
                          "'neg_mean_squared_error'.")
    methods = getattr(scorer, "_response_method", "predict")
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not any(hasattr(estimator, m) for m in methods):
        raise ConfigError(config["_file"], key,
                          f"{name!r} needs {' or '.join(methods)}, which {kind} does not have.")


def check_validation_curve(config, estimator):
    """``[overfitting] param_name``/``param_range`` make valid estimators, every value."""
    from sklearn.base import clone

    from ..overfitting._params import resolve_regularisation

    over, file = config["overfitting"], config["_file"]
    try:
        curve = resolve_regularisation(estimator, over["param_name"], over["param_range"])
    except errors.ParameterError as exc:   # param_name or param_range, by name
        raise ConfigError(file, f"overfitting.{exc.parameter}", str(exc)) from None
    if over["param_range"] is None:   # daskfit's own log-spaced grid of valid values
        return
    current = curve.estimator.get_params()[curve.param_name]
    for value in curve.param_range:
        value = float(value)
        if isinstance(current, int) and not isinstance(current, bool) and value.is_integer():
            value = int(value)   # an integer parameter (max_iter, say) stays an integer
        candidate = clone(curve.estimator).set_params(**{curve.param_name: value})
        validate = getattr(candidate, "_validate_common_params", None)
        if validate is None:
            continue
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise ConfigError(file, "overfitting.param_range",
                              f"{curve.param_name}={value:g} is not valid for "
                              f"{type(candidate).__name__}: {exc}") from None
