"""Offsets in cross-validation: the CV estimators, ``cross_validate`` and ``diagnose``.

What a score means with an offset: the fold model, fitted with the training
rows' offset, predicts the validation rows WITH their offset, and the score
is the estimator's own ``score(X, y, offset=...)`` (R^2 / D^2 / accuracy of
``y``). Oracles: daskfit's single estimators fitted and scored per fold with
the offset (the same folds), and, for least squares, the same CV on
``y - offset`` (the same fits and squared errors). The offset travels with
the weights, so the pass counts are those without one.
"""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import log_loss, mean_poisson_deviance
from sklearn.model_selection import KFold, StratifiedKFold

import daskfit
from daskfit.errors import ParameterError
from daskfit.model_selection import (LassoCV, LogisticRegressionCV, RidgeCV,
                                     cross_validate)

from conftest import CHUNKINGS

UNEVEN = CHUNKINGS["uneven+empty"]
N = sum(UNEVEN)


def dask_of(*arrays):
    """Dask arrays on the uneven row chunks (an empty chunk included)."""
    return [da.from_array(a, chunks=(UNEVEN,) + a.shape[1:]) for a in arrays]


def frame_of(X, y, offset):
    """Columns of one Dask DataFrame (row chunk sizes unknown to Dask)."""
    columns = [f"x{i}" for i in range(X.shape[1])]
    pdf = pd.DataFrame(X, columns=columns).assign(target=y, off=offset)
    ddf = dd.from_pandas(pdf, npartitions=3)
    return ddf[columns], ddf["target"], ddf["off"]


