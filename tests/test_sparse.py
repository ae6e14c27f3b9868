"""Sparse features: scipy.sparse input and Dask arrays of sparse chunks.

Sparse fits must equal the dense fits of the same data (the kernels compute
the same sums from the nonzeros), no kernel may densify a chunk, and a
one-hot column of 100,000 levels must fit in a few MiB where its dense form
would take gigabytes.
"""

from __future__ import annotations

import tracemalloc
import warnings

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import daskfit
from daskfit.engine.rows import DataError
from daskfit.planner import plan_for

#: Uneven row chunks with empty ones.
CHUNKS = (0, 41, 120, 0, 1, 138)
N = sum(CHUNKS)


def _design(seed=0, n=N):
    """Four sparse numeric columns and a 4-level categorical's 3 dummies (full rank)."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, 4)) * [0.5, 1.0, 2.0, 1.0] + [0.3, 0.0, -0.5, 1.0]
    numeric[rng.uniform(size=numeric.shape) < 0.6] = 0.0
    level = rng.integers(0, 4, size=n)
    dummies = np.eye(4)[level][:, 1:]
    X = np.column_stack([numeric, dummies])
    margin = X @ rng.normal(scale=0.5, size=X.shape[1]) + 0.2
    targets = {
        "real": margin + rng.normal(scale=0.3, size=n),
        "binary": (rng.uniform(size=n) < 1 / (1 + np.exp(-margin))).astype(int),
        "counts": rng.poisson(np.exp(0.5 * margin)).astype(float),
    }
    return X, targets


def _sparse_inputs(X):
    """The same matrix in every sparse form daskfit takes."""
    csr = sp.csr_matrix(X)
    return {
        "csr": csr,
        "dask csr chunks": da.from_array(csr, chunks=(CHUNKS, X.shape[1])),
        "dask csr column chunks": da.from_array(csr, chunks=(CHUNKS, (4, 3))),
    }


CASES = {
    "LinearRegression (normal)": (lambda: daskfit.LinearRegression(), "real"),
    "Ridge": (lambda: daskfit.Ridge(alpha=2.0), "real"),
    "Ridge (lbfgs)": (lambda: daskfit.Ridge(alpha=2.0, solver="lbfgs", tol=1e-10), "real"),
    "LogisticRegression (newton)": (lambda: daskfit.LogisticRegression(solver="newton",
                                                                       tol=1e-10), "binary"),
    "LogisticRegression (lbfgs)": (lambda: daskfit.LogisticRegression(solver="lbfgs", tol=1e-10,
                                                                      max_iter=500), "binary"),
    "PoissonRegressor": (lambda: daskfit.PoissonRegressor(alpha=0.1, tol=1e-10), "counts"),
    "Lasso (normal)": (lambda: daskfit.Lasso(alpha=0.02, tol=1e-10), "real"),
    "Lasso (proximal)": (lambda: daskfit.Lasso(alpha=0.02, solver="proximal", tol=1e-10,
                                               max_iter=2000), "real"),
}


def _relative(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("case", list(CASES))
def test_sparse_fit_equals_dense_fit(case):
    """Coefficients, intercept and predictions equal the dense fit's to 1e-8 relative."""
    make, target = CASES[case]
    X, targets = _design()
    y = targets[target]
    dense = make().fit(X, y)
    for kind, Xs in _sparse_inputs(X).items():
        fitted = make().fit(Xs, y)
        assert fitted.solver_ == dense.solver_, kind
        assert _relative(fitted.coef_, dense.coef_) < 1e-8, kind
        assert _relative(fitted.intercept_, dense.intercept_) < 1e-8, kind
        predicted = fitted.predict(Xs)
        if isinstance(predicted, da.Array):
            predicted = predicted.compute()
        assert _relative(predicted, dense.predict(X)) < 1e-8, kind


def test_every_scipy_format_is_taken():
    """CSC, COO, CSR arrays (and float32 data) fit as CSR does."""
    X, targets = _design()
    reference = daskfit.LogisticRegression().fit(sp.csr_matrix(X), targets["binary"])
    for Xs in (sp.csc_matrix(X), sp.coo_matrix(X), sp.csr_array(X), sp.coo_array(X),
               da.from_array(sp.csc_matrix(X), chunks=(CHUNKS, X.shape[1]))):
        fitted = daskfit.LogisticRegression().fit(Xs, targets["binary"])
        assert _relative(fitted.coef_, reference.coef_) < 1e-10, type(Xs)
    single = daskfit.LogisticRegression().fit(sp.csr_matrix(X, dtype=np.float32),
                                              targets["binary"])
    assert _relative(single.coef_, reference.coef_) < 1e-4


