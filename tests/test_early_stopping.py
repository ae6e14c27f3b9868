"""Early stopping: the held-out rows, the stopping rule, and what it costs.

The validation rows are a pure function of (seed, row) (daskfit.kernels.holdout), so
a test can recompute them and hand the training rows to scikit-learn: an
early-stopping objective that is never stopped must reach scikit-learn's
optimum on exactly those rows, and the returned model's score on the
held-out rows must be ``best_validation_score_``. The rule itself is
replayed from ``validation_scores_``; passes are counted by the engine.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.linear_model as sk
from sklearn.exceptions import ConvergenceWarning

import daskfit
from daskfit.kernels.holdout import holdout_mask, offset_runs

from conftest import CHUNKINGS, as_kind, make_binary, make_counts, make_multiclass, make_regression

FRACTION = 0.2


def overfitting_problem(seed=0, n=300, p=120):
    """Few rows per feature, 5 informative features, much noise: the training
    optimum fits noise, so the validation score peaks early and then falls."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    coef = np.zeros(p)
    coef[:5] = 1.0
    y = X @ coef + rng.normal(scale=2.0, size=n)
    return X, y


def validation_rows(est, chunks):
    """The validation mask the estimator used, recomputed from its seed."""
    split = est.validation_split_
    runs = offset_runs(chunks) if split["keyed_by"] == "global row index" else None
    return np.concatenate([holdout_mask(split["seed"], est.validation_fraction, i, n, runs)
                           for i, n in enumerate(chunks)])


def replay_rule(scores, tol, n_iter_no_change):
    """scikit-learn's SGD/MLP rule, written out: the iteration at which it stops."""
    best, count = -np.inf, 0
    for iteration, score in enumerate(scores, start=1):
        count = count + 1 if score < best + tol else 0
        best = max(best, score)
        if count >= n_iter_no_change:
            return iteration
    return None


# ------------------------------------------------------------ the split


