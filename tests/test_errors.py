"""Typed errors (daskfit/errors.py): callers decide by type and attributes, not by text."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import daskfit
from daskfit import errors
from daskfit.model_selection import ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
Y_REG = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
Y_CLS = np.array([0, 0, 1, 0, 1, 1])

# (estimator class, the fitting target, a bad parameter and its value)
BAD_PARAMETERS = [
    (daskfit.LinearRegression, Y_REG, "tol", -1.0),
    (daskfit.LinearRegression, Y_REG, "solver", "sgd-please"),
    (daskfit.LinearRegression, Y_REG, "random_state", -3),
    (daskfit.LinearRegression, Y_REG, "solver_options", [1]),
    (daskfit.Ridge, Y_REG, "alpha", -1.0),
    (daskfit.Lasso, Y_REG, "max_iter", 1.5),
    (daskfit.ElasticNet, Y_REG, "l1_ratio", 1.5),
    (daskfit.PoissonRegressor, Y_REG, "split_every", 1),
    (daskfit.LogisticRegression, Y_CLS, "C", 0.0),
    (daskfit.LogisticRegression, Y_CLS, "validation_fraction", 1.0),
    (RidgeCV, Y_REG, "alphas", [-1.0]),
    (RidgeCV, Y_REG, "cv", 1),
    (ElasticNetCV, Y_REG, "eps", 0.0),
    (LassoCV, Y_REG, "alphas", 0),
    (LogisticRegressionCV, Y_CLS, "Cs", 0),
    (LogisticRegressionCV, Y_CLS, "scoring", "roc_auc"),
]


@pytest.mark.parametrize("cls, y, name, value", BAD_PARAMETERS,
                         ids=[f"{c.__name__}-{n}" for c, _, n, _ in BAD_PARAMETERS])
def test_a_bad_parameter_is_a_parameter_error_carrying_its_name_and_value(cls, y, name, value):
    with pytest.raises(errors.ParameterError) as info:
        cls(**{name: value}).fit(X, y)
    assert info.value.parameter == name
    assert info.value.value is value or info.value.value == value
    # Still a ValueError for scikit-learn's checks and existing callers,
    # and the message still names the parameter and the value.
    assert isinstance(info.value, ValueError)
    assert repr(name) in str(info.value) and repr(value) in str(info.value)


def test_a_cross_parameter_conflict_names_the_parameter_to_change():
    with pytest.raises(errors.ParameterError) as info:
        daskfit.LinearRegression(solver="normal", early_stopping=True).fit(X, Y_REG)
    assert info.value.parameter == "early_stopping"


def test_checkpointing_a_one_pass_solver_is_a_parameter_error_on_checkpoint(tmp_path):
    with pytest.raises(errors.ParameterError) as info:
        daskfit.LinearRegression(solver="normal").fit(X, Y_REG, checkpoint=tmp_path)
    assert info.value.parameter == "checkpoint"


def test_errors_keep_their_attributes_when_pickled():
    # Errors raised on a worker reach the client pickled.
    error = pickle.loads(pickle.dumps(errors.ParameterError("bad", parameter="tol", value=-1)))
    assert (type(error), str(error), error.parameter, error.value) == (
        errors.ParameterError, "bad", "tol", -1)
    config = pickle.loads(pickle.dumps(errors.ConfigError("slow", setting="timeout")))
    assert (type(config), config.setting) == (errors.ConfigError, "timeout")


def test_moved_errors_are_the_same_classes_at_their_old_addresses():
    from daskfit._checkpoint import CheckpointCorrupt, CheckpointMismatch
    from daskfit._cluster import ClusterUnreachable, SchedulerUnresponsive
    from daskfit.engine.rows import DataError

    assert DataError is errors.DataError is daskfit.DataError
    assert (CheckpointMismatch, CheckpointCorrupt) == (errors.CheckpointMismatch,
                                                       errors.CheckpointCorrupt)
    assert ClusterUnreachable is errors.ClusterUnreachable is daskfit.ClusterUnreachable
    assert issubclass(SchedulerUnresponsive, ConnectionError)
    for cls in (errors.ParameterError, errors.ConfigError, errors.DataError,
                errors.CheckpointMismatch, errors.CheckpointCorrupt):
        assert issubclass(cls, ValueError) and issubclass(cls, errors.DaskfitError)
    assert issubclass(daskfit.WorkerCrashError, errors.DaskfitError)


def test_bad_input_data_is_a_data_error():
    import dask.array as da

    Xd, yd = da.from_array(X, chunks=3), da.from_array(Y_REG, chunks=3)
    with pytest.raises(errors.DataError):   # found in the first pass
        daskfit.LinearRegression().fit(Xd, da.from_array(np.r_[Y_REG[:-1], np.nan], chunks=3))
    with pytest.raises(errors.DataError):   # found in the metadata checks
        daskfit.LinearRegression().fit(Xd[:, :, None], yd)


@pytest.mark.parametrize("limit", ["60MiB", "not-a-size"])
def test_a_bad_memory_limit_is_a_config_error_naming_the_setting(limit):
    from daskfit._cluster import check_memory_limit

    with pytest.raises(errors.ConfigError) as info:
        check_memory_limit(limit)
    assert info.value.setting == "memory_limit" and isinstance(info.value, ValueError)


def test_unknown_tls_settings_are_a_config_error_naming_security():
    from daskfit._cluster import make_security

    with pytest.raises(errors.ConfigError) as info:
        make_security({"tls_ca": "ca.pem"})
    assert info.value.setting == "security"