@pytest.mark.slow  # importing ``sparse`` (numba) takes about 10 s; the fits take 1 s
def test_sparse_coo_chunks_fit_equals_dense_fit():
    """Dask arrays of ``sparse.COO`` chunks (the ``sparse`` extra), column chunks included."""
    sparse = pytest.importorskip("sparse")
    X, targets = _design()
    for chunks in ((CHUNKS, X.shape[1]), (CHUNKS, (4, 3))):
        Xc = da.from_array(sparse.COO.from_numpy(X), chunks=chunks)
        for case in ("LinearRegression (normal)", "LogisticRegression (newton)",
                     "LogisticRegression (lbfgs)", "PoissonRegressor"):
            make, target = CASES[case]
            dense = make().fit(X, targets[target])
            fitted = make().fit(Xc, targets[target])
            assert _relative(fitted.coef_, dense.coef_) < 1e-8, case
            assert _relative(fitted.predict(Xc).compute(), dense.predict(X)) < 1e-8, case


def test_collinear_one_hot_takes_the_qr_route_without_densifying_chunks():
    """Every level plus an intercept: the Gram is singular, TSQR (row blocks) as for dense."""
    rng = np.random.default_rng(5)
    level = rng.integers(0, 5, size=N)
    X = np.column_stack([np.eye(5)[level], rng.normal(size=N)])
    y = X @ rng.normal(size=6) + rng.normal(size=N)
    dense = daskfit.LinearRegression().fit(X, y)
    fitted = daskfit.LinearRegression().fit(da.from_array(sp.csr_matrix(X), chunks=(CHUNKS, 6)), y)
    assert "QR" in fitted.solver_reason_ and "QR" in dense.solver_reason_
    assert _relative(fitted.coef_, dense.coef_) < 1e-8
    assert abs(fitted.intercept_ - dense.intercept_) < 1e-8 * abs(dense.intercept_)


class _NoDensify(sp.csr_matrix):
    """A CSR chunk that refuses every way of becoming dense."""

    def toarray(self, *args, **kwargs):
        raise AssertionError("a sparse chunk was densified (toarray)")

    def todense(self, *args, **kwargs):
        raise AssertionError("a sparse chunk was densified (todense)")

    def __array__(self, *args, **kwargs):
        raise AssertionError("a sparse chunk was densified (__array__)")


