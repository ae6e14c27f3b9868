"""Bad input is a clear error, on NumPy, Dask array and Dask DataFrame alike.

NaN/inf in X or y, bad sample_weight, zero rows or
features, 1-D X, complex or non-numeric columns, unknown or misaligned
chunks, bad targets for a classifier or a Poisson model, bad hyper-parameters
and bad input to ``predict`` each raise one error that names the problem (in
scikit-learn's words where scikit-learn has some) and, where there is one,
the fix. A failed fit never leaves a fitted estimator behind.

Every case is small (40 x 3) and runs on Dask's local schedulers.
"""

from __future__ import annotations

import re
import warnings

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import daskfit
from daskfit.solvers import SOLVERS

from conftest import KINDS, _identity, as_kind, make_binary, make_counts, make_regression

N, P = 40, 3
CHUNKS = (10, 10, 20)  # row chunks of the Dask inputs (partitions of the Dask DataFrame)
COLUMNS = [f"x{i}" for i in range(P)]

# name -> (factory, problem). Ridge / Lasso / ElasticNet share the least-squares
# first pass with LinearRegression; LogisticRegression (label statistics) and
# PoissonRegressor (loss/gradient/Hessian at zero) cover the other two.
ESTIMATORS = {
    "LinearRegression": (lambda **kw: daskfit.LinearRegression(**kw), "regression"),
    "Ridge": (lambda **kw: daskfit.Ridge(alpha=1.0, **kw), "regression"),
    "Lasso": (lambda **kw: daskfit.Lasso(alpha=0.01, **kw), "regression"),
    "ElasticNet": (lambda **kw: daskfit.ElasticNet(alpha=0.01, l1_ratio=0.5, **kw), "regression"),
    "LogisticRegression": (lambda **kw: daskfit.LogisticRegression(**kw), "binary"),
    "PoissonRegressor": (lambda **kw: daskfit.PoissonRegressor(alpha=0.01, **kw), "counts"),
}
#: One estimator per first-pass kernel (moments, class statistics, evaluation).
REPRESENTATIVE = ["LinearRegression", "LogisticRegression", "PoissonRegressor"]
MAKERS = {"regression": make_regression, "binary": make_binary, "counts": make_counts}

ALL = pytest.mark.parametrize("name", list(ESTIMATORS))
THREE = pytest.mark.parametrize("name", REPRESENTATIVE)
ON_KINDS = pytest.mark.parametrize("kind", KINDS)
ON_DASK = pytest.mark.parametrize("kind", ["dask", "ddf"])


def problem(name):
    """(estimator, X, y, w) as fresh, writable NumPy arrays of N x P."""
    factory, kind = ESTIMATORS[name]
    X, y, w = MAKERS[kind](n=N, p=P)
    return factory(), X.copy(), y.copy(), w.copy()


