"""Model selection on chunks: splits, cross_validate, and one-pass CV estimators.

Oracles are scikit-learn's own: ``GridSearchCV`` over ``Ridge`` / ``Lasso`` /
``ElasticNet`` with the same folds and alphas (with ``sample_weight`` routed
to both fit and score when weights are given), ``LassoCV`` / ``ElasticNetCV``
and ``cross_validate``. Costs are counted: one pass for every fold at every
alpha.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import sklearn
import sklearn.linear_model as sk
from sklearn.metrics import make_scorer, mean_squared_error, r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    TimeSeriesSplit,
)
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.model_selection import train_test_split as sk_train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

import daskfit
from daskfit.engine.rows import DataError
from daskfit.model_selection import (
    ElasticNetCV,
    LassoCV,
    RidgeCV,
    cross_validate,
    train_test_split,
)
from daskfit.model_selection._split import FoldLayout, fold_pass_data, resolve_splits

from conftest import CHUNKINGS, as_kind, make_regression

KINDS = ("numpy", "dask", "ddf")
CV = KFold(5, shuffle=True, random_state=0)
RIDGE_ALPHAS = [0.01, 0.3, 3.0, 30.0, 300.0, 3000.0]
L1_ALPHAS = list(np.geomspace(1.0, 1e-3, 8))
#: Tight coordinate descent on both sides, so that paths agree to round-off.
TIGHT = {"tol": 1e-12, "max_iter": 100_000}




def _sk_grid_search(estimator, grid, X, y, w, cv, scoring):
    """scikit-learn's GridSearchCV, weights routed to fit and score when given."""
    score_func, greater = {"r2": (r2_score, True),
                           "neg_mean_squared_error": (mean_squared_error, False)}[scoring]
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(score_func, greater_is_better=greater)
        scorer.set_score_request(sample_weight=True)
        estimator.set_fit_request(sample_weight=True)
        kwargs = {} if w is None else {"sample_weight": w}
        return GridSearchCV(estimator, grid, cv=cv, scoring=scorer).fit(X, y, **kwargs)


def _split_scores(cv_results, n_splits):
    """GridSearchCV's per-split test scores as (n_candidates, n_splits)."""
    return np.column_stack([cv_results[f"split{k}_test_score"] for k in range(n_splits)])


# ------------------------------------------------------------------ RidgeCV


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", KINDS)
def test_ridgecv_equals_grid_search(kind, weighted, count_reductions):
    X, y, w = make_regression()
    w = w if weighted else None
    ref = _sk_grid_search(sk.Ridge(), {"alpha": RIDGE_ALPHAS}, X, y, w, CV, "r2")
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS["uneven+empty"])
    ours = RidgeCV(RIDGE_ALPHAS, cv=CV).fit(Xk, yk, sample_weight=wk)
    assert ours.alpha_ == ref.best_params_["alpha"]
    np.testing.assert_allclose(_split_scores(ours.cv_results_, 5),
                               _split_scores(ref.cv_results_, 5), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.best_score_, ref.best_score_, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.cv_results_["rank_test_score"],
                                  ref.cv_results_["rank_test_score"])
    # The refit on all rows comes from the same pass.
    np.testing.assert_allclose(ours.coef_, ref.best_estimator_.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.best_estimator_.intercept_, rtol=1e-8)
    assert count_reductions == ["cv-moments"] and ours.n_passes_ == 1
    # Unknown chunk sizes (Dask DataFrame) cost one pass over y alone.
    assert ours.target_passes_ == (1 if kind == "ddf" else 0)


def test_ridgecv_equals_sklearn_ridgecv_with_kfold():
    X, y, _ = make_regression(seed=4)
    Xd, yd, _ = as_kind("dask", X, y, None, CHUNKINGS["7"])
    ours = RidgeCV(RIDGE_ALPHAS, cv=5).fit(Xd, yd)
    ref = sk.RidgeCV(RIDGE_ALPHAS, cv=5).fit(X, y)
    assert ours.alpha_ == ref.alpha_
    np.testing.assert_allclose(ours.best_score_, ref.best_score_, atol=1e-9)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8)


