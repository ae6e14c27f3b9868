"""Coefficients equal scikit-learn's for the same objective.

For every estimator x applicable solver, on NumPy, Dask array and Dask
DataFrame input, and across chunkings (1, 7, 50, uneven with empty chunks):
1e-6 relative for least squares, 1e-5 for logistic, multinomial, Poisson.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.linear_model as sk

import daskfit
from daskfit.solvers import SOLVERS

from conftest import CHUNKINGS, KINDS, PROBLEMS, as_kind

TIGHT = 1e-10  # daskfit's tol for oracle comparisons (max-abs gradient)

# name -> (daskfit estimator factory, scikit-learn reference factory, problem, rtol)
CASES = {
    "ols": (lambda **kw: daskfit.LinearRegression(**kw),
            lambda: sk.LinearRegression(), "regression", 1e-6),
    "ridge": (lambda **kw: daskfit.Ridge(alpha=30.0, **kw),
              lambda: sk.Ridge(alpha=30.0, tol=1e-12), "regression", 1e-6),
    "lasso": (lambda **kw: daskfit.Lasso(alpha=0.05, **kw),
              lambda: sk.Lasso(alpha=0.05, tol=1e-14, max_iter=100_000), "regression", 1e-6),
    "enet": (lambda **kw: daskfit.ElasticNet(alpha=0.05, l1_ratio=0.3, **kw),
             lambda: sk.ElasticNet(alpha=0.05, l1_ratio=0.3, tol=1e-14, max_iter=100_000),
             "regression", 1e-6),
    "logistic": (lambda **kw: daskfit.LogisticRegression(C=2.0, **kw),
                 lambda: sk.LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000),
                 "binary", 1e-5),
    "logistic-none": (lambda **kw: daskfit.LogisticRegression(C=np.inf, **kw),
                      lambda: sk.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000),
                      "binary", 1e-5),
    "multinomial": (lambda **kw: daskfit.LogisticRegression(C=0.5, **kw),
                    lambda: sk.LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000),
                    "multiclass", 1e-5),
    "poisson": (lambda **kw: daskfit.PoissonRegressor(alpha=0.05, **kw),
                lambda: sk.PoissonRegressor(alpha=0.05, tol=1e-12, max_iter=10_000),
                "counts", 1e-5),
}

LOSS_OF = {"ols": "squared", "ridge": "squared", "lasso": "squared", "enet": "squared",
           "logistic": "logistic", "logistic-none": "logistic", "multinomial": "multinomial",
           "poisson": "poisson"}
PENALTY_OF = {"lasso": "l1", "enet": "elasticnet"}

_REFERENCE_CACHE = {}


def reference(case, weighted):
    """scikit-learn's fit (cached: the oracle does not change)."""
    key = (case, weighted)
    if key not in _REFERENCE_CACHE:
        _, make_ref, problem, _ = CASES[case]
        X, y, w = PROBLEMS[problem]()
        ref = make_ref().fit(X, y, sample_weight=w if weighted else None)
        _REFERENCE_CACHE[key] = (np.ravel(ref.coef_), np.ravel(ref.intercept_))
    return _REFERENCE_CACHE[key]


def assert_matches(est, case, weighted):
    coef, intercept = reference(case, weighted)
    rtol = CASES[case][3]
    scale = max(np.abs(coef).max(), np.abs(intercept).max())
    np.testing.assert_allclose(np.ravel(est.coef_), coef, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(np.ravel(est.intercept_), intercept, rtol=rtol, atol=rtol * scale)


#: Parameter averaging and async SGD are approximate by design (their own
#: tests, in test_strategies_data_parallel.py, assert 1e-3 of the optimum).
APPROXIMATE = {"averaging", "async-sgd"}


def solver_cases():
    for case in CASES:
        for solver, info in SOLVERS.items():
            if solver in APPROXIMATE:
                continue
            if info.supports(LOSS_OF[case], PENALTY_OF.get(case, "l2")):
                yield case, solver


@pytest.mark.parametrize("case,solver", list(solver_cases()))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_every_solver_matches_sklearn(case, solver, weighted):
    make_est, _, problem, _ = CASES[case]
    X, y, w = PROBLEMS[problem]()
    est = make_est(solver=solver, tol=TIGHT, max_iter=20_000)
    est.fit(X, y, sample_weight=w if weighted else None)
    assert est.solver_ == solver
    assert est.fit_result_.converged
    assert_matches(est, case, weighted)


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CASES))
def test_default_solver_matches_sklearn_on_every_input_kind_and_chunking(case, kind, chunking):
    make_est, _, problem, _ = CASES[case]
    X, y, w = PROBLEMS[problem]()
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS[chunking])
    est = make_est(tol=TIGHT, max_iter=20_000).fit(Xk, yk, sample_weight=wk)
    assert_matches(est, case, weighted=True)


@pytest.mark.parametrize("case", ["ols", "lasso", "logistic", "multinomial", "poisson"])
def test_distributed_fit_matches_sklearn(client, case):
    """On a real 2-process cluster, with persisted data and uneven chunks."""
    make_est, _, problem, _ = CASES[case]
    X, y, w = PROBLEMS[problem]()
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["uneven+empty"])
    est = make_est(tol=TIGHT, max_iter=20_000).fit(Xk, yk, sample_weight=wk)
    assert_matches(est, case, weighted=True)
    if est.solver_ != "normal":
        assert est.fit_plan_.persist


def test_logistic_l1_matches_saga():
    X, y, _ = PROBLEMS["binary"]()
    X = (X - X.mean(0)) / X.std(0)  # saga needs scaled features to converge tightly
    ref = sk.LogisticRegression(C=0.05, l1_ratio=1.0, solver="saga", tol=1e-12,
                                max_iter=200_000).fit(X, y)
    est = daskfit.LogisticRegression(C=0.05, l1_ratio=1.0, tol=TIGHT, max_iter=20_000).fit(X, y)
    assert est.solver_ == "proximal"
    assert np.sum(est.coef_ == 0) == np.sum(ref.coef_ == 0) > 0  # same exact zeros
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_no_intercept_matches_sklearn(fit_intercept):
    X, y, w = PROBLEMS["regression"]()
    ref = sk.Ridge(alpha=3.0, fit_intercept=fit_intercept).fit(X, y, sample_weight=w)
    for solver in ("normal", "newton", "lbfgs"):
        est = daskfit.Ridge(alpha=3.0, fit_intercept=fit_intercept, solver=solver, tol=TIGHT)
        est.fit(X, y, sample_weight=w)
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-6)
        assert est.intercept_ == pytest.approx(ref.intercept_, abs=1e-6)
