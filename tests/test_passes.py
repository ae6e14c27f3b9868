"""Cost: passes over the data, graph shape, persistence, nothing scattered."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import daskfit
from daskfit._data import ChunkedData
from daskfit.engine.rows import TASKS_PER_THREAD, Engine
from daskfit.kernels.chunks import moments_chunk

from conftest import CHUNKINGS, PROBLEMS, as_kind




@pytest.mark.parametrize("kind", ["numpy", "dask", "ddf"])
@pytest.mark.parametrize("make", [
    lambda: daskfit.LinearRegression(), lambda: daskfit.Ridge(alpha=2.0),
    lambda: daskfit.Lasso(alpha=0.1), lambda: daskfit.ElasticNet(alpha=0.1),
], ids=["ols", "ridge", "lasso", "enet"])
def test_normal_solver_reads_the_data_once(make, kind, count_reductions):
    X, y, w = PROBLEMS["regression"]()
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS["50"])
    est = make().fit(Xk, yk, sample_weight=wk)
    assert est.solver_ == "normal"
    # One pass in all, and it is also the pass that validated the data.
    assert count_reductions == ["gram"]
    assert est.n_passes_ == 1


def test_qr_fallback_pass_is_counted_and_told(count_reductions):
    """A singular Gram matrix (one-hot levels that sum to the intercept) costs the
    normal equations a QR pass: n_passes_ and fit_result_.fallback say so."""
    X, y, _ = PROBLEMS["regression"]()
    dummies = np.eye(3)[np.arange(len(X)) % 3]
    est = daskfit.LinearRegression().fit(np.column_stack([X, dummies]), y)
    assert len(count_reductions) == est.n_passes_ == 2
    assert est.fit_result_.fallback and est.fit_result_.passes == 2
    full_rank = daskfit.LinearRegression().fit(np.column_stack([X, dummies[:, 1:]]), y)
    assert full_rank.n_passes_ == 1 and not full_rank.fit_result_.fallback
    np.testing.assert_allclose(est.predict(np.column_stack([X, dummies])),
                               full_rank.predict(np.column_stack([X, dummies[:, 1:]])),
                               rtol=1e-9)


@pytest.mark.parametrize("problem,make", [
    ("binary", lambda: daskfit.LogisticRegression(solver="newton", tol=1e-10)),
    ("multiclass", lambda: daskfit.LogisticRegression(solver="newton", tol=1e-10)),
    ("counts", lambda: daskfit.PoissonRegressor(solver="newton", tol=1e-10)),
    ("regression", lambda: daskfit.Ridge(solver="newton", tol=1e-10)),
])
def test_newton_makes_one_pass_per_iteration(problem, make, count_reductions):
    X, y, w = PROBLEMS[problem]()
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])
    est = make().fit(Xk, yk, sample_weight=wk)
    steps = [h["step"] for h in est.fit_result_.history[1:]]
    assert steps and all(s == 1.0 for s in steps)  # no backtracking on these problems
    n_iter = int(np.ravel(est.n_iter_)[0])
    # The first pass (validation + evaluation at zero) and one per iteration.
    assert est.n_passes_ == n_iter + 1 == len(count_reductions)
    first = "labels" if problem in ("binary", "multiclass") else "gradient"
    assert count_reductions[0] == first
    assert set(count_reductions[1:]) == {"hessian"}


def test_lbfgs_pass_per_function_evaluation(count_reductions):
    X, y, w = PROBLEMS["binary"]()
    est = daskfit.LogisticRegression(solver="lbfgs", tol=1e-8).fit(X, y, sample_weight=w)
    assert est.n_passes_ == len(count_reductions)
    # Each iteration is at least one evaluation; line searches may add a few.
    assert est.n_iter_[0] + 1 <= est.n_passes_ <= 2 * est.n_iter_[0] + 2


def test_plain_gd_costs_one_pass_per_accepted_step(count_reductions):
    X, y, w = PROBLEMS["regression"]()
    est = daskfit.Ridge(alpha=1.0, solver="gd", tol=1e-8, max_iter=5000).fit(X, y)
    history = est.fit_result_.history
    rejected = est.n_passes_ - 1 - est.n_iter_
    assert rejected >= 0
    # Steps grow by 25% after each acceptance, so rejections stay a minority.
    assert rejected < 0.5 * est.n_iter_
    assert history[-1]["passes"] == est.n_passes_


@pytest.mark.parametrize("n_chunks,split_every", [(1, 8), (7, 8), (50, 8), (50, 4),
                                                  (513, 8), (2000, 16)])
@pytest.mark.parametrize("in_memory", [False, True], ids=["streamed", "in-memory"])
def test_reduction_depth_is_logarithmic(n_chunks, split_every, in_memory):
    X = np.zeros((n_chunks, 2))
    Xd, yd, _ = as_kind("dask", X, np.zeros(n_chunks), None, (1,) * n_chunks)
    engine = Engine(ChunkedData(Xd, yd, None, is_lazy=not in_memory), split_every=split_every)
    delayed, depth = engine.graph(moments_chunk, None, "gram")
    graph = dict(delayed.__dask_graph__())
    kernel_tasks = [k for k in graph if isinstance(k, tuple) and len(k) == 2
                    and k[0].startswith("daskfit-gram-")]
    assert depth == max(1, math.ceil(math.log(len(kernel_tasks), split_every) - 1e-12))
    # One task per chunk; once chunks outnumber the threads' few tasks each
    # they are batched, in memory or streamed (a streamed batch makes its
    # chunks one at a time inside the task). Every chunk in one task.
    target = (os.cpu_count() or 1) * TASKS_PER_THREAD
    if n_chunks > target:
        assert len(kernel_tasks) == pytest.approx(target, abs=1)
    else:
        assert len(kernel_tasks) == n_chunks
    members = sorted(i for batch in engine.batches() for i in batch)
    assert members == list(range(n_chunks))


def test_task_names_describe_the_fit(client):
    from distributed import get_task_stream

    X, y, w = PROBLEMS["binary"]()
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])
    with get_task_stream(client) as stream:
        daskfit.LogisticRegression(solver="newton").fit(Xk, yk, sample_weight=wk)
    prefixes = {t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in stream.data}
    names = {p.rsplit("-", 1)[0] for p in prefixes if p.startswith("daskfit-")}
    assert {"daskfit-labels", "daskfit-hessian"} <= names


def _combine_tasks_run(client, fit):
    """Run ``fit()`` and return the number of merge tasks the workers ran, and its result."""
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        result = fit()
    keys = [t["key"] for t in stream.data]
    # A pass's kernel tasks are ``(name, b)``; its merges are ``name`` itself
    # (the root) or ``(name + "-combine", depth, index)``.
    passes = {k[0] for k in keys if isinstance(k, tuple) and str(k[0]).startswith("daskfit-")}
    merges = [k for k in keys if (k in passes) or (isinstance(k, tuple) and k[0].endswith("-combine")
                                                   and k[0][:-len("-combine")] in passes)]
    return len(merges), result


def test_small_partials_are_merged_on_the_client_large_ones_on_the_workers(client, monkeypatch):
    import daskfit.engine.rows as rows

    X, y, w = PROBLEMS["binary"]()
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])

    def fit():
        return daskfit.LogisticRegression(solver="newton").fit(Xk, yk, sample_weight=wk)

    # Small partials: no merge task ever reaches a worker (it would cost a
    # scheduling round trip and a worker-to-worker hop per pass).
    merges, on_client = _combine_tasks_run(client, fit)
    assert merges == 0
    # Partials over the limit are tree-reduced on the workers, one merge per pass.
    monkeypatch.setattr(rows, "CLIENT_MERGE_BYTES", 0)
    merges, on_workers = _combine_tasks_run(client, fit)
    assert merges == on_workers.n_passes_
    # Same arithmetic either way: identical passes, coefficients equal to rounding.
    assert on_client.n_passes_ == on_workers.n_passes_
    np.testing.assert_allclose(on_client.coef_, on_workers.coef_, rtol=1e-12, atol=1e-12)


def test_coefficients_travel_in_the_graph_never_scattered(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("daskfit must not scatter solver state")

    monkeypatch.setattr(type(client), "scatter", refuse)
    X, y, w = PROBLEMS["binary"]()
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])
    est = daskfit.LogisticRegression(solver="lbfgs").fit(Xk, yk, sample_weight=wk)
    assert est.fit_result_.converged


def test_data_is_persisted_once_for_iterative_solvers(client, monkeypatch):
    persisted = []
    original = type(client).persist

    def counting(self, collections, *args, **kwargs):
        persisted.append(len(collections))
        return original(self, collections, *args, **kwargs)

    monkeypatch.setattr(type(client), "persist", counting)
    X, y, w = PROBLEMS["counts"]()
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])
    est = daskfit.PoissonRegressor().fit(Xk, yk, sample_weight=wk)
    assert persisted == [3]  # X, y and weights together, once
    assert est.n_passes_ > 2 and est.fit_plan_.persist
    # One-pass solvers stream instead: persisting would only add work.
    persisted.clear()
    est = daskfit.LinearRegression().fit(Xk, yk, sample_weight=wk)
    assert persisted == [] and not est.fit_plan_.persist and est.n_passes_ == 1


def test_persist_false_streams(client):
    X, y, _ = PROBLEMS["counts"]()
    Xk, yk, _ = as_kind("dask", X, y, None, CHUNKINGS["7"])
    est = daskfit.PoissonRegressor(persist=False).fit(Xk, yk)
    assert not est.fit_plan_.persist and est.n_passes_ > 2


def test_in_process_passes_limit_every_blas_library_to_one_thread_and_restore_it():
    """Dask's threaded scheduler runs one kernel per core: each kernel's BLAS must
    use one thread (else threads x cores threads share the cores), and the
    limit ends with the pass. The libraries are found once, not per pass."""
    from threadpoolctl import threadpool_info

    from daskfit.engine.rows import local_blas_threads

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    assert before
    for _ in range(2):
        with local_blas_threads("threads"):
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == before
    with local_blas_threads("sync"):
        assert blas_threads() == before
