"""Progress of long operations (issue 16, item 5): scikit-learn's ``verbose`` on every
estimator, CV estimator, ``cross_validate`` and ``diagnose``; a notebook bar; the log."""

from __future__ import annotations

import logging
import re
import textwrap

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import daskfit
import daskfit._progress as progress
from daskfit.errors import ParameterError
from daskfit.model_selection import (ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV,
                                     cross_validate)

ESTIMATORS = [daskfit.LinearRegression, daskfit.Ridge, daskfit.Lasso, daskfit.ElasticNet,
              daskfit.PoissonRegressor, daskfit.GammaRegressor, daskfit.TweedieRegressor,
              daskfit.LogisticRegression, RidgeCV, LassoCV, ElasticNetCV, LogisticRegressionCV]

LINE = re.compile(r"^\[daskfit\] (?P<owner>\w+) pass (?P<n>\d+) \((?P<label>.+)\): "
                  r"(?P<seconds>[\d.]+) s(?:, objective (?P<objective>\S+), "
                  r"gradient norm (?P<grad>\S+))?$")


def binary(n=1200, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (X @ rng.normal(size=p) + rng.normal(size=n) > 0).astype(int)
    return X, y


def pass_lines(text):
    return [m for m in map(LINE.match, text.splitlines()) if m]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_verbose_is_a_parameter_that_clone_and_get_params_carry(cls):
    est = cls(verbose=2)
    assert est.get_params()["verbose"] == 2
    assert clone(est).verbose == 2
    assert cls().verbose == 0


@pytest.mark.parametrize("bad", [-1, 1.5, "yes", None])
def test_an_invalid_verbose_is_a_parameter_error_naming_it(bad):
    X, y = binary(60)
    for call in (lambda: daskfit.LogisticRegression(verbose=bad).fit(X, y),
                 lambda: RidgeCV(verbose=bad).fit(X, y.astype(float)),
                 lambda: cross_validate(daskfit.Ridge(), X, y, verbose=bad),
                 lambda: daskfit.overfitting.diagnose(daskfit.Ridge(), X, y, verbose=bad)):
        with pytest.raises(ParameterError, match="verbose") as info:
            call()
        assert info.value.parameter == "verbose"


def test_verbose_0_prints_nothing(capsys):
    X, y = binary()
    daskfit.LogisticRegression(solver="newton").fit(X, y)
    RidgeCV().fit(X, y.astype(float))
    Xd, yd = da.from_array(X, chunks=400), da.from_array(y, chunks=400)
    cross_validate(daskfit.LogisticRegression(), Xd, yd, cv=2)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_verbose_1_prints_one_line_per_pass_with_its_label_objective_and_gradient(capsys):
    X, y = binary()
    est = daskfit.LogisticRegression(solver="newton", verbose=1).fit(X, y)
    out = capsys.readouterr().out
    lines = pass_lines(out)
    assert len(out.splitlines()) == len(lines) == est.n_passes_ > 2
    assert [m["label"] for m in lines] == [label for label, _ in est.pass_log_]
    assert [int(m["n"]) for m in lines] == list(range(1, est.n_passes_ + 1))
    assert all(m["owner"] == "LogisticRegression" for m in lines)
    # Newton records one iteration per pass: each line carries that iteration's numbers.
    history = est.fit_result_.history
    assert len(history) == len(lines)
    for m, entry in zip(lines, history):
        assert float(m["objective"]) == pytest.approx(entry["objective"], rel=1e-5)
        assert float(m["grad"]) == pytest.approx(entry["grad_norm"], rel=1e-5)


def test_verbose_in_process_under_a_client_and_on_the_cluster(client, capsys):
    """NumPy under a Client computes in-process (placement); Dask input on the workers:
    either way the pass lines are the fit's passes."""
    X, y = binary(400)
    for data in ((X, y), (da.from_array(X, chunks=200), da.from_array(y, chunks=200))):
        est = daskfit.LogisticRegression(solver="newton", verbose=1).fit(*data)
        lines = pass_lines(capsys.readouterr().out)
        assert len(lines) == est.n_passes_
        assert [m["label"] for m in lines] == [label for label, _ in est.pass_log_]


def test_coefficients_and_passes_are_the_same_at_verbose_0_and_2(monkeypatch, capsys):
    X, y = binary()
    quiet = daskfit.LogisticRegression(solver="lbfgs").fit(X, y)
    monkeypatch.setattr(progress, "in_notebook", lambda: True)  # the bar too
    loud = daskfit.LogisticRegression(solver="lbfgs", verbose=2).fit(X, y)
    assert np.array_equal(quiet.coef_, loud.coef_)
    assert np.array_equal(quiet.intercept_, loud.intercept_)
    assert quiet.n_passes_ == loud.n_passes_ and quiet.n_iter_ == loud.n_iter_
    assert capsys.readouterr().out


def test_verbose_2_adds_the_fits_summary(capsys):
    X, y = binary()
    for verbose in (1, 2):
        est = daskfit.LogisticRegression(solver="lbfgs", verbose=verbose).fit(X, y)
        out = capsys.readouterr().out.splitlines()
        assert len(pass_lines("\n".join(out))) == est.n_passes_
        extra = [line for line in out if not LINE.match(line)]
        assert len(extra) == verbose - 1
    assert "lbfgs" in extra[0] and f"{est.n_passes_} passes" in extra[0]


def test_verbose_2_reports_iterations_that_no_pass_carried(capsys):
    """A solver iterating on the client (no pass between two records) at level 2 only."""
    for level, expected in ((1, 1), (2, 3)):
        reporter = progress.Reporter("Solver", level)
        reporter.on_pass("gram", 0.5)
        for i in range(3):
            reporter.on_iteration({"iter": i, "objective": 1.0 / (i + 1), "grad_norm": 0.1})
        assert len(capsys.readouterr().out.splitlines()) == expected


def test_cross_validate_verbose_1_prints_one_line_per_fold(capsys):
    X, y = binary()
    Xd, yd = da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    out = cross_validate(daskfit.LogisticRegression(), Xd, yd, cv=3, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for k, line in enumerate(lines):
        assert f"fold {k + 1}/3" in line
        assert f"{out['test_score'][k]:.4g}" in line


def test_cross_validate_verbose_2_also_shows_each_folds_passes(capsys):
    X, y = binary()
    Xd, yd = da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    out = cross_validate(daskfit.LogisticRegression(solver="newton"), Xd, yd, cv=2,
                         verbose=2, return_estimator=True)
    text = capsys.readouterr().out
    assert len(pass_lines(text)) == sum(e.n_passes_ for e in out["estimator"])
    assert sum("cross_validate fold" in line for line in text.splitlines()) == 2


def test_diagnose_verbose_1_prints_its_stages_and_0_nothing(capsys):
    X, y = binary(600)
    Xd, yd = da.from_array(X, chunks=200), da.from_array(y, chunks=200)
    kwargs = dict(cv=2, param_range=[0.1, 10.0], train_sizes=(0.5, 1.0))
    quiet = daskfit.overfitting.diagnose(daskfit.LogisticRegression(), Xd, yd, **kwargs)
    assert capsys.readouterr().out == ""
    loud = daskfit.overfitting.diagnose(daskfit.LogisticRegression(), Xd, yd, verbose=1,
                                        **kwargs)
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("[daskfit] diagnose: ") for line in lines)
    stages = " ".join(lines)
    for stage in ("per-fold scores", "learning curve", "validation curve", "baseline"):
        assert stage in stages
    assert loud.verdict == quiet.verdict
    np.testing.assert_array_equal(loud.folds["validation"], quiet.folds["validation"])


@pytest.fixture
def bars(monkeypatch):
    """Fake a Jupyter kernel and keep every bar made."""
    made = []
    real = progress.make_bar
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress, "make_bar", lambda owner: made.append(real(owner)) or made[-1])
    return made


