"""Offsets (exposure): a fixed term in the linear predictor, as glum's and statsmodels'.

Oracles: statsmodels' ``GLM(y, X, family, offset=...)`` at a tight tolerance
(coefficients to 1e-6 relative) for Poisson, Gamma and the logit; for the
squared loss the fit of ``y - offset``; ``exp(X b + offset)`` for the
predictions of a log link. The offset travels with the weights (no pass of
its own: the passes of a fit with a zero offset are those without one).
"""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import daskfit
from daskfit._data import ChunkedData, as_chunked
from daskfit.engine.rows import DataError, Engine
from daskfit.kernels.holdout import Holdout, offset_runs
from daskfit.model.losses import LOSSES
from daskfit.model.penalties import Penalty
from daskfit.objective import Objective

from conftest import CHUNKINGS, KINDS

sm = pytest.importorskip("statsmodels.api")

RTOL = 1e-6
TIGHT = {"tol": 1e-10, "max_iter": 1000}
UNEVEN = CHUNKINGS["uneven+empty"]
N = sum(UNEVEN)


def make_rates(seed=0, n=N, p=4):
    """Counts with exposure: ``y ~ Poisson(exposure * exp(X b + c))``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    exposure = rng.uniform(0.2, 5.0, size=n)
    y = rng.poisson(exposure * np.exp(X @ rng.normal(scale=0.3, size=p) - 0.5))
    return X, y.astype(np.float64), exposure


def as_kind(kind, X, y, offset, chunks=UNEVEN):
    """``X, y, offset`` as NumPy, Dask arrays, or one Dask DataFrame's columns.

    The Dask DataFrame has partitions of the given (possibly empty) sizes,
    whose lengths Dask does not know.
    """
    if kind == "numpy":
        return X, y, offset
    if kind == "dask":
        return (da.from_array(X, chunks=(chunks, X.shape[1])), da.from_array(y, chunks=(chunks,)),
                da.from_array(offset, chunks=(chunks,)))
    columns = [f"x{i}" for i in range(X.shape[1])]
    pdf = pd.DataFrame(X, columns=columns).assign(target=y, off=offset)
    bounds = np.cumsum((0,) + tuple(chunks))
    frame = dd.from_map(lambda piece: piece, [pdf.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                        meta=pdf.iloc[:0])
    return frame[columns], frame["target"], frame["off"]


def statsmodels_fit(y, X, family, offset, **kw):
    result = sm.GLM(y, sm.add_constant(X, prepend=False), family=family, offset=offset,
                    **kw).fit(tol=1e-13, maxiter=200)
    return result.params


def theta(model):
    return np.r_[np.ravel(model.coef_), np.ravel(model.intercept_)]


# ------------------------------------------------------------------ oracles
@pytest.mark.parametrize("kind", KINDS)
def test_poisson_rate_model_equals_statsmodels(kind):
    X, y, exposure = make_rates()
    Xk, yk, ok = as_kind(kind, X, y, np.log(exposure))
    model = daskfit.PoissonRegressor(alpha=0, **TIGHT).fit(Xk, yk, offset=ok)
    expected = statsmodels_fit(y, X, sm.families.Poisson(), np.log(exposure))
    np.testing.assert_allclose(theta(model), expected, rtol=RTOL)


@pytest.mark.parametrize("solver", ["lbfgs", "averaging"])
def test_poisson_rate_model_other_solvers(solver):
    """A quasi-Newton solver and local SGD (parameter averaging) add the offset too."""
    X, y, exposure = make_rates(1)
    Xd, yd, od = as_kind("dask", X, y, np.log(exposure))
    model = daskfit.PoissonRegressor(alpha=0, solver=solver, tol=1e-12, max_iter=2000).fit(
        Xd, yd, offset=od)
    expected = statsmodels_fit(y, X, sm.families.Poisson(), np.log(exposure))
    rtol = RTOL if solver == "lbfgs" else 1e-4  # averaging: SGD's own accuracy
    np.testing.assert_allclose(theta(model), expected, rtol=rtol)


def test_gamma_with_offset_equals_statsmodels():
    X, _, exposure = make_rates(2)
    rng = np.random.default_rng(20)
    y = rng.gamma(2.0, exposure * np.exp(0.3 + X @ [0.2, -0.1, 0.1, 0.0]) / 2.0)
    Xd, yd, od = as_kind("dask", X, y, np.log(exposure))
    model = daskfit.GammaRegressor(alpha=0, **TIGHT).fit(Xd, yd, offset=od)
    expected = statsmodels_fit(y, X, sm.families.Gamma(sm.families.links.Log()),
                               np.log(exposure))
    np.testing.assert_allclose(theta(model), expected, rtol=RTOL)


@pytest.mark.parametrize("kind", ["numpy", "ddf"])
def test_logistic_with_offset_equals_statsmodels(kind):
    X, _, exposure = make_rates(3)
    rng = np.random.default_rng(30)
    offset = np.log(exposure)
    y = (rng.uniform(size=N) < 1 / (1 + np.exp(-(X @ [0.5, -0.3, 0.2, 0.1] + offset - 1)))
         ).astype(int)
    Xk, yk, ok = as_kind(kind, X, y, offset)
    model = daskfit.LogisticRegression(C=1e12, **TIGHT).fit(Xk, yk, offset=ok)
    expected = statsmodels_fit(y, X, sm.families.Binomial(), offset)
    np.testing.assert_allclose(theta(model), expected, rtol=RTOL)
    # Class weights: every sum of the first pass (the offset's too) is class weighted.
    cw = {0: 1.0, 1: 3.0}
    weighted = daskfit.LogisticRegression(C=1e12, class_weight=cw, **TIGHT).fit(
        Xk, yk, offset=ok)
    expected = statsmodels_fit(y, X, sm.families.Binomial(), offset,
                               freq_weights=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_allclose(theta(weighted), expected, rtol=RTOL)


@pytest.mark.parametrize("estimator", [daskfit.LinearRegression(), daskfit.Ridge(alpha=3.0),
                                       daskfit.Lasso(alpha=0.05, tol=1e-10),
                                       daskfit.Ridge(alpha=3.0, solver="lbfgs", tol=1e-12)])
def test_least_squares_offset_is_a_shifted_target(estimator):
    """The squared loss of ``y`` at ``X b + c + offset`` is that of ``y - offset``."""
    X, _, exposure = make_rates(4)
    rng = np.random.default_rng(40)
    offset = 3.0 * exposure
    y = X @ [1.0, -2.0, 0.5, 0.0] + offset + rng.normal(size=N)
    Xd, yd, od = as_kind("dask", X, y, offset)
    with_offset = _clone(estimator).fit(Xd, yd, offset=od)
    shifted = _clone(estimator).fit(X, y - offset)
    np.testing.assert_allclose(theta(with_offset), theta(shifted), rtol=1e-8, atol=1e-10)
    if isinstance(estimator, daskfit.LinearRegression):
        expected = statsmodels_fit(y, X, sm.families.Gaussian(), offset)
        np.testing.assert_allclose(theta(with_offset), expected, rtol=RTOL)
    np.testing.assert_allclose(with_offset.predict(X, offset), shifted.predict(X) + offset,
                               rtol=1e-10)


def _clone(estimator):
    from sklearn.base import clone

    return clone(estimator)


# --------------------------------------------------------------- predict
def test_predict_adds_the_offset_for_a_log_link():
    X, y, exposure = make_rates(5)
    offset = np.log(exposure)
    model = daskfit.PoissonRegressor(alpha=0, **TIGHT).fit(X, y, offset=offset)
    expected = np.exp(X @ model.coef_ + model.intercept_ + offset)
    np.testing.assert_allclose(model.predict(X, offset), expected, rtol=1e-12)
    np.testing.assert_allclose(model.predict(X), expected / exposure, rtol=1e-12)
    Xk, _, ok = as_kind("ddf", X, y, offset)
    lazy = model.predict(Xk, ok)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-12)
    # D^2 scores the rates with their offset: the same for NumPy and Dask input.
    assert model.score(X, y, offset=offset) == pytest.approx(
        model.score(*as_kind("dask", X, y, offset)[:2], offset=as_kind("dask", X, y, offset)[2]),
        rel=1e-10)
    clf = daskfit.LogisticRegression().fit(X, (y > 1).astype(int), offset=offset)
    p = 1 / (1 + np.exp(-(X @ clf.coef_[0] + clf.intercept_[0] + offset)))
    np.testing.assert_allclose(clf.predict_proba(X, offset)[:, 1], p, rtol=1e-10)


# --------------------------------------------------------------- passes
@pytest.mark.parametrize("make", [
    lambda: (daskfit.PoissonRegressor(alpha=0.1), "counts"),
    lambda: (daskfit.LogisticRegression(), "binary"),
    lambda: (daskfit.LinearRegression(), "regression"),
    lambda: (daskfit.PoissonRegressor(alpha=0.1, solver="lbfgs"), "counts"),
])
def test_an_offset_costs_no_pass(make, count_reductions):
    """A zero offset fits the same model in the same passes as no offset."""
    estimator, target = make()
    X, y, _ = make_rates(6)
    y = {"counts": y, "binary": (y > 1).astype(int), "regression": y + X[:, 0]}[target]
    Xd, yd, od = as_kind("dask", X, y, np.zeros(N))
    plain = _clone(estimator).fit(Xd, yd)
    plain_passes = list(count_reductions)
    count_reductions.clear()
    shifted = _clone(estimator).fit(Xd, yd, offset=od)
    assert list(count_reductions) == plain_passes
    assert shifted.n_passes_ == plain.n_passes_
    np.testing.assert_allclose(theta(shifted), theta(plain), rtol=1e-12, atol=1e-14)


def test_offset_travels_with_the_weights_in_one_array():
    """The engine's weight slot holds weight and offset together (persisted together)."""
    X, y, exposure = make_rates(7)
    w = np.linspace(0.5, 2.0, N)
    data = as_chunked(daskfit.PoissonRegressor(), *as_kind("dask", X, y, np.log(exposure))[:2],
                      da.from_array(w, chunks=(UNEVEN,)),
                      offset=da.from_array(np.log(exposure), chunks=(UNEVEN,)))
    assert data.sample_weight.dtype.names == ("w", "offset")
    assert data.sample_weight.chunks == data.X.chunks[:1]
    records = data.sample_weight.compute()
    np.testing.assert_array_equal(records["w"], w)
    np.testing.assert_array_equal(records["offset"], np.log(exposure))
    weighted = daskfit.PoissonRegressor(alpha=0, **TIGHT).fit(X, y, sample_weight=w,
                                                              offset=np.log(exposure))
    expected = statsmodels_fit(y, X, sm.families.Poisson(), np.log(exposure), var_weights=w)
    np.testing.assert_allclose(theta(weighted), expected, rtol=RTOL)


