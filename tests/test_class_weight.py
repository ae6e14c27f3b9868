"""``class_weight`` (None, "balanced", a dict) on LogisticRegression and LogisticRegressionCV.

scikit-learn is the oracle: each row's sample weight is multiplied by its
class's weight, the penalty scale uses the multiplied weights, and
LogisticRegressionCV computes "balanced" once on the whole ``y`` and scores
its folds by ``sample_weight`` alone. "balanced" costs no pass of its own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.linear_model as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold

import daskfit
from daskfit._data import as_chunked
from daskfit.engine.rows import Engine
from daskfit.kernels.holdout import holdout_mask, offset_runs
from daskfit.model.losses import LOSSES
from daskfit.model_selection import LogisticRegressionCV
from daskfit.objective import Objective
from daskfit.planner import NO_CLASS_WEIGHT, plan_for

from conftest import CHUNKINGS, as_kind, make_binary, make_multiclass

TIGHT = {"tol": 1e-10, "max_iter": 1000}
PROBLEMS = {"binary": make_binary, "multinomial": make_multiclass}


def _weights(name, y):
    """None, "balanced", or a dict that omits a class (it gets weight 1)."""
    classes = np.unique(y)
    return {"none": None, "balanced": "balanced",
            "dict": {classes[0]: 3.0, classes[-1]: 0.5}}[name]


def _reference(X, y, sw, class_weight):
    # Newton-Cholesky: scikit-learn's own optimum to ~1e-11, so 1e-6 tests ours.
    return sk.LogisticRegression(class_weight=class_weight, solver="newton-cholesky",
                                 tol=1e-12, max_iter=1000).fit(X, y, sample_weight=sw)


def _assert_close(ours, ref, rtol=1e-6):
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=0,
                               atol=rtol * max(scale, np.abs(ref.intercept_).max()))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("cw", ["none", "balanced", "dict"])
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_matches_scikit_learn(problem, cw, weighted):
    X, y, w = PROBLEMS[problem]()
    sw = w if weighted else None
    class_weight = _weights(cw, y)
    ours = daskfit.LogisticRegression(class_weight=class_weight, **TIGHT).fit(
        X, y, sample_weight=sw)
    _assert_close(ours, _reference(X, y, sw, class_weight))


@pytest.mark.parametrize("kind,problem,solver,cw", [("dask", "binary", "newton", "balanced"),
                                                    ("ddf", "binary", "newton", "dict"),
                                                    ("ddf", "multinomial", "newton", "balanced"),
                                                    ("dask", "multinomial", "lbfgs", "dict")])
def test_dask_input_with_uneven_and_empty_chunks(kind, problem, solver, cw):
    """Dask arrays and frames, chunks of 0 to 120 rows; also a solver without Hessian."""
    X, y, w = PROBLEMS[problem](seed=11)
    class_weight = _weights(cw, y)
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS["uneven+empty"])
    ours = daskfit.LogisticRegression(class_weight=class_weight, solver=solver,
                                      **TIGHT).fit(Xk, yk, sample_weight=wk)
    _assert_close(ours, _reference(X, y, w, class_weight))


def test_balanced_costs_no_extra_pass():
    """The same passes as the unweighted fit, and as a dict of the same weights."""
    X, y, w = make_multiclass(seed=12)
    Xd, yd, wd = as_kind("dask", X, y, w, CHUNKINGS["7"])
    fits = {}
    counts = np.array([w[y == c].sum() for c in np.unique(y)])
    same = dict(zip(np.unique(y), counts.sum() / (len(counts) * counts)))
    for name, class_weight in (("none", None), ("balanced", "balanced"), ("dict", same)):
        fits[name] = daskfit.LogisticRegression(class_weight=class_weight, solver="newton",
                                                **TIGHT).fit(Xd, yd, sample_weight=wd)
    balanced = fits["balanced"]
    assert [label for label, _ in balanced.pass_log_] == \
        [label for label, _ in fits["dict"].pass_log_]
    np.testing.assert_array_equal(balanced.coef_, fits["dict"].coef_)
    # Newton: the first (label) pass, then one pass per iteration, weighted or not.
    for fit in fits.values():
        assert fit.n_passes_ == fit.n_iter_[0] + 1
        assert [label for label, _ in fit.pass_log_].count("labels") == 1


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_hessian_at_zero_from_the_first_pass_is_exact(problem):
    """The first pass's per-class grams give the class-weighted Hessian at zero."""
    X, y, w = PROBLEMS[problem](seed=13)
    Xd, yd, wd = as_kind("dask", X, y, w, CHUNKINGS["7"])
    est = daskfit.LogisticRegression()

    def objective(class_weight, needs):
        data = as_chunked(est, Xd, yd, wd, reset=True, y_numeric=False)
        engine = Engine(data, split_every=8, persist=False)
        return Objective(engine, LOSSES["logistic"], est._penalty_rule(), True,
                         class_weight=class_weight).start(needs)

    cached = objective("balanced", "hess")
    passes = cached.passes
    zero = np.zeros(cached.n_params)
    f, g, H = cached.value_grad_hess(zero)
    assert cached.passes == passes  # served by the first pass
    # The same weights as a dict, Hessian from a pass of its own at zero.
    same = dict(zip(cached.classes.tolist(), cached.class_weights))
    fresh = objective(same, "grad")
    f2, g2, H2 = fresh.value_grad_hess(zero)
    assert fresh.passes == 2
    np.testing.assert_allclose(f, f2, rtol=1e-12)
    np.testing.assert_allclose(g, g2, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(H, H2, rtol=1e-10, atol=1e-13)


def test_early_stopping_scores_held_out_rows_by_sample_weight_alone():
    """Class weights enter the fit, not the validation score (scikit-learn's SGD
    scores its validation split by ``sample_weight`` alone)."""
    X, y, w = make_binary(seed=14)
    chunks = CHUNKINGS["7"]
    Xd, yd, wd = as_kind("dask", X, y, w, chunks)
    fit = daskfit.LogisticRegression(class_weight={1: 5.0}, early_stopping=True,
                                      validation_fraction=0.3, random_state=0,
                                      solver="lbfgs").fit(Xd, yd, sample_weight=wd)
    seed, runs = fit.validation_split_["seed"], offset_runs(chunks)
    held_out = np.concatenate([holdout_mask(seed, 0.3, i, n, runs)
                               for i, n in enumerate(chunks)])
    correct = fit.predict(X[held_out]) == y[held_out]
    raw = np.average(correct, weights=w[held_out])
    class_weighted = np.average(correct, weights=w[held_out] * np.where(y[held_out], 5, 1))
    assert raw != class_weighted
    assert fit.best_validation_score_ == pytest.approx(raw, rel=1e-12)
    # "balanced" and the validation weight use the rows given to fit (all of them).
    assert fit.validation_split_["validation_weight"] == pytest.approx(w[held_out].sum())


def _sk_cv(X, y, folds, class_weight, sample_weight, Cs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, FutureWarning))
        return sk.LogisticRegressionCV(
            Cs=Cs, cv=folds, tol=1e-12, max_iter=1000, l1_ratios=(0,), scoring=None,
            solver="newton-cholesky", class_weight=class_weight,
            use_legacy_attributes=False).fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("problem,cw,kind", [("binary", "balanced", "numpy"),
                                             ("multinomial", "dict", "numpy"),
                                             ("multinomial", "balanced", "dask")])