@pytest.mark.parametrize("scoring", ["neg_mean_squared_error", "neg_root_mean_squared_error",
                                     "explained_variance", "r2"])
def test_ridgecv_moment_scorers_equal_sklearn_scorers(scoring):
    X, y, _ = make_regression(seed=5)
    ref = GridSearchCV(sk.Ridge(), {"alpha": RIDGE_ALPHAS}, cv=CV, scoring=scoring).fit(X, y)
    ours = RidgeCV(RIDGE_ALPHAS, cv=CV, scoring=scoring).fit(da.from_array(X, chunks=(60, 5)),
                                                            y)
    assert ours.alpha_ == ref.best_params_["alpha"]
    np.testing.assert_allclose(_split_scores(ours.cv_results_, 5),
                               _split_scores(ref.cv_results_, 5), rtol=1e-9, atol=1e-9)


def test_ridgecv_without_intercept():
    X, y, w = make_regression(seed=6)
    ref = _sk_grid_search(sk.Ridge(fit_intercept=False), {"alpha": RIDGE_ALPHAS}, X, y, w, CV,
                          "r2")
    ours = RidgeCV(RIDGE_ALPHAS, cv=CV, fit_intercept=False).fit(X, y, sample_weight=w)
    assert ours.alpha_ == ref.best_params_["alpha"]
    np.testing.assert_allclose(_split_scores(ours.cv_results_, 5),
                               _split_scores(ref.cv_results_, 5), atol=1e-6)
    assert ours.intercept_ == 0.0
    np.testing.assert_allclose(ours.coef_, ref.best_estimator_.coef_, rtol=1e-8)


def test_ridgecv_features_on_very_different_scales():
    # A polynomial design with large means: the scaled-Cholesky solve keeps
    # scikit-learn's accuracy where one eigendecomposition per fold would not.
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 10, 400)
    X = np.column_stack([t**k for k in range(1, 6)]) + 1e3
    y = np.sin(t) + rng.normal(scale=0.1, size=400)
    alphas = np.geomspace(1e-6, 1e6, 13)
    ref = GridSearchCV(sk.Ridge(), {"alpha": alphas}, cv=CV).fit(X, y)
    ours = RidgeCV(alphas, cv=CV).fit(da.from_array(X, chunks=(57, 5)), y)
    assert ours.alpha_ == ref.best_params_["alpha"]
    np.testing.assert_allclose(_split_scores(ours.cv_results_, 5),
                               _split_scores(ref.cv_results_, 5), atol=1e-9)


def test_ridgecv_5_folds_30_alphas_is_one_pass(count_reductions):
    X, y, w = make_regression(seed=7)
    Xk, yk, wk = as_kind("ddf", X, y, w, CHUNKINGS["50"])
    reg = RidgeCV(np.geomspace(1e-3, 1e4, 30), cv=5).fit(Xk, yk, sample_weight=wk)
    assert count_reductions == ["cv-moments"]
    assert reg.n_passes_ == 1 and len(reg.cv_results_["mean_test_score"]) == 30
    assert reg.chunk_rows_ == CHUNKINGS["50"]


