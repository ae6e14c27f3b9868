"""GammaRegressor and TweedieRegressor: scikit-learn's objectives, every applicable solver.

Oracles: scikit-learn's ``GammaRegressor`` / ``TweedieRegressor`` fitted at a
tight tolerance (coefficients to 1e-6 relative), finite differences for the
derivatives, and scikit-learn's target rules for bad ``y``.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import sklearn.linear_model as sk

import daskfit
from daskfit._data import ChunkedData
from daskfit.engine.rows import DataError, Engine
from daskfit.model.losses import GammaLoss, TweedieLoss
from daskfit.model.penalties import Penalty
from daskfit.objective import Objective
from daskfit.solvers import SOLVERS

from conftest import CHUNKINGS, KINDS, as_kind, make_regression

TIGHT = {"tol": 1e-10, "max_iter": 20_000}
RTOL = 1e-6


def make_positive(seed=5):
    """Gamma-distributed positive targets with a log-linear mean."""
    X, _, w = make_regression(seed)
    rng = np.random.default_rng(seed + 500)
    mu = np.exp(0.5 + X @ rng.normal(scale=0.15, size=X.shape[1]))
    return X, rng.gamma(2.0, mu / 2.0), w


def make_pure_premium(seed=6):
    """Compound Poisson-Gamma targets: about a third exact zeros, positive amounts."""
    X, _, w = make_regression(seed)
    rng = np.random.default_rng(seed + 600)
    lam = np.exp(0.2 + X @ rng.normal(scale=0.1, size=X.shape[1]))
    counts = rng.poisson(lam)
    y = np.array([rng.gamma(2.0, 1.5, size=k).sum() for k in counts])
    return X, y, w


#: name -> (daskfit estimator, scikit-learn estimator, problem)
CASES = {
    "gamma": (lambda **kw: daskfit.GammaRegressor(alpha=0.05, **kw),
              lambda: sk.GammaRegressor(alpha=0.05, tol=1e-12, max_iter=10_000), make_positive),
    "tweedie-0": (lambda **kw: daskfit.TweedieRegressor(power=0, alpha=0.05, **kw),
                  lambda: sk.TweedieRegressor(power=0, alpha=0.05, tol=1e-12, max_iter=10_000),
                  make_pure_premium),
    "tweedie-0-log": (lambda **kw: daskfit.TweedieRegressor(power=0, link="log", alpha=0.05, **kw),
                      lambda: sk.TweedieRegressor(power=0, link="log", alpha=0.05, tol=1e-12,
                                                  max_iter=10_000), make_positive),
    "tweedie-1": (lambda **kw: daskfit.TweedieRegressor(power=1, alpha=0.05, **kw),
                  lambda: sk.TweedieRegressor(power=1, alpha=0.05, tol=1e-12, max_iter=10_000),
                  make_pure_premium),
    "tweedie-1.5": (lambda **kw: daskfit.TweedieRegressor(power=1.5, alpha=0.05, **kw),
                    lambda: sk.TweedieRegressor(power=1.5, alpha=0.05, tol=1e-12,
                                                max_iter=10_000), make_pure_premium),
    "tweedie-2": (lambda **kw: daskfit.TweedieRegressor(power=2, alpha=0.05, **kw),
                  lambda: sk.TweedieRegressor(power=2, alpha=0.05, tol=1e-12, max_iter=10_000),
                  make_positive),
    "tweedie-3": (lambda **kw: daskfit.TweedieRegressor(power=3, alpha=0.05, **kw),
                  lambda: sk.TweedieRegressor(power=3, alpha=0.05, tol=1e-12, max_iter=10_000),
                  make_positive),
}

_REFERENCE = {}


def reference(case):
    if case not in _REFERENCE:
        _, make_ref, problem = CASES[case]
        X, y, w = problem()
        ref = make_ref().fit(X, y, sample_weight=w)
        _REFERENCE[case] = (ref.coef_, ref.intercept_, ref)
    return _REFERENCE[case]


def assert_matches(est, case):
    coef, intercept, _ = reference(case)
    scale = max(np.abs(coef).max(), abs(intercept))
    np.testing.assert_allclose(est.coef_, coef, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(est.intercept_, intercept, rtol=RTOL, atol=RTOL * scale)


def row_solvers(loss_name):
    """Every exact row solver that supports the loss (averaging/async-sgd are approximate)."""
    return [name for name, info in SOLVERS.items()
            if info.supports(loss_name, "l2") and not info.model_parallel
            and name not in ("averaging", "async-sgd")]


@pytest.mark.parametrize("case,solver",
                         [("gamma", s) for s in row_solvers("gamma")]
                         + [("tweedie-1.5", s) for s in row_solvers("tweedie")])
def test_every_row_solver_matches_sklearn(case, solver):
    make_est, _, problem = CASES[case]
    X, y, w = problem()
    est = make_est(solver=solver, **TIGHT).fit(X, y, sample_weight=w)
    assert est.solver_ == solver and est.fit_result_.converged
    assert_matches(est, case)


@pytest.mark.parametrize("case", list(CASES))
def test_every_power_and_link_matches_sklearn(case):
    make_est, _, problem = CASES[case]
    X, y, w = problem()
    est = make_est(**TIGHT).fit(X, y, sample_weight=w)
    assert_matches(est, case)
    # score is D^2 as scikit-learn's, predict the inverse link.
    ref = reference(case)[2]
    assert est.score(X, y, w) == pytest.approx(ref.score(X, y, w), rel=1e-6)
    np.testing.assert_allclose(est.predict(X[:5]), ref.predict(X[:5]), rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["gamma", "tweedie-1.5"])
def test_every_input_kind_with_uneven_and_empty_chunks(case, kind):
    make_est, _, problem = CASES[case]
    X, y, w = problem()
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS["uneven+empty"])
    est = make_est(**TIGHT).fit(Xk, yk, sample_weight=wk)
    assert_matches(est, case)
    # The Dask score (one pass over the chunks) equals the in-memory one.
    assert est.score(Xk, yk, wk) == pytest.approx(reference(case)[2].score(X, y, w), rel=1e-6)


@pytest.mark.parametrize("loss", [GammaLoss(), TweedieLoss(1.0), TweedieLoss(1.5),
                                  TweedieLoss(2.0), TweedieLoss(3.0), TweedieLoss(0.0),
                                  TweedieLoss(0.0, "identity")], ids=repr)
def test_gradient_and_hessian_match_finite_differences(loss):
    X, y, w = make_positive(seed=7)
    Xd, yd, wd = as_kind("dask", X, y, w, (100, 0, 200))
    objective = Objective(Engine(ChunkedData(Xd, yd, wd, is_lazy=True)), loss,
                          lambda sw: Penalty(l2=0.1), fit_intercept=True).start("hess")
    theta = np.array([0.05, -0.03, 0.02, 0.0, 0.04, 0.3])
    f, g, H = objective.value_grad_hess(theta)
    eps = 1e-6
    basis = np.eye(len(theta))
    numeric_g = [(objective.value(theta + eps * e) - objective.value(theta - eps * e)) / (2 * eps)
                 for e in basis]
    np.testing.assert_allclose(g, numeric_g, rtol=1e-6, atol=1e-8)
    numeric_H = np.array([(objective.value_and_grad(theta + eps * e)[1]
                           - objective.value_and_grad(theta - eps * e)[1]) / (2 * eps)
                          for e in basis])
    if isinstance(loss, GammaLoss) or loss.link == "identity" or 1 <= loss.power <= 2:
        np.testing.assert_allclose(H, numeric_H, rtol=1e-5, atol=1e-7)
    else:
        # Outside 1 <= power <= 2 the expected (Fisher) Hessian: positive definite.
        assert np.linalg.eigvalsh(H).min() > 0


@pytest.mark.parametrize("make_est,y_bad", [
    (lambda: daskfit.GammaRegressor(), np.array([1.0, 0.0, 2.0, 3.0])),
    (lambda: daskfit.GammaRegressor(), np.array([1.0, -1.0, 2.0, 3.0])),
    (lambda: daskfit.TweedieRegressor(power=1.5), np.array([1.0, -0.5, 0.0, 3.0])),
    (lambda: daskfit.TweedieRegressor(power=1.5), np.zeros(4)),
    (lambda: daskfit.TweedieRegressor(power=3), np.array([1.0, 0.0, 2.0, 3.0])),
], ids=["gamma-zero", "gamma-negative", "tweedie1.5-negative", "tweedie1.5-all-zero",
        "tweedie3-zero"])
@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_bad_target_gives_a_clear_error(make_est, y_bad, kind):
    X = np.arange(8.0).reshape(4, 2)
    Xk, yk, _ = as_kind(kind, X, y_bad, None, (2, 2))
    with pytest.raises(DataError, match=r"y must be|positive sum"):
        make_est().fit(Xk, yk)


def test_tweedie_power_zero_accepts_negative_targets():
    X, y, w = make_regression(seed=9)
    est = daskfit.TweedieRegressor(power=0, alpha=0.05, **TIGHT).fit(X, y - 5.0, sample_weight=w)
    ref = sk.TweedieRegressor(power=0, alpha=0.05, tol=1e-12).fit(X, y - 5.0, sample_weight=w)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=RTOL, atol=1e-9)


def test_unsupported_link_and_solver_are_refused_naming_them():
    X, y, _ = make_positive()
    with pytest.raises(ValueError, match="link"):
        daskfit.TweedieRegressor(power=1.5, link="identity").fit(X, y)
    with pytest.raises(ValueError, match="link"):
        daskfit.TweedieRegressor(power=1.5, link="logit").fit(X, y)
    with pytest.raises(ValueError, match="averaging"):
        daskfit.GammaRegressor(solver="averaging").fit(X, y)


def test_column_chunked_gamma_is_merged_into_rows_not_sharded():
    """Wide column-chunked X: the model-parallel solvers lack Gamma's closed forms."""
    X, y, _ = make_positive()
    Xd = da.from_array(np.tile(X, (1, 60)), chunks=(100, 100))  # 300 features, 3 blocks
    est = daskfit.GammaRegressor(alpha=1.0).fit(Xd, da.from_array(y, chunks=100))
    assert not SOLVERS[est.solver_].model_parallel


