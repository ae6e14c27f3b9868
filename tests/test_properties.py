"""Mathematical properties: derivatives, proximal operators, balance, invariance.

These tests use oracles that do not depend on scikit-learn: finite
differences, closed forms and exactly known coefficients (NIST's Wampler
problems), so they would catch an error shared with the reference.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from daskfit.kernels import alignment
import pytest

import daskfit
from daskfit._data import ChunkedData
from daskfit.engine.rows import Engine
from daskfit.model.losses import LOSSES
from daskfit.objective import Objective
from daskfit.model.penalties import Penalty

from conftest import CHUNKINGS, PROBLEMS, as_kind

PENALTIES = {"none": Penalty(), "l2": Penalty(l2=0.3), "l1": Penalty(l1=0.1),
             "elasticnet": Penalty(l1=0.05, l2=0.2)}
PROBLEM_OF_LOSS = {"squared": "regression", "logistic": "binary",
                   "multinomial": "multiclass", "poisson": "counts"}


def build_objective(loss_name, penalty, fit_intercept=True, chunks=(100, 100, 100)):
    X, y, w = PROBLEMS[PROBLEM_OF_LOSS[loss_name]]()
    Xd, yd, wd = as_kind("dask", X, y, w, chunks)
    engine = Engine(ChunkedData(Xd, yd, wd, is_lazy=True))
    loss = LOSSES["logistic" if loss_name == "multinomial" else loss_name]
    objective = Objective(engine, loss, lambda sw: penalty, fit_intercept)
    return objective.start("hess")


@pytest.mark.parametrize("penalty", list(PENALTIES))
@pytest.mark.parametrize("loss_name", list(PROBLEM_OF_LOSS))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gradient_and_hessian_match_finite_differences(loss_name, penalty, fit_intercept):
    objective = build_objective(loss_name, PENALTIES[penalty], fit_intercept)
    assert objective.loss.name == loss_name
    theta = np.random.default_rng(5).normal(scale=0.2, size=objective.n_params)
    f, g = objective.smooth_value_and_grad(theta)
    _, g2, H = (objective.value_grad_hess(theta) if PENALTIES[penalty].smooth
                else (None, *_hess_smooth(objective, theta)))
    np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-14)
    h = 1e-6
    for j in range(objective.n_params):
        e = np.zeros_like(theta)
        e[j] = h
        fd = (objective.smooth_value(theta + e) - objective.smooth_value(theta - e)) / (2 * h)
        assert fd == pytest.approx(g[j], rel=1e-6, abs=1e-8)
        _, gp = objective.smooth_value_and_grad(theta + e)
        _, gm = objective.smooth_value_and_grad(theta - e)
        np.testing.assert_allclose((gp - gm) / (2 * h), H[:, j], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def _hess_smooth(objective, theta):
    """Hessian of the smooth part when the penalty has an L1 term."""
    l1 = objective.penalty
    objective.penalty = Penalty(l2=l1.l2)
    try:
        _, g, H = objective.value_grad_hess(theta)
    finally:
        objective.penalty = l1
    return g, H


def test_prox_properties():
    rng = np.random.default_rng(0)
    mask = np.array([True] * 6 + [False])
    theta = rng.normal(size=7)
    # Elastic net with l2 = 0 is exactly the L1 prox (soft thresholding).
    step, l1 = 0.7, 0.4
    out = Penalty(l1=l1).prox(theta, step, mask)
    expected = np.sign(theta) * np.maximum(np.abs(theta) - step * l1, 0)
    expected[-1] = theta[-1]  # the intercept is never shrunk
    np.testing.assert_array_equal(out, expected)
    # The prox point minimises step*l1*|b|_1 + |b - theta|^2 / 2.
    def prox_objective(b):
        return step * l1 * np.abs(b[mask]).sum() + 0.5 * np.sum((b - theta) ** 2)
    for _ in range(200):
        assert prox_objective(out) <= prox_objective(out + rng.normal(scale=0.05, size=7)) + 1e-15
    # Non-expansive.
    other = rng.normal(size=7)
    assert (np.linalg.norm(out - Penalty(l1=l1).prox(other, step, mask))
            <= np.linalg.norm(theta - other) + 1e-15)
    # No L1 part: the identity.
    np.testing.assert_array_equal(Penalty(l2=3.0).prox(theta, step, mask), theta)


@pytest.mark.parametrize("make", [
    lambda: (daskfit.LinearRegression(), "regression"),
    lambda: (daskfit.Ridge(alpha=50.0), "regression"),
    lambda: (daskfit.LogisticRegression(C=0.1), "binary"),
    lambda: (daskfit.PoissonRegressor(alpha=0.5), "counts"),
], ids=["ols", "ridge", "logistic", "poisson"])
def test_balance_property(make):
    """Canonical link + unpenalised intercept: mean prediction = mean target."""
    est, problem = make()
    X, y, w = PROBLEMS[problem]()
    est.set_params(tol=1e-12)
    est.fit(X, y, sample_weight=w)
    if problem == "binary":
        mean_pred = np.average(est.predict_proba(X)[:, 1], weights=w)
    else:
        mean_pred = np.average(est.predict(X), weights=w)
    assert mean_pred == pytest.approx(np.average(y, weights=w), rel=1e-9)


def test_multinomial_balance_per_class():
    X, y, w = PROBLEMS["multiclass"]()
    est = daskfit.LogisticRegression(C=0.3, tol=1e-12).fit(X, y, sample_weight=w)
    proba = np.average(est.predict_proba(X), weights=w, axis=0)
    freq = np.array([np.average(y == c, weights=w) for c in est.classes_])
    np.testing.assert_allclose(proba, freq, rtol=1e-9)
    # Intercepts reported centred (the softmax is shift-invariant).
    assert abs(est.intercept_.sum()) < 1e-12


def test_intercept_is_never_penalised():
    X, y, w = PROBLEMS["regression"]()
    est = daskfit.Ridge(alpha=1e12).fit(X, y, sample_weight=w)
    assert np.abs(est.coef_).max() < 1e-8
    assert est.intercept_ == pytest.approx(np.average(y, weights=w), rel=1e-8)


def wampler(which):
    """NIST StRD Wampler1/Wampler2: exact polynomial data, certified coefficients.

    Wampler1: y = 1 + x + x^2 + x^3 + x^4 + x^5, all coefficients 1.
    Wampler2: y = 1 + 0.1 x + 0.01 x^2 + ... + 1e-5 x^5.
    x = 0, 1, ..., 20. The design's columns are nearly collinear (condition
    number 4e6 even after centring, so 2e13 for X'X), the classic test for
    solvers that form X'X.
    """
    x = np.arange(21.0)
    X = np.column_stack([x**k for k in range(1, 6)])
    coef = np.ones(5) if which == 1 else 10.0 ** -np.arange(1, 6)
    return X, 1.0 + X @ coef, coef


@pytest.mark.parametrize("which", [1, 2])
@pytest.mark.parametrize("chunks", [(21,), (5, 0, 7, 9)], ids=["1chunk", "uneven"])
def test_normal_equations_survive_nist_wampler(which, chunks):
    X, y, coef = wampler(which)
    Xd, yd, _ = as_kind("dask", X, y, None, chunks)
    est = daskfit.LinearRegression(solver="normal").fit(Xd, yd)
    error = np.abs(est.coef_ - coef).max() / coef.max()
    assert error < 1e-8
    assert est.intercept_ == pytest.approx(1.0, rel=1e-7)
    # Solving the raw normal equations directly is 100x less accurate here.
    A = np.c_[X, np.ones(21)]
    naive = np.linalg.solve(A.T @ A, A.T @ y)[:5]
    assert np.abs(naive - coef).max() / coef.max() > 100 * error


def test_ill_conditioning_falls_back_to_tsqr_with_one_extra_pass():
    X, y, coef = wampler(1)
    est = daskfit.LinearRegression().fit(X, y)
    assert "QR" in est.fit_result_.message
    assert est.n_passes_ == 2
    well = daskfit.LinearRegression().fit(*PROBLEMS["regression"]()[:2])
    assert "Cholesky" in well.fit_result_.message and well.n_passes_ == 1


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_deterministic_across_local_schedulers(scheduler):
    X, y, w = PROBLEMS["binary"]()
    Xd, yd, wd = as_kind("dask", X, y, w, CHUNKINGS["7"])
    reference = daskfit.LogisticRegression(C=3.0).fit(X, y, sample_weight=w)
    with dask.config.set(scheduler=scheduler):
        est = daskfit.LogisticRegression(C=3.0).fit(Xd, yd, sample_weight=wd)
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=1e-12)


def test_distributed_equals_local(cluster):
    from distributed import Client

    X, y, w = PROBLEMS["counts"]()
    Xd, yd, wd = as_kind("dask", X, y, w, CHUNKINGS["50"])
    with Client(cluster):
        est = daskfit.PoissonRegressor(alpha=0.1, tol=1e-10).fit(Xd, yd, sample_weight=wd)
    local = daskfit.PoissonRegressor(alpha=0.1, tol=1e-10).fit(Xd, yd, sample_weight=wd)
    np.testing.assert_allclose(est.coef_, local.coef_, rtol=1e-12)
    assert est.n_passes_ == local.n_passes_


def test_subsampled_newton_hessian_reaches_the_same_optimum(monkeypatch):
    """Tall data: the Hessian from a subset of row blocks, the optimum unchanged."""
    import sklearn.linear_model as sk

    monkeypatch.setattr(alignment, "BLOCK_BYTES", 64 * 3 * 8)  # 64-row blocks
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60_000, 3))
    y = (rng.uniform(size=60_000) < 1 / (1 + np.exp(-X @ [1.0, -2.0, 0.5]))).astype(int)
    strides = []   # the Hessian stride every pass asked the kernels for
    reduce = Engine.reduce

    def recording(self, kernel, spec, label):
        strides.append(getattr(spec, "hessian_stride", None))
        return reduce(self, kernel, spec, label)

    monkeypatch.setattr(Engine, "reduce", recording)
    est = daskfit.LogisticRegression(C=1.0, tol=1e-10).fit(da.from_array(X, chunks=7000), y)
    assert max(s for s in strides if s is not None) > 1
    ref = sk.LogisticRegression(C=1.0, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-6)
    assert est.n_passes_ <= 10