# ------------------------------------------------------------------ LassoCV / ElasticNetCV


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", KINDS)
def test_lassocv_equals_grid_search_and_lassocv(kind, weighted, count_reductions):
    X, y, w = make_regression(seed=8)
    w = w if weighted else None
    ref = _sk_grid_search(sk.Lasso(**TIGHT), {"alpha": L1_ALPHAS}, X, y, w, CV,
                          "neg_mean_squared_error")
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS["7"])
    ours = LassoCV(alphas=L1_ALPHAS, cv=CV, **TIGHT).fit(Xk, yk, sample_weight=wk)
    assert count_reductions == ["cv-moments"] and ours.n_passes_ == 1
    assert ours.alpha_ == ref.best_params_["alpha"]
    # L1_ALPHAS is already decreasing: mse_path_ rows follow it.
    np.testing.assert_allclose(ours.mse_path_, -_split_scores(ref.cv_results_, 5), atol=1e-6)
    np.testing.assert_allclose(ours.coef_, ref.best_estimator_.coef_, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, ref.best_estimator_.intercept_, atol=1e-8)
    theirs = sk.LassoCV(alphas=L1_ALPHAS, cv=CV, **TIGHT).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, atol=1e-9)
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_)
    assert not hasattr(ours, "l1_ratio_")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lassocv_automatic_alpha_grid_equals_sklearn(weighted):
    X, y, w = make_regression(seed=9)
    w = w if weighted else None
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])
    ours = LassoCV(alphas=20, cv=4, **TIGHT).fit(Xk, yk, sample_weight=wk)
    ref = sk.LassoCV(alphas=20, cv=4, **TIGHT).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, atol=1e-9)
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-8)


def test_elasticnetcv_several_l1_ratios_equals_grid_search(count_reductions):
    X, y, w = make_regression(seed=10)
    ratios = [0.2, 0.7, 1.0]
    grid = {"alpha": L1_ALPHAS, "l1_ratio": ratios}
    ref = _sk_grid_search(sk.ElasticNet(**TIGHT), grid, X, y, w, CV, "neg_mean_squared_error")
    Xk, yk, wk = as_kind("ddf", X, y, w, CHUNKINGS["7"])
    ours = ElasticNetCV(l1_ratio=ratios, alphas=L1_ALPHAS, cv=CV, **TIGHT).fit(
        Xk, yk, sample_weight=wk)
    assert count_reductions == ["cv-moments"]
    assert (ours.alpha_, ours.l1_ratio_) == (ref.best_params_["alpha"],
                                             ref.best_params_["l1_ratio"])
    assert ours.mse_path_.shape == (3, len(L1_ALPHAS), 5)
    # GridSearchCV's candidates run over alpha (outer) and l1_ratio (inner).
    theirs = -_split_scores(ref.cv_results_, 5).reshape(len(L1_ALPHAS), len(ratios), 5)
    np.testing.assert_allclose(ours.mse_path_, theirs.transpose(1, 0, 2), atol=1e-6)
    np.testing.assert_allclose(ours.coef_, ref.best_estimator_.coef_, atol=1e-8)


def test_elasticnetcv_automatic_grids_equal_sklearn():
    X, y, _ = make_regression(seed=11)
    ours = ElasticNetCV(l1_ratio=[0.5, 0.9], alphas=15, cv=CV, **TIGHT).fit(X, y)
    ref = sk.ElasticNetCV(l1_ratio=[0.5, 0.9], alphas=15, cv=CV, **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, atol=1e-9)
    assert ours.l1_ratio_ == ref.l1_ratio_ and ours.alpha_ == pytest.approx(ref.alpha_)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-8)


def test_l1_cv_estimators_make_one_pass_for_many_alphas(count_reductions):
    X, y, w = make_regression(seed=12)
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["50"])
    LassoCV(alphas=30, cv=5).fit(Xk, yk, sample_weight=wk)
    ElasticNetCV(l1_ratio=[0.3, 0.8], alphas=30, cv=5).fit(Xk, yk, sample_weight=wk)
    assert count_reductions == ["cv-moments", "cv-moments"]


# ------------------------------------------------------------------ splitters


