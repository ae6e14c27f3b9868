"""The planner: strategy and solver from metadata, with reasons; auto follows it."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import daskfit
from daskfit.planner import AVERAGING_MIN_WORKERS, MODEL_PARALLEL_MIN_FEATURES
from daskfit.solvers import NEWTON_MAX_PARAMS

from conftest import PROBLEMS


@pytest.mark.parametrize("est,solver", [
    (daskfit.LinearRegression(), "normal"), (daskfit.Lasso(), "normal"),
    (daskfit.LogisticRegression(), "newton"), (daskfit.PoissonRegressor(), "newton"),
    (daskfit.LogisticRegression(l1_ratio=0.5), "proximal"),
])
def test_small_data_goes_synchronous(est, solver):
    p = daskfit.plan(np.zeros((500, 10)), estimator=est)
    assert (p.strategy, p.solver) == ("synchronous", solver)
    assert p.reasons and not p.persist


def test_many_parameters_prefer_lbfgs_to_newton():
    X = da.zeros((10_000, 600), chunks=(2_000, 600))
    p = daskfit.plan(X, estimator=daskfit.LogisticRegression())
    assert p.facts["parameters"] > NEWTON_MAX_PARAMS and p.solver == "lbfgs"


def test_wide_column_chunked_data_goes_model_parallel():
    p_features = MODEL_PARALLEL_MIN_FEATURES + 1000
    X = da.zeros((2_000, p_features), chunks=(1_000, 1_000))
    squared = daskfit.plan(X, estimator=daskfit.Ridge())
    assert (squared.strategy, squared.solver) == ("model parallel", "bcd")
    logistic = daskfit.plan(X, estimator=daskfit.LogisticRegression())
    assert (logistic.strategy, logistic.solver) == ("model parallel", "sharded-gd")
    # Per-task memory is bounded by a block, not by a whole row of X.
    block = 1_000 * 1_000 * 8
    assert logistic.task_memory <= block * 1.01


def test_narrow_column_chunks_are_merged():
    X = da.zeros((2_000, 40), chunks=(500, 10))
    p = daskfit.plan(X, estimator=daskfit.LinearRegression())
    assert p.strategy == "synchronous" and p.facts["column_chunks"] == 4
    est = daskfit.LinearRegression().fit(da.random.random((2_000, 40), chunks=(500, 10)),
                                         da.random.random(2_000, chunks=500))
    assert est.n_passes_ == 1 and est.fit_plan_.facts["column_chunks"] == 4


def test_many_workers_choose_parameter_averaging():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=AVERAGING_MIN_WORKERS, threads_per_worker=1,
                      processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        X = da.zeros((100_000, 20), chunks=(5_000, 20))
        p = daskfit.plan(X, estimator=daskfit.LogisticRegression(), client=client)
        assert p.strategy == "parameter averaging" and p.solver == "averaging"
        # Least squares needs a single pass however many workers there are.
        assert daskfit.plan(X, client=client).solver == "normal"


def test_persist_or_stream_is_decided_from_memory(client):
    small = da.zeros((10_000, 10), chunks=(1_000, 10))
    assert daskfit.plan(small, estimator=daskfit.LogisticRegression()).persist
    # The test cluster has 2 x 2 GiB: 4 GiB of data cannot be persisted.
    huge = da.zeros((10_000_000, 50), chunks=(500_000, 50))
    p = daskfit.plan(huge, estimator=daskfit.LogisticRegression())
    assert not p.persist
    # Least squares never persists: one pass.
    assert not daskfit.plan(small).persist


def test_plan_reads_well_as_text_and_html():
    p = daskfit.plan(np.zeros((100, 3)), estimator=daskfit.Ridge())
    text = str(p)
    assert "synchronous strategy, solver='normal'" in text and "because:" in text
    html = p._repr_html_()
    assert "<b>daskfit plan</b>" in html and "normal" in html


def test_auto_follows_the_plan_and_keeps_it():
    X, y, _ = PROBLEMS["binary"]()
    est = daskfit.LogisticRegression().fit(X, y)
    expected = daskfit.plan(X, estimator=daskfit.LogisticRegression())
    assert est.fit_plan_.solver == expected.solver == est.solver_
    assert est.fit_plan_.strategy == "synchronous"
    Xm, ym, _ = PROBLEMS["multiclass"]()
    multi = daskfit.LogisticRegression().fit(Xm, ym)
    # The first pass found 3 classes: the plan was redone for 3 x (p + 1) parameters.
    assert multi.coef_.shape[0] == 3 and multi.fit_plan_.solver == multi.solver_


def test_wide_blocks_prefer_sharded_gd_even_for_least_squares():
    X = da.zeros((2_000, 6_000), chunks=(1_000, 2_000))
    p = daskfit.plan(X, estimator=daskfit.Ridge())
    assert (p.strategy, p.solver) == ("model parallel", "sharded-gd")


@pytest.mark.parametrize("X", [np.zeros((500, 10)), da.zeros((9_000, 5_000), chunks=(3_000, 1_000))])
def test_default_plan_is_linear_regressions_plan(X):
    # plan() assumes LinearRegression()'s defaults without importing the
    # estimators (the planner may import none): the two must agree.
    default, explicit = daskfit.plan(X), daskfit.plan(X, estimator=daskfit.LinearRegression())
    assert (default.strategy, default.solver, default.reasons, default.facts) == \
        (explicit.strategy, explicit.solver, explicit.reasons, explicit.facts)


def test_every_solver_entry_carries_its_strategy_and_the_plan_agrees():
    """One registry: the strategy is the solver's entry, not a second table."""
    from daskfit.planner import plan_for
    from daskfit.solvers import SOLVERS, STRATEGIES

    assert all(info.strategy in STRATEGIES for info in SOLVERS.values())
    base = dict(n_rows=10_000, row_chunks=4, itemsize=8, is_lazy=True, n_outputs=1,
                fit_intercept=True, persist=False)
    for name, info in SOLVERS.items():
        loss = info.losses[0]
        penalty = "none" if info.smooth_only else "l1"
        p = plan_for(**base, n_features=20, col_chunks=1, loss_name=loss,
                     penalty_kind=penalty, solver=name)
        assert (p.solver, p.strategy) == (name, info.strategy)
    for cols, loss, penalty in [(1, "squared", "none"), (1, "logistic", "l2"),
                                (1, "poisson", "l1"), (8, "squared", "l2"),
                                (8, "logistic", "none")]:
        p = plan_for(**base, n_features=MODEL_PARALLEL_MIN_FEATURES * cols // 4 + 1,
                     col_chunks=cols, loss_name=loss, penalty_kind=penalty)
        assert p.strategy == SOLVERS[p.solver].strategy
