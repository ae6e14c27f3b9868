"""Data-parallel strategies: parameter averaging and asynchronous local SGD.

Oracles are mathematical: the optimum of the same objective found by
Newton (smooth penalties) or FISTA (L1) to 1e-12, closed-form least squares
per chunk, and exact pass counts. Both strategies are stochastic; they are
asserted to reach the optimum's objective within 1e-3 relative, never to
equal it, and never on timings.
"""

from __future__ import annotations

import numpy as np
import pytest

from daskfit._data import ChunkedData
from daskfit.engine.rows import DataError, Engine
from daskfit.kernels.chunks import EvalSpec, evaluate_chunk
from daskfit.model.losses import LOSSES
from daskfit.objective import Objective
from daskfit.model.penalties import Penalty
from daskfit.solvers import solve
from daskfit.solvers._async import solve_async_sgd
from daskfit.solvers._averaging import solve_averaging

from conftest import PROBLEMS, as_kind

PROBLEM_OF_LOSS = {"squared": "regression", "logistic": "binary",
                   "multinomial": "multiclass", "poisson": "counts"}
PENALTIES = {"none": Penalty(), "l2": Penalty(l2=0.3), "l1": Penalty(l1=0.05)}
EQUAL = (100, 100, 100)
#: A 3-row chunk next to a 297-row one, and empty chunks around them.
UNEQUAL = (0, 3, 0, 297)
#: The accuracy both strategies must reach: relative objective gap.
RELATIVE_GAP = 1e-3


def build(loss_name, penalty, chunks=EQUAL, data=None, persist=False):
    """A started objective on Dask arrays, like test_properties.build_objective."""
    X, y, w = data if data is not None else PROBLEMS[PROBLEM_OF_LOSS[loss_name]]()
    Xd, yd, wd = as_kind("dask", X, y, w, chunks)
    engine = Engine(ChunkedData(Xd, yd, wd, is_lazy=True))
    if persist:
        engine.prepare(expected_passes=2)
    loss = LOSSES["logistic" if loss_name == "multinomial" else loss_name]
    return Objective(engine, loss, lambda sw: penalty, True).start("grad")


def optimum(loss_name, penalty, chunks=EQUAL, data=None):
    """Objective value and coefficients at the optimum, to 1e-12."""
    objective = build(loss_name, penalty, chunks, data)
    theta0 = np.zeros(objective.n_params)
    if penalty.smooth:
        result = solve("newton", objective, theta0, tol=1e-12, max_iter=200)
    else:
        result = solve("proximal", objective, theta0, tol=1e-12, max_iter=20000)
    assert result.converged
    return result.loss, result.theta


def gap(result, f_star):
    return (result.loss - f_star) / abs(f_star)


def check_result(result, objective, solver):
    assert result.solver == solver
    assert np.all(np.isfinite(result.theta)) and result.theta.shape == (objective.n_params,)
    assert result.passes == objective.passes
    assert all({"iter", "objective", "grad_norm", "passes", "bytes"} <= set(h)
               for h in result.history)
    # Cost only grows along the history.
    assert np.all(np.diff([h["passes"] for h in result.history]) > 0)
    assert np.all(np.diff([h["bytes"] for h in result.history]) > 0)
    # The returned point is an evaluated one: its objective is in the history.
    assert min(h["objective"] for h in result.history) == pytest.approx(result.loss, rel=1e-12)




# ------------------------------------------------------------- averaging
@pytest.mark.parametrize("chunks", [EQUAL, UNEQUAL], ids=["equal", "unequal+empty"])
@pytest.mark.parametrize("loss_name,penalty", [
    ("squared", "none"), ("squared", "l2"), ("squared", "l1"),
    ("logistic", "none"), ("logistic", "l2"), ("logistic", "l1"),
])
def test_averaging_reaches_the_optimum(loss_name, penalty, chunks):
    f_star, _ = optimum(loss_name, PENALTIES[penalty], chunks)
    objective = build(loss_name, PENALTIES[penalty], chunks)
    result = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-8, max_iter=40)
    check_result(result, objective, "averaging")
    assert result.converged, result.message
    assert gap(result, f_star) <= RELATIVE_GAP
    # 1e-3 within a modest number of rounds (each round one pass).
    first = next(h for h in result.history if h["objective"] - f_star <= RELATIVE_GAP * f_star)
    assert first["iter"] <= 15


@pytest.mark.parametrize("loss_name", ["multinomial", "poisson"])
def test_averaging_other_losses(loss_name):
    penalty = Penalty(l2=0.1)
    f_star, _ = optimum(loss_name, penalty)
    objective = build(loss_name, penalty)
    result = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-8, max_iter=40)
    check_result(result, objective, "averaging")
    assert gap(result, f_star) <= RELATIVE_GAP