@pytest.mark.parametrize("name", ["timeseries", "group", "shuffle", "stratified"])
def test_any_splitter_on_chunks_equals_grid_search(name, count_reductions):
    X, y, w = make_regression(seed=13)
    groups = np.arange(len(y)) % 17
    if name == "stratified":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66])).astype(float)  # 3 numeric classes
    cv = {"timeseries": TimeSeriesSplit(4, gap=3), "group": GroupKFold(4),
          "shuffle": ShuffleSplit(6, test_size=0.3, random_state=0),
          "stratified": StratifiedKFold(4, shuffle=True, random_state=1)}[name]
    Xk, yk, wk = as_kind("ddf", X, y, w, CHUNKINGS["7"])
    grouped = name == "group"
    gk = da.from_array(groups, chunks=50) if grouped else None  # groups may be Dask too
    ours = RidgeCV(RIDGE_ALPHAS, cv=cv).fit(Xk, yk, sample_weight=wk, groups=gk)
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(r2_score).set_score_request(sample_weight=True)
        ref = GridSearchCV(sk.Ridge().set_fit_request(sample_weight=True),
                           {"alpha": RIDGE_ALPHAS}, cv=cv, scoring=scorer)
        ref.fit(X, y, sample_weight=w, **({"groups": groups} if grouped else {}))
    n_splits = cv.get_n_splits(X, y, groups)
    assert ours.alpha_ == ref.best_params_["alpha"]
    np.testing.assert_allclose(_split_scores(ours.cv_results_, n_splits),
                               _split_scores(ref.cv_results_, n_splits), atol=1e-6)
    assert count_reductions == ["cv-moments"]


def test_fold_layouts():
    # K-fold: one atom per fold; a time-series split K + 1 (the first block
    # is always trained on); shuffle splits: per-split codes.
    n = 100
    kfold = FoldLayout.from_splits(resolve_splits(KFold(5), n), n)
    assert kfold.mode == "atoms" and kfold.n_codes == (5,)
    assert [len(t) for t in kfold.train] == [4] * 5 and kfold.total == [(0, a) for a in range(5)]
    ts = FoldLayout.from_splits(resolve_splits(TimeSeriesSplit(4), n), n)
    assert ts.mode == "atoms" and ts.n_codes == (5,)
    n = 1000
    shuffle = FoldLayout.from_splits(
        resolve_splits(ShuffleSplit(8, test_size=0.5, random_state=0), n), n)
    assert shuffle.mode == "per-split" and shuffle.n_codes == (3,) * 8
    with pytest.raises(ValueError, match="both the training and the test set"):
        FoldLayout.from_splits([(np.arange(60), np.arange(50, 100))], n)
    with pytest.raises(ValueError, match="repeated train indices"):
        FoldLayout.from_splits([(np.zeros(60, dtype=int), np.arange(60, 100))], n)


def test_each_chunk_task_holds_only_its_own_codes():
    X, y, _ = make_regression()
    data = daskfit.Ridge()  # any estimator: as_chunked records features on it
    from daskfit._data import as_chunked

    chunked = as_chunked(data, *as_kind("dask", X, y, None, CHUNKINGS["7"])[:2])
    # Seeded by a RandomState, the folds cannot be remade on a worker: literals.
    fold_data, layout, _, passes = fold_pass_data(
        chunked, KFold(5, shuffle=True, random_state=np.random.RandomState(0)), None)
    assert passes == 0 and layout.mode == "atoms"
    graph = dict(fold_data.y.__dask_graph__())
    literals = [v for v in graph.values() if isinstance(v, np.ndarray) and v.dtype.names]
    # One literal per chunk, of that chunk's length: n codes in all, never n per task.
    assert sorted(len(v) for v in literals) == sorted(CHUNKINGS["7"])
    assert literals[0].dtype["codes"].base == np.int8


def test_training_data_never_reaches_the_client(monkeypatch):
    """Only y (n floats, for the stratified splitter) is computed on the client."""
    X, y, _ = make_regression()
    y = (y > np.median(y)).astype(float)
    Xk, yk, _ = as_kind("dask", X, y, None, CHUNKINGS["7"])
    arrays = []
    original = dask.compute

    def spy(*args, **kwargs):
        results = original(*args, **kwargs)
        arrays.extend(r for r in results if isinstance(r, np.ndarray))
        return results

    monkeypatch.setattr(dask, "compute", spy)
    reg = RidgeCV(cv=StratifiedKFold(3)).fit(Xk, yk)
    assert reg.target_passes_ == 1 and reg.n_passes_ == 1
    # y's chunks came back (1-D); the pass itself returns a dict of moments.
    assert arrays and all(a.ndim == 1 for a in arrays)


