"""Kernels never compute on misaligned memory (chunks that arrive by serialisation).

A chunk deserialised on a worker is often a view at an address that is not a
multiple of its item size; NumPy then does not hand a product on it straight
to BLAS (2x to 14x slower). The fits below run every kernel family on chunks
that are deliberately misaligned views, marked with an ndarray subclass that
logs every matrix product applied to it: no product may see a misaligned
operand, and the coefficients must be identical, bit for bit, to those from
aligned chunks of the same numbers.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import daskfit
from daskfit.kernels.alignment import aligned, aligned_blocks

N, P = 2_400, 12
CHUNKS = (700, 900, 800)


class Misaligned(np.ndarray):
    """A misaligned chunk that logs the alignment of every matrix product's operands."""

    products = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.matmul:
            Misaligned.products.append(all(a.flags.aligned for a in inputs
                                           if isinstance(a, np.ndarray)))
        plain = tuple(a.view(np.ndarray) if isinstance(a, Misaligned) else a for a in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Misaligned) else o
                                  for o in kwargs["out"])
        return getattr(ufunc, method)(*plain, **kwargs)


def misaligned_copy(a):
    """The values of ``a`` in memory 4 bytes past an aligned address, logging products."""
    raw = np.empty(a.nbytes + 4, dtype=np.uint8)
    out = np.frombuffer(raw[4:].data, dtype=a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out.view(Misaligned)


@pytest.fixture
def product_log():
    Misaligned.products = []
    yield Misaligned.products


def problem(kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P)) + np.linspace(-0.5, 0.5, P)
    coef = rng.normal(scale=0.5, size=P)
    if kind == "regression":
        y = X @ coef + 0.3 + rng.normal(size=N)
    elif kind == "binary":
        y = (rng.uniform(size=N) < 1 / (1 + np.exp(-(X @ coef)))).astype(float)
    elif kind == "multiclass":
        y = np.argmax(X[:, :3] + rng.gumbel(size=(N, 3)), axis=1).astype(float)
    else:
        y = rng.poisson(np.exp(0.2 + 0.3 * X @ coef / np.abs(coef).sum())).astype(float)
    return X, y


def as_dask(X, y, *, misaligned, column_chunks=None):
    """Dask arrays whose chunks are (mis)aligned as they reach the kernels.

    ``da.from_array`` copies the chunks it cuts (aligned); a ``map_blocks``
    output reaches the kernels as it is, as a deserialised chunk does.
    """
    cols = X.shape[1] if column_chunks is None else column_chunks
    Xd, yd = da.from_array(X, chunks=(CHUNKS, cols)), da.from_array(y, chunks=(CHUNKS,))
    if misaligned:
        Xd = Xd.map_blocks(misaligned_copy, dtype=X.dtype)
        yd = yd.map_blocks(misaligned_copy, dtype=y.dtype)
    return Xd, yd


def theta(est):
    return np.concatenate([np.ravel(est.coef_), np.ravel(est.intercept_)])


FITS = {
    # kernel family exercised -> (problem, estimator)
    "moments (normal equations)": ("regression", lambda: daskfit.LinearRegression()),
    "weighted moments, lasso": ("regression", lambda: daskfit.Lasso(alpha=0.01)),
    "row gradient + Hessian (newton)": ("binary", lambda: daskfit.LogisticRegression()),
    "multinomial Hessian": ("multiclass", lambda: daskfit.LogisticRegression()),
    "row gradient (lbfgs, poisson)": ("counts",
                                      lambda: daskfit.PoissonRegressor(solver="lbfgs")),
    "proximal": ("binary", lambda: daskfit.LogisticRegression(l1_ratio=0.5, C=0.5)),
    "local SGD (averaging)": ("regression",
                              lambda: daskfit.Ridge(solver="averaging", max_iter=3)),
    "fold moments (RidgeCV)": ("regression",
                               lambda: daskfit.RidgeCV(alphas=(0.1, 10.0), cv=3)),
    "path kernel (LogisticRegressionCV)": ("binary",
                                           lambda: daskfit.LogisticRegressionCV(Cs=3, cv=3)),
}