def frame(pdf, sizes):
    """A Dask DataFrame with partitions of ``sizes`` rows, lengths unknown to Dask."""
    bounds = np.cumsum((0,) + tuple(sizes))
    assert bounds[-1] == len(pdf)
    pieces = [pdf.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return dd.from_map(_identity, pieces, meta=pdf.iloc[:0])


def series(v, sizes, name="v"):
    return frame(pd.DataFrame({name: v}), sizes)[name]


def vector(kind, v, sizes=CHUNKS):
    """A target or weight vector in the given input kind (its own collection)."""
    if kind == "numpy":
        return v
    if kind == "dask":
        return da.from_array(v, chunks=(sizes,))
    return series(v, sizes)


def assert_not_fitted(est):
    assert not hasattr(est, "coef_"), "a failed fit left coef_ behind"
    assert not hasattr(est, "intercept_"), "a failed fit left intercept_ behind"


# ------------------------------------------------------------------ NaN / inf


@ALL
@ON_KINDS
@pytest.mark.parametrize("value, words", [(np.nan, "NaN"), (np.inf, "infinity"),
                                          (-np.inf, "infinity")])
def test_nonfinite_X(name, kind, value, words):
    est, X, y, w = problem(name)
    X[7, 1] = value
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with pytest.raises(ValueError, match=f"Input X contains {words}"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@ALL
@ON_KINDS
@pytest.mark.parametrize("value, words", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_nonfinite_y(name, kind, value, words):
    est, X, y, w = problem(name)
    y = y.astype(np.float64)
    y[25] = value
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with pytest.raises(ValueError, match=f"Input y contains {words}"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@pytest.mark.parametrize("name, solver", [
    (name, solver) for name in REPRESENTATIVE for solver in sorted(SOLVERS)
    if SOLVERS[solver].supports(ESTIMATORS[name][0]()._loss_name, "l2")
])
def test_nan_X_every_solver(name, solver):
    """Every solver's first pass checks the data, not only the default one's."""
    est, X, y, w = problem(name)
    X[33, 2] = np.nan
    est.set_params(solver=solver)
    Xk, yk, wk = as_kind("dask", X, y, w, CHUNKS)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.fit(Xk, yk, sample_weight=wk)
    assert_not_fitted(est)


@THREE
@ON_DASK
def test_bad_chunk_is_named(name, kind):
    """The first bad chunk of many is named, and only the first."""
    est, X, y, w = problem(name)
    X[17, 0] = np.nan  # row chunk 3 of 8
    X[31, 1] = np.inf  # row chunk 6 of 8
    Xk, yk, _ = as_kind(kind, X, y, None, (5,) * 8)
    with pytest.raises(ValueError, match=r"Input X contains NaN.*row chunk 3 of 8"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@ALL
@ON_KINDS
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_bad_input_error_comes_without_runtime_warnings(name, kind, value):
    """Kernels diagnose non-finite data themselves: NumPy's warnings are only noise."""
    est, X, y, w = problem(name)
    X[3, 0] = value
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="Input X contains"):
            est.fit(Xk, yk)
    noise = [f"{rec.filename}:{rec.lineno}: {rec.message}" for rec in caught
             if issubclass(rec.category, RuntimeWarning)]
    assert not noise, noise


# -------------------------------------------------------------- sample_weight


@ALL
@ON_KINDS
@pytest.mark.parametrize("value, message", [
    (np.nan, "Input sample_weight contains NaN"),
    (np.inf, "Input sample_weight contains infinity"),
    (-1.0, "Negative values in data passed to sample_weight"),
])
def test_bad_weight_values(name, kind, value, message):
    est, X, y, w = problem(name)
    w[12] = value
    Xk, yk, wk = as_kind(kind, X, y, w, CHUNKS)
    with pytest.raises(ValueError, match=message):
        est.fit(Xk, yk, sample_weight=wk)
    assert_not_fitted(est)


@ALL
@ON_KINDS
def test_weights_sum_to_zero(name, kind):
    est, X, y, w = problem(name)
    Xk, yk, wk = as_kind(kind, X, y, np.zeros(N), CHUNKS)
    with pytest.raises(ValueError, match="sample weights sum to zero.*positive weight"):
        est.fit(Xk, yk, sample_weight=wk)
    assert_not_fitted(est)


@THREE
@ON_KINDS
def test_weights_wrong_length(name, kind):
    est, X, y, w = problem(name)
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    if kind == "ddf":
        # Lengths are unknown to Dask: the first pass compares them chunk by chunk.
        wk = series(w[:-1], CHUNKS[:-1] + (CHUNKS[-1] - 1,))
        match = (r"Row chunk 2 of X has 20 rows but the matching chunk of sample_weight "
                 r"has 19.*to_dask_array\(lengths=True\).*row chunk 2 of 3")
    else:
        wk = vector(kind, w[:-1], CHUNKS[:-1] + (CHUNKS[-1] - 1,))
        match = r"inconsistent numbers of samples: \[40, 39\]"
    with pytest.raises(ValueError, match=match):
        est.fit(Xk, yk, sample_weight=wk)
    assert_not_fitted(est)


@THREE
@ON_KINDS
def test_weights_2d(name, kind):
    est, X, y, w = problem(name)
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    w2 = np.column_stack([w, w])
    if kind == "numpy":
        wk, match = w2, r"sample_weight should be a 1d array.*\(40, 2\)"
    elif kind == "dask":
        wk = da.from_array(w2, chunks=(CHUNKS, 2))
        match = r"sample_weight should be a 1d array.*\(40, 2\)"
    else:
        wk = frame(pd.DataFrame(w2, columns=["a", "b"]), CHUNKS)
        match = "sample_weight should be a 1d array.*2 columns"
    with pytest.raises(ValueError, match=match):
        est.fit(Xk, yk, sample_weight=wk)
    assert_not_fitted(est)


# ------------------------------------------------------------------- shapes


@THREE
@ON_KINDS
def test_zero_rows(name, kind):
    est, X, y, w = problem(name)
    Xk, yk, _ = as_kind(kind, X[:0], y[:0], None, (0,))
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\).*minimum of 1"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@THREE
@ON_DASK
def test_zero_rows_many_empty_chunks(name, kind):
    est, X, y, w = problem(name)
    Xk, yk, _ = as_kind(kind, X[:0], y[:0], None, (0, 0, 0))
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\).*minimum of 1"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@THREE
@ON_KINDS
def test_zero_features(name, kind):
    est, X, y, w = problem(name)
    Xk, yk, _ = as_kind(kind, X[:, :0], y, None, CHUNKS)
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\).*minimum of 1"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@THREE
@ON_KINDS
def test_1d_X(name, kind):
    est, X, y, w = problem(name)
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    if kind == "numpy":
        X1 = X[:, 0]
    elif kind == "dask":
        X1 = Xk[:, 0]
    else:
        X1 = Xk["x0"]  # a Dask Series
    with pytest.raises(ValueError, match="Expected 2D array, got (1D array|a Dask Series)"):
        est.fit(X1, yk)
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)|to_frame\(\)"):
        est.fit(X1, yk)
    assert_not_fitted(est)