# ------------------------------------------------------------------ cross_validate


@pytest.mark.parametrize("kind", ["dask", "ddf"])
def test_cross_validate_equals_sklearn_on_numpy(kind):
    X, y, _ = make_regression(seed=14)
    cv = KFold(4, shuffle=True, random_state=2)
    scoring = ["r2", "neg_mean_absolute_error"]
    ref = sk_cross_validate(daskfit.Ridge(alpha=3.0), X, y, cv=cv, scoring=scoring,
                            return_train_score=True)
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKINGS["uneven+empty"])
    ours = cross_validate(daskfit.Ridge(alpha=3.0), Xk, yk, cv=cv, scoring=scoring,
                          return_train_score=True, return_estimator=True)
    assert set(ours) == set(ref) | {"estimator"}
    for key in ("test_r2", "train_r2", "test_neg_mean_absolute_error"):
        np.testing.assert_allclose(ours[key], ref[key], rtol=1e-9)
    assert len(ours["estimator"]) == 4 and ours["fit_time"].shape == (4,)
    if kind == "ddf":  # training sets stay Dask DataFrames: feature names survive
        assert list(ours["estimator"][0].feature_names_in_) == list(Xk.columns)


def test_cross_validate_default_score_and_weights():
    X, y, w = make_regression(seed=15)
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])
    ours = cross_validate(daskfit.Lasso(alpha=0.05, tol=1e-10), Xk, yk, cv=CV,
                          sample_weight=wk)
    with sklearn.config_context(enable_metadata_routing=True):
        est = sk.Lasso(alpha=0.05, tol=1e-12).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=True)
        ref = sk_cross_validate(est, X, y, cv=CV, params={"sample_weight": w})
    np.testing.assert_allclose(ours["test_score"], ref["test_score"], rtol=1e-7)
    # y and weights chunked unlike X (or Dask with in-memory X) are aligned first.
    odd = cross_validate(daskfit.Lasso(alpha=0.05, tol=1e-10), Xk, da.from_array(y, chunks=70),
                         cv=CV, sample_weight=da.from_array(w, chunks=110))
    np.testing.assert_allclose(odd["test_score"], ours["test_score"], rtol=1e-9)
    mixed = cross_validate(daskfit.Lasso(alpha=0.05, tol=1e-10), X, yk, cv=CV, sample_weight=wk)
    np.testing.assert_allclose(mixed["test_score"], ours["test_score"], rtol=1e-9)
    # In-memory input without weights is scikit-learn's own cross_validate.
    plain = cross_validate(sk.Ridge(), X, y, cv=3)
    np.testing.assert_allclose(plain["test_score"],
                               sk_cross_validate(sk.Ridge(), X, y, cv=3)["test_score"])


def test_cross_validate_classifier_stratifies_on_computed_labels():
    X, y, _ = make_regression(seed=16)
    labels = (y > np.median(y)).astype(int)
    Xk, yk, _ = as_kind("ddf", X, labels, None, CHUNKINGS["7"])
    est = daskfit.LogisticRegression(C=1.0, tol=1e-8)
    ours = cross_validate(est, Xk, yk, cv=3, scoring="accuracy", return_indices=True)
    ref = sk_cross_validate(est, X, labels, cv=3, scoring="accuracy", return_indices=True)
    for a, b in zip(ours["indices"]["test"], ref["indices"]["test"]):
        np.testing.assert_array_equal(np.sort(a), np.sort(b))
    np.testing.assert_allclose(ours["test_score"], ref["test_score"])


# ------------------------------------------------------------------ train_test_split