@pytest.mark.parametrize("local_epochs", [1, 2, 5])
def test_averaging_local_epochs_reach_the_optimum(local_epochs):
    f_star, _ = optimum("logistic", PENALTIES["l2"], UNEQUAL)
    objective = build("logistic", PENALTIES["l2"], UNEQUAL)
    result = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-6,
                             max_iter=40, local_epochs=local_epochs)
    assert result.converged
    assert gap(result, f_star) <= RELATIVE_GAP


def test_one_pass_per_round(count_reductions):
    objective = build("logistic", PENALTIES["l2"])
    assert count_reductions == ["labels"]  # the validating first pass
    bytes_before = objective.bytes_communicated
    result = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-6, max_iter=40)
    assert result.converged
    # Stopped on its own criterion: the first pass plus one per round, and
    # the history holds the average before each round's pass evaluated it.
    assert count_reductions[1:] == ["averaging"] * result.n_iter
    assert result.passes == result.n_iter + 1 == objective.passes
    assert [h["passes"] for h in result.history] == list(range(2, result.n_iter + 2))
    assert objective.bytes_communicated > bytes_before


def test_max_iter_costs_one_more_pass_for_the_last_average(count_reductions):
    objective = build("squared", PENALTIES["none"])
    result = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-14, max_iter=3)
    assert not result.converged and "max_iter" in result.message
    assert result.n_iter == 3
    assert count_reductions == ["gradient", "averaging", "averaging", "averaging", "gradient"]
    assert result.passes == result.n_iter + 2
    assert [h["iter"] for h in result.history] == [0, 1, 2, 3]


def test_one_shot_averaging_is_one_round():
    """max_iter=1 with many local epochs: one round, then one evaluation."""
    f_star, _ = optimum("logistic", PENALTIES["l2"])
    objective = build("logistic", PENALTIES["l2"])
    f0 = objective.value(np.zeros(objective.n_params))
    result = solve_averaging(objective, np.zeros(objective.n_params), max_iter=1,
                             local_epochs=20)
    assert result.n_iter == 1 and result.passes == 3
    assert result.loss - f_star < 1e-2 * (f0 - f_star)


def _block_least_squares(X, y, w, chunks):
    """Per-chunk weighted least-squares optimum (coefficients, intercept last)."""
    bounds = np.cumsum((0,) + chunks)
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        A = np.column_stack([X[a:b], np.ones(b - a)]) * np.sqrt(w[a:b])[:, None]
        out.append(np.linalg.lstsq(A, y[a:b] * np.sqrt(w[a:b]), rcond=None)[0])
    return out


def test_unequal_chunks_weighted_average_is_unbiased_unweighted_is_not():
    """Chunks with the same Hessian: the weighted mean of local optima is the optimum.

    The large chunk is nine copies of the small chunk's rows with a
    different target, so every chunk has the same weighted Hessian and the
    global least-squares optimum is *exactly* the sample-weighted mean of
    the chunks' own optima. One-shot averaging of (deterministic,
    full-batch) local runs must find it; the unweighted mean of the same
    local optima lands far off.
    """
    rng = np.random.default_rng(7)
    Xs = rng.normal(size=(20, 3))
    X = np.vstack([Xs] * 10)
    w = np.tile(rng.uniform(0.5, 2.0, size=20), 10)
    y = np.concatenate([Xs @ [1.0, -2.0, 0.5] + 3.0,
                        np.tile(Xs @ [-1.0, 1.0, 2.0] - 1.0, 9)]) + rng.normal(scale=0.1, size=200)
    chunks = (20, 180)
    data = (X, y, w)
    f_star, theta_star = optimum("squared", Penalty(), chunks, data)
    local = _block_least_squares(X, y, w, chunks)
    sw = [w[:20].sum(), w[20:].sum()]
    weighted = (sw[0] * local[0] + sw[1] * local[1]) / sum(sw)
    unweighted = (local[0] + local[1]) / 2
    np.testing.assert_allclose(weighted, theta_star, rtol=1e-8, atol=1e-10)
    objective = build("squared", Penalty(), chunks, data)
    f_unweighted = objective.value(unweighted)
    assert (f_unweighted - f_star) / f_star > 1.0  # the unweighted mean is badly biased

    # Classical one-shot averaging: every chunk takes the same full-batch steps.
    objective = build("squared", Penalty(), chunks, data)
    result = solve_averaging(objective, np.zeros(objective.n_params), max_iter=1,
                             local_epochs=400, batch_size=200, learning_rate=0.5,
                             variance_reduction=False)
    np.testing.assert_allclose(result.theta, theta_star, rtol=1e-6, atol=1e-8)
    assert gap(result, f_star) < 1e-9
    # Empty chunks contribute nothing: same local runs, same average.
    objective = build("squared", Penalty(), (0, 20, 0, 180, 0), data)
    padded = solve_averaging(objective, np.zeros(objective.n_params), max_iter=1,
                             local_epochs=400, batch_size=200, learning_rate=0.5,
                             variance_reduction=False)
    np.testing.assert_allclose(padded.theta, result.theta, rtol=1e-12, atol=1e-14)


