"""LogisticRegressionCV: every fold model and the refit advance together.

Oracles: scikit-learn's ``LogisticRegressionCV`` (newer attribute layout)
and ``GridSearchCV(LogisticRegression)`` with the same folds, at tight
tolerances on both sides. Cost: the passes of one path fit, not k of them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.linear_model as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, ShuffleSplit, StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

import daskfit
from daskfit.engine.rows import DataError
from daskfit.model_selection import LogisticRegressionCV

from conftest import CHUNKINGS, as_kind, make_binary, make_multiclass

CS = np.logspace(-3, 2, 6)
TIGHT = {"tol": 1e-10}


def _sk_cv(X, y, cv, scoring, sample_weight=None, Cs=CS):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sk.LogisticRegressionCV(
            Cs=Cs, cv=cv, scoring=scoring, tol=1e-12, max_iter=100_000, l1_ratios=(0,),
            use_legacy_attributes=False).fit(X, y, sample_weight=sample_weight)


def _folds(X, y, n=4):
    return list(StratifiedKFold(n, shuffle=True, random_state=0).split(X, y))


@pytest.mark.parametrize("problem", [make_binary, make_multiclass], ids=["binary", "multiclass"])
@pytest.mark.parametrize("scoring", ["neg_log_loss", "accuracy"])
def test_matches_scikit_learn_logistic_regression_cv(problem, scoring):
    X, y, _ = problem()
    folds = _folds(X, y)
    ours = LogisticRegressionCV(Cs=CS, cv=folds, scoring=scoring, **TIGHT).fit(X, y)
    ref = _sk_cv(X, y, folds, scoring)
    np.testing.assert_allclose(ours.scores_, ref.scores_, rtol=0, atol=1e-6)
    assert ours.C_ == ref.C_
    np.testing.assert_allclose(ours.coefs_paths_, ref.coefs_paths_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_chooses_the_same_C_as_grid_search():
    """The issue's criterion: GridSearchCV over LogisticRegression, same folds."""
    X, y, _ = make_binary(seed=5, n=400)
    folds = _folds(X, y, 5)
    ours = LogisticRegressionCV(Cs=CS, cv=folds, scoring="neg_log_loss", **TIGHT).fit(X, y)
    grid = GridSearchCV(sk.LogisticRegression(tol=1e-12, max_iter=100_000), {"C": list(CS)},
                        cv=folds, scoring="neg_log_loss").fit(X, y)
    np.testing.assert_allclose(ours.scores_[:, 0, :].mean(axis=0),
                               grid.cv_results_["mean_test_score"], rtol=0, atol=1e-6)
    assert ours.C_ == grid.best_params_["C"]
    np.testing.assert_allclose(ours.coef_, grid.best_estimator_.coef_, rtol=1e-5, atol=1e-6)


def test_weighted_fits_and_scores_match_scikit_learn():
    """With weights, the fits and the (default, accuracy) scores are weighted."""
    X, y, w = make_binary(seed=6)
    folds = _folds(X, y)
    ours = LogisticRegressionCV(Cs=CS, cv=folds, **TIGHT).fit(X, y, sample_weight=w)
    ref = _sk_cv(X, y, folds, None, sample_weight=w)
    np.testing.assert_allclose(ours.scores_, ref.scores_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.coefs_paths_, ref.coefs_paths_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["dask", "ddf"])
@pytest.mark.parametrize("chunking", ["7", "uneven+empty"])
def test_dask_inputs_and_chunkings_give_the_numpy_result(kind, chunking):
    X, y, w = make_multiclass(seed=7)
    folds = _folds(X, y)
    expected = LogisticRegressionCV(Cs=CS, cv=folds, **TIGHT).fit(X, y, sample_weight=w)
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS[chunking])
    got = LogisticRegressionCV(Cs=CS, cv=folds, **TIGHT).fit(Xk, yk, sample_weight=wk)
    np.testing.assert_allclose(got.scores_, expected.scores_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-8, atol=1e-10)
    assert got.C_ == expected.C_


def test_on_a_cluster_with_default_stratified_folds(client):
    X, y, _ = make_binary(seed=8, n=500)
    Xd, yd, _ = as_kind("dask", X, y, chunks=(100,) * 5)
    ours = LogisticRegressionCV(Cs=CS, **TIGHT).fit(Xd, yd)
    ref = _sk_cv(X, y, 5, None)  # cv=None/5 -> StratifiedKFold(5), unshuffled
    np.testing.assert_allclose(ours.scores_, ref.scores_, rtol=0, atol=1e-9)
    assert ours.C_ == ref.C_
    assert ours.target_passes_ == 2  # labels, then the labels the splitter stratifies on