def make_linear(seed=0, n=N, p=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    offset = rng.normal(scale=2.0, size=n)
    y = X @ rng.normal(size=p) + 0.5 + offset + rng.normal(size=n)
    return X, y, offset


def make_binary_offset(seed=1, n=N, p=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    offset = rng.normal(size=n)
    y = (rng.uniform(size=n) < expit(X @ rng.normal(size=p) - 0.2 + offset)).astype(int)
    return X, y, offset


def make_rates(seed=2, n=N, p=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=0.5, size=(n, p))
    offset = np.log(rng.uniform(0.3, 4.0, size=n))
    y = rng.poisson(np.exp(X @ rng.normal(scale=0.5, size=p) - 0.3 + offset)).astype(float)
    return X, y, offset


ALPHAS = [0.01, 1.0, 30.0, 1000.0]
FOLDS = list(KFold(4, shuffle=True, random_state=3).split(np.zeros(N)))


# ------------------------------------------------------------ moments CV estimators
@pytest.mark.parametrize("kind", ["dask", "ddf"])
def test_ridge_cv_with_offset_is_ridge_cv_of_y_minus_offset(kind):
    """One pass; the fits, squared errors and the MSE choice are those of ``y - offset``;
    R^2 is of ``y`` against ``X b + b0 + offset``, as ``Ridge.score(offset=)``."""
    X, y, offset = make_linear()
    Xk, yk, ok = dask_of(X, y, offset) if kind == "dask" else frame_of(X, y, offset)
    mse = dict(alphas=ALPHAS, cv=FOLDS, scoring="neg_mean_squared_error")
    with_offset = RidgeCV(**mse).fit(Xk, yk, offset=ok)
    shifted = RidgeCV(**mse).fit(*dask_of(X, y - offset))
    assert with_offset.n_passes_ == shifted.n_passes_ == 1
    assert with_offset.alpha_ == shifted.alpha_
    np.testing.assert_allclose(with_offset.coef_, shifted.coef_, rtol=1e-10)
    assert with_offset.intercept_ == pytest.approx(shifted.intercept_, rel=1e-10)
    np.testing.assert_allclose(with_offset.cv_results_["mean_test_score"],
                               shifted.cv_results_["mean_test_score"], rtol=1e-10)

    r2 = RidgeCV(alphas=ALPHAS, cv=FOLDS).fit(Xk, yk, offset=ok)
    oracle = np.array([[daskfit.Ridge(alpha=a).fit(X[tr], y[tr], offset=offset[tr])
                        .score(X[te], y[te], offset=offset[te]) for a in ALPHAS]
                       for tr, te in FOLDS])
    for s in range(len(FOLDS)):
        np.testing.assert_allclose(r2.cv_results_[f"split{s}_test_score"], oracle[s],
                                   rtol=1e-9)
    assert r2.alpha_ == ALPHAS[int(np.argmax(oracle.mean(axis=0)))]
    refit = daskfit.Ridge(alpha=r2.alpha_).fit(X, y - offset)
    np.testing.assert_allclose(r2.coef_, refit.coef_, rtol=1e-9)
    assert r2.score(Xk, yk, offset=ok) == pytest.approx(
        daskfit.Ridge(alpha=r2.alpha_).fit(X, y, offset=offset).score(X, y, offset=offset),
        rel=1e-10)


def test_lasso_cv_with_offset_is_lasso_cv_of_y_minus_offset():
    X, y, offset = make_linear(4)
    params = dict(alphas=20, cv=FOLDS, tol=1e-10, max_iter=5000)
    with_offset = LassoCV(**params).fit(*dask_of(X, y), offset=dask_of(offset)[0])
    shifted = LassoCV(**params).fit(*dask_of(X, y - offset))
    assert with_offset.n_passes_ == shifted.n_passes_ == 1
    np.testing.assert_allclose(with_offset.alphas_, shifted.alphas_, rtol=1e-10)
    np.testing.assert_allclose(with_offset.mse_path_, shifted.mse_path_, rtol=1e-9)
    assert with_offset.alpha_ == shifted.alpha_
    np.testing.assert_allclose(with_offset.coef_, shifted.coef_, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------ LogisticRegressionCV
def test_logistic_cv_with_offset_equals_per_fold_fits():
    """Every fold model at every C is daskfit's LogisticRegression(C) fitted with the
    fold's offset; its scores are of predictions with the offset."""
    X, y, offset = make_binary_offset()
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = [0.01, 1.0, 100.0]
    Xd, yd, od = dask_of(X, y, offset)
    for scoring in (None, "neg_log_loss"):
        cv = LogisticRegressionCV(Cs=Cs, cv=folds, tol=1e-10, scoring=scoring).fit(
            Xd, yd, offset=od)
        for s, (tr, te) in enumerate(folds):
            for c, C in enumerate(Cs):
                m = daskfit.LogisticRegression(C=C, tol=1e-10).fit(X[tr], y[tr],
                                                                   offset=offset[tr])
                np.testing.assert_allclose(cv.coefs_paths_[s, 0, c, 0],
                                           np.r_[m.coef_.ravel(), m.intercept_], rtol=1e-6)
                expected = (m.score(X[te], y[te], offset=offset[te]) if scoring is None else
                            -log_loss(y[te], m.predict_proba(X[te], offset=offset[te])))
                assert cv.scores_[s, 0, c] == pytest.approx(expected, rel=1e-6, abs=1e-12)
        full = daskfit.LogisticRegression(C=cv.C_, tol=1e-10).fit(X, y, offset=offset)
        np.testing.assert_allclose(cv.coef_, full.coef_, rtol=1e-6)


def test_logistic_cv_offset_costs_no_pass_and_refuses_multinomial():
    X, y, _ = make_binary_offset(5)
    Xd, yd, zero = dask_of(X, y, np.zeros(N))
    params = dict(Cs=[0.1, 10.0], cv=3, tol=1e-8)
    plain = LogisticRegressionCV(**params).fit(Xd, yd)
    zeroed = LogisticRegressionCV(**params).fit(Xd, yd, offset=zero)
    assert zeroed.n_passes_ == plain.n_passes_
    np.testing.assert_allclose(zeroed.coef_, plain.coef_, rtol=1e-10)
    three = np.arange(N) % 3
    with pytest.raises(ParameterError, match="offset") as err:
        LogisticRegressionCV(**params).fit(X, three, offset=np.zeros(N))
    assert err.value.parameter == "offset"


# ------------------------------------------------------------ cross_validate
@pytest.mark.parametrize("scoring", [None, "neg_mean_poisson_deviance"])
def test_cross_validate_poisson_offset_equals_manual_folds(scoring):
    X, y, offset = make_rates()
    cv = KFold(3, shuffle=True, random_state=1)
    est = daskfit.PoissonRegressor(alpha=0.01, tol=1e-10)
    out = cross_validate(est, *dask_of(X, y), offset=dask_of(offset)[0], cv=cv,
                         scoring=scoring, return_train_score=True, return_estimator=True)
    for s, (tr, te) in enumerate(cv.split(X)):
        m = daskfit.PoissonRegressor(alpha=0.01, tol=1e-10).fit(X[tr], y[tr],
                                                                offset=offset[tr])
        np.testing.assert_allclose(out["estimator"][s].coef_, m.coef_, rtol=1e-8)
        for key, rows in (("test_score", te), ("train_score", tr)):
            expected = (m.score(X[rows], y[rows], offset=offset[rows]) if scoring is None
                        else -mean_poisson_deviance(y[rows], m.predict(X[rows],
                                                                       offset=offset[rows])))
            assert out[key][s] == pytest.approx(expected, rel=1e-8)


def test_cross_validate_offset_costs_no_pass():
    X, y, _ = make_rates(6)
    Xd, yd, zero = dask_of(X, y, np.zeros(N))
    est = daskfit.PoissonRegressor(alpha=0.1)
    plain = cross_validate(est, Xd, yd, cv=2, return_estimator=True)
    zeroed = cross_validate(est, Xd, yd, offset=zero, cv=2, return_estimator=True)
    assert [e.n_passes_ for e in zeroed["estimator"]] == \
        [e.n_passes_ for e in plain["estimator"]]
    np.testing.assert_allclose(zeroed["test_score"], plain["test_score"], rtol=1e-12)


def test_cross_validate_refuses_offset_for_a_fit_without_one():
    from sklearn.linear_model import Ridge

    X, y, offset = make_linear()
    with pytest.raises(ParameterError, match="offset") as err:
        cross_validate(Ridge(), X, y, offset=offset, cv=2)
    assert err.value.parameter == "offset"


# ------------------------------------------------------------ diagnose
def test_diagnose_with_offset_scores_folds_and_null_model_with_it():
    """Per-fold scores are Ridge fitted and scored with the offset; the baseline is
    the offset model's null model (intercept + offset), scored the same way."""
    X, y, offset = make_linear(7)
    folds = list(KFold(3).split(X))
    report = daskfit.overfitting.diagnose(
        daskfit.Ridge(alpha=1.0), *dask_of(X, y), offset=dask_of(offset)[0], cv=folds,
        param_range=[0.1, 10.0], train_sizes=(1.0,))
    fits = [daskfit.Ridge(alpha=1.0).fit(X[tr], y[tr], offset=offset[tr]) for tr, _ in folds]
    np.testing.assert_allclose(report.folds["validation"], [
        m.score(X[te], y[te], offset=offset[te]) for m, (_, te) in zip(fits, folds)],
        rtol=1e-9)
    null = []
    for tr, te in folds:
        pred = np.mean(y[tr] - offset[tr]) + offset[te]
        null.append(1 - np.sum((y[te] - pred) ** 2) / np.sum((y[te] - y[te].mean()) ** 2))
    np.testing.assert_allclose(report.baseline["validation_scores"], null, rtol=1e-9)
    assert report.baseline["strategy"] == "intercept + offset"
