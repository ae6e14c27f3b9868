"""Batches of streamed row chunks: a few tasks per pass, one chunk in memory at a time.

A streamed chunk (read from files or made by a task every pass) costs the
scheduler a task per step of its source (open, read, convert) plus the
kernel's task, and with root-task queuing a round trip per chunk: on two
cores about 10 ms per chunk, so a pass over 2,000 small chunks was 30x a
pass over 20 (Dask's own reduction of the same source costs as much).

Here the per-chunk part of the source's graph is carried inside a batch
task instead: the task computes chunk after chunk with Dask's synchronous
scheduler, runs the kernel on each and keeps only the merged partial sums,
so a batch holds one chunk at a time, as a streamed pass must. Keys that
several chunks need (an opened Zarr array, an in-memory array that chunks
are sliced from) stay ordinary dependencies of the batch tasks, computed
once per pass by the cluster.

The private Dask API this needs (``dask._task_spec``: the graph's task
objects) is reached through :func:`dask_task_spec` only; the canary test
``tests/test_streaming_memory.py::test_dask_task_spec_canary`` fails loudly
when a Dask release changes what daskfit relies on. Should the module be
gone at run time, passes fall back to one task per chunk (slower, correct).
"""

from __future__ import annotations

import functools

from dask.highlevelgraph import HighLevelGraph
from dask.local import get_sync

from ..kernels.chunks import combine


@functools.cache
def dask_task_spec():
    """``(DataNode, convert_legacy_graph)`` from Dask's private ``dask._task_spec``.

    The one use of a private Dask API in daskfit, in one place. What is
    relied on: ``convert_legacy_graph(dict)`` returns ``{key: node}`` whose
    nodes list their ``dependencies``; a ``DataNode(key, value)`` holds a
    literal ``value`` that ``dask.local.get_sync`` returns as is. Returns
    ``None`` when the module or a name is missing (then nothing is batched).
    """
    try:
        from dask._task_spec import DataNode, convert_legacy_graph
    except ImportError:
        return None
    return DataNode, convert_legacy_graph


class _Opaque:
    """A value the scheduler must not look inside (a nested graph or key names).

    Dask substitutes keys it finds in a task's arguments; the keys of a
    chunk's private graph, and the names of the shared keys, are data here.
    """

    def __init__(self, value):
        self.value = value


def plan_streamed_batches(arrays, chunk_keys, batches):
    """Per batch: each chunk's private graph, and the keys shared between chunks.

    Parameters
    ----------
    arrays : list of dask arrays
        X, y and sample_weight (those present).
    chunk_keys : list of tuple
        ``(x_key, y_key, w_key)`` per row chunk (``None`` where absent).
    batches : list of list of int
        Chunk indices per batch task.

    Returns
    -------
    plans : list of (private graphs, shared key list) per batch, or None
        None when the source cannot be inlined (it refers to data already
        on the cluster, e.g. persisted futures): then every chunk stays its
        own task.
    """
    spec = dask_task_spec()
    if spec is None:
        return None
    merged = HighLevelGraph.merge(*[a.__dask_graph__() for a in arrays])
    graph = spec[1](dict(merged))
    reached = [_reachable(graph, [k for k in keys if k is not None]) for keys in chunk_keys]
    if any(r is None for r in reached):
        return None
    users = {}
    for keys in reached:
        for key in keys:
            users[key] = users.get(key, 0) + 1
    plans = []
    for members in batches:
        shared = sorted({k for i in members for k in reached[i] if users[k] > 1}, key=str)
        private = [{k: graph[k] for k in reached[i] if users[k] == 1} for i in members]
        plans.append((private, shared))
    return plans


def _reachable(graph, keys):
    """Every key the given keys depend on (themselves included); None if one is not a task."""
    seen, stack = set(), list(keys)
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        node = graph.get(key)
        if node is None or _holds_future(node):
            return None
        seen.add(key)
        stack.extend(node.dependencies)
    return seen


def _holds_future(node):
    from distributed import Future

    data_node = dask_task_spec()[0]
    return isinstance(node, data_node) and isinstance(node.value, Future)


def streamed_batch_task(kernel, members, chunk_keys, plan, spec):
    """The task tuple for one batch: the shared keys are its only dependencies."""
    private, shared = plan
    keys = [chunk_keys[i] for i in members]
    return (run_streamed_batch, kernel, members, _Opaque((private, keys, shared)), list(shared),
            spec)


def run_streamed_batch(kernel, indices, packed, shared_values, spec):
    """Compute each chunk of the batch in turn, run ``kernel`` on it and merge."""
    private, keys, shared = packed.value
    data_node = dask_task_spec()[0]
    known = {key: data_node(key, value) for key, value in zip(shared, shared_values)}
    parts = []
    for index, graph, (xkey, ykey, wkey) in zip(indices, private, keys):
        wanted = [k for k in (xkey, ykey, wkey) if k is not None]
        values = dict(zip(wanted, get_sync({**known, **graph}, wanted)))
        parts.append(kernel(index, values[xkey], values.get(ykey), values.get(wkey), spec))
        del values  # the chunk goes before the next one is made
    return combine(parts)