def test_multi_file_parquet_offset_column(tmp_path):
    """An offset column of a multi-file Parquet frame is aligned with X (co_partition)."""
    X, y, exposure = make_rates(8)
    pdf = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(
        y=y, off=np.log(exposure))
    for i, (a, b) in enumerate([(0, 100), (100, 150), (150, N)]):
        pdf.iloc[a:b].to_parquet(tmp_path / f"part{i}.parquet")
    frame = dd.read_parquet(str(tmp_path))
    model = daskfit.PoissonRegressor(alpha=0, **TIGHT).fit(
        frame.drop(columns=["y", "off"]), frame["y"], offset=frame["off"])
    expected = statsmodels_fit(y, X, sm.families.Poisson(), np.log(exposure))
    np.testing.assert_allclose(theta(model), expected, rtol=RTOL)


def test_classifier_holdout_scores_at_zero_include_the_offset():
    """Early stopping's accuracy at theta = 0 (from the first pass's label sums) is
    the one a pass over the held-out rows computes, offset included."""
    X, y, exposure = make_rates(9)
    yb = (y > 1).astype(int)
    offset = np.log(exposure) - 0.3
    data = as_chunked(daskfit.LogisticRegression(), X, yb, None, offset=offset,
                      n_chunks_hint=4)
    holdout = Holdout(seed=3, fraction=0.3, loss=LOSSES["logistic"],
                      runs=offset_runs(data.X.chunks[0]))
    objective = Objective(Engine(data), LOSSES["logistic"], lambda sw: Penalty(l2=1.0 / sw),
                          True, holdout=holdout)
    objective.start("grad")
    zero = np.zeros(objective.n_params)
    from_labels = objective.validation_score(zero)
    objective._holdout_sums.clear()  # force the pass
    assert objective.validation_score(zero) == pytest.approx(from_labels, rel=1e-12)
    assert from_labels != pytest.approx(yb.mean(), rel=1e-3)  # the offset changed it