@THREE
@ON_KINDS
def test_complex_X(name, kind):
    est, X, y, w = problem(name)
    Xc = X.astype(np.complex128)
    if kind == "ddf":
        Xk = frame(pd.DataFrame(Xc, columns=COLUMNS), CHUNKS)
        yk = series(y, CHUNKS)
        match = r"'x0' \(complex128\)"
    else:
        Xk, yk, _ = as_kind(kind, Xc, y, None, CHUNKS)
        match = "Complex data not supported"
    with pytest.raises(ValueError, match=match):
        est.fit(Xk, yk)
    assert_not_fitted(est)


def _with_bad_column(X, how):
    pdf = pd.DataFrame(X, columns=COLUMNS)
    values = ["red", "green"] * (N // 2)
    if how == "string":
        pdf["colour"] = pd.Series(values, dtype="string")
    elif how == "object":
        pdf["colour"] = pd.Series(values, dtype=object)
    else:
        pdf["colour"] = pd.Categorical(values)
    return pdf


@THREE
@pytest.mark.parametrize("kind", ["pandas", "ddf"])
@pytest.mark.parametrize("how", ["string", "object", "category"])
def test_non_numeric_column_is_named(name, kind, how):
    est, X, y, w = problem(name)
    pdf = _with_bad_column(X, how)
    Xk = pdf if kind == "pandas" else frame(pdf, CHUNKS)
    yk = y if kind == "pandas" else series(y, CHUNKS)
    with pytest.raises(ValueError, match="colour"):
        est.fit(Xk, yk)
    with pytest.raises(ValueError, match="[Ee]ncode"):  # the fix
        est.fit(Xk, yk)
    assert_not_fitted(est)


@THREE
def test_non_numeric_dask_array(name):
    """A Dask array has no columns to name; its dtype is named instead."""
    est, X, y, w = problem(name)
    Xs = da.from_array(X.astype(str).astype(object), chunks=(CHUNKS, P))
    with pytest.raises(ValueError, match="dtype object, but numeric data is required. "
                                          "Convert or encode it first"):
        est.fit(Xs, y)
    assert_not_fitted(est)


@THREE
@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_inconsistent_numbers_of_samples(name, kind):
    est, X, y, w = problem(name)
    Xk, _, _ = as_kind(kind, X, None, None, CHUNKS)
    yk = vector(kind, y[:-1], (10, 10, 19))
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[40, 39\]"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


# ------------------------------------------------------- chunks and partitions


def _unknown_chunk_array(X):
    """A Dask array with unknown row chunks, as ``ddf.to_dask_array()`` gives."""
    arr = frame(pd.DataFrame(X, columns=COLUMNS), CHUNKS).to_dask_array()
    assert np.isnan(arr.shape[0])
    return arr


@THREE
@pytest.mark.parametrize("form", ["ddf", "unknown-chunk array"])
def test_unknown_chunks_with_in_memory_y(name, form):
    est, X, y, w = problem(name)
    if form == "ddf":
        Xk = frame(pd.DataFrame(X, columns=COLUMNS), CHUNKS)
    else:
        Xk = _unknown_chunk_array(X)
    with pytest.raises(ValueError, match=r"unknown row chunk sizes.*y is in memory.*"
                                          r"to_dask_array\(lengths=True\)"):
        est.fit(Xk, y)
    assert_not_fitted(est)


@THREE
def test_unknown_chunks_with_in_memory_weights(name):
    est, X, y, w = problem(name)
    Xk, yk, _ = as_kind("ddf", X, y, None, CHUNKS)
    with pytest.raises(ValueError, match=r"unknown row chunk sizes.*sample_weight is in "
                                          r"memory.*to_dask_array\(lengths=True\)"):
        est.fit(Xk, yk, sample_weight=w)
    assert_not_fitted(est)


@THREE
def test_suggested_fix_lengths_true_works(name):
    """The fix the unknown-chunks message suggests gives NumPy's coefficients."""
    est, X, y, w = problem(name)
    ref = ESTIMATORS[name][0](tol=1e-10).fit(X, y, sample_weight=w)
    Xk = frame(pd.DataFrame(X, columns=COLUMNS), CHUNKS).to_dask_array(lengths=True)
    est.set_params(tol=1e-10).fit(Xk, y, sample_weight=w)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=1e-7, atol=1e-10)


