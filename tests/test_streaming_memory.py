"""Out of core, checked by counting chunks alive on each worker.

A streamed fit (``persist=False``, or data larger than the cluster) must hold
only the chunks its worker threads are working on, however many chunks the
data has; every pass re-reads every chunk. Each row chunk of ``X`` here is
made by a worker-side source that registers the array with a worker plugin;
``weakref.finalize`` counts it dead when the last reference (a view, a fused
task's local, the worker's data store) goes. So the count sees every copy a
kernel keeps, fused into its task or not, which a look at the worker's data
store would miss.
"""

from __future__ import annotations

import weakref

import dask.array as da
import numpy as np
import pytest

import daskfit

N_CHUNKS, ROWS, P, SEED = 40, 2_000, 8, 11
BETA = np.linspace(-1.0, 1.0, P)


class _LiveChunks:
    """Worker plugin: chunks made, chunks alive now, and the most alive at once."""

    name = "daskfit-live-chunks"

    def setup(self, worker):
        self.made = self.live = self.peak = 0

    def teardown(self, worker):
        pass

    def born(self, array):
        self.made += 1
        self.live += 1
        self.peak = max(self.peak, self.live)
        weakref.finalize(array, self._died)

    def _died(self):
        self.live -= 1


def _rows(index):
    rng = np.random.default_rng([SEED, index])
    X = rng.normal(size=(ROWS, P))
    return X, rng.logistic(size=ROWS)


def _tracked_X(block_id=None):
    from distributed import get_worker

    X, _ = _rows(block_id[0])
    get_worker().plugins[_LiveChunks.name].born(X)
    return X


def _labels(block_id=None):
    X, noise = _rows(block_id[0])
    return (X @ BETA + noise > 0).astype(np.float64)


def _data():
    rows = (ROWS,) * N_CHUNKS
    X = da.map_blocks(_tracked_X, chunks=(rows, (P,)), dtype=np.float64,
                      meta=np.empty((0, 0)))
    y = da.map_blocks(_labels, chunks=(rows,), dtype=np.float64, meta=np.empty((0,)))
    return X, y


@pytest.fixture
def live_chunks(client):
    from distributed import WorkerPlugin

    plugin = type("LiveChunks", (_LiveChunks, WorkerPlugin), {})()
    client.register_plugin(plugin, name=plugin.name)

    def read():
        stats = client.run(lambda dask_worker: vars(dask_worker.plugins[plugin.name]).copy())
        return {w: {k: s[k] for k in ("made", "live", "peak")} for w, s in stats.items()}

    yield read
    client.unregister_worker_plugin(plugin.name)


def _in_memory_fit(cls, **params):
    Xn = np.concatenate([_rows(i)[0] for i in range(N_CHUNKS)])
    yn = np.concatenate([_labels((i,)) for i in range(N_CHUNKS)])
    return cls(**params).fit(Xn, yn)


@pytest.mark.parametrize("cls, min_passes", [(daskfit.LogisticRegression, 3),
                                             (daskfit.LinearRegression, 1)])
def test_a_streamed_fit_holds_a_few_chunks_per_worker_and_rereads_each_pass(
        client, live_chunks, cls, min_passes):
    X, y = _data()
    est = cls(persist=False, tol=1e-8).fit(X, y)
    stats = live_chunks()
    assert not est.fit_plan_.persist
    # Every pass read every chunk once: streaming really streams (and the
    # least-squares fit is one pass).
    assert sum(s["made"] for s in stats.values()) == N_CHUNKS * est.n_passes_
    assert est.n_passes_ >= min_passes
    if cls is daskfit.LinearRegression:
        assert est.n_passes_ == 1
    # 40 chunks on 2 threads are streamed in batches (a few tasks per
    # thread), each task making its chunks one at a time: one chunk alive per
    # worker thread (sometimes 2: the previous chunk can outlive its task step
    # until Python's cycle collector runs), never its 20. Chunk by chunk as
    # separate tasks it was 4: the one running, the one queued and those
    # whose release was in flight.
    assert max(s["peak"] for s in stats.values()) <= 2, stats
    assert all(s["live"] == 0 for s in stats.values()), stats  # nothing leaked
    reference = _in_memory_fit(cls, tol=1e-8)
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=1e-7, atol=1e-9)


def test_the_count_sees_persisted_chunks(client, live_chunks):
    # The same fit persisted: each chunk is made once and all of a worker's
    # chunks are alive together, so the bound above is a real constraint.
    X, y = _data()
    est = daskfit.LogisticRegression(persist=True, tol=1e-8).fit(X, y)
    stats = live_chunks()
    assert est.n_passes_ >= 3
    assert sum(s["made"] for s in stats.values()) == N_CHUNKS
    assert sum(s["peak"] for s in stats.values()) == N_CHUNKS, stats