@pytest.mark.parametrize("cv", [KFold(3), ShuffleSplit(4, test_size=0.3, random_state=0),
                                GroupKFold(3)], ids=["kfold", "shuffle-split", "group-kfold"])
def test_any_splitter(cv):
    X, y, _ = make_binary(seed=9)
    groups = np.arange(len(y)) % 7
    ours = LogisticRegressionCV(Cs=CS[:3], cv=cv, scoring="neg_log_loss", **TIGHT).fit(
        X, y, groups=groups)
    folds = list(cv.split(X, y, groups))
    ref = _sk_cv(X, y, folds, "neg_log_loss", Cs=CS[:3])
    np.testing.assert_allclose(ours.scores_, ref.scores_, rtol=0, atol=1e-6)


def test_k_folds_cost_the_passes_of_one_path_fit(count_reductions):
    """Ten fold models and the refit take about the passes of ONE model's path."""
    X, y, _ = make_binary(seed=10, n=600)
    one_split = [(np.arange(1, len(y)), np.array([0]))]
    single = LogisticRegressionCV(Cs=CS, cv=one_split, refit=False, **TIGHT).fit(X, y)
    assert len(count_reductions) == single.n_passes_
    # One model: a pass per accepted Newton step, plus the first.
    assert single.n_passes_ >= 1 + single.n_iter_.sum()
    count_reductions.clear()
    ten = LogisticRegressionCV(Cs=CS, cv=10, **TIGHT).fit(X, y)
    assert len(count_reductions) == ten.n_passes_
    slowest = ten.n_iter_.sum(axis=(1, 2)).max()
    assert ten.n_passes_ >= 1 + slowest
    assert ten.n_passes_ <= single.n_passes_ + 3  # not 11 times as many
    assert ten.target_passes_ == 0  # in-memory labels cost no pass


def test_refit_false_averages_the_fold_models():
    X, y, _ = make_binary(seed=11)
    folds = _folds(X, y)
    ours = LogisticRegressionCV(Cs=CS, cv=folds, refit=False, scoring="neg_log_loss",
                                **TIGHT).fit(X, y)
    best = ours.scores_[:, 0, :].argmax(axis=1)
    expected = np.mean([ours.coefs_paths_[s, 0, b] for s, b in enumerate(best)], axis=0)
    np.testing.assert_allclose(ours.coef_, expected[:, :-1])
    assert ours.C_ == pytest.approx(CS[best].mean())


def test_train_scores_exceed_validation_scores_when_unregularised():
    """A planted overfit: few rows, many noise features; the gap is visible."""
    rng = np.random.default_rng(12)
    X = rng.normal(size=(80, 30))
    y = (X[:, 0] + rng.normal(size=80) > 0).astype(int)
    m = LogisticRegressionCV(Cs=[1e-2, 1e3], cv=4, scoring="neg_log_loss").fit(X, y)
    gap = m.train_scores_[:, 0, :].mean(axis=0) - m.scores_[:, 0, :].mean(axis=0)
    assert gap[1] > 0.3 and gap[1] > 5 * gap[0]
    assert m.C_ == 1e-2


@pytest.mark.parametrize("params, match", [
    ({"l1_ratios": (0.5,)}, "l1_ratios"),
    ({"Cs": 0}, "'Cs'"),
    ({"Cs": [1.0, -1.0]}, "'Cs'"),
    ({"scoring": "roc_auc"}, "'scoring'"),
    ({"cv": 1}, "'cv'"),
    ({"tol": -1.0}, "'tol'"),
])
def test_bad_parameters(params, match):
    X, y, _ = make_binary()
    with pytest.raises(ValueError, match=match):
        LogisticRegressionCV(**params).fit(X, y)


@pytest.mark.parametrize("kind", ["numpy", "dask", "ddf"])
def test_bad_data(kind):
    X, y, _ = make_binary()
    with pytest.raises(ValueError, match="only one class"):
        LogisticRegressionCV(Cs=2).fit(*as_kind(kind, X, np.zeros_like(y))[:2])
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegressionCV(Cs=2, cv=KFold(3)).fit(*as_kind(kind, X, X[:, 0])[:2])
    Xbad = X.copy()
    Xbad[17, 2] = np.nan
    Xk, yk, _ = as_kind(kind, Xbad, y, chunks=CHUNKINGS["7"])
    error = ValueError if kind == "numpy" else DataError
    with pytest.raises(error, match="NaN"):
        LogisticRegressionCV(Cs=2, cv=KFold(3)).fit(Xk, yk)


def test_exported_from_the_top_level():
    assert daskfit.LogisticRegressionCV is LogisticRegressionCV


@parametrize_with_checks([LogisticRegressionCV(Cs=3, cv=3)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