# --------------------------------------------------------------- errors
def test_offset_of_another_length_is_refused_by_name():
    X, y, exposure = make_rates(10)
    with pytest.raises(ValueError, match="offset"):
        daskfit.PoissonRegressor().fit(X, y, offset=np.log(exposure)[:-3])
    model = daskfit.PoissonRegressor().fit(X, y, offset=np.log(exposure))
    with pytest.raises(ValueError, match="offset"):
        model.predict(X, np.log(exposure)[:-3])


def test_offset_of_another_length_in_a_frame_is_refused_in_the_first_pass():
    X, y, exposure = make_rates(10)
    Xk, yk, _ = as_kind("ddf", X, y, np.log(exposure))
    _, _, short = as_kind("ddf", X, y, np.log(exposure), chunks=(0, 3, 119, 0, 1, 90, 0, 86))
    with pytest.raises(DataError, match="offset"):
        daskfit.PoissonRegressor().fit(Xk, yk, offset=short)


@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_nan_offset_is_refused_by_name(kind):
    X, y, exposure = make_rates(11)
    offset = np.log(exposure)
    offset[17] = np.nan
    Xk, yk, ok = as_kind(kind, X, y, offset)
    with pytest.raises(ValueError, match="offset contains NaN"):
        daskfit.PoissonRegressor().fit(Xk, yk, offset=ok)
    with pytest.raises(ValueError, match="offset contains NaN"):
        daskfit.LinearRegression().fit(Xk, yk, offset=ok)
    model = daskfit.PoissonRegressor().fit(X, y)
    with pytest.raises(ValueError, match="offset contains NaN"):
        prediction = model.predict(Xk, ok)
        if isinstance(prediction, da.Array):
            prediction.compute()


