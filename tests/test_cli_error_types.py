"""The CLI decides exit codes and configuration keys by an error's type, not its text.

Each test raises a typed error with a message that names nothing the old
text matching looked for (no parameter repr, no "checkpoint=", no "NaN"),
and still gets the code and key the contract in ``daskfit/cli/_exit.py``
promises. In-process and without a cluster: milliseconds each.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from daskfit import errors
from daskfit.cli import BAD_CONFIG, BAD_DATA, CLUSTER_UNREACHABLE
from daskfit.cli._exit import ConfigError, as_cli_error

ODD = "something unexpected happened"


@pytest.mark.parametrize("exc, code", [
    (errors.ParameterError(ODD, parameter="tol", value=-1), BAD_CONFIG),
    (errors.ConfigError(ODD, setting="memory_limit"), BAD_CONFIG),
    (errors.CheckpointMismatch(ODD), BAD_CONFIG),
    (errors.CheckpointCorrupt(ODD), BAD_CONFIG),
    (errors.DataError(ODD), BAD_DATA),
    (errors.SchedulerUnresponsive(ODD), CLUSTER_UNREACHABLE),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_typed_errors_map_to_their_exit_code_whatever_their_message(exc, code):
    error = as_cli_error(exc, "fitting")
    assert error.code == code and ODD in str(error)


def cli_config(tmp_path, **params):
    return {"_file": tmp_path / "run.toml",
            "model": {"estimator": "LinearRegression", "params": params}}


def test_a_parameter_error_names_its_key_even_when_the_message_does_not_quote_it(tmp_path):
    from daskfit.cli._run import build_model

    # The message says "early_stopping=True" and "solver='normal'", never
    # "'early_stopping'": the old text match found no key.
    with pytest.raises(ConfigError) as info:
        build_model(cli_config(tmp_path, solver="normal", early_stopping=True))
    assert info.value.key == "model.params.early_stopping" and info.value.code == BAD_CONFIG


def test_build_model_takes_the_key_from_the_error_not_the_text(tmp_path, monkeypatch):
    from daskfit import Ridge
    from daskfit.cli._run import build_model

    def refuse(self):
        raise errors.ParameterError(ODD + " (mentions 'tol')", parameter="alpha", value=1.0)

    monkeypatch.setattr(Ridge, "_check_parameter_combinations", refuse)
    config = cli_config(tmp_path, tol=1e-3)
    config["model"]["estimator"] = "Ridge"
    with pytest.raises(ConfigError) as info:
        build_model(config)
    assert info.value.key == "model.params.alpha"


class _Refuses:
    """An estimator whose fit raises ``error``."""

    def __init__(self, error):
        self.error = error

    def fit(self, X, y, sample_weight=None, checkpoint=None):
        raise self.error


def test_a_refused_checkpoint_is_a_checkpoint_config_error_whatever_its_message(tmp_path):
    from daskfit.cli._run import fit_estimator

    refusing = _Refuses(errors.ParameterError(ODD, parameter="checkpoint", value="dir"))
    with pytest.raises(ConfigError) as info:
        fit_estimator(cli_config(tmp_path), refusing, None, None, None, checkpoint="dir")
    assert info.value.key == "checkpoint.every"
    # A message that merely mentions "checkpoint=" is not a checkpoint refusal.
    other = ValueError("checkpoint= appears in this text, but it is about the data")
    with pytest.raises(ValueError) as info:
        fit_estimator(cli_config(tmp_path), _Refuses(other), None, None, None, checkpoint="dir")
    assert info.value is other


def test_a_diagnosis_parameter_error_names_its_overfitting_key(tmp_path, monkeypatch):
    from daskfit.cli import _checks

    def refuse(estimator, param_name, param_range):
        raise errors.ParameterError(ODD, parameter="param_range", value=param_range)

    monkeypatch.setattr("daskfit.overfitting._params.resolve_regularisation", refuse)
    config = {"_file": tmp_path / "run.toml",
              "overfitting": {"param_name": "alpha", "param_range": [1.0, 2.0]}}
    from daskfit import Ridge

    with pytest.raises(ConfigError) as info:
        _checks.check_validation_curve(config, Ridge())
    assert info.value.key == "overfitting.param_range"


def test_a_data_error_in_csv_input_is_traced_to_its_file_whatever_its_message(tmp_path):
    from daskfit.cli._run import data_errors

    path = tmp_path / "part-1.csv"
    pd.DataFrame({"a": [1.0, None, 3.0], "y": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    source = SimpleNamespace(format="csv", files=[str(path)], storage_options={},
                             urls=lambda: [str(path)])
    with pytest.raises(Exception) as info:
        with data_errors("fitting", source, SimpleNamespace(_meta=None), ["a", "y"]):
            raise errors.DataError(ODD)
    assert info.value.code == BAD_DATA
    assert str(path) in str(info.value) and "'a'" in str(info.value)
