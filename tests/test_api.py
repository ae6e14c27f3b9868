"""The estimator API: outputs by input kind, fitted attributes, warnings, cluster."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import daskfit
from daskfit.solvers import solve

from conftest import CHUNKINGS, PROBLEMS, as_kind


def test_numpy_in_numpy_out_dask_in_lazy_out():
    X, y, _ = PROBLEMS["multiclass"]()
    clf = daskfit.LogisticRegression().fit(X, y)
    Xd = da.from_array(X, chunks=70)
    for method in ("predict", "predict_proba", "decision_function"):
        eager = getattr(clf, method)(X)
        lazy = getattr(clf, method)(Xd)
        assert isinstance(eager, np.ndarray) and isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), eager)
    assert isinstance(clf.score(Xd, da.from_array(y, chunks=70)), float)
    assert clf.score(Xd, da.from_array(y, chunks=70)) == clf.score(X, y)


@pytest.mark.parametrize("make,problem", [
    (daskfit.LinearRegression, "regression"), (daskfit.PoissonRegressor, "counts"),
])
def test_regressor_scores_agree_across_input_kinds(make, problem):
    X, y, w = PROBLEMS[problem]()
    est = make().fit(X, y)
    expected = est.score(X, y, sample_weight=w)
    for kind in ("dask", "ddf"):
        Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS["uneven+empty"])
        assert est.score(Xk, yk, sample_weight=wk) == pytest.approx(expected, rel=1e-12)
        if kind == "ddf":
            pred = est.predict(Xk)
            assert isinstance(pred, da.Array)
            np.testing.assert_allclose(pred.compute(), est.predict(X))


def test_fitted_attributes_match_sklearn_shapes():
    X, y, _ = PROBLEMS["binary"]()
    clf = daskfit.LogisticRegression().fit(X, y)
    assert clf.coef_.shape == (1, X.shape[1]) and clf.intercept_.shape == (1,)
    assert clf.n_iter_.shape == (1,) and clf.n_iter_[0] >= 1
    assert list(clf.classes_) == [0, 1]
    Xm, ym, _ = PROBLEMS["multiclass"]()
    multi = daskfit.LogisticRegression().fit(Xm, ym)
    assert multi.coef_.shape == (3, Xm.shape[1]) and multi.intercept_.shape == (3,)
    reg = daskfit.Ridge().fit(*PROBLEMS["regression"]()[:2])
    assert reg.coef_.shape == (5,) and isinstance(reg.intercept_, float)
    assert reg.n_features_in_ == 5 and not hasattr(reg, "feature_names_in_")


@pytest.mark.parametrize("kind", ["pandas", "ddf"])
def test_feature_names_from_dataframes(kind):
    X, y, _ = PROBLEMS["regression"]()
    if kind == "pandas":
        Xk = pd.DataFrame(X, columns=list("abcde"))
    else:
        Xk = dd.from_pandas(pd.DataFrame(X, columns=list("abcde")), npartitions=3)
    est = daskfit.LinearRegression().fit(Xk, y if kind == "pandas" else
                                         dd.from_pandas(pd.Series(y), npartitions=3))
    assert list(est.feature_names_in_) == list("abcde")
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(Xk.rename(columns={"a": "z"}) if kind == "pandas"
                    else Xk.rename(columns={"a": "z"}))


def test_unknown_partition_lengths_are_worked_out_in_the_first_pass():
    X, y, w = PROBLEMS["regression"]()
    Xk, yk, wk = as_kind("ddf", X, y, w, CHUNKINGS["uneven+empty"])
    est = daskfit.LinearRegression().fit(Xk, yk, sample_weight=wk)
    assert est.chunk_rows_ == CHUNKINGS["uneven+empty"]
    assert est.n_passes_ == 1


def test_float32_input_is_accepted_and_accumulated_in_float64():
    X, y, _ = PROBLEMS["regression"]()
    est32 = daskfit.LinearRegression().fit(X.astype(np.float32), y)
    est64 = daskfit.LinearRegression().fit(X.astype(np.float32).astype(np.float64), y)
    np.testing.assert_allclose(est32.coef_, est64.coef_, rtol=1e-5)
    assert est32.coef_.dtype == np.float64


def test_convergence_warning_when_the_solver_stops_short():
    X, y, _ = PROBLEMS["binary"]()
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        est = daskfit.LogisticRegression(solver="gd", max_iter=2).fit(X, y)
    assert not est.fit_result_.converged and est.n_iter_[0] == 2


@pytest.mark.parametrize("solver", ["gd", "newton"])
def test_convergence_warning_suggests_newton_only_to_other_solvers(solver):
    X, y, _ = PROBLEMS["binary"]()
    with pytest.warns(ConvergenceWarning) as caught:
        daskfit.LogisticRegression(solver=solver, max_iter=1, tol=1e-12).fit(X, y)
    message = str(next(w.message for w in caught if w.category is ConvergenceWarning))
    assert "Increase max_iter" in message
    assert ("try solver='newton'" in message) == (solver != "newton")


def test_solver_options_are_checked():
    X, y, _ = PROBLEMS["regression"]()
    est = daskfit.Ridge(solver="newton").fit(X, y)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['momentum'\]"):
        solve("gd", None, np.zeros(3), momentum=0.9)
    with pytest.raises(ValueError, match="Unknown solver 'sgd'"):
        solve("sgd", None, np.zeros(3))
    assert est.solver_ == est.fit_plan_.solver == "newton"


def test_auto_solver_records_why():
    X, y, _ = PROBLEMS["binary"]()
    smooth = daskfit.LogisticRegression().fit(X, y)
    assert smooth.solver_ == smooth.fit_plan_.solver == "newton" and smooth.solver_reason_
    l1 = daskfit.LogisticRegression(l1_ratio=1.0).fit(X, y)
    assert l1.solver_ == "proximal" and l1.fit_plan_.facts["penalty"] == "l1"
    ols = daskfit.LinearRegression().fit(*PROBLEMS["regression"]()[:2])
    assert ols.solver_ == "normal" and ols.n_passes_ == 1


def test_connect_starts_a_loopback_cluster_and_estimators_use_it(capsys):
    client = daskfit.connect(n_workers=1, threads_per_worker=1, processes=False,
                             dashboard_address=":0")
    try:
        assert "Dask dashboard: http://127.0.0.1:" in capsys.readouterr().out
        assert client.scheduler.address.startswith("inproc://") or \
            "127.0.0.1" in client.scheduler.address
        X, y, _ = PROBLEMS["counts"]()
        est = daskfit.PoissonRegressor().fit(da.from_array(X, chunks=50), y)
        # Planned (and run) on the connected cluster, not in-process.
        facts = est.fit_plan_.facts
        assert facts["workers"] == 1 and facts["cluster_memory"] != "local"
    finally:
        client.close()
        client.cluster.close()


def test_connect_refuses_cluster_options_with_an_address():
    with pytest.raises(TypeError, match="do not apply"):
        daskfit.connect("tcp://127.0.0.1:1", n_workers=2)


def test_two_lazy_predictions_in_one_graph_do_not_collide():
    X, y, _ = PROBLEMS["regression"]()
    est = daskfit.LinearRegression().fit(X, y)
    A = da.from_array(X[:100], chunks=50)
    B = da.from_array(X[100:200] + 1.0, chunks=50)
    diff = (est.predict(A) - est.predict(B)).compute()
    np.testing.assert_allclose(diff, est.predict(X[:100]) - est.predict(X[100:200] + 1.0))
    assert np.abs(diff).max() > 0.1