@pytest.mark.parametrize("family", sorted(FITS))
def test_misaligned_chunks_are_computed_on_aligned_memory(family, product_log):
    kind, make = FITS[family]
    X, y = problem(kind)
    est_aligned = make().fit(*as_dask(X, y, misaligned=False))
    est_misaligned = make().fit(*as_dask(X, y, misaligned=True))
    # Prediction maps a kernel over the chunks too.
    predict = getattr(est_aligned, "decision_function", est_aligned.predict)
    predicted = [predict(as_dask(X, y, misaligned=m)[0]).compute() for m in (True, False)]
    assert False not in product_log  # no product ever ran on a misaligned operand
    np.testing.assert_array_equal(theta(est_misaligned), theta(est_aligned))
    assert est_misaligned.n_passes_ == est_aligned.n_passes_
    np.testing.assert_array_equal(*predicted)


@pytest.mark.parametrize("solver", ["sharded-gd", "bcd"])
def test_misaligned_column_blocks_are_computed_on_aligned_memory(solver, product_log):
    X, y = problem("regression")
    fits = [daskfit.Ridge(alpha=1.0, solver=solver, max_iter=20).fit(
        *as_dask(X, y, misaligned=m, column_chunks=4)) for m in (False, True)]
    assert False not in product_log
    np.testing.assert_array_equal(theta(fits[1]), theta(fits[0]))


def test_aligned_blocks_copy_only_misaligned_memory():
    X = np.arange(60.0).reshape(20, 3)
    views = [b for _, _, b in aligned_blocks(X)]
    assert all(np.shares_memory(b, X) for b in views)
    Xm = misaligned_copy(X)
    seen = [(block, b.flags.aligned, np.shares_memory(b, Xm), b.copy())
            for _, block, b in aligned_blocks(Xm)]
    assert all(ok and not shared for _, ok, shared, _ in seen)
    np.testing.assert_array_equal(np.vstack([copy for *_, copy in seen]), X)
    assert aligned(X) is X and aligned(None) is None
    assert aligned(Xm).flags.aligned and np.array_equal(aligned(Xm), X)


def test_from_array_persisted_fit_keeps_no_second_copy(client):
    """``da.from_array(X).persist()`` under a Client: chunks arrive misaligned.

    The fit leaves nothing of its own in worker memory (the user's persisted
    chunks are the only copy of X afterwards, each held once), makes as many
    passes as on chunks made on the workers and gives the same model.
    """
    import time

    from distributed import futures_of, wait

    X, y = problem("binary", seed=3)
    Xd, yd = client.persist([da.from_array(X, chunks=(300, P)), da.from_array(y, chunks=300)])
    wait([Xd, yd])
    flags = Xd.map_blocks(lambda b: np.array([[b.flags.aligned]]), chunks=(1, 1),
                          dtype=bool).compute()
    assert not flags.all()  # the test is only meaningful if chunks arrive misaligned
    est = daskfit.LogisticRegression().fit(Xd, yd)

    x_keys = {f.key for f in futures_of(Xd)}
    own = x_keys | {f.key for f in futures_of(yd)}

    def held(dask_worker):
        return [(k, int(getattr(v, "nbytes", 0))) for k, v in dask_worker.data.items()]

    def settled(items):
        held_x = sorted(k for k, _ in items if k in x_keys)
        return not [k for k, _ in items if k not in own] and held_x == sorted(x_keys)

    # Released keys leave the workers asynchronously, and replicas that work
    # stealing made during the passes are dropped by Dask's active memory
    # manager (every 2 s by default): wait for both, with a bound.
    deadline = time.monotonic() + 20
    while not settled(items := [kv for per_worker in client.run(held).values()
                                for kv in per_worker]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [k for k, _ in items if k not in own] == []
    # Each chunk of X is held once (a y chunk may be replicated next to its X).
    assert sorted(k for k, _ in items if k in x_keys) == sorted(x_keys)
    assert sum(nbytes for k, nbytes in items if k in x_keys) == X.nbytes

    made = client.persist([a.map_blocks(np.array, dtype=a.dtype) for a in (Xd, yd)])
    wait(made)  # the same numbers, made on the workers: aligned
    reference = daskfit.LogisticRegression().fit(*made)
    np.testing.assert_allclose(theta(est), theta(reference), rtol=1e-12, atol=1e-14)
    assert est.n_passes_ == reference.n_passes_