def test_in_a_notebook_a_bar_counts_the_passes_and_is_closed(bars, capsys):
    X, y = binary()
    est = daskfit.LogisticRegression(solver="newton", verbose=1).fit(X, y)
    assert len(bars) == 1
    assert bars[0].n == est.n_passes_
    assert bars[0].disable  # tqdm's close() disables the bar
    assert len(pass_lines(capsys.readouterr().out)) == est.n_passes_  # lines above the bar


def test_in_a_notebook_no_bar_at_verbose_0_and_one_bar_for_nested_fits(bars, capsys):
    X, y = binary()
    daskfit.LogisticRegression().fit(X, y)
    assert bars == []
    Xd, yd = da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    out = cross_validate(daskfit.LogisticRegression(), Xd, yd, cv=2, verbose=1,
                         return_estimator=True)
    assert len(bars) == 1 and bars[0].disable
    assert bars[0].n == sum(e.n_passes_ for e in out["estimator"])


def test_the_bar_is_closed_when_the_fit_fails(bars):
    X, y = binary(200)
    y = y.astype(float)
    y[7] = np.nan
    with pytest.raises(ValueError):
        daskfit.LinearRegression(solver="lbfgs", verbose=1).fit(da.from_array(X, chunks=50),
                                                                  da.from_array(y, chunks=50))
    assert len(bars) == 1 and bars[0].disable