def test_classical_averaging_options():
    """Plain local SGD: decay + Polyak lowers the noise floor of constant steps."""
    data = PROBLEMS["regression"](n=3000)
    f_star, _ = optimum("squared", PENALTIES["l2"], (1000,) * 3, data)
    gaps = {}
    for name, options in {"constant": {}, "decay+polyak": dict(schedule="inverse-sqrt",
                                                                 polyak=True)}.items():
        objective = build("squared", PENALTIES["l2"], (1000,) * 3, data)
        result = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-12,
                                 max_iter=8, variance_reduction=False, **options)
        check_result(result, objective, "averaging")
        gaps[name] = gap(result, f_star)
    assert gaps["decay+polyak"] < gaps["constant"] / 3
    assert gaps["decay+polyak"] < 1e-2


def test_averaging_is_reproducible_locally_and_on_a_cluster(client):
    """Seeded per (round, chunk): same coefficients on threads and on 2 processes."""
    objective = build("logistic", PENALTIES["l2"], (60, 90, 150), persist=True)
    on_cluster = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-8,
                                 max_iter=6, random_state=3)
    client.close()
    runs = []
    for _ in range(2):
        objective = build("logistic", PENALTIES["l2"], (60, 90, 150))
        assert objective.engine.client is None
        runs.append(solve_averaging(objective, np.zeros(objective.n_params), tol=1e-8,
                                    max_iter=6, random_state=3))
    np.testing.assert_array_equal(runs[0].theta, runs[1].theta)
    np.testing.assert_allclose(on_cluster.theta, runs[0].theta, rtol=1e-10, atol=1e-12)
    assert on_cluster.n_iter == runs[0].n_iter
    objective = build("logistic", PENALTIES["l2"], (60, 90, 150))
    other = solve_averaging(objective, np.zeros(objective.n_params), tol=1e-8, max_iter=6,
                            random_state=4)
    assert not np.array_equal(other.theta, runs[0].theta)  # the seed does matter


# ------------------------------------------------------------- async
@pytest.mark.parametrize("loss_name,penalty", [("squared", "none"), ("squared", "l2"),
                                               ("logistic", "none"), ("logistic", "l1")])
def test_async_without_client_reaches_the_optimum(loss_name, penalty):
    f_star, _ = optimum(loss_name, PENALTIES[penalty], UNEQUAL)
    objective = build(loss_name, PENALTIES[penalty], UNEQUAL)
    assert objective.engine.client is None
    result = solve_async_sgd(objective, np.zeros(objective.n_params), tol=1e-8, max_iter=40)
    check_result(result, objective, "async-sgd")
    assert gap(result, f_star) <= RELATIVE_GAP
    # One history entry per epoch (eval_every=1), epochs counted from 1.
    assert [h["iter"] for h in result.history] == list(range(1, result.n_iter + 1))
    assert result.history[-1]["discarded"] == 0  # no staleness without a client


def test_async_without_client_is_deterministic_and_counts_passes():
    results, passes = [], []
    for _ in range(2):
        objective = build("logistic", PENALTIES["l2"])
        results.append(solve_async_sgd(objective, np.zeros(objective.n_params), tol=1e-6,
                                       max_iter=30))
        passes.append(objective.passes)
    np.testing.assert_array_equal(results[0].theta, results[1].theta)
    # The first pass, one pass per epoch of chunk tasks, one per evaluation.
    assert passes[0] == 1 + results[0].n_iter + len(results[0].history)
    objective = build("logistic", PENALTIES["l2"])
    sparse = solve_async_sgd(objective, np.zeros(objective.n_params), tol=1e-12, max_iter=6,
                             eval_every=3)
    assert [h["iter"] for h in sparse.history] == [3, 6]
    assert objective.passes == 1 + 6 + 2