def test_logistic_regression_cv_matches_scikit_learn(problem, cw, kind):
    X, y, w = PROBLEMS[problem](seed=6)
    Cs = np.logspace(-3, 2, 6)
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(X, y))
    class_weight = _weights(cw, y)
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKINGS["uneven+empty"])
    ours = LogisticRegressionCV(Cs=Cs, cv=folds, tol=1e-10, class_weight=class_weight).fit(
        Xk, yk, sample_weight=wk)
    ref = _sk_cv(X, y, folds, class_weight, w, Cs)
    np.testing.assert_allclose(ours.scores_, ref.scores_, rtol=0, atol=1e-9)
    assert ours.C_ == ref.C_
    _assert_close(ours, ref)
    np.testing.assert_allclose(ours.coefs_paths_, ref.coefs_paths_, rtol=0, atol=1e-6)


def test_bad_dict_keys_raise_scikit_learns_errors():
    X, y, _ = make_multiclass(seed=15)
    bad = {"ant": 2.0, "zebra": 1.0}  # a key that is not a class, a class left out
    with pytest.raises(ValueError) as ref:
        sk.LogisticRegression(class_weight=bad).fit(X, y)
    with pytest.raises(ValueError) as ours:
        daskfit.LogisticRegression(class_weight=bad).fit(X, y)
    assert str(ours.value) == str(ref.value)
    with pytest.raises(ValueError) as ref_cv:
        sk.LogisticRegressionCV(class_weight=bad, Cs=2, cv=3, l1_ratios=(0,), scoring=None,
                                use_legacy_attributes=False).fit(X, y)
    with pytest.raises(ValueError) as ours_cv:
        LogisticRegressionCV(class_weight=bad, Cs=2, cv=3).fit(X, y)
    assert str(ours_cv.value) == str(ref_cv.value)