def test_mask_is_a_function_of_the_global_row_and_seed():
    n = 20_000
    whole = holdout_mask(3, FRACTION, 0, n, offset_runs((n,)))
    for chunks in [(7000, 7000, 6000), (0, 5, 9995, 0, 10_000), (100,) * 200]:
        runs = offset_runs(chunks)
        parts = [holdout_mask(3, FRACTION, i, c, runs) for i, c in enumerate(chunks)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    # About FRACTION of the rows (binomial: 4 standard deviations), and a new seed
    # gives a nearly independent split.
    sd = np.sqrt(n * FRACTION * (1 - FRACTION))
    assert abs(whole.sum() - n * FRACTION) < 4 * sd
    other = holdout_mask(4, FRACTION, 0, n, offset_runs((n,)))
    assert abs((whole & other).sum() - n * FRACTION**2) < 4 * np.sqrt(n * FRACTION**2)
    # Unknown chunk sizes: keyed by (chunk, position), the same in every call.
    np.testing.assert_array_equal(holdout_mask(3, FRACTION, 5, 1000, None),
                                  holdout_mask(3, FRACTION, 5, 1000, None))
    assert offset_runs((np.nan, 3)) is None


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("kind,chunks", [
    ("numpy", None), ("dask", CHUNKINGS["7"]), ("dask", CHUNKINGS["uneven+empty"]),
    ("ddf", CHUNKINGS["7"]),
])
def test_training_rows_are_exactly_the_complement(kind, chunks):
    """Never stopped, the fit is scikit-learn's Ridge on the training rows only,
    and the returned model scores best_validation_score_ on the held-out rows."""
    X, y, w = make_regression()
    Xk, yk, wk = as_kind(kind, X, y, w, chunks)
    est = daskfit.Ridge(alpha=3.0, solver="lbfgs", tol=1e-10, early_stopping=True,
                        validation_fraction=FRACTION, n_iter_no_change=10_000,
                        random_state=12).fit(Xk, yk, sample_weight=wk)
    mask = validation_rows(est, chunks or (len(X),))
    split = est.validation_split_
    assert split["keyed_by"] == ("chunk and position" if kind == "ddf" else "global row index")
    assert split["validation_samples"] == mask.sum() and split["train_samples"] == (~mask).sum()
    assert split["train_weight"] == pytest.approx(w[~mask].sum(), rel=1e-12)
    assert split["validation_weight"] == pytest.approx(w[mask].sum(), rel=1e-12)
    assert 0.1 < mask.mean() < 0.3
    ref = sk.Ridge(alpha=3.0, tol=1e-12).fit(X[~mask], y[~mask], sample_weight=w[~mask])
    final = est.fit_result_.theta
    np.testing.assert_allclose(final[:-1], ref.coef_, rtol=1e-6)
    assert final[-1] == pytest.approx(ref.intercept_, rel=1e-6)
    assert est.best_validation_score_ == pytest.approx(
        est.score(X[mask], y[mask], sample_weight=w[mask]), rel=1e-10)
    assert est.best_validation_score_ == est.validation_scores_.max()


@pytest.mark.parametrize("make_est,make_data", [
    (lambda: daskfit.LogisticRegression(C=0.5), make_binary),
    (lambda: daskfit.LogisticRegression(C=0.5), make_multiclass),
    (lambda: daskfit.PoissonRegressor(alpha=0.1), make_counts),
], ids=["binary", "multinomial", "poisson"])
def test_validation_score_is_the_estimators_score(make_est, make_data):
    """Accuracy and D^2 from the in-pass statistics equal ``score`` on the rows."""
    X, y, w = make_data()
    est = make_est().set_params(early_stopping=True, validation_fraction=FRACTION,
                                random_state=5, tol=1e-8, n_iter_no_change=1000)
    est.fit(X, y, sample_weight=w)
    mask = validation_rows(est, est.chunk_rows_)
    assert est.best_validation_score_ == pytest.approx(
        est.score(X[mask], y[mask], sample_weight=w[mask]), rel=1e-10)
    assert est.validation_split_["train_weight"] == pytest.approx(w[~mask].sum(), rel=1e-12)


def test_split_does_not_depend_on_the_chunking():
    X, y, _ = make_regression()
    fits = []
    for chunks in CHUNKINGS.values():
        Xk, yk, _ = as_kind("dask", X, y, None, chunks)
        fits.append(daskfit.Ridge(early_stopping=True, random_state=1, tol=1e-10,
                                  solver="newton").fit(Xk, yk))
    for est in fits[1:]:
        assert est.validation_split_ == fits[0].validation_split_
        np.testing.assert_allclose(est.coef_, fits[0].coef_, rtol=1e-10)
        np.testing.assert_allclose(est.validation_scores_, fits[0].validation_scores_,
                                   rtol=1e-10)


def test_random_state_int_repeats_and_none_varies():
    X, y, _ = make_regression()
    a = daskfit.Ridge(early_stopping=True, random_state=7, solver="newton").fit(X, y)
    b = daskfit.Ridge(early_stopping=True, random_state=7, solver="newton").fit(X, y)
    assert a.validation_split_ == b.validation_split_
    np.testing.assert_array_equal(a.coef_, b.coef_)
    seeds = {daskfit.Ridge(early_stopping=True, solver="newton").fit(X, y)
             .validation_split_["seed"] for _ in range(3)}
    assert len(seeds) > 1


# ----------------------------------------------------------- the rule


@pytest.mark.parametrize("make", [
    lambda: daskfit.Ridge(alpha=1e-6),                                  # auto: lbfgs
    lambda: daskfit.LinearRegression(solver="gd"),
    lambda: daskfit.ElasticNet(alpha=1e-4, l1_ratio=0.5),               # auto: proximal
], ids=["ridge-lbfgs", "ols-gd", "enet-proximal"])
def test_stops_earlier_than_a_full_fit_by_the_rule(make):
    X, y = overfitting_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopping early is not a failure
        est = make().set_params(early_stopping=True, random_state=0, max_iter=500).fit(X, y)
    # The same split, never stopped: the training optimum.
    full = make().set_params(early_stopping=True, random_state=0, max_iter=500,
                             n_iter_no_change=10_000).fit(X, y)
    assert est.fit_result_.message.startswith("early stopping")
    assert est.n_iter_ < full.n_iter_
    np.testing.assert_array_equal(full.validation_scores_[:est.n_iter_], est.validation_scores_)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_
    assert replay_rule(scores, est.tol, est.n_iter_no_change) == est.n_iter_
    # The last n_iter_no_change iterations did not beat the best before them by tol.
    before = scores[:-est.n_iter_no_change].max()
    assert np.all(scores[-est.n_iter_no_change:] < before + est.tol)
    # The returned coefficients are the best iterate's, and they generalise
    # better than the training optimum on the held-out rows.
    best = int(np.argmax(scores)) + 1
    assert est.validation_split_["best_iteration"] == best
    mask = validation_rows(est, est.chunk_rows_)
    assert est.score(X[mask], y[mask]) == pytest.approx(est.best_validation_score_, rel=1e-10)
    assert est.best_validation_score_ > full.validation_scores_[-1] + 0.05


def test_n_iter_no_change_delays_the_stop():
    X, y = overfitting_problem()
    runs = [daskfit.Ridge(alpha=1e-6, early_stopping=True, random_state=0, n_iter_no_change=k,
                          max_iter=500).fit(X, y) for k in (2, 6)]
    assert runs[0].n_iter_ < runs[1].n_iter_
    for est in runs:
        assert replay_rule(est.validation_scores_, est.tol, est.n_iter_no_change) == est.n_iter_


def test_classifier_stops_on_accuracy():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 60))
    y = (X[:, 0] + rng.normal(scale=1.5, size=200) > 0).astype(int)
    est = daskfit.LogisticRegression(C=1e4, early_stopping=True, random_state=2,
                                     n_iter_no_change=3, max_iter=500).fit(X, y)
    assert est.solver_ == "lbfgs" and est.fit_result_.message.startswith("early stopping")
    assert replay_rule(est.validation_scores_, est.tol, 3) == est.n_iter_[0]
    mask = validation_rows(est, est.chunk_rows_)
    assert est.score(X[mask], y[mask]) == pytest.approx(est.best_validation_score_)


