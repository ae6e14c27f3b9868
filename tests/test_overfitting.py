"""Overfitting diagnosis: verdicts on planted problems, oracles for every curve.

- Verdicts: a planted overfit (few rows, many noisy features, no
  regularisation) is flagged, and its recommended strength improves the
  score on *fresh* rows from the same distribution; well-posed problems are
  not flagged; planted underfits (far too strong regularisation) are.
- Oracles: scikit-learn's ``cross_validate``, ``learning_curve`` and
  ``validation_curve`` (with scikit-learn's own estimators) on NumPy with the
  same folds; the one-pass Ridge fast path against the generic path.
- Cost: a Ridge diagnosis on Dask data is one pass over X.
- Output: JSON round trip, atomic self-contained HTML, figure content.
"""

from __future__ import annotations

import base64
import json
import os

import dask.array as da
import numpy as np
import pytest
import sklearn.linear_model as sk
from sklearn.dummy import DummyRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold, learning_curve, validation_curve
from sklearn.model_selection import cross_validate as sk_cross_validate

import daskfit
from daskfit.model_selection import RidgeCV
from daskfit.overfitting import GAP_LIMIT, diagnose
from daskfit.overfitting import _scores

from conftest import CHUNKINGS, as_kind, make_regression

CV = KFold(5, shuffle=True, random_state=0)
SIZES = (0.1, 0.325, 0.55, 0.775, 1.0)
INFORMATIVE = np.array([1.0, -1.0, 0.5])