def test_offset_refused_where_it_means_nothing_or_is_not_supported():
    X, y, exposure = make_rates(12)
    with pytest.raises(DataError, match="offset"):
        daskfit.LogisticRegression().fit(X, np.minimum(y, 2).astype(int), offset=np.log(exposure))
    Xd = da.from_array(X, chunks=(100, 2))
    with pytest.raises(ValueError, match="offset.*model-parallel"):
        daskfit.PoissonRegressor(solver="bcd").fit(Xd, y, offset=np.log(exposure))
    # The CV estimators, cross_validate and diagnose take it: tests/test_cv_offset.py.


def test_offset_on_a_cluster_persisted_with_the_data(client):
    """The records of weight and offset are persisted and read on the workers."""
    X, _, exposure = make_rates(13)
    y = X @ [1.0, 0.5, 0.0, -1.0] + np.log(exposure) + 0.1 * np.cos(np.arange(N))
    Xk, yk, ok = as_kind("dask", X, y, np.log(exposure))
    model = daskfit.Ridge(alpha=1.0, persist=True).fit(Xk, yk, offset=ok)
    assert "persist" in model.persist_reason_.lower()
    expected = daskfit.Ridge(alpha=1.0).fit(X, y - np.log(exposure))
    np.testing.assert_allclose(theta(model), theta(expected), rtol=1e-10)


def test_cli_offset_column_in_run_and_predict(tmp_path, cluster):
    """``[data] offset = "column"``: the run fits with it (not as a feature), the saved
    model remembers it and ``daskfit predict`` adds it to every prediction."""
    from daskfit.cli._predict import predict
    from daskfit.cli._run import run

    X, y, exposure = make_rates(14)
    pdf = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(
        claims=y, log_exposure=np.log(exposure))
    (tmp_path / "data").mkdir()
    for i, (a, b) in enumerate([(0, 120), (120, N)]):
        pdf.iloc[a:b].to_parquet(tmp_path / "data" / f"part{i}.parquet")
    config = tmp_path / "rates.toml"
    config.write_text(
        '[data]\npath = "data"\ntarget = "claims"\noffset = "log_exposure"\n'
        '[model]\nestimator = "PoissonRegressor"\nparams = { alpha = 0.0, tol = 1e-10 }\n'
        'standardize = false\n[cv]\nfolds = 0\n[overfitting]\nenabled = false\n')
    run_dir = Path(run(config, scheduler=cluster.scheduler_address, progress=False,
                       echo=lambda *a, **k: None))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["features"]["columns"] == [f"x{i}" for i in range(X.shape[1])]
    model = daskfit.load(run_dir / "model")
    assert model.offset == "log_exposure"
    expected = statsmodels_fit(y, X, sm.families.Poisson(), np.log(exposure))
    np.testing.assert_allclose(theta(model.estimator), expected, rtol=RTOL)
    predict(run_dir, str(tmp_path / "data"), str(tmp_path / "preds"), client=None,
            progress=False)
    predicted = pd.read_parquet(tmp_path / "preds")["prediction"].to_numpy()
    np.testing.assert_allclose(predicted, np.exp(sm.add_constant(X, prepend=False) @ expected
                                                 + np.log(exposure)), rtol=1e-6)


