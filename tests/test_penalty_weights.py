"""Per-feature penalty weights ``P1`` / ``P2`` (glum's; issue 15 item 5).

Oracles: a weighted penalty is the plain penalty on rescaled features. With
``c_j = s_j b_j`` and the feature ``x_j / s_j`` the model is unchanged, and

- ``alpha sum_j P2_j b_j^2 = alpha sum_j c_j^2`` for ``s_j = sqrt(P2_j)``;
- ``alpha sum_j P1_j |b_j| = alpha sum_j |c_j|`` for ``s_j = P1_j``;
- both at once for ``P1 = s``, ``P2 = s^2``.

So a fit with weights equals scikit-learn's fit on ``X / s`` with its
coefficients divided by ``s``. A weight 0 leaves the coefficient free: by
Frisch-Waugh-Lovell it is the least-squares coefficient given the others,
and the others are the plain fit on the data with it (and the intercept)
projected out.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import sklearn.linear_model as sk
from sklearn.metrics import d2_tweedie_score
from sklearn.model_selection import KFold

import daskfit
from daskfit.model_selection import (ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV,
                                     cross_validate)
from daskfit.overfitting import diagnose

N, P = 240, 4
WEIGHTS = np.array([0.5, 2.0, 1.0, 3.0])


def regression(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, P)) * [1.0, 2.0, 0.5, 1.0] + [0.3, -1.0, 0.0, 2.0]
    y = X @ [1.0, 2.0, -1.0, 0.5] + 3.0 + rng.normal(size=N)
    return X, y


def binary(seed=1):
    X, _ = regression(seed)
    rng = np.random.default_rng(seed)
    y = (X @ [1.0, 0.5, -1.0, 0.3] - 0.5 + rng.logistic(size=N) > 0).astype(int)
    return X, y


def positive(seed=2):
    X, _ = regression(seed)
    X = X / 4
    rng = np.random.default_rng(seed)
    mu = np.exp(0.5 + X @ [0.3, -0.2, 0.4, 0.1])
    return X, mu, rng


# ------------------------------------------------------------------ oracles: rescaling


@pytest.mark.parametrize("solver", ["normal", "newton", "lbfgs"])
def test_ridge_P2_is_ridge_on_features_divided_by_sqrt_P2(solver):
    X, y = regression()
    s = np.sqrt(WEIGHTS)
    ref = sk.Ridge(alpha=7.0, tol=1e-14).fit(X / s, y)
    fit = daskfit.Ridge(alpha=7.0, P2=WEIGHTS, solver=solver, tol=1e-12,
                        max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(fit.coef_, ref.coef_ / s, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.intercept_, ref.intercept_, rtol=1e-8)


def test_ridge_P2_on_dask_with_uneven_chunks():
    X, y = regression()
    s = np.sqrt(WEIGHTS)
    ref = sk.Ridge(alpha=7.0).fit(X / s, y)
    chunks = ((0, 40, 120, 0, 80),)
    Xd = da.from_array(X, chunks=(chunks[0], P))
    yd = da.from_array(y, chunks=chunks)
    fit = daskfit.Ridge(alpha=7.0, P2=WEIGHTS).fit(Xd, yd)
    np.testing.assert_allclose(fit.coef_, ref.coef_ / s, rtol=0, atol=1e-8)


@pytest.mark.parametrize("solver", ["normal", "proximal"])
def test_lasso_P1_is_lasso_on_features_divided_by_P1(solver):
    X, y = regression()
    ref = sk.Lasso(alpha=0.4, tol=1e-14, max_iter=100_000).fit(X / WEIGHTS, y)
    assert 0 < np.count_nonzero(ref.coef_) < P  # some coefficient is cut to zero
    fit = daskfit.Lasso(alpha=0.4, P1=WEIGHTS, solver=solver, tol=1e-12,
                        max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(fit.coef_, ref.coef_ / WEIGHTS, rtol=0, atol=1e-8)
    assert np.array_equal(fit.coef_ == 0, ref.coef_ == 0)


def test_elastic_net_P1_s_P2_s_squared_is_elastic_net_on_features_divided_by_s():
    X, y = regression()
    ref = sk.ElasticNet(alpha=0.3, l1_ratio=0.6, tol=1e-14, max_iter=100_000).fit(
        X / WEIGHTS, y)
    fit = daskfit.ElasticNet(alpha=0.3, l1_ratio=0.6, P1=WEIGHTS, P2=WEIGHTS**2,
                             tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(fit.coef_, ref.coef_ / WEIGHTS, rtol=0, atol=1e-8)


def test_logistic_P2_is_scikit_learn_on_rescaled_features_binary_and_multinomial():
    X, y = binary()
    s = np.sqrt(WEIGHTS)
    ref = sk.LogisticRegression(C=0.05, tol=1e-12, max_iter=10_000).fit(X / s, y)
    fit = daskfit.LogisticRegression(C=0.05, P2=WEIGHTS, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(fit.coef_, ref.coef_ / s, rtol=1e-6, atol=1e-9)
    y3 = np.digitize(X[:, 0] - X[:, 2], [-0.5, 0.8])
    ref = sk.LogisticRegression(C=0.05, tol=1e-12, max_iter=10_000).fit(X / s, y3)
    fit = daskfit.LogisticRegression(C=0.05, P2=WEIGHTS, tol=1e-10).fit(X, y3)
    # scikit-learn's multinomial lbfgs stops about 1e-7 from the optimum;
    # daskfit's own fit on the rescaled features agrees to round-off.
    np.testing.assert_allclose(fit.coef_, ref.coef_ / s, rtol=0, atol=1e-6)
    own = daskfit.LogisticRegression(C=0.05, tol=1e-10).fit(X / s, y3)
    np.testing.assert_allclose(fit.coef_, own.coef_ / s, rtol=0, atol=1e-9)


def test_logistic_elastic_net_weights_equal_the_fit_on_rescaled_features():
    X, y = binary()
    kwargs = dict(C=0.05, l1_ratio=0.7, tol=1e-10, max_iter=20_000)
    ref = daskfit.LogisticRegression(**kwargs).fit(X / WEIGHTS, y)
    fit = daskfit.LogisticRegression(P1=WEIGHTS, P2=WEIGHTS**2, **kwargs).fit(X, y)
    assert np.count_nonzero(ref.coef_) < P
    np.testing.assert_allclose(fit.coef_, ref.coef_ / WEIGHTS, rtol=0, atol=1e-7)


@pytest.mark.parametrize("make", [
    lambda: (daskfit.PoissonRegressor, sk.PoissonRegressor, {}),
    lambda: (daskfit.GammaRegressor, sk.GammaRegressor, {}),
    lambda: (daskfit.TweedieRegressor, sk.TweedieRegressor, {"power": 1.5}),
], ids=["poisson", "gamma", "tweedie"])
def test_glm_P2_is_scikit_learn_on_rescaled_features(make):
    ours, theirs, extra = make()
    X, mu, rng = positive()
    y = rng.poisson(mu).astype(float) if ours is daskfit.PoissonRegressor else \
        rng.gamma(2.0, mu / 2.0)
    s = np.sqrt(WEIGHTS)
    ref = theirs(alpha=0.2, tol=1e-12, max_iter=10_000, **extra).fit(X / s, y)
    fit = ours(alpha=0.2, P2=WEIGHTS, tol=1e-10, **extra).fit(X, y)
    np.testing.assert_allclose(fit.coef_, ref.coef_ / s, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.intercept_, ref.intercept_, rtol=1e-6)


# ------------------------------------------------------------------ weight 0: unpenalised


def _project_out(columns, *arrays):
    """Residuals of each array on ``[1, columns]`` (least squares)."""
    Z = np.column_stack([np.ones(len(columns)), columns])
    return [a - Z @ np.linalg.lstsq(Z, a, rcond=None)[0] for a in arrays]


@pytest.mark.parametrize("solver", ["normal", "lbfgs"])
def test_ridge_weight_zero_leaves_the_coefficient_free(solver):
    X, y = regression()
    P2 = np.array([0.0, 1.0, 2.0, 1.0])
    fit = daskfit.Ridge(alpha=50.0, P2=P2, solver=solver, tol=1e-12,
                        max_iter=10_000).fit(X, y)
    # Frisch-Waugh-Lovell: the penalised coefficients from the data with
    # feature 0 and the intercept projected out, as a weighted ridge.
    Xr, yr = _project_out(X[:, 0], X[:, 1:], y)
    s = np.sqrt(P2[1:])
    rest = sk.Ridge(alpha=50.0, fit_intercept=False, tol=1e-14).fit(Xr / s, yr).coef_ / s
    np.testing.assert_allclose(fit.coef_[1:], rest, rtol=0, atol=1e-8)
    # ... and the free coefficient is least squares given them.
    free = sk.LinearRegression().fit(X[:, :1], y - X[:, 1:] @ rest)
    np.testing.assert_allclose(fit.coef_[0], free.coef_[0], rtol=0, atol=1e-8)


@pytest.mark.parametrize("solver", ["normal", "proximal"])
def test_lasso_weight_zero_keeps_the_coefficient_at_its_least_squares_value(solver):
    X, y = regression()
    P1 = np.array([1.0, 0.0, 1.0, 1.0])
    # Strong enough to zero every penalised coefficient, not the free one.
    fit = daskfit.Lasso(alpha=50.0, P1=P1, solver=solver, tol=1e-12,
                        max_iter=100_000).fit(X, y)
    assert np.array_equal(fit.coef_ != 0, P1 == 0)
    ols = sk.LinearRegression().fit(X[:, 1:2], y)
    np.testing.assert_allclose(fit.coef_[1], ols.coef_[0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.intercept_, ols.intercept_, rtol=0, atol=1e-8)


@pytest.mark.parametrize("solver", ["normal", "proximal"])
def test_lasso_P1_kkt_conditions_at_the_solution(solver):
    X, y = regression(3)
    alpha, P1 = 0.5, np.array([0.0, 0.3, 2.0, 5.0])
    fit = daskfit.Lasso(alpha=alpha, P1=P1, solver=solver, tol=1e-12,
                        max_iter=100_000).fit(X, y)
    b = fit.coef_
    grad = X.T @ (X @ b + fit.intercept_ - y) / N  # of the smooth part (mean squared / 2)
    zero = b == 0
    assert zero.any() and (~zero).any()
    assert np.all(np.abs(grad[zero]) <= alpha * P1[zero] + 1e-8)
    np.testing.assert_allclose(grad[~zero], -alpha * P1[~zero] * np.sign(b[~zero]),
                               rtol=0, atol=1e-7)


def test_multinomial_weight_zero_feature_is_flat_but_solved():
    X, y = binary()
    y3 = np.digitize(X[:, 0] - X[:, 2], [-0.5, 0.8])
    P2 = np.array([1.0, 0.0, 1.0, 1.0])
    fit = daskfit.LogisticRegression(C=0.1, P2=P2, solver="newton", tol=1e-10).fit(X, y3)
    # Optimality: the gradient of the penalised objective vanishes.
    raw = X @ fit.coef_.T + fit.intercept_
    prob = np.exp(raw - raw.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    onehot = np.eye(3)[y3]
    grad = (prob - onehot).T @ X / N + fit.coef_ * P2 / (0.1 * N)
    np.testing.assert_allclose(grad, 0, atol=1e-8)


# ------------------------------------------------------------------ CV estimators


def test_lasso_cv_and_elastic_net_cv_choose_as_on_rescaled_features():
    X, y = regression()
    ours = LassoCV(P1=WEIGHTS, cv=3, alphas=20, tol=1e-10).fit(X, y)
    ref = LassoCV(cv=3, alphas=20, tol=1e-10).fit(X / WEIGHTS, y)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-12)  # weighted alpha_max
    assert ours.alpha_ == ref.alpha_
    np.testing.assert_allclose(ours.coef_, ref.coef_ / WEIGHTS, rtol=0, atol=1e-8)
    sk_ref = sk.LassoCV(cv=KFold(3), alphas=20, tol=1e-12).fit(X / WEIGHTS, y)
    assert ours.alpha_ == pytest.approx(sk_ref.alpha_, rel=1e-10)
    ours = ElasticNetCV(l1_ratio=[0.3, 0.9], P1=WEIGHTS, P2=WEIGHTS**2, cv=3, alphas=15,
                        tol=1e-10).fit(X, y)
    ref = ElasticNetCV(l1_ratio=[0.3, 0.9], cv=3, alphas=15, tol=1e-10).fit(X / WEIGHTS, y)
    assert (ours.alpha_, ours.l1_ratio_) == (ref.alpha_, ref.l1_ratio_)
    np.testing.assert_allclose(ours.coef_, ref.coef_ / WEIGHTS, rtol=0, atol=1e-8)


def test_ridge_cv_and_logistic_cv_choose_as_on_rescaled_features():
    X, y = regression()
    s = np.sqrt(WEIGHTS)
    alphas = [0.1, 10.0, 300.0, 3000.0]
    ours = RidgeCV(alphas=alphas, P2=WEIGHTS).fit(X, y)
    ref = RidgeCV(alphas=alphas).fit(X / s, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"], rtol=1e-10)
    assert ours.alpha_ == ref.alpha_
    np.testing.assert_allclose(ours.coef_, ref.coef_ / s, rtol=0, atol=1e-8)
    Xb, yb = binary()
    Cs = [1e-3, 1e-2, 1.0]
    ours = LogisticRegressionCV(Cs=Cs, cv=3, P2=WEIGHTS, tol=1e-10).fit(Xb, yb)
    ref = LogisticRegressionCV(Cs=Cs, cv=3, tol=1e-10).fit(Xb / s, yb)
    np.testing.assert_array_equal(ours.scores_, ref.scores_)
    assert ours.C_ == ref.C_
    np.testing.assert_allclose(ours.coef_, ref.coef_ / s, rtol=0, atol=1e-8)


def test_lasso_cv_grid_with_an_unpenalised_feature_starts_where_the_others_vanish():
    X, y = regression()
    P1 = np.array([1.0, 0.0, 1.0, 1.0])
    cv = LassoCV(P1=P1, cv=3, alphas=10).fit(X, y)
    at_max = daskfit.Lasso(alpha=cv.alphas_[0], P1=P1, tol=1e-12).fit(X, y)
    assert np.array_equal(at_max.coef_ != 0, P1 == 0)
    below = daskfit.Lasso(alpha=cv.alphas_[0] * 0.99, P1=P1, tol=1e-12).fit(X, y)
    assert np.count_nonzero(below.coef_) == 2


# ------------------------------------------------------------------ bad weights


@pytest.mark.parametrize("estimator, name", [
    (daskfit.Ridge, "P2"), (daskfit.Lasso, "P1"), (daskfit.ElasticNet, "P1"),
    (daskfit.ElasticNet, "P2"), (daskfit.LogisticRegression, "P1"),
    (daskfit.PoissonRegressor, "P2"), (daskfit.GammaRegressor, "P2"),
    (daskfit.TweedieRegressor, "P2"), (RidgeCV, "P2"), (LassoCV, "P1"),
    (ElasticNetCV, "P2"), (LogisticRegressionCV, "P2"),
])
@pytest.mark.parametrize("bad, problem", [
    ([1.0, 1.0, 1.0], "3 entries but X has 4 features"),
    ([1.0, -1.0, 1.0, 1.0], ">= 0"),
    ([1.0, np.nan, 1.0, 1.0], "finite"),
    (np.eye(4), "matrix"),
    ("ones", "vector"),
])
def test_bad_weights_are_refused_naming_the_parameter(estimator, name, bad, problem):
    X, y = binary() if "Logistic" in estimator.__name__ else positive()[:2]
    with pytest.raises(ValueError, match=name) as error:
        estimator(**{name: bad}).fit(X, y)
    assert problem in str(error.value)


@pytest.mark.parametrize("solver", ["averaging", "async-sgd", "sharded-gd", "bcd"])
def test_solvers_with_one_scalar_penalty_refuse_weights(solver):
    X, y = regression()
    with pytest.raises(ValueError, match="P1/P2"):
        daskfit.Ridge(alpha=1.0, P2=WEIGHTS, solver=solver).fit(X, y)


def test_plan_avoids_scalar_penalty_solvers_with_weights():
    from daskfit.planner import NO_PENALTY_WEIGHTS, plan_for

    common = dict(n_rows=10**6, n_features=5000, row_chunks=10, col_chunks=5, itemsize=8,
                  is_lazy=True, loss_name="squared", penalty_kind="l2", n_outputs=1,
                  fit_intercept=True, max_block_columns=1000)
    assert plan_for(**common).solver in NO_PENALTY_WEIGHTS  # column-sharded without weights
    assert plan_for(**common, penalty_weights=True).solver not in NO_PENALTY_WEIGHTS


def test_all_ones_weights_equal_no_weights_bit_for_bit():
    X, y = regression()
    plain = daskfit.ElasticNet(alpha=0.2).fit(X, y)
    ones = daskfit.ElasticNet(alpha=0.2, P1=np.ones(P), P2=np.ones(P)).fit(X, y)
    np.testing.assert_array_equal(plain.coef_, ones.coef_)


# ------------------------------------------------------------------ Gamma / Tweedie leftovers


def test_diagnose_scores_gamma_and_tweedie_by_their_deviance():
    X, mu, rng = positive()
    y = rng.gamma(2.0, mu / 2.0)
    cv = KFold(3, shuffle=True, random_state=0)
    report = diagnose(daskfit.GammaRegressor(alpha=0.1), X, y, cv=cv, train_sizes=(1.0,),
                      param_range=[0.1, 1.0])
    assert report.score_name == "d2_gamma"
    expected = [d2_tweedie_score(y[te], np.full(len(te), y[tr].mean()), power=2)
                for tr, te in cv.split(X)]
    np.testing.assert_allclose(report.baseline["validation_scores"], expected, rtol=1e-10)
    tweedie = daskfit.TweedieRegressor(power=1.5, alpha=0.1)
    report = diagnose(tweedie, X, y, cv=cv, train_sizes=(1.0,), param_range=[0.1, 1.0])
    assert report.score_name == "d2_tweedie"
    own = [tweedie.fit(X[tr], y[tr]).score(X[te], y[te]) for tr, te in cv.split(X)]
    np.testing.assert_allclose(report.validation_curve["validation_scores"][0], own,
                               rtol=1e-8)


def test_cross_validate_fits_and_scores_gamma_on_dask_input():
    X, mu, rng = positive()
    y = rng.gamma(2.0, mu / 2.0)
    cv = KFold(3)
    out = cross_validate(daskfit.GammaRegressor(alpha=0.1, tol=1e-10),
                         da.from_array(X, chunks=(70, P)), da.from_array(y, chunks=70), cv=cv)
    expected = [sk.GammaRegressor(alpha=0.1, tol=1e-12).fit(X[tr], y[tr]).score(X[te], y[te])
                for tr, te in cv.split(X)]
    np.testing.assert_allclose(out["test_score"], expected, rtol=1e-6)


@pytest.mark.parametrize("estimator, param, values", [
    (daskfit.Ridge(P2=WEIGHTS), "alpha", [1.0, 300.0]),
    (daskfit.Lasso(P1=WEIGHTS, tol=1e-10), "alpha", [0.05, 0.5]),
    (daskfit.LogisticRegression(P2=WEIGHTS, tol=1e-10), "C", [0.01, 1.0]),
], ids=["ridge", "lasso", "logistic"])
def test_diagnose_one_pass_scores_keep_the_weights(estimator, param, values):
    from daskfit.overfitting._scores import FAST_PATHS, _generic

    X, y = binary() if param == "C" else regression()
    splits = list(KFold(3).split(X))
    fast = FAST_PATHS[type(estimator)](estimator, param, values, X, y, None, splits, None)
    generic = _generic(estimator, param, values, X, y, None, splits, None)
    np.testing.assert_allclose(fast[0], generic[0], rtol=1e-7)
    np.testing.assert_allclose(fast[1], generic[1], rtol=1e-7)