def test_train_test_split_dask_array_keeps_chunks_and_alignment():
    X, y, _ = make_regression(n=2000)
    Xd = da.from_array(X, chunks=(500, 5))
    yd = da.from_array(y, chunks=300)  # rechunked like X
    Xtr, Xte, ytr, yte = train_test_split(Xd, yd, test_size=0.2, random_state=3)
    assert Xtr.numblocks == (4, 1) and not np.isnan(Xtr.shape[0])
    assert Xtr.shape[0] + Xte.shape[0] == 2000
    assert 300 < Xte.shape[0] < 500  # Bernoulli(0.2) per row
    Xtr_np, ytr_np = Xtr.compute(), ytr.compute()
    assert Xtr_np.shape[0] == Xtr.shape[0] and len(ytr_np) == len(Xtr_np)
    # Rows stay paired: the same (X, y) rows as in the original data.
    rows = {tuple(r) for r in np.column_stack([X, y])}
    assert all(tuple(r) in rows for r in np.column_stack([Xtr_np, ytr_np])[:50])
    again = train_test_split(Xd, test_size=0.2, random_state=3)[1].compute()
    np.testing.assert_array_equal(again, Xte.compute())  # reproducible


def test_train_test_split_dataframe_and_no_shuffle():
    X, y, _ = make_regression()
    Xf, yf, _ = as_kind("ddf", X, y, None, CHUNKINGS["7"])
    Xtr, Xte, ytr, yte = train_test_split(Xf, yf, test_size=0.3, random_state=0)
    a, b = Xtr.compute(), ytr.compute()
    assert len(a) == len(b) and len(a) + len(Xte.compute()) == len(X)
    np.testing.assert_array_equal(a.index, b.index)  # same rows of the same frame
    # An int test_size needs n: one pass returning only the partition lengths.
    assert len(train_test_split(Xf, test_size=30, random_state=0)[1].compute()) < 60
    # shuffle=False: the last ceil(test_size * n) rows, as scikit-learn.
    parts = train_test_split(Xf, yf, test_size=0.3, shuffle=False)
    ref = sk_train_test_split(X, y, test_size=0.3, shuffle=False)
    for ours, theirs in zip(parts, ref):
        np.testing.assert_array_equal(np.asarray(ours.compute()), theirs)
    Xd = da.from_array(X, chunks=(43, 5))
    parts = train_test_split(Xd, test_size=0.3, shuffle=False)
    np.testing.assert_array_equal(parts[1].compute(), ref[1])
    # In-memory input is scikit-learn's own.
    for ours, theirs in zip(train_test_split(X, y, random_state=1),
                            sk_train_test_split(X, y, test_size=0.25, random_state=1)):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(TypeError, match="mixed with in-memory"):
        train_test_split(Xd, y)


# ------------------------------------------------------------------ errors, cluster, checks


def test_bad_parameters_and_data():
    X, y, _ = make_regression()
    with pytest.raises(ValueError, match="per-row predictions"):
        RidgeCV(scoring="neg_mean_absolute_error").fit(X, y)
    with pytest.raises(ValueError, match="'cv' parameter"):
        RidgeCV(cv=1).fit(X, y)
    with pytest.raises(ValueError, match="alphas"):
        LassoCV(alphas=[-1.0]).fit(X, y)
    with pytest.raises(ValueError, match="l1_ratio=0"):
        ElasticNetCV(l1_ratio=0.0).fit(X, y)
    Xn = X.copy()
    Xn[250, 1] = np.nan
    with pytest.raises(DataError, match="NaN.*row chunk 5"):
        RidgeCV().fit(da.from_array(Xn, chunks=(43, 5)), y)


