"""Each loss owns its facts; a new loss is one class plus its registration.

The toy loss below lives only in this file: registering it is all a row
solver needs to fit it, which is what "adding a loss is one file" means.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy.optimize import minimize

from daskfit._data import ChunkedData
from daskfit.engine.rows import Engine
from daskfit.kernels.holdout import Holdout
from daskfit.model import layout
from daskfit.model.losses import LOSSES, Loss, register
from daskfit.model.losses.base import R2Score
from daskfit.model.penalties import Penalty
from daskfit.objective import Objective
from daskfit.solvers import solve


class LogCoshLoss(R2Score, Loss):
    """``log(cosh(raw - y))``: smooth, convex, robust; defined only in this test."""

    name = "test-logcosh"
    curvature_bound = 1.0

    def value(self, y, raw):
        r = raw - y
        return np.logaddexp(r, -r) - np.log(2.0)

    def derivatives(self, y, raw, *, hessian):
        t = np.tanh(raw - y)
        return self.value(y, raw), t, (1.0 - t * t if hessian else None)

    def inverse_link(self, raw):
        return raw


@pytest.fixture
def toy_loss():
    loss = register(LogCoshLoss())
    yield loss
    del LOSSES[loss.name]


def _problem(seed=0, n=300, p=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ np.array([1.0, -0.5, 0.25]) + 0.3 + rng.standard_t(3, size=n)
    return X, y


def _objective(loss, X, y, chunks=(120, 0, 100, 80), l2=0.1):
    Xd = da.from_array(X, chunks=(chunks, X.shape[1]))
    yd = da.from_array(y, chunks=(chunks,))
    engine = Engine(ChunkedData(Xd, yd, None, is_lazy=True))
    return Objective(engine, loss, lambda sw: Penalty(l2=l2), fit_intercept=True).start("grad")


def _reference(loss, X, y, l2=0.1):
    """The same objective minimised by SciPy on the whole array."""
    def f(theta):
        raw = X @ theta[:-1] + theta[-1]
        _, g, _ = loss.derivatives(y, raw, hessian=False)
        value = loss.value(y, raw).mean() + 0.5 * l2 * theta[:-1] @ theta[:-1]
        grad = np.append(X.T @ g, g.sum()) / len(y) + np.append(l2 * theta[:-1], 0.0)
        return value, grad

    return minimize(f, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B",
                    options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000}).x


def test_a_loss_defined_in_one_class_fits_with_the_row_solvers(toy_loss):
    X, y = _problem()
    expected = _reference(toy_loss, X, y)
    for solver in ("lbfgs", "newton"):
        objective = _objective(toy_loss, X, y)
        result = solve(solver, objective, np.zeros(objective.n_params), tol=1e-10,
                       max_iter=200)
        np.testing.assert_allclose(result.theta, expected, rtol=1e-6, atol=1e-8)


def test_the_solver_registry_reads_a_new_loss_from_its_facts(toy_loss):
    """No solver lists losses by name: registering the loss is enough for the planner."""
    from daskfit.planner import plan_for
    from daskfit.solvers import SOLVERS

    offered = {name for name, info in SOLVERS.items() if info.supports(toy_loss.name, "l2")}
    # A curvature bound (local SGD's step) but not quadratic (normal
    # equations) and no closed forms (model parallel).
    assert offered == {"newton", "lbfgs", "gd", "proximal", "averaging", "async-sgd"}
    plan = plan_for(n_rows=10_000, n_features=5, row_chunks=4, col_chunks=1, itemsize=8,
                    is_lazy=True, loss_name=toy_loss.name, penalty_kind="l2", n_outputs=1,
                    fit_intercept=True, solver="auto", persist=False)
    assert plan.solver in offered


def test_a_registered_loss_gradient_matches_finite_differences(toy_loss):
    X, y = _problem(seed=1)
    objective = _objective(toy_loss, X, y, chunks=(150, 150))
    theta = np.array([0.3, -0.2, 0.1, 0.5])
    _, grad = objective.value_and_grad(theta)
    eps = 1e-6
    numeric = [(objective.value(theta + eps * e) - objective.value(theta - eps * e)) / (2 * eps)
               for e in np.eye(len(theta))]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_the_loss_owns_its_held_out_score(toy_loss):
    """Early stopping scores held-out rows with the loss's own score (here R^2)."""
    holdout = Holdout(seed=0, fraction=0.5, loss=toy_loss, runs=None)
    y, raw, w = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]), np.ones(3)
    sums = holdout.score_sums(y, raw, w)
    r2 = 1 - ((y - raw) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert holdout.score == "r2"
    assert holdout.score_value(sums) == pytest.approx(r2, rel=1e-12)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_registered_losses_answer_every_question_the_layers_ask(name):
    """Every registered loss states the facts the callers read (no name branches)."""
    loss = LOSSES[name]
    assert isinstance(loss, Loss) and isinstance(loss.score, str)
    assert isinstance(loss.is_quadratic, bool) and isinstance(loss.model_parallel, bool)
    raw = np.array([-1.0, 0.0, 2.0]) if loss.n_outputs == 1 else np.zeros((3, 3))
    assert np.all(np.isfinite(loss.inverse_link(raw)))
    if loss.model_parallel:
        # The constant model is the minimiser over constants: its gradient sum vanishes.
        y = np.array([0.0, 1.0, 1.0, 3.0]) if name != "logistic" else np.array([0.0, 1, 1, 0])
        sw, swy = float(len(y)), float(y.sum())
        ymoments = (sw, y.mean(), float(((y - y.mean()) ** 2).sum()))
        c0, mu0, loss0 = loss.constant_model(sw, swy, ymoments, True)
        _, g, h = loss.derivatives(y, np.full(len(y), c0), hessian=True)
        assert abs(g.sum()) < 1e-12
        assert loss0 == pytest.approx(loss.value(y, np.full(len(y), c0)).sum(), abs=1e-12) \
            or loss.is_quadratic  # the squared loss's constant is the spread of y
        assert loss.constant_curvature(mu0) == pytest.approx(h.mean())
        d = loss.loss_difference(y, np.full(len(y), c0), np.full(len(y), 1e-3))
        np.testing.assert_allclose(
            d, loss.value(y, np.full(len(y), c0 + 1e-3)) - loss.value(y, np.full(len(y), c0)),
            rtol=1e-9, atol=1e-15)


def test_layout_round_trips_theta():
    rng = np.random.default_rng(0)
    for K, fit_intercept in ((1, True), (3, True), (2, False)):
        theta = rng.normal(size=layout.n_params(4, K, fit_intercept))
        coef, intercept = layout.unpack(theta, 4, K, fit_intercept)
        assert coef.shape == (K, 4) and intercept.shape == (K,)
        np.testing.assert_array_equal(layout.pack(coef, intercept, fit_intercept), theta)
        mask = layout.penalised(4, K, fit_intercept)
        assert mask.sum() == 4 * K
