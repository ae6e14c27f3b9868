"""The declarative parameter tables (daskfit/estimators/_params.py) and the docstrings.

Each estimator declares what every ``__init__`` parameter accepts; one loop
checks the table. These tests hold the tables complete and the messages
informative, and each estimator's numpydoc ``Parameters`` section true to
its ``__init__``.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import daskfit
from daskfit.errors import ParameterError
from daskfit.estimators._params import (Boolean, CountOr, FiniteArray, Integer, Options,
                                        RandomState, Real, Satisfies, validate_parameters)
from daskfit.model_selection import ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV

ESTIMATORS = [daskfit.LinearRegression, daskfit.Ridge, daskfit.Lasso, daskfit.ElasticNet,
              daskfit.PoissonRegressor, daskfit.LogisticRegression, RidgeCV, ElasticNetCV,
              LassoCV, LogisticRegressionCV]


def init_parameters(cls):
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_init_parameter_has_exactly_one_constraint(cls):
    assert sorted(cls._parameter_constraints) == sorted(init_parameters(cls))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_the_defaults_satisfy_the_table(cls):
    est = cls()
    validate_parameters(est)
    est._validate_common_params()


@pytest.mark.parametrize("constraint, value, expectation", [
    (Real(low=0), -1.0, "must be >= 0; got -1.0"),
    (Real(low=0, high=1, low_open=True, high_open=True), 1.0, "must be < 1; got 1.0"),
    (Real(low=0), np.nan, "must be finite; got nan"),
    (Real(low=0), True, "must be of type real; got True"),
    (Real(low=0, low_open=True, allow_inf=True), -np.inf, "must be finite"),
    (Integer(low=2), 1, "must be >= 2; got 1"),
    (Integer(low=0), 2.0, "must be of type int; got 2.0"),
    (Boolean(), "yes", "must be of type bool; got 'yes'"),
    (Options({"auto", "newton"}), "sgd", "must be one of ['auto', 'newton']; got 'sgd'"),
    (Options({"r2"}, allow_none=True, hint="Use GridSearchCV."), "auc",
     "must be one of ['r2'] or None; got 'auc'. Use GridSearchCV."),
    (RandomState(), -1, "must be None, an int in [0, 2**32 - 1] or a numpy.random"),
    (FiniteArray(low=0), [1.0, -1.0], "must be a non-empty 1-D array-like of finite values "
                                      ">= 0; got [1.0, -1.0]"),
    (FiniteArray(low=0), [], "non-empty"),
    (FiniteArray(low=0), "abc", "got 'abc'"),
    (CountOr(FiniteArray(low=0)), 0, "must be an int >= 1 or a non-empty 1-D array-like"),
    (Satisfies(lambda v: v is None, "None"), 3, "must be None; got 3"),
])
def test_a_rejection_names_the_parameter_the_expectation_and_the_value(constraint, value,
                                                                         expectation):
    with pytest.raises(ParameterError) as info:
        constraint.check("p", value)
    assert info.value.parameter == "p" and info.value.value is value
    assert str(info.value).startswith("The 'p' parameter ")
    assert expectation in str(info.value)


@pytest.mark.parametrize("constraint, value", [
    (Real(low=0, low_open=True, allow_inf=True), np.inf),   # LogisticRegression(C=inf)
    (Real(low=0, high=1), np.float32(0.5)),
    (Integer(low=1), np.int64(3)),
    (Boolean(), np.bool_(True)),
    (Options({"auto", True, False}), False),
    (RandomState(), np.random.RandomState(0)),
    (CountOr(FiniteArray(low=0)), 100),
    (CountOr(FiniteArray(low=0)), (0.1, 1.0)),
    (FiniteArray(low=0, high=1), 0.5),   # a scalar is a grid of one
])
def test_valid_values_pass(constraint, value):
    constraint.check("p", value)


def test_a_count_is_not_read_as_a_grid():
    # alphas=0 is an empty automatic grid, not the one-alpha grid [0.0].
    with pytest.raises(ParameterError, match="'alphas'"):
        LassoCV(alphas=0)._validate_common_params()


def test_cross_parameter_checks_run_after_the_table():
    est = daskfit.LinearRegression(solver="normal", early_stopping=True)
    validate_parameters(est)   # each parameter alone is fine
    with pytest.raises(ParameterError) as info:
        est._validate_common_params()
    assert info.value.parameter == "early_stopping"


# ---------------------------------------------------------------- docstrings
SECTION = re.compile(r"^\s*(\w[\w ]*)\n\s*-{3,}\s*$", re.M)


def documented_parameters(cls):
    """Names in the class docstring's numpydoc ``Parameters`` section
    (``name : type`` lines and ``a, b, c`` lines that document several)."""
    doc = inspect.cleandoc(cls.__doc__)
    match = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[\w ]*\n-{3,}\n|\Z)", doc, re.M | re.S)
    if match is None:
        return None
    names = []
    for line in match.group(1).splitlines():
        if not line or line[0].isspace():
            continue
        names += [n.strip() for n in line.split(" : ")[0].split(",")]
    return names


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_documented_parameters_are_the_init_parameters(cls):
    documented = documented_parameters(cls)
    init = init_parameters(cls)
    assert documented is not None, f"{cls.__name__} has no Parameters section"
    assert sorted(documented) == sorted(init), (
        f"{cls.__name__}: documented but not taken {sorted(set(documented) - set(init))}, "
        f"taken but not documented {sorted(set(init) - set(documented))}")


def _package_callables():
    """Every class, method and function defined in daskfit, with its qualified name."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(daskfit.__path__, "daskfit."):
        if info.name == "daskfit.__main__":
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            yield obj
            if inspect.isclass(obj):
                yield from (f for f in vars(obj).values() if inspect.isfunction(f))


def test_no_docstring_documents_a_parameter_its_signature_lacks():
    stale = []
    for obj in _package_callables():
        if not callable(obj) or not obj.__doc__:
            continue
        documented = documented_parameters(obj)
        if documented is None:
            continue
        signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
        extra = {name.lstrip("*") for name in documented} - set(signature.parameters)
        if extra:
            stale.append((obj.__qualname__, sorted(extra)))
    assert not stale, f"documented parameters that the signature does not take: {stale}"
