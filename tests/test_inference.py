"""Statistical inference: covariance, standard errors, tests, intervals, deviances.

Checked against statsmodels (OLS, Logit via GLM Binomial, Poisson, Gamma and
Tweedie GLMs with the log link) to 1e-6 relative on small problems fitted at
a tight ``tol``; the penalised sandwich against its closed form; the cost in
passes with the engine's pass counter; the inference facts of each loss
against its own derivatives.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from daskfit import (ElasticNet, GammaRegressor, Lasso, LinearRegression, LogisticRegression,
                     PoissonRegressor, Ridge, TweedieRegressor)
from daskfit.model.losses import LOSSES, Loss, TweedieLoss
from daskfit.model.losses.base import R2Score

from conftest import CHUNKINGS, as_kind, make_binary, make_counts, make_multiclass, \
    make_regression

sm = pytest.importorskip("statsmodels.api")

RTOL = 1e-6
TABLE = ["coef", "std_err", "p_value", "ci_lower", "ci_upper"]


def _sm_table(res):
    """statsmodels results as our columns (constant first, as add_constant puts it)."""
    ci = np.asarray(res.conf_int())
    return pd.DataFrame({"coef": res.params, "std_err": res.bse, "p_value": res.pvalues,
                         "ci_lower": ci[:, 0], "ci_upper": ci[:, 1]})


def _assert_table(ours, res, stat):
    expected = _sm_table(res)
    for column in TABLE:
        np.testing.assert_allclose(ours[column].to_numpy(), expected[column].to_numpy(),
                                   rtol=RTOL, err_msg=column)
    np.testing.assert_allclose(ours[stat].to_numpy(), np.asarray(res.tvalues), rtol=RTOL)


def _fit(kind, X, y, w=None, **params):
    est = {"ols": LinearRegression, "logit": LogisticRegression,
           "poisson": PoissonRegressor}[kind]
    extra = {"ols": {}, "logit": {"C": np.inf}, "poisson": {"alpha": 0.0}}[kind]
    return est(tol=1e-12, **extra, **params).fit(X, y, sample_weight=w)


def _sm_fit(kind, X, y, freq_weights=None, cov_type="nonrobust"):
    Xc = sm.add_constant(X)
    if kind == "ols":
        return sm.OLS(y, Xc).fit(cov_type=cov_type)
    family = sm.families.Binomial() if kind == "logit" else sm.families.Poisson()
    return sm.GLM(y, Xc, family=family, freq_weights=freq_weights).fit(
        tol=1e-13, cov_type=cov_type)


PROBLEM = {"ols": make_regression, "logit": make_binary, "poisson": make_counts}


@pytest.mark.parametrize("kind", ["ols", "logit", "poisson"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_table_matches_statsmodels(kind, cov_type):
    X, y, _ = PROBLEM[kind]()
    est = _fit(kind, X, y)
    ours = est.summary(X, y, cov_type=cov_type)
    assert list(ours.index) == ["intercept"] + [f"x{i}" for i in range(X.shape[1])]
    stat = "t" if kind == "ols" and cov_type == "nonrobust" else "z"
    _assert_table(ours, _sm_fit(kind, X, y, cov_type=cov_type), stat)
    cov = est.covariance(cov_type=cov_type)
    np.testing.assert_allclose(cov.to_numpy(),
                               np.asarray(_sm_fit(kind, X, y, cov_type=cov_type).cov_params()),
                               rtol=RTOL, atol=1e-14)


@pytest.mark.parametrize("kind", ["ols", "logit", "poisson"])
def test_goodness_of_fit_matches_statsmodels(kind):
    X, y, _ = PROBLEM[kind]()
    est = _fit(kind, X, y)
    est.summary(X, y)
    stats = est.inference_
    res = _sm_fit(kind, X, y)
    if kind == "ols":
        expected = dict(deviance=res.ssr, null_deviance=res.centered_tss, llf=res.llf,
                        aic=res.aic, bic=res.bic, dispersion=res.scale, df_resid=res.df_resid,
                        df_model=res.df_model)
    else:
        expected = dict(deviance=res.deviance, null_deviance=res.null_deviance, llf=res.llf,
                        aic=res.aic, bic=res.bic_llf, dispersion=res.scale,
                        pearson_chi2=res.pearson_chi2, df_resid=res.df_resid,
                        df_model=res.df_model)
    for name, value in expected.items():
        np.testing.assert_allclose(getattr(stats, name), value, rtol=RTOL, err_msg=name)


@pytest.mark.parametrize("kind", ["ols", "logit", "poisson"])
def test_sample_weights_are_frequency_weights(kind):
    # Integer weights equal repeated rows (scikit-learn's meaning of sample_weight):
    # statsmodels' freq_weights for the GLMs, OLS on the repeated rows for least squares.
    X, y, _ = PROBLEM[kind]()
    w = np.random.default_rng(7).integers(1, 4, size=len(y)).astype(float)
    est = _fit(kind, X, y, w)
    for cov_type in ("nonrobust", "HC0"):
        ours = est.summary(X, y, w, cov_type=cov_type)
        if kind == "ols":
            reps = w.astype(int)
            res = _sm_fit(kind, np.repeat(X, reps, axis=0), np.repeat(y, reps),
                          cov_type=cov_type)
        else:
            res = _sm_fit(kind, X, y, freq_weights=w, cov_type=cov_type)
        _assert_table(ours, res, "t" if kind == "ols" and cov_type == "nonrobust" else "z")


def test_dask_input_with_uneven_and_empty_chunks():
    X, y, w = make_counts()
    expected = _fit("poisson", X, y, w).summary(X, y, w, cov_type="HC0")
    Xd, yd, wd = as_kind("dask", X, y, w, chunks=CHUNKINGS["uneven+empty"])
    est = _fit("poisson", Xd, yd, wd)
    got = est.summary(Xd, yd, wd, cov_type="HC0")
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9)
    assert est.inference_.passes == 1


def test_dask_dataframe_on_a_cluster_names_the_features(client):
    X, y, _ = make_binary()
    Xf, yf, _ = as_kind("ddf", X, y, chunks=CHUNKINGS["uneven+empty"])
    # Fitted in memory (fast), the inference pass on the cluster's partitions.
    est = _fit("logit", pd.DataFrame(X, columns=list(Xf.columns)), y)
    got = est.summary(Xf, yf)
    assert est.inference_.passes == 1
    assert list(got.index) == ["intercept"] + [f"x{i}" for i in range(X.shape[1])]
    _assert_table(got, _sm_fit("logit", X, y), "z")


def test_one_pass_then_none(count_reductions):
    X, y, _ = make_regression()
    Xd, yd, _ = as_kind("dask", X, y, chunks=CHUNKINGS["7"])
    est = Ridge(alpha=2.0, solver="lbfgs").fit(Xd, yd)
    count_reductions.clear()
    est.summary(Xd, yd)
    assert count_reductions == ["inference"]
    est.summary(Xd, yd, cov_type="HC0", alpha=0.1)
    est.covariance()
    est.summary()
    assert count_reductions == ["inference"]  # cached: no further pass
    est.set_params(alpha=3.0).fit(Xd, yd)  # new coefficients: the cache no longer applies
    count_reductions.clear()
    with pytest.raises(ValueError, match="pass the training data"):
        est.summary()
    est.summary(Xd, yd)
    assert count_reductions == ["inference"]


@pytest.mark.parametrize("est", [LinearRegression(), Ridge(alpha=5.0)])
def test_normal_equations_fit_needs_no_pass(est, count_reductions):
    # The normal equations' one pass already holds X'WX: summary() costs nothing.
    X, y, _ = make_regression()
    w = np.random.default_rng(7).integers(1, 4, size=len(y)).astype(float)
    Xd, yd, wd = as_kind("dask", X, y, w, chunks=CHUNKINGS["7"])
    est.fit(Xd, yd, wd)
    assert est.solver_ == "normal"
    count_reductions.clear()
    from_fit = est.summary()
    assert count_reductions == [] and est.inference_.passes == 0
    with pytest.raises(ValueError, match="pass the training data"):
        est.summary(cov_type="HC0")
    fit_stats = est.inference_
    from_pass = est.summary(Xd, yd, wd)  # the same statistics from a pass over the data
    assert count_reductions == ["inference"]
    pd.testing.assert_frame_equal(from_fit, from_pass, rtol=1e-9)
    for name in ("deviance", "null_deviance", "dispersion", "llf", "aic", "bic"):
        np.testing.assert_allclose(getattr(fit_stats, name), getattr(est.inference_, name),
                                   rtol=1e-9, err_msg=name)
    if isinstance(est, LinearRegression):
        reps = w.astype(int)
        _assert_table(from_fit, _sm_fit("ols", np.repeat(X, reps, axis=0), np.repeat(y, reps)),
                      "t")


def test_ridge_covariance_is_the_penalised_sandwich():
    X, y, _ = make_regression()
    alpha = 25.0
    est = Ridge(alpha=alpha, tol=1e-12).fit(X, y)
    Z = np.column_stack([np.ones(len(y)), X])  # summary order: intercept first
    penalty = np.diag([0.0] + [alpha] * X.shape[1])
    bread = np.linalg.inv(Z.T @ Z + penalty)
    resid = y - est.predict(X)
    sigma2 = resid @ resid / (len(y) - Z.shape[1])
    np.testing.assert_allclose(est.covariance(X, y).to_numpy(),
                               sigma2 * bread @ Z.T @ Z @ bread, rtol=1e-9)
    meat = Z.T @ (Z * resid[:, None] ** 2)
    np.testing.assert_allclose(est.covariance(cov_type="HC0").to_numpy(),
                               bread @ meat @ bread, rtol=1e-9)


def test_penalised_logistic_covariance():
    X, y, _ = make_binary()
    C = 0.05
    est = LogisticRegression(C=C, tol=1e-12).fit(X, y)
    Z = np.column_stack([np.ones(len(y)), X])
    p = est.predict_proba(X)[:, 1]
    H = Z.T @ (Z * (p * (1 - p))[:, None])
    bread = np.linalg.inv(H + np.diag([0.0] + [1 / C] * X.shape[1]))
    np.testing.assert_allclose(est.covariance(X, y).to_numpy(), bread @ H @ bread, rtol=1e-9)


@pytest.mark.parametrize("est", [Lasso(alpha=0.1), ElasticNet(alpha=0.1, l1_ratio=0.5),
                                 LogisticRegression(C=1.0, l1_ratio=1.0)])
def test_l1_penalised_fit_is_refused(est):
    X, y, _ = make_binary()
    est.fit(X, y)
    with pytest.raises(ValueError, match="not defined for an (l1|elasticnet)-penalised fit"):
        est.summary(X, y)


def test_elastic_net_without_l1_part_is_allowed():
    X, y, _ = make_regression()
    est = ElasticNet(alpha=0.01, l1_ratio=0.0, tol=1e-12).fit(X, y)
    assert np.isfinite(est.summary(X, y)["std_err"]).all()


def test_not_fitted_and_bad_calls():
    X, y, _ = make_regression()
    with pytest.raises(NotFittedError):
        LinearRegression().summary(X, y)
    est = LinearRegression(solver="lbfgs").fit(X, y)  # no Gram matrix kept by the fit
    with pytest.raises(ValueError, match="pass the training data"):
        est.summary()
    with pytest.raises(ValueError, match="cov_type"):
        est.summary(X, y, cov_type="HC3")
    with pytest.raises(ValueError, match="alpha"):
        est.summary(alpha=1.5)
    Xb, yb, _ = make_binary()
    clf = LogisticRegression(C=np.inf).fit(Xb, yb)
    with pytest.raises(ValueError, match="label 7, not one of the classes"):
        clf.summary(Xb, np.where(yb == 1, 7, 0))
    Xm, ym, _ = make_multiclass()
    with pytest.raises(ValueError, match="binary logistic regression only"):
        LogisticRegression().fit(Xm, ym).summary(Xm, ym)
    from daskfit import RidgeCV

    with pytest.raises(ValueError, match="cross-validation"):
        RidgeCV().fit(X, y).summary(X, y)
    wide = LinearRegression()  # fitted attributes of a 6,000-feature model, no fit needed
    wide.coef_, wide.intercept_, wide.n_features_in_ = np.zeros(6000), 0.0, 6000
    with pytest.raises(ValueError, match="6001 x 6001 covariance"):
        wide.summary(np.zeros((10, 6000)), np.zeros(10))
    collinear = np.column_stack([X, X[:, 0]])
    with pytest.raises(ValueError, match="singular"):
        LinearRegression(solver="lbfgs").fit(collinear, y).summary(collinear, y)


def test_pickle_and_clone():
    X, y, _ = make_counts()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = PoissonRegressor(alpha=0.01).fit(frame, y)
    table = est.summary(frame, y)
    assert list(table.index) == ["intercept"] + list(frame.columns)
    again = pickle.loads(pickle.dumps(est))
    pd.testing.assert_frame_equal(again.summary(), table)  # statistics travel, no data
    assert not hasattr(clone(est), "inference_")


def test_metrics_record_for_the_cli():
    import json

    from daskfit.estimators._inference import inference_record

    X, y, w = make_regression()
    names = [f"col{i}" for i in range(X.shape[1])]
    record = inference_record(Ridge(alpha=1.0).fit(X, y, w), X, y, w, names)
    json.dumps(record, allow_nan=False)  # metrics.json is strict JSON
    assert list(record["table"]) == ["intercept"] + names
    assert record["passes"] == 1 and record["dispersion"] > 0
    assert "l1-penalised" in inference_record(Lasso(alpha=0.1).fit(X, y), X, y)["skipped"]
    exact = X @ np.arange(1.0, X.shape[1] + 1)  # a perfect fit: llf near +inf, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = inference_record(LinearRegression().fit(X, exact), X, exact)
    json.dumps(record, allow_nan=False)
    assert record["deviance"] == pytest.approx(0, abs=1e-12)


# ------------------------------------------------------------ Gamma and Tweedie
def make_positive(seed=5):
    """A Gamma target (shape 2) with a log-linear mean."""
    X, _, w = make_regression(seed)
    rng = np.random.default_rng(seed + 500)
    mu = np.exp(0.3 + X @ rng.normal(scale=0.2, size=X.shape[1]))
    return X, rng.gamma(2.0, mu / 2.0), w


def make_pure_premium(seed=6):
    """Compound Poisson-Gamma: many exact zeros and positive amounts (Tweedie 1 < p < 2)."""
    X, _, w = make_regression(seed)
    rng = np.random.default_rng(seed + 600)
    counts = rng.poisson(0.8 * np.exp(0.3 + X @ rng.normal(scale=0.2, size=X.shape[1])))
    return X, np.array([rng.gamma(2.0, 0.6, size=k).sum() for k in counts]), w


GLMS = {  # daskfit estimator, statsmodels family, data
    "gamma": (lambda: GammaRegressor(alpha=0.0, tol=1e-12),
              lambda: sm.families.Gamma(sm.families.links.Log()), make_positive),
    "tweedie1.5": (lambda: TweedieRegressor(power=1.5, alpha=0.0, tol=1e-12),
                   lambda: sm.families.Tweedie(var_power=1.5, link=sm.families.links.Log()),
                   make_pure_premium),
}


def _glm_case(name, weighted):
    make_est, make_family, problem = GLMS[name]
    X, y, _ = problem()
    w = np.random.default_rng(7).integers(1, 4, size=len(y)).astype(float) if weighted else None
    return make_est, make_family, X, y, w


def _sm_glm(make_family, X, y, w, cov_type):
    return sm.GLM(y, sm.add_constant(X), family=make_family(), freq_weights=w).fit(
        tol=1e-13, cov_type=cov_type)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", sorted(GLMS))
def test_gamma_and_tweedie_match_statsmodels_glm(name, weighted):
    # Model-based (expected information) and HC0 (observed information as the
    # bread) errors, z statistics, the Pearson dispersion: statsmodels' GLM.
    make_est, make_family, X, y, w = _glm_case(name, weighted)
    est = make_est().fit(X, y, sample_weight=w)
    for cov_type in ("nonrobust", "HC0"):
        res = _sm_glm(make_family, X, y, w, cov_type)
        _assert_table(est.summary(X, y, w, cov_type=cov_type), res, "z")
        np.testing.assert_allclose(est.covariance(cov_type=cov_type).to_numpy(),
                                   np.asarray(res.cov_params()), rtol=RTOL)
    stats = est.inference_
    for field, value in dict(dispersion=res.scale, deviance=res.deviance,
                             null_deviance=res.null_deviance, pearson_chi2=res.pearson_chi2,
                             df_resid=res.df_resid, df_model=res.df_model,
                             nobs=np.sum(w) if weighted else len(y)).items():
        np.testing.assert_allclose(getattr(stats, field), value, rtol=RTOL, err_msg=field)
    assert stats.dispersion != 1.0 and stats.passes == 1


@pytest.mark.parametrize("name", sorted(GLMS))
def test_gamma_and_tweedie_on_dask_input(name):
    make_est, make_family, X, y, w = _glm_case(name, weighted=True)
    Xd, yd, wd = as_kind("dask", X, y, w, chunks=CHUNKINGS["uneven+empty"])
    est = make_est().fit(Xd, yd, wd)
    for cov_type in ("nonrobust", "HC0"):
        _assert_table(est.summary(Xd, yd, wd, cov_type=cov_type),
                      _sm_glm(make_family, X, y, w, cov_type), "z")
    assert est.inference_.passes == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels' deviance at y = 0
@pytest.mark.parametrize("power", [1.0, 1.5, 2.0])
def test_gamma_and_tweedie_likelihood_as_statsmodels(power):
    # statsmodels' llf at the estimated scale; AIC/BIC without the scale counted.
    # For 1 < p < 2 its llf is the Dunn-Smyth series, a row-wise function of the
    # dispersion known only after the pass: daskfit reports None there.
    X, y, _ = make_pure_premium() if power < 2 else make_positive()
    w = np.random.default_rng(7).integers(1, 4, size=len(y)).astype(float)
    estimators = [TweedieRegressor(power=power, alpha=0.0, tol=1e-12)]
    if power == 2:
        estimators.append(GammaRegressor(alpha=0.0, tol=1e-12))
    family = sm.families.Tweedie(var_power=power, link=sm.families.links.Log())
    res = _sm_glm(lambda: family, X, y, w, "nonrobust")
    for est in estimators:
        est.fit(X, y, sample_weight=w).summary(X, y, w)
        stats = est.inference_
        if 1 < power < 2:
            assert stats.llf is None and stats.aic is None and stats.bic is None
            continue
        for field, value in dict(llf=res.llf, aic=res.aic, bic=res.bic_llf).items():
            np.testing.assert_allclose(getattr(stats, field), value, rtol=RTOL, err_msg=field)


def test_gamma_ridge_covariance_is_the_penalised_sandwich():
    X, y, _ = make_positive()
    alpha = 0.05
    est = GammaRegressor(alpha=alpha, tol=1e-12).fit(X, y)
    Z = np.column_stack([np.ones(len(y)), X])
    mu = est.predict(X)
    n = len(y)
    # Log link, V = mu^2: expected weight 1, observed weight y / mu; alpha on the
    # mean loss is n * alpha on the sum of losses, never on the intercept.
    penalty = np.diag([0.0] + [n * alpha] * X.shape[1])
    phi = np.sum((y - mu) ** 2 / mu**2) / (n - Z.shape[1])
    bread = np.linalg.inv(Z.T @ Z + penalty)
    np.testing.assert_allclose(est.covariance(X, y).to_numpy(),
                               phi * bread @ Z.T @ Z @ bread, rtol=1e-9)
    observed = np.linalg.inv(Z.T @ (Z * (y / mu)[:, None]) + penalty)
    meat = Z.T @ (Z * ((y - mu) / mu)[:, None] ** 2)
    np.testing.assert_allclose(est.covariance(cov_type="HC0").to_numpy(),
                               observed @ meat @ observed, rtol=1e-9)


def _losses_with_inference():
    registered = [loss for loss in LOSSES.values() if loss.dispersion is not None]
    tweedies = [TweedieLoss(power=p) for p in (1.0, 1.5, 2.0, 3.0)] + [TweedieLoss(0.0, "log")]
    return registered + tweedies


@pytest.mark.parametrize("loss", _losses_with_inference(), ids=repr)
def test_inference_facts_agree_with_the_loss_derivatives(loss):
    """The facts inference asks a loss are those of the loss it is fitted with.

    The loss is half the unit deviance up to a term in ``y``: its gradient is
    the negative score factor ``-(y - mu) (dmu/draw) / V``, its Hessian the
    observed weight (the expected one where the loss uses Fisher scoring).
    """
    y = np.array([0.0, 1.0, 1.0, 0.0]) if loss.is_classification else \
        np.array([0.5, 1.0, 2.0, 3.5])
    raw = np.array([-0.7, 0.1, 0.4, 1.2])
    mu = loss.inverse_link(raw)
    v, dmu = loss.variance(mu), loss.dmu_deta(raw, mu)
    _, grad, hess = loss.derivatives(y, raw, hessian=True)
    np.testing.assert_allclose(grad, -(y - mu) * dmu / v, rtol=1e-12, atol=1e-14)
    expected = dmu**2 / v
    observed = expected if loss.canonical_link else \
        expected - (y - mu) * loss.score_factor_slope(raw, mu)
    fisher_scoring = isinstance(loss, TweedieLoss) and not 1 <= loss.power <= 2
    np.testing.assert_allclose(hess, expected if fisher_scoring else observed, rtol=1e-12)
    # d(y, mu) / 2 - loss(y, raw) depends on y alone: equal at another raw.
    gap = loss.unit_deviance(y, raw, mu) / 2 - loss.value(y, raw)
    shifted = raw + 0.3
    np.testing.assert_allclose(
        loss.unit_deviance(y, shifted, loss.inverse_link(shifted)) / 2 - loss.value(y, shifted),
        gap, rtol=1e-12, atol=1e-14)
    # The null deviance from sums is the summed unit deviance at the mean.
    w = np.array([1.0, 2.0, 1.0, 3.0])
    sw, ybar = w.sum(), w @ y / w.sum()
    c0 = brentq(lambda r: loss.inverse_link(np.array([r]))[0] - ybar, -20.0, 20.0, xtol=1e-15)
    raw0 = np.full(len(y), c0)  # the raw prediction whose mean is ybar, for any link
    m2 = w @ (y - ybar) ** 2
    ysums = loss.inference_y_sums(y, w)
    np.testing.assert_allclose(loss.null_deviance_of_mean(sw, ybar, m2, ysums),
                               w @ loss.unit_deviance(y, raw0, np.full(len(y), ybar)),
                               rtol=1e-12)


class _NoFactsLoss(R2Score, Loss):
    """A loss that states no inference facts (as a newly added loss may)."""

    name = "test-no-facts"

    def value(self, y, raw):
        return np.abs(y - raw)

    def inverse_link(self, raw):
        return raw


class _NoFactsRegression(LinearRegression):
    def _make_loss(self):
        return _NoFactsLoss()


def test_a_loss_without_inference_facts_is_refused_naming_the_estimator():
    X, y, _ = make_regression()
    est = _NoFactsRegression()  # fitted attributes set by hand: no fit needed
    est.coef_, est.intercept_, est.n_features_in_ = np.zeros(X.shape[1]), 0.0, X.shape[1]
    with pytest.raises(ValueError, match="_NoFactsRegression has no statistical inference"):
        est.summary(X, y)