# ----------------------------------------------------------- the cost


@pytest.mark.parametrize("problem,make", [
    (make_binary, lambda: daskfit.LogisticRegression(solver="newton", tol=1e-10)),
    (make_multiclass, lambda: daskfit.LogisticRegression(solver="newton", tol=1e-10)),
    (make_counts, lambda: daskfit.PoissonRegressor(solver="newton", tol=1e-10)),
], ids=["binary", "multinomial", "poisson"])
def test_validation_costs_no_pass(problem, make, count_reductions):
    X, y, w = problem()
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKINGS["7"])
    plain = make().fit(Xk, yk, sample_weight=wk)
    plain_labels = list(count_reductions)
    count_reductions.clear()
    est = make().set_params(early_stopping=True, n_iter_no_change=1000,
                            random_state=0).fit(Xk, yk, sample_weight=wk)
    assert all(h["step"] == 1.0 for h in est.fit_result_.history[1:])
    n_iter = int(np.ravel(est.n_iter_)[0])
    # The first pass and one per iteration, exactly as without early stopping.
    assert est.n_passes_ == n_iter + 1 == len(count_reductions)
    assert set(count_reductions) == set(plain_labels)
    assert len(est.validation_scores_) == n_iter
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None


def test_early_stopped_lbfgs_makes_one_pass_per_evaluation(count_reductions):
    X, y = overfitting_problem()
    est = daskfit.Ridge(alpha=1e-6, early_stopping=True, random_state=0).fit(X, y)
    assert est.fit_result_.message.startswith("early stopping")
    # Only the solver's own (loss, gradient) passes: no pass labelled for a
    # separate validation evaluation, and the history accounts for all of them.
    assert set(count_reductions) == {"gradient"}
    assert est.n_passes_ == len(count_reductions) == est.fit_result_.history[-1]["passes"]
    assert est.n_passes_ <= 2 * est.n_iter_ + 1


def test_off_by_default_and_then_unchanged():
    X, y, w = make_counts()
    default = daskfit.PoissonRegressor().fit(X, y, sample_weight=w)
    other = daskfit.PoissonRegressor(validation_fraction=0.5, n_iter_no_change=1,
                                     random_state=3).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(default.coef_, other.coef_)
    assert default.n_passes_ == other.n_passes_ and default.solver_ == "newton"
    assert default.validation_split_ is None


def test_on_a_cluster_with_unknown_partitions(client):
    X, y, w = make_binary()
    Xk, yk, wk = as_kind("ddf", X, y, w, CHUNKINGS["7"])
    est = daskfit.LogisticRegression(early_stopping=True, random_state=4, tol=1e-8,
                                     n_iter_no_change=1000, solver="newton")
    est.fit(Xk, yk, sample_weight=wk)
    mask = validation_rows(est, CHUNKINGS["7"])
    ref = sk.LogisticRegression(tol=1e-10).fit(X[~mask], y[~mask], sample_weight=w[~mask])
    np.testing.assert_allclose(est.fit_result_.theta[:-1], ref.coef_[0], rtol=1e-4)
    assert est.best_validation_score_ == pytest.approx(
        ref.score(X[mask], y[mask], sample_weight=w[mask]), abs=1e-12)


# ---------------------------------------------------------------- planner


