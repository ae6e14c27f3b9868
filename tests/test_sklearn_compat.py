"""scikit-learn compatibility: its own estimator checks and its model selection."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import sklearn.linear_model as sk
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import daskfit

from conftest import PROBLEMS

ESTIMATORS = [
    daskfit.LinearRegression(),
    daskfit.Ridge(),
    daskfit.Lasso(),
    daskfit.ElasticNet(),
    daskfit.LogisticRegression(),
    daskfit.PoissonRegressor(),
    daskfit.GammaRegressor(),
    daskfit.TweedieRegressor(power=1.5),
    # Every solver passes the checks too, not only the automatic choice.
    daskfit.Ridge(solver="lbfgs"),
    daskfit.LogisticRegression(solver="lbfgs"),
    daskfit.PoissonRegressor(solver="gd", max_iter=2000),
    daskfit.Lasso(solver="proximal"),
]


# No exemptions: every check runs and must pass.
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_and_clone():
    X, y, _ = PROBLEMS["multiclass"]()
    pipe = make_pipeline(StandardScaler(), daskfit.LogisticRegression(C=0.5, tol=1e-10))
    ref = make_pipeline(StandardScaler(), sk.LogisticRegression(C=0.5, tol=1e-10))
    pipe.fit(X, y)
    ref.fit(X, y)
    np.testing.assert_array_equal(pipe.predict(X), ref.predict(X))
    np.testing.assert_allclose(pipe.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    twin = clone(pipe)
    assert twin.get_params()["logisticregression__C"] == 0.5
    assert not hasattr(twin[-1], "coef_")


def test_grid_search_chooses_like_sklearn():
    X, y, _ = PROBLEMS["regression"]()
    grid = {"alpha": [0.01, 1.0, 30.0, 300.0, 3000.0]}
    cv = KFold(5, shuffle=True, random_state=0)
    ours = GridSearchCV(daskfit.Ridge(), grid, cv=cv).fit(X, y)
    theirs = GridSearchCV(sk.Ridge(), grid, cv=cv).fit(X, y)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"], rtol=1e-9)


@pytest.mark.parametrize("est,ref,problem", [
    (daskfit.LogisticRegression(C=2.0, tol=1e-10), sk.LogisticRegression(C=2.0, tol=1e-10),
     "binary"),
    (daskfit.Lasso(alpha=0.05, tol=1e-10), sk.Lasso(alpha=0.05, tol=1e-12), "regression"),
    (daskfit.PoissonRegressor(alpha=0.1, tol=1e-10),
     sk.PoissonRegressor(alpha=0.1, tol=1e-12), "counts"),
], ids=["logistic", "lasso", "poisson"])
def test_cross_validate_accepts_numpy_and_dask(est, ref, problem):
    X, y, _ = PROBLEMS[problem]()
    cv = KFold(4, shuffle=True, random_state=1)
    expected = cross_validate(ref, X, y, cv=cv, return_train_score=True)
    for Xk, yk in [(X, y), (da.from_array(X, chunks=70), da.from_array(y, chunks=70))]:
        got = cross_validate(est, Xk, yk, cv=cv, return_train_score=True)
        np.testing.assert_allclose(got["test_score"], expected["test_score"], rtol=1e-5)
        np.testing.assert_allclose(got["train_score"], expected["train_score"], rtol=1e-5)


def test_grid_search_accepts_dask_arrays():
    X, y, _ = PROBLEMS["binary"]()
    Xd, yd = da.from_array(X, chunks=50), da.from_array(y, chunks=50)
    grid = {"C": [0.01, 1.0, 100.0]}
    cv = KFold(3)
    ours = GridSearchCV(daskfit.LogisticRegression(tol=1e-10), grid, cv=cv,
                        scoring="accuracy").fit(Xd, yd)
    theirs = GridSearchCV(sk.LogisticRegression(tol=1e-10), grid, cv=cv,
                          scoring="accuracy").fit(X, y)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"])