@THREE
@pytest.mark.parametrize("what", ["y", "sample_weight"])
@pytest.mark.parametrize("form", ["ddf", "unknown-chunk array"])
def test_misaligned_unknown_partitions(name, what, form):
    """X in 3 partitions, y (or weights) in 2, sizes unknown: cannot be aligned."""
    est, X, y, w = problem(name)
    Xk, yk, wk = frame(pd.DataFrame(X, columns=COLUMNS), CHUNKS), series(y, CHUNKS), None
    bad = series(y if what == "y" else w, (20, 20))
    if what == "y":
        yk = bad
    else:
        wk = bad
    if form == "unknown-chunk array":
        Xk, yk, wk = (None if v is None else v.to_dask_array() for v in (Xk, yk, wk))
    with pytest.raises(ValueError, match=f"X and {what} are chunked differently and the "
                                          r"chunk sizes are unknown.*compute_chunk_sizes"):
        est.fit(Xk, yk, sample_weight=wk)
    assert_not_fitted(est)


@THREE
@pytest.mark.parametrize("what", ["y", "sample_weight"])
@pytest.mark.parametrize("x_form", ["ddf", "dask"])
def test_same_partitions_different_lengths(name, what, x_form):
    """Same number of partitions, different sizes: the first pass names the chunk."""
    est, X, y, w = problem(name)
    Xk, yk, wk = as_kind(x_form, X, y, w, CHUNKS)
    other = series(y if what == "y" else w, (10, 12, 18))
    if what == "y":
        yk = other
        wk = None
    else:
        wk = other
        if x_form == "dask":
            yk = series(y, CHUNKS)
    with pytest.raises(ValueError, match=fr"Row chunk 1 of X has 10 rows but the matching chunk "
                                         fr"of {what} has 12.*to_dask_array\(lengths=True\)"
                                         fr".*row chunk 1 of 3"):
        est.fit(Xk, yk, sample_weight=wk)
    assert_not_fitted(est)


@THREE
def test_known_chunks_differently_chunked_y_and_weights_work(name):
    """Known sizes, different chunking of X, y and weights: y is rechunked to X."""
    est, X, y, w = problem(name)
    ref = ESTIMATORS[name][0](tol=1e-10).fit(X, y, sample_weight=w)
    Xk = da.from_array(X, chunks=(CHUNKS, P))
    yk = da.from_array(y, chunks=((25, 15),))
    wk = da.from_array(w, chunks=((7, 33),))
    est.set_params(tol=1e-10).fit(Xk, yk, sample_weight=wk)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=1e-7, atol=1e-10)


