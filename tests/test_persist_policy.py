"""One persist policy (``engine.rows.persisted_once``) for both engines and the CLI."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from daskfit._data import ShardedData
from daskfit.engine.columns import ShardedEngine
from daskfit.engine.rows import persisted_once, released_on_error


def _arrays(n=40, p=6):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p))
    y = X @ np.arange(p) + 1.0
    return X, y, da.from_array(X, chunks=(10, 3)), da.from_array(y, chunks=(10,))


def test_persisted_once_follows_the_decision_and_keeps_none_in_place():
    X, y, Xd, yd = _arrays()
    held, persisted, reason = persisted_once(
        (Xd, yd, None), persist=True, nbytes=Xd.nbytes, is_lazy=True, client=None,
        expected_passes=2)
    assert persisted and reason and held[2] is None
    # Persisted: the graph is the computed chunks, one task per chunk, same values.
    assert len(held[0].__dask_graph__()) == Xd.numblocks[0] * Xd.numblocks[1]
    np.testing.assert_array_equal(held[0].compute(), X)
    np.testing.assert_array_equal(held[1].compute(), y)

    same, persisted, _ = persisted_once(
        (Xd, yd, None), persist=False, nbytes=Xd.nbytes, is_lazy=True, client=None,
        expected_passes=2)
    assert not persisted and same[0] is Xd and same[1] is yd and same[2] is None


def test_column_engine_persists_by_the_policy_and_releases_it_when_the_call_fails():
    _, _, Xd, yd = _arrays()
    data = ShardedData.from_arrays(Xd, yd)
    with pytest.raises(RuntimeError, match="boom"):
        with released_on_error():
            engine = ShardedEngine(data, persist=True, client=None)
            assert not engine.streaming and data.X is not Xd
            raise RuntimeError("boom")
    # The failed call dropped what it persisted: the caller's arrays are back.
    assert engine.streaming and data.X is Xd and data.y is yd

    streamed = ShardedEngine(ShardedData.from_arrays(Xd, yd), persist=False, client=None)
    assert streamed.streaming and streamed.data.X is Xd   # the caller's arrays, not persisted


@pytest.mark.parametrize("solver", ["lbfgs", "sharded-gd"])
@pytest.mark.parametrize("persist", [True, False])
def test_estimators_say_whether_the_data_was_persisted(persist, solver):
    """``persisted_`` is the fact (row and column engines alike), not the reason's wording."""
    import daskfit

    X, y, Xd, yd = _arrays(n=400, p=6)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=(100,))
    est = daskfit.Ridge(alpha=1.0, solver=solver, persist=persist, tol=1e-8).fit(Xd, yd)
    assert est.persisted_ is persist
    assert est.fit_result_.persisted is persist
    reference = daskfit.Ridge(alpha=1.0, solver="normal").fit(X, y)
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=1e-5, atol=1e-7)