def test_on_a_process_cluster(client):
    X, y, w = make_regression(seed=17)
    Xk, yk, wk = as_kind("ddf", X, y, w, CHUNKINGS["7"])
    ours = LassoCV(alphas=L1_ALPHAS, cv=CV, **TIGHT).fit(Xk, yk, sample_weight=wk)
    local = LassoCV(alphas=L1_ALPHAS, cv=CV, **TIGHT).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.mse_path_, local.mse_path_, rtol=1e-10)
    Xd, yd, _ = as_kind("dask", X, y, None, CHUNKINGS["7"])
    out = cross_validate(daskfit.Ridge(), Xd, yd, cv=3)
    np.testing.assert_allclose(out["test_score"],
                               sk_cross_validate(daskfit.Ridge(), X, y, cv=3)["test_score"])


# Slow convergence on some of scikit-learn's tiny collinear problems is
# reported by a ConvergenceWarning, as scikit-learn's own LassoCV does.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([RidgeCV(), LassoCV(alphas=10), ElasticNetCV(alphas=10)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ one multi-file frame


@pytest.fixture(scope="module")
def parquet_frame(tmp_path_factory):
    """X and y taken from one Parquet dataset of several files, as the README does.

    Dask reads the one column of ``y`` with fewer partitions than ``X`` (it
    fuses small projected files), which is what made them unalignable.
    """
    import dask.dataframe as dd
    import pandas as pd

    X, y, w = make_regression(seed=21)
    labels = (y > np.median(y)).astype(int)
    path = tmp_path_factory.mktemp("multi-file")
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["label"], frame["w"], frame["cls"] = y, w, labels
    for i, (a, b) in enumerate([(0, 100), (100, 230), (230, len(X))]):
        frame.iloc[a:b].to_parquet(path / f"part.{i}.parquet")
    return dd.read_parquet(path), X, y, w, labels


def test_x_and_y_from_one_multi_file_parquet_frame(parquet_frame):
    df, X, y, w, labels = parquet_frame
    Xf, yf, wf = df.drop(columns=["label", "w", "cls"]), df["label"], df["w"]
    assert Xf.optimize().npartitions != yf.optimize().npartitions  # the trap is set
    cv = KFold(3, shuffle=True, random_state=0)
    ref = sk_cross_validate(sk.Ridge(), X, y, cv=cv)["test_score"]
    np.testing.assert_allclose(cross_validate(daskfit.Ridge(), Xf, yf, cv=cv)["test_score"],
                               ref, rtol=1e-8)
    ours = RidgeCV(alphas=[0.1, 10.0], cv=cv).fit(Xf, yf, sample_weight=wf)
    theirs = RidgeCV(alphas=[0.1, 10.0], cv=cv).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-8)
    np.testing.assert_allclose(daskfit.Ridge().fit(Xf, yf).coef_,
                               sk.Ridge().fit(X, y).coef_, rtol=1e-8)
    report = daskfit.overfitting.diagnose(daskfit.Ridge(), Xf, yf, cv=3,
                                          param_range=[0.1, 1.0, 10.0], train_sizes=[0.5, 1.0])
    expected = daskfit.overfitting.diagnose(daskfit.Ridge(), X, y, cv=3,
                                            param_range=[0.1, 1.0, 10.0], train_sizes=[0.5, 1.0])
    np.testing.assert_allclose(report.folds["validation"], expected.folds["validation"],
                               rtol=1e-8)
    np.testing.assert_allclose(report.learning_curve["validation_scores"],
                               expected.learning_curve["validation_scores"], rtol=1e-8)
    clf = daskfit.LogisticRegression(tol=1e-8)
    np.testing.assert_allclose(
        cross_validate(clf, Xf, df["cls"], cv=3, scoring="accuracy")["test_score"],
        sk_cross_validate(clf, X, labels, cv=3, scoring="accuracy")["test_score"])
    Xtr, Xte, ytr, yte = train_test_split(Xf, yf, random_state=0)
    assert len(Xtr.compute()) == len(ytr.compute())
    # The fix the error message suggests for frames of different sources works too.
    Xa, ya = (v.to_dask_array().compute_chunk_sizes() for v in (Xf, yf))
    np.testing.assert_allclose(cross_validate(daskfit.Ridge(), Xa, ya, cv=cv)["test_score"],
                               ref, rtol=1e-8)