def planted_overfit(seed=0, n=60, p=40):
    """Few rows, many features of pure noise, three that matter."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X[:, :3] @ INFORMATIVE + rng.normal(size=n)
    return X, y


def well_posed(seed=1, n=400, p=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + 0.5 + rng.normal(size=n)
    return X, y


# ------------------------------------------------------------------ verdicts


def test_planted_overfit_is_flagged_and_the_recommendation_helps_on_fresh_data():
    X, y = planted_overfit()
    report = diagnose(daskfit.LinearRegression(), X, y)
    assert report.verdict == "overfitting"
    assert report.rule.startswith("overfitting: mean train r2")
    assert "Stronger regularisation helps: alpha=" in report.rule
    num = report.numbers
    assert num["relative_gap"] > GAP_LIMIT and num["mean_train_score"] > 0.9
    assert num["mean_validation_score"] < 0  # worse than predicting the mean
    rec = report.recommended
    assert rec["param_name"] == "alpha" and rec["value"] > 1.0
    assert rec["validation_score"] > num["mean_validation_score"] + 1.0
    # LinearRegression has no strength: Ridge stands in, and the report says so.
    assert report.validation_curve["estimator"] == "Ridge"
    assert any("Ridge" in note for note in report.notes)
    assert isinstance(report.recommended_estimator, daskfit.Ridge)
    assert report.recommended_estimator.alpha == rec["value"]
    # Following the recommendation improves the score on fresh rows.
    rng = np.random.default_rng(123)
    X_new = rng.normal(size=(20_000, X.shape[1]))
    y_new = X_new[:, :3] @ INFORMATIVE + rng.normal(size=20_000)
    before = r2_score(y_new, daskfit.LinearRegression().fit(X, y).predict(X_new))
    after = r2_score(y_new, report.recommended_estimator.fit(X, y).predict(X_new))
    # Measured: R^2 -0.71 before, 0.23 after (0.69 is the best any model can do).
    assert before < 0.0 and after > 0.2, (before, after)


@pytest.mark.parametrize("estimator", [daskfit.Ridge(), daskfit.LinearRegression(),
                                       daskfit.Lasso(alpha=0.01)],
                         ids=["ridge", "linear", "lasso"])
def test_well_posed_problem_is_not_flagged(estimator):
    X, y = well_posed()
    report = diagnose(estimator, X, y)
    assert report.verdict == "fine", report.rule
    assert report.rule.startswith("fine: ")
    assert abs(report.numbers["relative_gap"]) < GAP_LIMIT


def test_far_too_strong_regularisation_is_underfitting():
    X, y = well_posed()
    report = diagnose(daskfit.Ridge(alpha=1e5), X, y)
    assert report.verdict == "underfitting", report.rule
    assert report.recommended["value"] < 1e5
    # All coefficients zero: train no better than the mean.
    report = diagnose(daskfit.Lasso(alpha=100.0), X, y, param_range=[1e-3, 1e-1, 10, 100])
    assert report.verdict == "underfitting" and "gains only" in report.rule
    assert report.recommended["value"] == pytest.approx(1e-3)


def test_classifier_strength_is_C_and_smaller_is_stronger():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 50))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    report = diagnose(daskfit.LogisticRegression(C=1e4), X, y, cv=4,
                      param_range=np.geomspace(1e-3, 1e4, 8), train_sizes=(0.5, 1.0))
    assert report.score_name == "accuracy" and report.baseline["strategy"] == "prior"
    assert report.validation_curve["direction"] == -1
    assert report.verdict == "overfitting", report.rule
    assert report.recommended["param_name"] == "C" and report.recommended["value"] < 1e4


def test_poisson_baseline_and_a_pipeline_parameter():
    from sklearn.metrics import d2_tweedie_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = well_posed(n=200)
    counts = np.random.default_rng(2).poisson(np.exp(0.5 + 0.3 * X[:, 0])).astype(float)
    report = diagnose(daskfit.PoissonRegressor(), X, counts, cv=CV, train_sizes=(1.0,),
                      param_range=[0.1, 1.0])
    assert report.score_name == "d2_poisson"
    expected = [d2_tweedie_score(counts[te], np.full(len(te), counts[tr].mean()), power=1)
                for tr, te in CV.split(X)]
    np.testing.assert_allclose(report.baseline["validation_scores"], expected, rtol=1e-12)
    pipe = make_pipeline(StandardScaler(), daskfit.Ridge(alpha=1e4))
    report = diagnose(pipe, X, y, train_sizes=(1.0,))
    assert report.recommended["param_name"] == "ridge__alpha"
    assert report.validation_curve["direction"] == 1
    assert report.verdict == "underfitting" and report.recommended["value"] < 1e4


# ------------------------------------------------------------------ oracles


def test_folds_and_curves_equal_sklearn_on_numpy():
    X, y, _ = make_regression(seed=3, n=120, p=5)
    alphas = np.geomspace(1e-2, 1e4, 7)
    report = diagnose(daskfit.Ridge(alpha=3.0), X, y, cv=CV, param_range=alphas,
                      train_sizes=SIZES, random_state=0)
    ref = sk_cross_validate(sk.Ridge(alpha=3.0), X, y, cv=CV, return_train_score=True)
    np.testing.assert_allclose(report.folds["train"], ref["train_score"], atol=1e-9)
    np.testing.assert_allclose(report.folds["validation"], ref["test_score"], atol=1e-9)
    sizes, lc_train, lc_test = learning_curve(sk.Ridge(alpha=3.0), X, y, cv=CV,
                                              train_sizes=SIZES, shuffle=True, random_state=0)
    np.testing.assert_array_equal(report.learning_curve["train_sizes"], sizes)
    np.testing.assert_allclose(report.learning_curve["train_scores"], lc_train, atol=1e-9)
    np.testing.assert_allclose(report.learning_curve["validation_scores"], lc_test, atol=1e-9)
    vc_train, vc_test = validation_curve(sk.Ridge(), X, y, param_name="alpha",
                                         param_range=alphas, cv=CV)
    np.testing.assert_allclose(report.validation_curve["train_scores"], vc_train, atol=1e-9)
    np.testing.assert_allclose(report.validation_curve["validation_scores"], vc_test,
                               atol=1e-9)
    dummy = sk_cross_validate(DummyRegressor(), X, y, cv=CV)["test_score"]
    np.testing.assert_allclose(report.baseline["validation_scores"], dummy, atol=1e-12)
    best = int(np.argmax(vc_test.mean(axis=1)))
    assert report.recommended["value"] == alphas[best]
    assert report.recommended["validation_score"] == pytest.approx(vc_test[best].mean())


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_lasso_curves_equal_sklearn(path, monkeypatch):
    X, y, _ = make_regression(seed=4, n=120, p=5)
    alphas = [1e-3, 1e-2, 0.1, 1.0]
    tight = {"tol": 1e-12, "max_iter": 100_000}
    assert type(daskfit.Lasso()) in _scores.FAST_PATHS
    if path == "generic":
        monkeypatch.setattr(_scores, "FAST_PATHS", {})
    report = diagnose(daskfit.Lasso(alpha=0.1, **tight), X, y, cv=CV, param_range=alphas,
                      train_sizes=(0.5, 1.0))
    vc_train, vc_test = validation_curve(sk.Lasso(**tight), X, y, param_name="alpha",
                                         param_range=alphas, cv=CV)
    np.testing.assert_allclose(report.validation_curve["train_scores"], vc_train, atol=1e-7)
    np.testing.assert_allclose(report.validation_curve["validation_scores"], vc_test,
                               atol=1e-7)
    _, lc_train, lc_test = learning_curve(sk.Lasso(alpha=0.1, **tight), X, y, cv=CV,
                                          train_sizes=(0.5, 1.0), shuffle=True, random_state=0)
    np.testing.assert_allclose(report.learning_curve["train_scores"], lc_train, atol=1e-7)
    np.testing.assert_allclose(report.learning_curve["validation_scores"], lc_test, atol=1e-7)


def test_elasticnet_fast_path_equals_generic_path():
    X, y, w = make_regression(seed=9, n=120, p=5)
    est = daskfit.ElasticNet(alpha=0.05, l1_ratio=0.3, tol=1e-12, max_iter=100_000)
    kwargs = dict(cv=3, sample_weight=w, param_range=[1e-3, 0.05, 1.0], train_sizes=(0.5, 1.0))
    fast = diagnose(est, X, y, **kwargs)
    from daskfit.overfitting._scores import _generic

    splits = [(tr, te) for tr, te in KFold(3, shuffle=True, random_state=0).split(X)]
    train, test = _generic(est, "alpha", [1e-3, 0.05, 1.0], X, y, w, splits, None)
    np.testing.assert_allclose(fast.validation_curve["train_scores"], train, atol=1e-8)
    np.testing.assert_allclose(fast.validation_curve["validation_scores"], test, atol=1e-8)


def test_ridge_fast_path_equals_generic_path_with_weights_and_groups(monkeypatch):
    X, y, w = make_regression(seed=5, n=150, p=5)
    groups = np.arange(150) % 10
    from sklearn.model_selection import GroupKFold

    kwargs = dict(cv=GroupKFold(5), sample_weight=w, groups=groups,
                  param_range=[0.1, 10.0, 1000.0], train_sizes=(0.5, 1.0))
    fast = diagnose(daskfit.Ridge(), X, y, **kwargs)
    monkeypatch.setattr(_scores, "FAST_PATHS", {})
    generic = diagnose(daskfit.Ridge(), X, y, **kwargs)
    for part in ("folds", "learning_curve", "validation_curve"):
        for key, value in getattr(fast, part).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(value, getattr(generic, part)[key], atol=1e-8,
                                           err_msg=f"{part}[{key}]")
    assert fast.verdict == generic.verdict and fast.recommended == pytest.approx(
        generic.recommended)


def test_ridgecv_train_scores_equal_grid_search():
    X, y, _ = make_regression(seed=6)
    alphas = [0.01, 1.0, 100.0]
    ref = GridSearchCV(sk.Ridge(), {"alpha": alphas}, cv=CV, return_train_score=True).fit(X, y)
    ours = RidgeCV(alphas, cv=CV, return_train_score=True).fit(X, y)
    for key in [f"split{k}_train_score" for k in range(5)] + ["mean_train_score",
                                                              "std_train_score"]:
        np.testing.assert_allclose(ours.cv_results_[key], ref.cv_results_[key], atol=1e-9)
    assert "mean_train_score" not in RidgeCV(alphas, cv=CV).fit(X, y).cv_results_


# ------------------------------------------------------------------ Dask, cost


def test_ridge_diagnosis_on_dask_is_one_pass_and_equals_numpy(client, count_reductions):
    X, y = planted_overfit(seed=2, n=90, p=30)
    Xd, yd, _ = as_kind("dask", X, y, None, (20, 30, 0, 40))
    on_dask = diagnose(daskfit.LinearRegression(), Xd, yd)
    # Per-fold scores, the learning curve and the validation curve: ONE pass
    # (before: one pass each).
    assert count_reductions == ["cv-moments"]
    count_reductions.clear()
    lasso = diagnose(daskfit.Lasso(alpha=0.1), Xd, yd, train_sizes=(0.5, 1.0))
    assert count_reductions == ["cv-moments"] and lasso.verdict in ("overfitting", "fine")
    local = diagnose(daskfit.LinearRegression(), X, y)
    assert on_dask.verdict == local.verdict == "overfitting"
    np.testing.assert_allclose(on_dask.validation_curve["validation_scores"],
                               local.validation_curve["validation_scores"], atol=1e-8)
    np.testing.assert_allclose(on_dask.learning_curve["train_scores"],
                               local.learning_curve["train_scores"], atol=1e-8)


def test_generic_path_on_a_dask_dataframe_with_weights(client, monkeypatch):
    X, y, w = make_regression(seed=8, n=150, p=5)
    Xk, yk, wk = as_kind("ddf", X, y, w, CHUNKINGS["7"][:2] + (64,))
    # Every generic fit is three round trips to the cluster: keep them few (8 fits).
    kwargs = dict(cv=2, param_range=[0.01, 1.0], train_sizes=(1.0,))
    tight = {"tol": 1e-12, "max_iter": 100_000}
    local = diagnose(daskfit.Lasso(alpha=0.1, **tight), X, y, sample_weight=w, **kwargs)
    # The frame's row counts, known after the pass over y, are not counted again.
    from daskfit.overfitting._folds import known_lengths

    Xa, ya = known_lengths((43, 43, 64), Xk, yk)
    assert Xa.chunks == ((43, 43, 64), (5,)) and ya.chunks == ((43, 43, 64),)
    monkeypatch.setattr(_scores, "FAST_PATHS", {})
    on_dask = diagnose(daskfit.Lasso(alpha=0.1, **tight), Xk, yk, sample_weight=wk, **kwargs)
    for part in ("folds", "learning_curve", "validation_curve"):
        for key, value in getattr(local, part).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(getattr(on_dask, part)[key], value, atol=1e-7)


# ------------------------------------------------------------------ output


def test_to_dict_round_trips_through_json():
    X, y = planted_overfit()
    report = diagnose(daskfit.Ridge(alpha=0.01), X, y, train_sizes=(0.5, 1.0))
    data = report.to_dict()
    again = json.loads(json.dumps(data, allow_nan=False))
    assert again == data
    assert again["verdict"] == report.verdict and again["rule"] == report.rule
    assert again["recommended"] == report.recommended
    assert set(again["recommended"]) == {"param_name", "value", "validation_score"}
    np.testing.assert_array_equal(again["folds"]["validation"], report.folds["validation"])
    np.testing.assert_array_equal(again["validation_curve"]["validation_scores"],
                                  report.validation_curve["validation_scores"])
    assert again["validation_curve"]["param_range"] == list(report.validation_curve[
        "param_range"])
    assert json.loads(report.to_json()) == data


def test_to_dict_turns_non_finite_scores_into_null():
    from daskfit.overfitting._report import _plain

    assert _plain({"a": np.array([1.0, np.nan, np.inf]), "b": np.int64(3)}) == \
        {"a": [1.0, None, None], "b": 3}


def test_to_html_is_self_contained_and_atomic(tmp_path, monkeypatch):
    X, y = planted_overfit()
    report = diagnose(daskfit.LinearRegression(), X, y, train_sizes=(0.5, 1.0))
    path = tmp_path / "report.html"
    assert report.to_html(path) == str(path)
    assert os.listdir(tmp_path) == ["report.html"]  # no temporary file left
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "overfitting" in page
    marker = "data:image/png;base64,"
    assert page.count(marker) == 1
    encoded = page.split(marker, 1)[1].split("'", 1)[0]
    assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")
    assert "src='http" not in page and "<script" not in page
    # A failed write leaves the old page and no temporary file.
    before = path.read_text()

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        report.to_html(path)
    assert os.listdir(tmp_path) == ["report.html"] and path.read_text() == before


def test_plot_draws_the_report_numbers():
    from matplotlib.figure import Figure

    X, y = well_posed()
    report = diagnose(daskfit.Ridge(), X, y, param_range=[0.1, 1.0, 10.0],
                      train_sizes=(0.5, 1.0))
    fig = report.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    folds, learn, valid = fig.axes
    heights = [p.get_height() for p in folds.patches]
    np.testing.assert_allclose(heights, np.concatenate([report.folds["train"],
                                                        report.folds["validation"]]))
    np.testing.assert_allclose(learn.lines[1].get_ydata(),
                               report.learning_curve["validation_scores"].mean(axis=1))
    np.testing.assert_allclose(valid.lines[1].get_xdata(), [0.1, 1.0, 10.0])
    np.testing.assert_allclose(valid.lines[1].get_ydata(),
                               report.validation_curve["validation_scores"].mean(axis=1))
    assert valid.get_xscale() == "log"
    html = report._repr_html_()
    assert report.verdict in html and "data:image/png;base64," in html


# ------------------------------------------------------------------ bad input


def test_bad_input_gives_clear_errors():
    X, y = well_posed(n=60)
    with pytest.raises(ValueError, match=r"param_name='strength' is not a parameter of Ridge"):
        diagnose(daskfit.Ridge(), X, y, param_name="strength")
    for cv in (1, True, "five", 2.5):
        with pytest.raises(ValueError, match="cv must be an int >= 2"):
            diagnose(daskfit.Ridge(), X, y, cv=cv)
    with pytest.raises(ValueError, match="cv=100 folds need at least 100 samples"):
        diagnose(daskfit.Ridge(), X, y, cv=100)
    with pytest.raises(ValueError, match=r"train_sizes given as fractions must lie in \(0, 1\]"):
        diagnose(daskfit.Ridge(), X, y, train_sizes=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"train_sizes given as counts must lie in \[1, 48\]"):
        diagnose(daskfit.Ridge(), X, y, train_sizes=(10, 100))
    with pytest.raises(ValueError, match="param_range must hold finite values >= 0"):
        diagnose(daskfit.Ridge(), X, y, param_range=[-1.0, 1.0])
    with pytest.raises(ValueError, match="diagnose needs one score"):
        diagnose(daskfit.Ridge(), X, y, scoring=["r2", "neg_mean_squared_error"])
    with pytest.raises(ValueError, match="could not find a regularisation parameter"):
        diagnose(DummyRegressor(), X, y)
    with pytest.raises(ValueError, match="requires y"):
        diagnose(daskfit.Ridge(), X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        diagnose(daskfit.Ridge(), X, y, sample_weight=np.ones(10))
    with pytest.raises(TypeError, match="scikit-learn style estimator"):
        diagnose("Ridge", X, y)


def test_logistic_fast_path_equals_generic_path():
    """LogisticRegression along C: every split's model advancing together gives the
    scores of fitting each split and C separately."""
    from daskfit.overfitting._scores import _generic, _logistic_fast_path

    rng = np.random.default_rng(5)
    X = rng.normal(size=(240, 6))
    y = (X[:, 0] - X[:, 1] + rng.logistic(size=240) > 0).astype(int)
    w = rng.uniform(0.5, 2.0, size=240)
    splits = list(KFold(4, shuffle=True, random_state=0).split(X))
    est = daskfit.LogisticRegression(tol=1e-10)
    Cs = [1e-3, 0.1, 10.0]
    for scoring in (None, "neg_log_loss"):
        fast = _logistic_fast_path(est, "C", Cs, X, y, w, splits, scoring)
        slow = _generic(est, "C", Cs, X, y, w, splits, scoring)
        np.testing.assert_allclose(fast[0], slow[0], atol=1e-7)
        np.testing.assert_allclose(fast[1], slow[1], atol=1e-7)
    assert _logistic_fast_path(est, "C", Cs, X, y, w, splits, "roc_auc") is None


def test_fold_membership_never_travels_in_the_graph(client, count_reductions):
    """No graph over 1 MiB, whatever the row count: seeded folds and the learning
    curve's subsets are remade on the workers, not shipped as row numbers.

    Distributed's large-graph warning, at 256 KiB (a quarter of the 1 MiB
    limit) and raised as an error, is the measure (before: the learning curve
    of these 100,000 rows sent 1 MiB, 10 bytes per row; cross-validation
    1 byte per row).
    """
    import dask
    import warnings

    n = 100_000   # made on the workers: only the folds could make the graph large
    rng = da.random.default_rng(0)
    Xd = rng.normal(size=(n, 2), chunks=(25_000, 2))
    yd = Xd @ np.array([1.0, -2.0]) + rng.normal(size=n, chunks=25_000)
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "256KiB"}), \
            warnings.catch_warnings():
        warnings.filterwarnings("error", message="Sending large graph")
        report = diagnose(daskfit.Ridge(alpha=1.0), Xd, yd, cv=5, param_range=[0.1, 10.0],
                          train_sizes=(0.5, 1.0))
        ridge_cv = RidgeCV(alphas=[0.1, 10.0], cv=KFold(5, shuffle=True, random_state=3))
        ridge_cv.fit(Xd, yd)
    # ONE pass for the whole diagnosis (per-fold scores, learning curve and
    # validation curve; before: three), one for RidgeCV.
    assert count_reductions.count("cv-moments") == 2
    # The same numbers as scikit-learn on the same folds and subsets.
    X, y = (np.asarray(v) for v in dask.compute(Xd[:10_000], yd[:10_000]))
    remote = diagnose(daskfit.Ridge(alpha=1.0), da.from_array(X, chunks=(2_500, 2)),
                      da.from_array(y, chunks=2_500), cv=5, param_range=[0.1, 10.0],
                      train_sizes=(0.5, 1.0))
    folds = KFold(5, shuffle=True, random_state=0)
    _, lc_train, lc_test = learning_curve(sk.Ridge(alpha=1.0), X, y, cv=folds,
                                          train_sizes=remote.learning_curve["train_sizes"],
                                          shuffle=True, random_state=0)
    np.testing.assert_allclose(remote.learning_curve["train_scores"], lc_train, rtol=1e-9)
    np.testing.assert_allclose(remote.learning_curve["validation_scores"], lc_test, rtol=1e-9)
    ref = sk_cross_validate(sk.Ridge(alpha=1.0), X, y, cv=folds, return_train_score=True)
    np.testing.assert_allclose(remote.folds["validation"], ref["test_score"], rtol=1e-9)
    np.testing.assert_allclose(remote.folds["train"], ref["train_score"], rtol=1e-9)
    assert report.verdict in ("fine", "underfitting", "overfitting")
    assert ridge_cv.alpha_ in (0.1, 10.0)


def test_fold_membership_never_travels_in_the_graph_on_other_paths(client):
    """Folds that cannot be remade from a seed (a RandomState, group labels) and
    cross-validation without a one-pass path (row selection per fold) reach the
    workers by scatter: no graph over 256 KiB for 100,000 rows (before: the
    codes, 5 bytes per row, or the row numbers, 8 bytes per row and split)."""
    import dask
    import warnings

    from sklearn.model_selection import GroupKFold

    from daskfit.model_selection import cross_validate

    n = 100_000
    rng = da.random.default_rng(1)
    Xd = rng.normal(size=(n, 2), chunks=(25_000, 2))
    yd = Xd @ np.array([0.3, -0.2]) + rng.normal(size=n, chunks=25_000)
    groups = np.arange(n) % 7
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "256KiB"}), \
            warnings.catch_warnings():
        warnings.filterwarnings("error", message="Sending large graph")
        seeded = diagnose(daskfit.Ridge(), Xd, yd, param_range=[0.1, 10.0],
                          train_sizes=(0.5, 1.0),
                          cv=KFold(5, shuffle=True, random_state=np.random.RandomState(0)))
        grouped = diagnose(daskfit.Ridge(), Xd, yd, cv=GroupKFold(5), groups=groups,
                           param_range=[0.1, 10.0], train_sizes=(0.5, 1.0))
        poisson = cross_validate(daskfit.PoissonRegressor(max_iter=2), Xd, da.exp(yd),
                                 cv=KFold(2, shuffle=True, random_state=0))
    # The same folds as scikit-learn's (the oracle: its cross_validate in memory).
    X, y = (np.asarray(v) for v in dask.compute(Xd, yd))
    ref = sk_cross_validate(sk.Ridge(), X, y, cv=GroupKFold(5), groups=groups)
    np.testing.assert_allclose(grouped.folds["validation"], ref["test_score"], rtol=1e-9)
    assert np.isfinite(seeded.folds["validation"]).all()
    assert np.isfinite(poisson["test_score"]).all()
