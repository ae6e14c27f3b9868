"""Declarative parameter constraints: each estimator's table, checked by one loop.

An estimator class declares ``_parameter_constraints``, a dict from each
``__init__`` parameter to a constraint (``{"tol": Real(low=0), "solver":
Options({...}), ...}``); :func:`validate_parameters` checks them in the
table's order and raises a :class:`~daskfit.errors.ParameterError` whose
message names the parameter, the expectation and the value::

    The 'tol' parameter must be >= 0; got -1.0.

Checks that involve two parameters (``early_stopping`` against ``solver``)
stay as code after the table. The attribute name is scikit-learn's, but the
constraint classes are daskfit's own: scikit-learn's are private
(``sklearn.utils._param_validation``) and may change in any release, and
nothing here calls scikit-learn's ``_validate_params``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ParameterError
from .._progress import valid_verbose
from ..model.penalties import check_feature_weights

__all__ = ["Boolean", "Constraint", "CountOr", "FeatureWeights", "FiniteArray", "Integer", "Options",
           "RandomState", "Real", "Satisfies", "cv_splits", "validate_parameters", "verbosity"]


class Constraint:
    """One parameter's rule: :meth:`problem` says what a rejected value should be.

    ``hint`` (optional) is appended to the error message: the fix, when the
    expectation alone does not say it.
    """

    hint = ""

    def describe(self):
        """The accepted values, as a noun phrase ("an int >= 1")."""
        raise NotImplementedError

    def problem(self, name, value):
        """``None`` when ``value`` is valid, else what it must be ("be >= 0")."""
        raise NotImplementedError

    def check(self, name, value):
        """Raise :class:`~daskfit.errors.ParameterError` when ``value`` is invalid."""
        expectation = self.problem(name, value)
        if expectation is not None:
            hint = f" {self.hint}" if self.hint else ""
            raise ParameterError(f"The {name!r} parameter must {expectation}; got {value!r}."
                                 f"{hint}", parameter=name, value=value)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(low, high, low_open, high_open):
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


class _Interval(Constraint):
    """A number of one type in an interval (open or closed at either end)."""

    kind, article = "", ""

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False):
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open

    def describe(self):
        bounds = _bounds(self.low, self.high, self.low_open, self.high_open)
        return f"{self.article} {self.kind}" + (f" {bounds}" if bounds else "")

    def _type_ok(self, value):
        raise NotImplementedError

    def _finite(self, value):
        return True

    def problem(self, name, value):
        if not self._type_ok(value):
            return f"be of type {self.kind}"
        if not self._finite(value):
            return "be finite"
        low, high = self.low, self.high
        if low is not None and (value < low or (self.low_open and value == low)):
            return f"be {'>' if self.low_open else '>='} {low}"
        if high is not None and (value > high or (self.high_open and value == high)):
            return f"be {'<' if self.high_open else '<='} {high}"
        return None


class Integer(_Interval):
    """An int (not a bool) in the interval; NumPy integers count."""

    kind, article = "int", "an"

    def _type_ok(self, value):
        return _is_int(value)


class Real(_Interval):
    """A real number (not a bool), finite unless ``allow_inf`` (``C=np.inf``: no penalty)."""

    kind, article = "real", "a"

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False,
                 allow_inf=False):
        super().__init__(low, high, low_open=low_open, high_open=high_open)
        self.allow_inf = allow_inf

    def _type_ok(self, value):
        return _is_real(value)

    def _finite(self, value):
        return bool(np.isfinite(value)) or (self.allow_inf and value == np.inf)


class Boolean(Constraint):
    """``True`` or ``False`` (NumPy booleans count)."""

    def describe(self):
        return "a bool"

    def problem(self, name, value):
        return None if isinstance(value, (bool, np.bool_)) else "be of type bool"


class Options(Constraint):
    """One of a fixed set of values (compared with ``==``), or ``None`` if ``allow_none``."""

    def __init__(self, values, *, allow_none=False, hint=""):
        self.values, self.allow_none, self.hint = frozenset(values), allow_none, hint

    def describe(self):
        listed = f"one of {sorted(self.values, key=str)}"
        return listed + (" or None" if self.allow_none else "")

    def problem(self, name, value):
        if (value is None and self.allow_none) or value in self.values:
            return None
        return f"be {self.describe()}"


class RandomState(Constraint):
    """``None``, an int seed in [0, 2**32 - 1] or a ``numpy.random.RandomState``."""

    def describe(self):
        return "None, an int in [0, 2**32 - 1] or a numpy.random.RandomState"

    def problem(self, name, value):
        ok = (value is None or isinstance(value, np.random.RandomState)
              or (_is_int(value) and 0 <= value < 2**32))
        return None if ok else f"be {self.describe()}"


class FiniteArray(Constraint):
    """A non-empty 1-D array-like (a scalar counts as one value) of finite values in
    the interval: a grid of ``alphas``, ``Cs`` or ``l1_ratio`` values."""

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False, hint=""):
        self.bounds = _bounds(low, high, low_open, high_open)
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.hint = hint

    def describe(self):
        return "a non-empty 1-D array-like of finite values" + (
            f" {self.bounds}" if self.bounds else "")

    def problem(self, name, value):
        try:
            arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            return f"be {self.describe()}"
        ok = arr.ndim == 1 and arr.size > 0 and bool(np.all(np.isfinite(arr)))
        if ok and self.low is not None:
            ok = bool(np.all(arr > self.low if self.low_open else arr >= self.low))
        if ok and self.high is not None:
            ok = bool(np.all(arr < self.high if self.high_open else arr <= self.high))
        return None if ok else f"be {self.describe()}"


class CountOr(Constraint):
    """An int is a count (checked by ``count``), anything else a ``grid``: the
    ``alphas=100`` or ``alphas=[...]`` of the cross-validating estimators."""

    def __init__(self, grid, *, count=None, hint=""):
        self.grid, self.count, self.hint = grid, count or Integer(low=1), hint

    def describe(self):
        return f"{self.count.describe()} or {self.grid.describe()}"

    def problem(self, name, value):
        if _is_int(value):
            return None if self.count.problem(name, value) is None else f"be {self.describe()}"
        return None if self.grid.problem(name, value) is None else f"be {self.describe()}"


class Satisfies(Constraint):
    """Valid when ``predicate(value)`` is true; ``description`` says what that means."""

    def __init__(self, predicate, description, *, hint=""):
        self.predicate, self.description, self.hint = predicate, description, hint

    def describe(self):
        return self.description

    def problem(self, name, value):
        return None if self.predicate(value) else f"be {self.description}"


class FeatureWeights(Constraint):
    """glum's ``P1`` / ``P2``: None or a vector of finite per-feature weights >= 0.

    The length is checked against the data's features when ``fit`` knows them.
    """

    def describe(self):
        return "None or a vector of finite per-feature weights >= 0"

    def problem(self, name, value):
        try:
            check_feature_weights(name, value)
        except ValueError:
            return f"be {self.describe()}"
        return None

    def check(self, name, value):
        # The penalty's own message names the first bad entry and the fix.
        try:
            check_feature_weights(name, value)
        except ValueError as error:
            raise ParameterError(str(error), parameter=name, value=value) from error


def cv_splits():
    """The ``cv`` parameter of the cross-validating estimators."""
    return Satisfies(lambda v: not (_is_int(v) and v < 2),
                     "an int >= 2, a cross-validation splitter, an iterable of (train, test) "
                     "splits or None")


def verbosity():
    """scikit-learn's ``verbose``: an int >= 0 (a bool counts), see ``daskfit._progress``."""
    return Satisfies(valid_verbose, "an int >= 0 (0: silent, 1: a line per pass, 2: more)")


def validate_parameters(estimator):
    """Check every parameter in ``type(estimator)._parameter_constraints``, in its order.

    Raises
    ------
    daskfit.errors.ParameterError
        For the first invalid parameter (a ``ValueError``).
    """
    for name, constraint in type(estimator)._parameter_constraints.items():
        constraint.check(name, getattr(estimator, name))