def test_saved_tweedie_model_round_trips(tmp_path):
    X, y, w = make_pure_premium()
    est = daskfit.TweedieRegressor(power=1.5, alpha=0.05).fit(X, y, sample_weight=w)
    daskfit.save(est, tmp_path / "model")
    loaded = daskfit.load(tmp_path / "model")
    assert type(loaded) is daskfit.TweedieRegressor and loaded.power == 1.5
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_cli_knows_the_new_estimators():
    from daskfit.cli._run import estimator_classes

    assert {"GammaRegressor", "TweedieRegressor"} <= set(estimator_classes())


@pytest.mark.parametrize("loss,power", [(GammaLoss(), 2), (TweedieLoss(1.5), 1.5),
                                        (TweedieLoss(3.0), 3), (TweedieLoss(0.0), 0),
                                        (TweedieLoss(0.0, "identity"), 0)], ids=repr)
def test_held_out_score_is_sklearns_d2(loss, power):
    """Early stopping's score (sums merged across chunks) is scikit-learn's D^2."""
    from sklearn.metrics import d2_tweedie_score

    rng = np.random.default_rng(0)
    y, raw, w = rng.gamma(2.0, size=40), rng.normal(scale=0.3, size=40), rng.uniform(size=40)
    halves = [np.r_[0, w[s].sum(), loss.score_sums(y[s], raw[s], w[s], 0.0)]
              for s in (slice(0, 15), slice(15, 40))]
    expected = d2_tweedie_score(y, loss.inverse_link(raw), sample_weight=w, power=power)
    assert loss.score_value(halves[0] + halves[1]) == pytest.approx(expected, rel=1e-10)
