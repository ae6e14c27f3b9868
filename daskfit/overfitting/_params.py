"""Which hyper-parameter regularises an estimator, which way, and the default grid.

``diagnose`` needs three facts about the estimator: the name of its
regularisation parameter, whether a larger value means *stronger*
regularisation (``alpha``) or weaker (``C``), and a grid of values to try.
``LinearRegression`` has no such parameter; since recommending a strength is
the point of the diagnosis, its validation curve is drawn for ``Ridge`` with
the same ``fit_intercept`` (``LinearRegression`` is ``Ridge(alpha=0)``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from ..errors import ParameterError

__all__ = ["Regularisation", "resolve_regularisation"]

#: Parameter name -> +1 when a larger value regularises more, -1 when less.
#: Parameters not listed get direction 0: the curve is still drawn and the
#: best value recommended, but "stronger" and "weaker" are not defined.
DIRECTION = {"alpha": +1, "C": -1}

#: Default names tried, in order, when ``param_name`` is not given.
DEFAULT_NAMES = ("alpha", "C")

#: Default grid: the current value times 10**-3 .. 10**3, half a decade apart
#: (13 values). Six decades cover "far too weak" to "far too strong" for
#: standardised features; a best value at an edge is reported as such.
GRID_DECADES = 3
GRID_POINTS = 13


@dataclass
class Regularisation:
    """The parameter a validation curve varies, on which estimator."""

    estimator: object          # unfitted estimator the curve is drawn for
    param_name: str
    current: float | None      # value of the diagnosed estimator (0 for a stand-in)
    direction: int             # +1 larger is stronger, -1 larger is weaker, 0 unknown
    param_range: np.ndarray    # sorted ascending
    note: str | None           # said in the report (e.g. the Ridge stand-in)


def _is_linear_regression(estimator):
    return type(estimator).__name__ == "LinearRegression"


def _ridge_for(estimator):
    """A Ridge with the linear regression's options (daskfit's or scikit-learn's)."""
    if type(estimator).__module__.startswith("daskfit"):
        from ..estimators import Ridge

        params = {k: v for k, v in estimator.get_params().items()
                  if k in Ridge().get_params()}
        return Ridge(**params)
    from sklearn.linear_model import Ridge

    return Ridge(fit_intercept=estimator.get_params().get("fit_intercept", True))


def resolve_regularisation(estimator, param_name, param_range):
    """The :class:`Regularisation` of ``estimator``, with clear errors for bad input."""
    params = estimator.get_params()
    note = None
    curve_estimator = estimator
    if _is_linear_regression(estimator) and param_name in (None, "alpha"):
        curve_estimator = _ridge_for(estimator)
        param_name = "alpha"
        current = 0.0
        note = (f"{type(estimator).__name__} has no regularisation parameter: the "
                "validation curve and the recommendation are for Ridge(alpha) with the "
                "same options (LinearRegression is Ridge with alpha=0).")
    elif param_name is None:
        param_name = _default_name(estimator, params)
        current = params[param_name]
    else:
        if not isinstance(param_name, str) or param_name not in params:
            raise ParameterError(
                f"param_name={param_name!r} is not a parameter of "
                f"{type(estimator).__name__}; its parameters are {sorted(params)}. Pass one "
                f"of them (the regularisation strength is usually 'alpha' or 'C').",
                parameter="param_name", value=param_name)
        current = params[param_name]
    current = _as_value(current)
    if param_range is None:
        param_range = default_grid(current)
    else:
        param_range = check_param_range(param_range)
    # "ridge__alpha" in a Pipeline is still an alpha.
    direction = DIRECTION.get(param_name.rsplit("__", 1)[-1], 0)
    return Regularisation(estimator=clone(curve_estimator), param_name=param_name,
                          current=current, direction=direction,
                          param_range=param_range, note=note)


def _default_name(estimator, params):
    """``alpha`` or ``C`` (first found), also as the one ``<step>__alpha`` of a Pipeline."""
    for name in DEFAULT_NAMES:
        if name in params:
            return name
        nested = [k for k in params if k.endswith(f"__{name}")]
        if len(nested) == 1:
            return nested[0]
    raise ParameterError(
        f"diagnose could not find a regularisation parameter in {type(estimator).__name__} "
        f"(looked for {list(DEFAULT_NAMES)}). Pass param_name= one of its parameters: "
        f"{sorted(params)}.", parameter="param_name", value=None)


def _as_value(value):
    """The current value as a float, or None when it is not a finite number."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return None


def default_grid(current):
    """``GRID_POINTS`` values, log-spaced over +-``GRID_DECADES`` around ``current``.

    A missing, zero or negative current value (``Ridge(alpha=0)``, a stand-in
    Ridge for ``LinearRegression``) centres the grid on 1.
    """
    centre = current if current is not None and current > 0 else 1.0
    return np.geomspace(centre * 10.0**-GRID_DECADES, centre * 10.0**GRID_DECADES,
                        GRID_POINTS)


def check_param_range(param_range):
    """``param_range`` as sorted floats; a :class:`ParameterError` naming it when invalid."""

    def fail(message):
        return ParameterError(message, parameter="param_range", value=param_range)

    try:
        values = np.asarray(param_range, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(f"param_range must be a 1-D sequence of numbers; got "
                   f"{param_range!r}.") from None
    if values.ndim != 1 or values.size < 2:
        raise fail(f"param_range must be a 1-D sequence of at least 2 values; got "
                   f"shape {values.shape}.")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise fail(f"param_range must hold finite values >= 0; got {values.tolist()}.")
    if len(np.unique(values)) != len(values):
        raise fail(f"param_range has repeated values: {values.tolist()}.")
    return np.sort(values)