def test_no_kernel_densifies_a_chunk():
    """Every row solver (and prediction) on chunks whose toarray/todense/__array__ raise."""
    X, targets = _design(seed=3)
    rng = np.random.default_rng(4)
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, size=N)]
    Xg = da.from_array(_NoDensify(sp.csr_matrix(X)), chunks=(CHUNKS, X.shape[1]), asarray=False)
    assert isinstance(Xg.to_delayed()[2, 0].compute(scheduler="sync"), _NoDensify)
    fits = [
        (daskfit.LinearRegression(), targets["real"]),
        (daskfit.Ridge(solver="lbfgs"), targets["real"]),
        (daskfit.LogisticRegression(solver="newton"), targets["binary"]),
        (daskfit.LogisticRegression(solver="lbfgs"), targets["binary"]),
        (daskfit.LogisticRegression(solver="gd", max_iter=20), targets["binary"]),
        (daskfit.LogisticRegression(), labels),  # multinomial Newton
        (daskfit.LogisticRegression(class_weight="balanced"), labels),
        (daskfit.PoissonRegressor(), targets["counts"]),
        (daskfit.Lasso(alpha=0.02), targets["real"]),
        (daskfit.Lasso(alpha=0.02, solver="proximal"), targets["real"]),
    ]
    with dask.config.set(scheduler="sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short gd run does not converge: not the point
        for estimator, y in fits:
            estimator.fit(Xg, y)
            assert np.all(np.isfinite(estimator.coef_))
            estimator.predict(Xg).compute()


def test_one_hot_of_100k_levels_fits_in_little_memory():
    """10,000 rows x 100,001 columns (8 GB dense): L-BFGS, a few MiB at peak."""
    rng = np.random.default_rng(7)
    n, levels = 10_000, 100_000
    level = rng.integers(0, levels, size=n)
    numeric = rng.normal(size=n)
    X = sp.csr_matrix((np.column_stack([np.ones(n), numeric]).ravel(),
                       (np.repeat(np.arange(n), 2), np.column_stack([level, np.full(n, levels)]).ravel())),
                      shape=(n, levels + 1))
    y = rng.poisson(np.exp(0.2 + rng.normal(scale=0.3, size=levels)[level] + 0.3 * numeric))
    Xd = da.from_array(X, chunks=(2_500, levels + 1))
    estimator = daskfit.PoissonRegressor(alpha=1e-3, max_iter=4)
    assert daskfit.plan(Xd, estimator=estimator).solver == "lbfgs"
    dense_bytes = 8 * n * (levels + 1)
    tracemalloc.start()
    try:
        with dask.config.set(scheduler="sync"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 4 iterations: a memory test, not a convergence test
            estimator.fit(Xd, y.astype(float))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert estimator.solver_ == "lbfgs"
    assert peak < 64 * 2**20 and 100 * peak < dense_bytes, peak
    assert np.isfinite(estimator.coef_).all() and estimator.coef_[-1] > 0.05  # numeric effect 0.3


@pytest.mark.parametrize("bad, problem", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_stored_value_is_refused(bad, problem):
    X, targets = _design()
    Xs = sp.csr_matrix(X)
    Xs.data[7] = bad
    for Xbad in (Xs, da.from_array(Xs, chunks=(CHUNKS, X.shape[1]))):
        with pytest.raises(DataError, match=f"Input X contains {problem}"):
            daskfit.LinearRegression().fit(Xbad, targets["real"])
        with pytest.raises(DataError, match=f"Input X contains {problem}"):
            daskfit.LogisticRegression(solver="lbfgs").fit(Xbad, targets["binary"])
    fitted = daskfit.Ridge().fit(X, targets["real"])
    with pytest.raises(ValueError, match="NaN|infinity"):
        fitted.predict(Xs)
    with pytest.raises(ValueError, match="NaN or infinity"):
        fitted.predict(da.from_array(Xs, chunks=(CHUNKS, X.shape[1]))).compute()


def test_in_memory_sparse_data_has_a_deterministic_token():
    """A checkpoint's fingerprint: equal matrices hash equal, different ones differ."""
    from daskfit._data import as_chunked

    X, targets = _design()
    token = [as_chunked(daskfit.Ridge(), Xs, targets["real"]).token()
             for Xs in (sp.csr_matrix(X), sp.csr_matrix(X), sp.csr_matrix(2 * X))]
    assert token[0] == token[1] != token[2]


def test_planner_keeps_sparse_data_on_row_solvers():
    """Wide column-chunked sparse data: L-BFGS on whole sparse rows, never model parallel."""
    common = dict(n_rows=10_000, n_features=50_000, row_chunks=4, col_chunks=8, itemsize=8,
                  is_lazy=True, loss_name="logistic", penalty_kind="l2", n_outputs=1,
                  fit_intercept=True)
    assert plan_for(**common).strategy == "model parallel"  # dense: coefficients sharded
    sparse_plan = plan_for(**common, sparse=True)
    assert sparse_plan.solver == "lbfgs" and sparse_plan.facts["sparse"]
    squared = plan_for(**dict(common, loss_name="squared", penalty_kind="none"), sparse=True)
    assert squared.solver == "lbfgs"  # no 50,000^2 Gram
    with pytest.raises(ValueError, match="sparse.*solver='auto'"):
        plan_for(**common, sparse=True, solver="sharded-gd")
    X, targets = _design()
    with pytest.raises(ValueError, match="sparse"):
        daskfit.LinearRegression(solver="bcd").fit(
            da.from_array(sp.csr_matrix(X), chunks=(CHUNKS, (4, 3))), targets["real"])


def test_sparse_chunks_on_a_cluster(client):
    """Serialised CSR chunks (possibly misaligned arrays) on 2 worker processes."""
    X, targets = _design(seed=9)
    Xd = da.from_array(sp.csr_matrix(X), chunks=(CHUNKS, X.shape[1])).persist()
    dense = daskfit.LogisticRegression(tol=1e-10).fit(X, targets["binary"])
    fitted = daskfit.LogisticRegression(tol=1e-10).fit(Xd, targets["binary"])
    assert fitted.solver_ == "newton"
    assert _relative(fitted.coef_, dense.coef_) < 1e-8
    assert _relative(fitted.predict_proba(Xd).compute(), dense.predict_proba(X)) < 1e-8


def test_encoder_makes_sparse_chunks_above_the_cardinality_threshold(monkeypatch):
    """FrameEncoder(sparse=...): CSR (Dask arrays of CSR chunks); fits equal the dense ones."""
    import dask.dataframe as dd

    from daskfit.io import FrameEncoder, TabularModel, _tabular

    monkeypatch.setattr(_tabular, "AUTO_SPARSE_MIN_COLUMNS", 40)  # 1,000 in use: a slow test
    rng = np.random.default_rng(11)
    n = 600
    df = pd.DataFrame({"x": rng.normal(size=n), "shop": rng.integers(0, 60, n).astype(str),
                       "kind": rng.choice(["a", "b", "c"], n)})
    y = pd.Series(2 * df["x"] + (df["kind"] == "b") + rng.normal(scale=0.1, size=n), name="y")
    ddf = dd.from_pandas(df.assign(y=y), npartitions=3)
    Xf, yf = ddf.drop(columns="y"), ddf["y"]
    fitted = {}
    for sparse in (False, "auto"):
        model = TabularModel(encoder=FrameEncoder(sparse=sparse), estimator=daskfit.Ridge())
        fitted[sparse] = model.fit(Xf, yf)
        Xe, _, _ = model.encode(Xf, yf)
        assert sp.issparse(Xe._meta) == (sparse == "auto")
        assert fitted[sparse].encoder.sparse_ == (sparse == "auto")
    assert _relative(fitted["auto"].estimator.coef_, fitted[False].estimator.coef_) < 1e-8
    assert _relative(fitted["auto"].predict(df), fitted[False].predict(df)) < 1e-8
    assert _relative(fitted["auto"].predict(Xf).compute(), fitted[False].predict(df)) < 1e-8
    assert not FrameEncoder().fit(df[["x", "kind"]]).sparse_  # 2 dummies: dense
    assert sp.issparse(FrameEncoder(sparse=True).fit(df).transform_matrix(df))