def test_in_notebook_detection_is_false_outside_a_kernel():
    assert progress.in_notebook() is False


def test_the_progress_logger_gets_the_pass_lines_at_any_verbose(caplog):
    """What the CLI's run log and ``daskfit run -v`` show (they listen to "daskfit")."""
    X, y = binary()
    with caplog.at_level(logging.INFO, logger="daskfit.progress"):
        est = daskfit.LogisticRegression(solver="newton").fit(X, y)
    records = [r for r in caplog.records if r.name == "daskfit.progress"]
    assert len(records) == est.n_passes_
    assert all(r.levelno == logging.INFO for r in records)


def test_daskfit_run_v_shows_the_pass_lines_and_the_run_log_keeps_them(tmp_path, cluster,
                                                                      capsys):
    from daskfit.cli import main

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["y"] = (X @ [1.0, -1.0, 0.5] + rng.normal(size=600) > 0).astype(float)
    (tmp_path / "data").mkdir()
    frame.to_parquet(tmp_path / "data" / "part.0.parquet")
    config = tmp_path / "run.toml"
    config.write_text(textwrap.dedent(f"""
        [data]
        path = "{tmp_path / 'data'}"
        target = "y"
        [model]
        estimator = "LogisticRegression"
        params = {{ solver = "newton" }}
        [cv]
        folds = 0
        [overfitting]
        enabled = false
        [output]
        dir = "{tmp_path / 'runs'}"
    """))
    with pytest.raises(SystemExit) as done:
        main(["run", str(config), "--scheduler", cluster.scheduler_address, "--no-progress",
              "-v"])
    err = capsys.readouterr().err
    assert done.value.code == 0, err
    shown = [line for line in err.splitlines() if "daskfit.progress: LogisticRegression pass" in line]
    (run_dir,) = (tmp_path / "runs").iterdir()
    logged = [line for line in (run_dir / "run.log").read_text().splitlines()
              if "daskfit.progress: LogisticRegression pass" in line]
    assert len(shown) == len(logged) >= 3


def test_the_convergence_warning_still_points_at_the_callers_line():
    X, y = binary(200)
    with pytest.warns(Warning) as caught:
        daskfit.LogisticRegression(solver="lbfgs", max_iter=1, verbose=1).fit(X, y)
    assert {w.filename for w in caught} == {__file__}