@pytest.mark.parametrize("loss_name,penalty", [("squared", "l2"), ("logistic", "none")])
def test_async_on_a_cluster_reaches_the_optimum(client, loss_name, penalty):
    f_star, _ = optimum(loss_name, PENALTIES[penalty], EQUAL)
    objective = build(loss_name, PENALTIES[penalty], EQUAL, persist=True)
    assert objective.engine.client is not None
    result = solve_async_sgd(objective, np.zeros(objective.n_params), tol=1e-6, max_iter=40)
    check_result(result, objective, "async-sgd")
    assert gap(result, f_star) <= RELATIVE_GAP
    assert result.history[-1]["updates"] >= result.n_iter * 3 - 3  # ~one per chunk per epoch


def test_async_discards_stale_updates(client):
    """max_staleness=0 with every chunk in flight: most updates are stale."""
    objective = build("squared", PENALTIES["l2"], (50,) * 6, persist=True)
    result = solve_async_sgd(objective, np.zeros(objective.n_params), tol=1e-12, max_iter=3,
                             max_staleness=0)
    assert result.history[-1]["discarded"] > 0
    assert np.all(np.isfinite(result.theta))


# ---------------------------------------------------------------- engine
def _rows_kernel(index, X, y, w, spec):
    return {"n": X.shape[0], "visit": spec["visit"], "coef": np.asarray(spec["theta"])}


@pytest.mark.parametrize("with_client", [False, True])
def test_map_chunks_as_completed_resubmits_and_counts(with_client, request):
    if with_client:
        request.getfixturevalue("client")
    X, y, w = PROBLEMS["regression"]()
    chunks = (100, 120, 80)
    engine = Engine(ChunkedData(*as_kind("dask", X, y, w, chunks), is_lazy=True))
    assert (engine.client is not None) == with_client
    visits = {i: 0 for i in range(3)}

    def next_spec(index):
        if visits[index] == 2:
            return None
        visits[index] += 1
        return {"visit": visits[index], "theta": np.zeros(4)}

    seen = [(i, r["n"], r["visit"]) for i, _, r in
            engine.map_chunks_as_completed(_rows_kernel, next_spec, "test")]
    assert sorted(seen) == sorted((i, n, v) for i, n in enumerate(chunks) for v in (1, 2))
    if not with_client:  # round robin, one at a time
        assert [i for i, _, _ in seen] == [0, 1, 2, 0, 1, 2]
    assert engine.passes == 2  # six chunk tasks over three chunks
    # Bytes of every task's spec and result: theta in, coef out (4 floats each).
    assert engine.bytes_communicated == 6 * (8 + 32 + 8 + 8 + 32)


def test_map_chunks_as_completed_reports_bad_chunks_and_stops():
    X, y, w = PROBLEMS["regression"]()
    X = X.copy()
    X[150, 2] = np.nan
    engine = Engine(ChunkedData(*as_kind("dask", X, y, w, (100, 100, 100)), is_lazy=True))
    spec = EvalSpec(loss=LOSSES["squared"], theta=np.zeros(6), n_features=5, n_outputs=1,
                    fit_intercept=True, classes=None, order=1, checks=True)
    stream = engine.map_chunks_as_completed(evaluate_chunk, lambda i: spec, "test")
    with pytest.raises(DataError, match="NaN.*row chunk 1 of 3"):
        for _ in stream:
            pass
    assert engine.passes == 1  # the two tasks that ran: a partial pass counts as one


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("solver", [solve_averaging, solve_async_sgd])
def test_divergence_raises_with_advice(solver):
    objective = build("squared", PENALTIES["none"])
    with pytest.raises(FloatingPointError, match="learning_rate"):
        solver(objective, np.zeros(objective.n_params), learning_rate=1e6, max_iter=20)


@pytest.mark.parametrize("solver,options,error", [
    (solve_averaging, dict(momentum=0.9), TypeError),
    (solve_averaging, dict(schedule="cosine"), ValueError),
    (solve_averaging, dict(batch_size=0), ValueError),
    (solve_averaging, dict(local_epochs=0), ValueError),
    (solve_averaging, dict(learning_rate=-1.0), ValueError),
    (solve_async_sgd, dict(schedule="constant"), TypeError),
    (solve_async_sgd, dict(max_staleness=-1), ValueError),
    (solve_async_sgd, dict(local_steps=0), ValueError),
    (solve_async_sgd, dict(eval_every=0), ValueError),
])
def test_bad_options_raise(solver, options, error):
    objective = build("squared", PENALTIES["none"])
    with pytest.raises(error):
        solver(objective, np.zeros(objective.n_params), **options)