@pytest.mark.parametrize("make,solver", [
    (lambda: daskfit.LinearRegression(), "lbfgs"),
    (lambda: daskfit.Lasso(alpha=0.01), "proximal"),
    (lambda: daskfit.LogisticRegression(), "lbfgs"),
    (lambda: daskfit.PoissonRegressor(), "lbfgs"),
])
def test_auto_picks_an_iterative_solver(make, solver):
    est = make().set_params(early_stopping=True)
    plan = daskfit.plan(np.zeros((1000, 10)), estimator=est)
    assert plan.solver == solver
    # Without early stopping the same estimator gets a one-pass or Newton solver.
    assert daskfit.plan(np.zeros((1000, 10)), estimator=make()).solver in ("normal", "newton")


def test_multiclass_rechoice_keeps_an_iterative_solver():
    X, y, _ = make_multiclass()
    est = daskfit.LogisticRegression(early_stopping=True, random_state=0).fit(X, y)
    assert est.solver_ == "lbfgs" and len(est.validation_scores_) == est.n_iter_[0]


# ------------------------------------------------------------- bad input

_P = pytest.param
BAD = [
    _P(dict(validation_fraction=0.0), r"'validation_fraction' parameter must be > 0; got 0.0",
       id="fraction=0"),
    _P(dict(validation_fraction=1.0), r"'validation_fraction' parameter must be < 1; got 1.0",
       id="fraction=1"),
    _P(dict(validation_fraction=np.nan), r"'validation_fraction' parameter must be finite",
       id="fraction=nan"),
    _P(dict(validation_fraction="0.1"), r"'validation_fraction' parameter must be of type real",
       id="fraction-str"),
    _P(dict(n_iter_no_change=0), r"'n_iter_no_change' parameter must be >= 1; got 0",
       id="n_iter_no_change=0"),
    _P(dict(n_iter_no_change=2.5), r"'n_iter_no_change' parameter must be of type int",
       id="n_iter_no_change-float"),
    _P(dict(early_stopping="yes"), r"'early_stopping' parameter must be of type bool",
       id="early_stopping-str"),
    _P(dict(random_state=-1), r"'random_state' parameter must be None, an int in "
       r"\[0, 2\*\*32 - 1\] or a numpy.random.RandomState; got -1", id="random_state<0"),
    _P(dict(random_state="seed"), r"'random_state' parameter must be None", id="random_state-str"),
    _P(dict(early_stopping=True, solver="normal"),
       r"early_stopping=True needs an iterative solver .* solver='normal' solves in one pass\. "
       r"Use solver='auto' or one of \['gd', 'lbfgs', 'newton', 'proximal'\]",
       id="normal"),
    _P(dict(early_stopping=True, solver="averaging"),
       r"solver='averaging' does not support it", id="averaging"),
]


@pytest.mark.parametrize("kind", ["numpy", "ddf"])
@pytest.mark.parametrize("params,match", BAD)
def test_bad_parameters(params, match, kind):
    X, y, _ = make_regression(n=40, p=3)
    Xk, yk, _ = as_kind(kind, X, y, None, (10, 10, 20))
    est = daskfit.Ridge(**params)
    with pytest.raises(ValueError, match=match):
        est.fit(Xk, yk)
    assert not hasattr(est, "coef_")


def test_empty_validation_set_in_sklearns_words():
    X, y, _ = make_regression(n=3, p=2)
    est = daskfit.Ridge(early_stopping=True, validation_fraction=0.01, random_state=0)
    with pytest.raises(ValueError, match=r"Splitting 3 samples into a train set and a "
                       r"validation set with validation_fraction=0.01 led to an empty set "
                       r"\(3 and 0 samples\)\. Please either change validation_fraction"):
        est.fit(X, y)
    assert not hasattr(est, "coef_")


def test_validation_weights_all_zero():
    X, y, w = make_regression(n=60, p=2)
    probe = daskfit.Ridge(early_stopping=True, random_state=0).fit(X, y)
    mask = validation_rows(probe, (60,))
    w[mask] = 0.0
    with pytest.raises(ValueError, match="sample weights for validation set are all zero"):
        daskfit.Ridge(early_stopping=True, random_state=0).fit(X, y, sample_weight=w)


def test_class_held_out_entirely_is_named():
    X, y, _ = make_binary(n=60, p=2)
    probe = daskfit.LogisticRegression(early_stopping=True, random_state=0).fit(X, y)
    mask = validation_rows(probe, (60,))
    y = y.astype(object)
    y[np.flatnonzero(mask)[0]] = "rare"  # the only row of a third class is a validation row
    with pytest.raises(ValueError, match=r"held out every row .* class\(es\) \['rare'\] .* "
                       r"Lower validation_fraction, change random_state"):
        daskfit.LogisticRegression(early_stopping=True, random_state=0).fit(X, y.astype(str))