@pytest.mark.parametrize("estimator", [daskfit.LogisticRegression, LogisticRegressionCV])
@pytest.mark.parametrize("value", ["balance", [1.0, 2.0], 3.0])
def test_bad_class_weight_values(estimator, value):
    X, y, _ = make_binary(seed=16, n=40)
    with pytest.raises(ValueError, match="class_weight"):
        estimator(class_weight=value).fit(X, y)


def test_negative_or_zero_total_weights_are_refused():
    X, y, w = make_binary(seed=17, n=60)
    with pytest.raises(ValueError, match="class_weight must give every class"):
        daskfit.LogisticRegression(class_weight={0: -1.0}).fit(X, y)
    with pytest.raises(ValueError, match="class_weight gives weight 0 to every class"):
        daskfit.LogisticRegression(class_weight={0: 0.0, 1: 0.0}).fit(X, y)
    w = np.where(y == 1, 0.0, w)
    with pytest.raises(ValueError, match="balanced.*have none"):
        daskfit.LogisticRegression(class_weight="balanced").fit(X, y, sample_weight=w)


@pytest.mark.parametrize("solver", sorted(NO_CLASS_WEIGHT))
def test_solvers_that_cannot_weigh_classes_are_refused_by_name(solver):
    X, y, _ = make_binary(seed=18, n=40)
    with pytest.raises(ValueError, match=f"class_weight.*solver='{solver}'.*newton"):
        daskfit.LogisticRegression(class_weight="balanced", solver=solver).fit(X, y)


def test_the_planner_never_chooses_them(monkeypatch):
    """Many workers (parameter averaging) or wide column chunks (model parallel)."""
    import daskfit.planner as planner

    monkeypatch.setattr(planner, "cluster_workers", lambda client: list(range(64)))
    monkeypatch.setattr(planner, "memory_available", lambda client: 2.0**40)
    common = dict(n_rows=10**6, row_chunks=100, itemsize=8, is_lazy=True,
                  loss_name="logistic", penalty_kind="l2", n_outputs=1, fit_intercept=True,
                  client=object(), persist=False)
    for shape in ({"n_features": 50, "col_chunks": 1},
                  {"n_features": 20_000, "col_chunks": 10, "max_block_columns": 2000}):
        assert plan_for(**common, **shape).solver in NO_CLASS_WEIGHT
        assert plan_for(**common, **shape, class_weight=True).solver not in NO_CLASS_WEIGHT