def test_a_dask_dataframe_of_unknown_length_streams_and_says_why(client):
    from conftest import PROBLEMS, as_kind

    X, y, _ = PROBLEMS["binary"]()
    Xf, yf, _ = as_kind("ddf", X, y, None, (100, 100, 100))
    est = daskfit.LogisticRegression().fit(Xf, yf)
    assert est.n_passes_ >= 3
    # Unknown row count: the size is unknown before the first pass, so it streams
    # (persist_reason_ tells the user how to force persisting).
    assert est.fit_plan_.facts["rows"] == "unknown" and not est.fit_plan_.persist
    assert est.persist_reason_


def test_worker_count_is_fetched_not_read_from_a_cache_the_client_refreshes(client):
    # Client.scheduler_info() returns a cache that the client's periodic
    # refresh replaces with a summary without workers; a fit planned at that
    # moment saw a cluster of 0 workers and divided by zero (the planner, the
    # engine's thread count and the memory budget now all use
    # cluster_workers). With the cache just refreshed to no workers:
    from daskfit.engine.rows import cluster_workers
    from distributed.client import SchedulerInfo

    client.sync(client._update_scheduler_info, n_workers=0)
    assert client._scheduler_identity["workers"] == {}
    assert isinstance(client._scheduler_identity, SchedulerInfo)
    assert len(cluster_workers(client)) == 2


def test_a_crash_in_a_batch_task_names_the_chunks_of_that_batch():
    from distributed import KilledWorker

    from daskfit import WorkerCrashError

    batches = [[0, 1, 2], [3, 4, 5], [6, 9, 11]]
    message = str(WorkerCrashError.from_killed(KilledWorker(("daskfit-gram-ab", 1), None, 2),
                                               12, batches))
    assert message.startswith("One of row chunks 3-5 of 12 (task ('daskfit-gram-ab', 1))")
    message = str(WorkerCrashError.from_killed(KilledWorker(("daskfit-gram-ab", 2), None, 2),
                                               12, batches))
    assert message.startswith("One of row chunks 6, 9, 11 of 12")
    unbatched = [[i] for i in range(3)]
    message = str(WorkerCrashError.from_killed(KilledWorker(("daskfit-gram-ab", 2), None, 2),
                                               3, unbatched))
    assert message.startswith("Row chunk 2 of 3")


def test_a_crash_blames_the_chunks_source_before_a_kernel_that_shared_its_worker():
    # With few allowed failures a kernel task queued on the dying workers is
    # given up on too, and Dask may report it first: the source is blamed.
    from distributed import KilledWorker

    from daskfit import WorkerCrashError

    collateral = KilledWorker(("daskfit-labels-ab", 5), None, 1)
    killed = [("daskfit-labels-ab", 5), ("_poison-cd", 3, 0)]
    message = str(WorkerCrashError.from_killed(collateral, 6, [[i] for i in range(6)], killed))
    assert message.startswith("Row chunk 3 of 6 (task ('_poison-cd', 3, 0))")
    assert "Row chunk 5" in str(WorkerCrashError.from_killed(collateral, 6))
    # Two chunks' sources lost to the same crashes (one ran, one was queued on
    # the dying workers): Dask cannot say which killed them, so both are named.
    both = killed + [("_poison-cd", 1, 0)]
    message = str(WorkerCrashError.from_killed(collateral, 6, [[i] for i in range(6)], both))
    assert message.startswith("One of row chunks 1, 3 of 6 (tasks ('_poison-cd', 3, 0), "
                              "('_poison-cd', 1, 0))")


def _rows_and_sum(index, X, y, w, spec):
    return {"n": X.shape[0], "total": float(X.sum())}


def test_dask_task_spec_canary():
    # daskfit.engine.streaming relies on Dask's private dask._task_spec (through
    # dask_task_spec only). A Dask release that changes it must fail here,
    # loudly, rather than silently fall back to one task per chunk.
    import dask
    from dask.local import get_sync

    from daskfit.engine.streaming import dask_task_spec, plan_streamed_batches, run_streamed_batch

    spec = dask_task_spec()
    assert spec is not None, (f"Dask {dask.__version__} has no dask._task_spec.DataNode / "
                              "convert_legacy_graph: update daskfit.engine.streaming.dask_task_spec")
    data_node, convert_legacy_graph = spec
    X = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2)) * 2.0
    graph = convert_legacy_graph(dict(X.__dask_graph__()))
    key = X.__dask_keys__()[1][0]
    assert graph[key].dependencies and all(d in graph for d in graph[key].dependencies)
    value = np.arange(3.0)
    node = data_node("literal", value)
    assert node.value is value and get_sync({"literal": node}, ["literal"])[0] is value
    # End to end: a streamed batch plans (not the fallback) and computes its chunks.
    keys = [(row[0], None, None) for row in X.__dask_keys__()]
    plans = plan_streamed_batches([X], keys, [[0, 1, 2]])
    assert plans is not None, "streamed batching fell back to one task per chunk"
    private, shared = plans[0]
    from daskfit.engine.streaming import _Opaque

    out = run_streamed_batch(_rows_and_sum, [0, 1, 2], _Opaque((private, keys, shared)),
                             [get_sync(dict(X.__dask_graph__()), [k])[0] for k in shared], None)
    assert out["n"] == 6 and out["total"] == float((np.arange(12.0) * 2).sum())