def test_cli_offset_column_is_no_feature_and_goes_to_the_folds(tmp_path):
    from daskfit.cli._config import load_config
    from daskfit.cli._exit import ConfigError
    from daskfit.cli._run import input_columns

    config = tmp_path / "rates.toml"
    config.write_text('[data]\npath = "data"\ntarget = "y"\noffset = "off"\n'
                      '[model]\nestimator = "PoissonRegressor"\n')
    frame = pd.DataFrame({"x": [1.0], "y": [1.0], "off": [0.0]})
    # Cross-validation and the diagnosis take the offset (default [cv] folds = 5).
    assert input_columns(load_config(config), frame) == ["x"]  # the offset is no feature
    config.write_text(config.read_text().replace('offset = "off"',
                                                 'offset = "off"\nfeatures = ["x", "off"]'))
    with pytest.raises(ConfigError, match="data.features"):
        input_columns(load_config(config), frame)


# --------------------------------------------------------------- inference
def _compare_summary(model, result, **data):
    table = model.summary(**data)
    order = list(table.index[1:]) + [table.index[0]]  # statsmodels: constant last
    np.testing.assert_allclose(table.loc[order, "std_err"], result.bse, rtol=RTOL)
    np.testing.assert_allclose(model.inference_.deviance, result.deviance, rtol=RTOL)
    np.testing.assert_allclose(model.inference_.llf, result.llf, rtol=RTOL)


def test_inference_with_offset_equals_statsmodels():
    """Standard errors, deviance and the null deviance of the intercept-only model with
    the offset (statsmodels refits it; closed forms here) for Poisson and least squares."""
    X, y, exposure = make_rates(15)
    offset = np.log(exposure)
    Xc = sm.add_constant(X, prepend=False)
    model = daskfit.PoissonRegressor(alpha=0, **TIGHT).fit(X, y, offset=offset)
    result = sm.GLM(y, Xc, family=sm.families.Poisson(), offset=offset).fit(tol=1e-13)
    Xd, yd, od = as_kind("dask", X, y, offset)
    _compare_summary(model, result, X=Xd, y=yd, offset=od)
    np.testing.assert_allclose(model.inference_.null_deviance, result.null_deviance, rtol=RTOL)
    # Least squares: the statistics come from the fit's own moments (of y - offset).
    yl = X @ [1.0, 0.0, -1.0, 0.5] + 2.0 * offset + np.cos(np.arange(N))
    ols = daskfit.LinearRegression().fit(X, yl, offset=2.0 * offset)
    expected = sm.GLM(yl, Xc, offset=2.0 * offset).fit()
    assert ols.inference_.passes == 0
    np.testing.assert_allclose(ols.inference_.null_deviance, expected.null_deviance, rtol=RTOL)
    # ... and from an inference pass with the offset.
    ridge = daskfit.Ridge(alpha=0.0, solver="lbfgs", tol=1e-12, max_iter=1000).fit(
        X, yl, offset=2.0 * offset)
    ridge.summary(X, yl, offset=2.0 * offset)
    np.testing.assert_allclose(ridge.inference_.null_deviance, expected.null_deviance,
                               rtol=RTOL)
    # The logit's null model with an offset has no closed form: NaN, not a wrong number.
    yb = (y > 1).astype(int)
    clf = daskfit.LogisticRegression(C=1e12, **TIGHT).fit(X, yb, offset=offset)
    logit = sm.GLM(yb, Xc, family=sm.families.Binomial(), offset=offset).fit(tol=1e-13)
    _compare_summary(clf, logit, X=X, y=yb, offset=offset)
    assert np.isnan(clf.inference_.null_deviance)