# ------------------------------------------------------------------ targets


@ON_KINDS
def test_classifier_continuous_y(kind):
    est, X, _, _ = problem("LogisticRegression")
    y = np.linspace(0.05, 3.3, N)
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@ON_KINDS
@pytest.mark.parametrize("label", [1, "spam"])
def test_classifier_single_class(kind, label):
    est, X, _, _ = problem("LogisticRegression")
    y = np.full(N, label)
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with pytest.raises(ValueError, match="only one class"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@ON_KINDS
@pytest.mark.parametrize("missing", [None, np.nan])
def test_classifier_missing_string_label(kind, missing):
    """A missing value among string labels is NaN in y, not a TypeError from sorting."""
    est, X, y, _ = problem("LogisticRegression")
    labels = np.where(y == 1, "yes", "no").astype(object)
    labels[5] = missing
    Xk, yk, _ = as_kind(kind, X, labels, None, CHUNKS)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@ON_KINDS
@pytest.mark.parametrize("mix", ["within-a-chunk", "across-chunks"])
def test_classifier_mixed_label_types(kind, mix):
    """Integer and string labels together: scikit-learn's 'Unknown label type'."""
    est, X, y, _ = problem("LogisticRegression")
    labels = y.astype(object)
    if mix == "within-a-chunk":
        labels[5] = "spam"
    else:
        # Every chunk holds one type of label; chunks 0-1 ints, chunk 2 strings.
        labels[20:] = np.where(y[20:] == 1, "one", "zero")
    # Dask DataFrames turn object columns into strings ("0", "1", "spam") by default,
    # which is a valid label set; keep the objects to express mixed labels there.
    with dask.config.set({"dataframe.convert-string": False}):
        Xk, yk, _ = as_kind(kind, X, labels, None, CHUNKS)
        with pytest.raises(ValueError, match="Unknown label type"):
            est.fit(Xk, yk)
    assert_not_fitted(est)


@ON_KINDS
def test_poisson_negative_y(kind):
    est, X, y, _ = problem("PoissonRegressor")
    y[21] = -1.0
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with pytest.raises(ValueError, match="out of the valid range.*non-negative"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


@ON_KINDS
def test_poisson_all_zero_y(kind):
    est, X, y, _ = problem("PoissonRegressor")
    Xk, yk, _ = as_kind(kind, X, np.zeros(N), None, CHUNKS)
    with pytest.raises(ValueError, match="every value of y is 0"):
        est.fit(Xk, yk)
    assert_not_fitted(est)


# --------------------------------------------------------- hyper-parameters

_SOLVER_NAMES = re.escape(str(sorted(set(SOLVERS) | {"auto"})))

_P = pytest.param
BAD_PARAMS = [
    _P(lambda: daskfit.Ridge(alpha=-1.0), r"'alpha' parameter must be >= 0; got -1.0",
       id="Ridge-alpha<0"),
    _P(lambda: daskfit.Lasso(alpha=-0.1), r"'alpha' parameter must be >= 0", id="Lasso-alpha<0"),
    _P(lambda: daskfit.ElasticNet(alpha=-1), r"'alpha' parameter must be >= 0",
       id="ElasticNet-alpha<0"),
    _P(lambda: daskfit.PoissonRegressor(alpha=-1.0), r"'alpha' parameter must be >= 0",
       id="Poisson-alpha<0"),
    _P(lambda: daskfit.Ridge(alpha=np.nan), r"'alpha' parameter must be finite",
       id="Ridge-alpha-nan"),
    _P(lambda: daskfit.LogisticRegression(C=0.0), r"'C' parameter must be > 0; got 0.0",
       id="Logistic-C=0"),
    _P(lambda: daskfit.LogisticRegression(C=-2.0), r"'C' parameter must be > 0", id="Logistic-C<0"),
    _P(lambda: daskfit.ElasticNet(l1_ratio=1.5), r"'l1_ratio' parameter must be <= 1",
       id="ElasticNet-l1_ratio>1"),
    _P(lambda: daskfit.ElasticNet(l1_ratio=-0.1), r"'l1_ratio' parameter must be >= 0",
       id="ElasticNet-l1_ratio<0"),
    _P(lambda: daskfit.LogisticRegression(l1_ratio=2.0), r"'l1_ratio' parameter must be <= 1",
       id="Logistic-l1_ratio>1"),
    _P(lambda: daskfit.LinearRegression(tol=-1e-3), r"'tol' parameter must be >= 0",
       id="OLS-tol<0"),
    _P(lambda: daskfit.LogisticRegression(tol=-1.0), r"'tol' parameter must be >= 0",
       id="Logistic-tol<0"),
    _P(lambda: daskfit.LogisticRegression(max_iter=-1), r"'max_iter' parameter must be >= 0",
       id="Logistic-max_iter<0"),
    _P(lambda: daskfit.PoissonRegressor(max_iter=2.5),
       r"'max_iter' parameter must be of type int", id="Poisson-max_iter-float"),
    _P(lambda: daskfit.Lasso(max_iter="10"), r"'max_iter' parameter must be of type int",
       id="Lasso-max_iter-str"),
    _P(lambda: daskfit.LinearRegression(solver="sgd"),
       r"'solver' parameter must be one of " + _SOLVER_NAMES + r"; got 'sgd'",
       id="OLS-solver-unknown"),
    _P(lambda: daskfit.LogisticRegression(solver="liblinear"),
       r"'solver' parameter must be one of " + _SOLVER_NAMES, id="Logistic-solver-unknown"),
    _P(lambda: daskfit.Lasso(solver="newton"),
       r"solver='newton' does not support the squared loss with a l1 penalty; "
       r"use one of \[.*'normal', 'proximal'.*\]", id="Lasso-newton"),
    _P(lambda: daskfit.ElasticNet(solver="lbfgs"),
       r"solver='lbfgs' does not support .* elasticnet penalty; use one of .*'proximal'",
       id="ElasticNet-lbfgs"),
    _P(lambda: daskfit.LogisticRegression(l1_ratio=1, solver="lbfgs"),
       r"solver='lbfgs' does not support the logistic loss with a l1 penalty; "
       r"use one of \[.*'proximal'.*\]", id="Logistic-l1-lbfgs"),
    _P(lambda: daskfit.PoissonRegressor(solver="normal"),
       r"solver='normal' does not support the poisson loss", id="Poisson-normal"),
    _P(lambda: daskfit.LinearRegression(split_every=1), r"'split_every' parameter must be >= 2",
       id="OLS-split_every=1"),
    _P(lambda: daskfit.LogisticRegression(split_every=0), r"'split_every' parameter must be >= 2",
       id="Logistic-split_every=0"),
    _P(lambda: daskfit.LinearRegression(fit_intercept="yes"),
       r"'fit_intercept' parameter must be of type bool", id="OLS-fit_intercept-str"),
]


@ON_KINDS
@pytest.mark.parametrize("make, match", BAD_PARAMS)
def test_bad_hyper_parameters(make, match, kind):
    est = make()
    loss = est._loss_name
    maker = {"squared": make_regression, "logistic": make_binary, "poisson": make_counts}[loss]
    X, y, w = maker(n=N, p=P)
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with pytest.raises(ValueError, match=match):
        est.fit(Xk, yk)
    assert_not_fitted(est)


# ------------------------------------------------------------------ predict


@THREE
@ON_KINDS
@pytest.mark.parametrize("method", ["predict", "score"])
def test_predict_wrong_number_of_features(name, kind, method):
    est, X, y, w = problem(name)
    est.fit(X, y)
    X2, y2, _ = as_kind(kind, X[:, :2], y, None, CHUNKS)
    match = f"X has 2 features, but {type(est).__name__} is expecting 3 features as input"
    with pytest.raises(ValueError, match=match):
        if method == "predict":
            est.predict(X2)
        else:
            est.score(X2, y2)


@THREE
@ON_KINDS
def test_predict_nan(name, kind):
    est, X, y, w = problem(name)
    est.fit(X, y)
    X[13, 1] = np.nan
    Xk, _, _ = as_kind(kind, X, None, None, CHUNKS)
    methods = ["predict"] + (["predict_proba", "decision_function"]
                             if name == "LogisticRegression" else [])
    for method in methods:
        if kind == "numpy":
            with pytest.raises(ValueError, match="Input X contains NaN"):
                getattr(est, method)(Xk)
            continue
        lazy = getattr(est, method)(Xk)  # building the graph reads no data
        assert isinstance(lazy, da.Array)
        with pytest.raises(ValueError, match="Input X contains NaN"):
            lazy.compute()


@THREE
@ON_KINDS
def test_score_nan_y(name, kind):
    """score() checks y as fit() does: NaN is an error on every kind, never a NaN score."""
    est, X, y, w = problem(name)
    est.fit(X, y)
    y = y.astype(np.float64)
    y[4] = np.nan
    Xk, yk, _ = as_kind(kind, X, y, None, CHUNKS)
    with pytest.raises(ValueError, match="contains NaN"):
        est.score(Xk, yk)


def _nullable_frame(n=120, seed=7):
    """Nullable Int64/Float64/boolean and Arrow double columns, as Parquet readers give."""
    rng = np.random.default_rng(seed)
    pdf = pd.DataFrame({"a": pd.array(rng.integers(0, 5, n), dtype="Int64"),
                        "b": pd.array(rng.normal(size=n), dtype="Float64"),
                        "c": pd.array(rng.random(n) < 0.5, dtype="boolean"),
                        "d": pd.Series(rng.normal(size=n), dtype="double[pyarrow]")})
    pdf["y"] = pd.array(pdf["a"].astype(float) - pdf["b"].astype(float)
                        + rng.normal(size=n), dtype="Float64")
    pdf["w"] = pd.Series(rng.uniform(1, 2, n), dtype="double[pyarrow]")
    return pdf


def test_dask_frames_with_nullable_and_arrow_columns_fit_like_pandas():
    pdf = _nullable_frame()
    ddf = dd.from_pandas(pdf, npartitions=3)
    cols = ["a", "b", "c", "d"]
    expected = daskfit.Ridge().fit(pdf[cols], pdf["y"], sample_weight=pdf["w"])
    got = daskfit.Ridge().fit(ddf[cols], ddf["y"], sample_weight=ddf["w"])
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-10)
    np.testing.assert_allclose(got.intercept_, expected.intercept_, rtol=1e-10)
    # A boolean target keeps its labels, as with pandas input.
    clf = daskfit.LogisticRegression().fit(ddf[["a", "b", "d"]], ddf["c"])
    assert clf.classes_.dtype == bool and list(clf.classes_) == [False, True]


@pytest.mark.parametrize("column, words", [("a", "Input X contains NaN"),
                                           ("d", "Input X contains NaN"),
                                           ("y", "Input y contains NaN"),
                                           ("w", "Input sample_weight contains NaN")])
def test_missing_values_in_nullable_dask_columns_are_a_clear_error(column, words):
    pdf = _nullable_frame()
    pdf.loc[100, column] = None  # pd.NA, or an Arrow null
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(ValueError, match=f"{words}.*row chunk 2 of 3"):
        daskfit.Ridge().fit(ddf[["a", "b", "c", "d"]], ddf["y"], sample_weight=ddf["w"])


def test_missing_class_label_in_a_nullable_dask_target_is_a_clear_error():
    pdf = _nullable_frame()
    pdf.loc[100, "c"] = pd.NA
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(ValueError, match="Input y contains missing values"):
        daskfit.LogisticRegression().fit(ddf[["a", "b", "d"]], ddf["c"])


def test_poisson_on_features_beyond_float_range_is_never_called_converged():
    from sklearn.exceptions import ConvergenceWarning

    X, y, _ = make_counts()
    # x**2 overflows: the Hessian is inf, the Newton step and decrement are 0 and
    # the stopping rule is met while the gradient is 3e299.
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        est = daskfit.PoissonRegressor().fit(X * 1e300, y)
    assert not est.fit_result_.converged
    # Large but representable scales still converge, without a false alarm (no
    # penalty, so that the solution scales with the features).
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        scaled = daskfit.PoissonRegressor(alpha=0).fit(X * 1e100, y)
    assert scaled.fit_result_.converged
    np.testing.assert_allclose(scaled.coef_ * 1e100,
                               daskfit.PoissonRegressor(alpha=0).fit(X, y).coef_, rtol=1e-5)
