"""The row engine: builds and runs the Dask graph of every row-chunk pass.

One call to :meth:`Engine.reduce` is one *pass* over the data: a kernel is
mapped over every row chunk and the partial dicts are tree-reduced with
``split_every`` children per node, in the style of ``dask.array.reduction``'s
chunk / combine / aggregate. The coefficient vector is a literal inside the
task (a few KB), never a scattered future, so a lost worker costs only a
recompute. Task keys start with ``daskfit-<what>`` so the dashboard's task
stream shows the structure of a fit.

The engine counts passes; tests wrap it to assert the cost of a fit.
"""

from __future__ import annotations

import contextvars
import functools
import math
import time
import traceback
import uuid
from contextlib import contextmanager

import dask
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

# DataError is defined with the other typed errors; importable from here as before.
from ..errors import DaskfitError, DataError
from .._progress import PassLog
from ..kernels.chunks import bundle_chunks, combine, run_batch
from .placement import client_override, local_scheduler, placement_note, usable_cores
from .streaming import plan_streamed_batches, streamed_batch_task

__all__ = ["DataError", "Engine", "WorkerCrashError", "compute", "current_client", "memory_available",
           "persist_decision", "persisted_once", "DEFAULT_SPLIT_EVERY"]

#: Children per node of the reduction tree. 8 keeps the tree shallow
#: (3 levels for 512 chunks) while each combine stays a handful of small sums.
DEFAULT_SPLIT_EVERY = 8

#: Dask re-runs a task that raised this many times before failing the pass:
#: a flaky read (a network file system, object storage) is retried where it
#: failed instead of failing the whole fit. Bad data is not retried: kernels
#: report it as a result, they never raise.
TRANSIENT_RETRIES = 2

#: Tasks per worker thread in one pass, once chunks outnumber them. More than
#: one keeps every thread busy when chunks differ in cost; a handful, not
#: thousands, keeps the scheduler's per-task overhead out of the pass time.
TASKS_PER_THREAD = 4

#: Partials of a pass at most this large in all are merged on the client
#: (see ``Engine._merges_on_client``); larger ones are tree-reduced on the
#: workers so the client never receives more than one merged result.
CLIENT_MERGE_BYTES = 8 * 2**20

#: Persist only when the data takes less than this share of cluster memory:
#: the rest is needed for the per-chunk temporaries of the kernels.
PERSIST_MEMORY_FRACTION = 0.5


def default_client_or_none():
    """The default distributed ``Client`` if one exists and runs, else ``None``."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        client = default_client()
    except ValueError:
        return None
    # A closed client can linger as the default; it cannot run anything.
    return client if client.status == "running" else None


def current_client():
    """The Client this call computes on, or ``None`` for Dask's local schedulers.

    Inside a public call, :mod:`daskfit.engine.placement` may have decided
    otherwise than the default client (in-memory input fitted in-process, a
    fit inside a Dask task); outside one, the default client.
    """
    decided, client = client_override()
    return client if decided else default_client_or_none()


@contextmanager
def local_blas_threads(scheduler):
    """One BLAS thread per kernel while Dask's threaded scheduler runs passes here.

    Each scheduler thread runs a kernel whose products would otherwise start
    a BLAS thread per core: threads x cores threads on the same cores.
    """
    if scheduler != "threads":
        yield
        return
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


@functools.cache
def _blas_controller():
    """The BLAS libraries of this process, found once.

    ``threadpoolctl.threadpool_limits`` scans the process's loaded libraries
    on every call (``/proc/self/maps``): 3 ms, paid by every in-process pass
    (12 ms of a 0.38 s logistic fit on 2,000,000 x 50). SciPy's own BLAS is
    imported first so that the scan sees it too.
    """
    import scipy.linalg  # noqa: F401  (its bundled BLAS, if it has one)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def cluster_workers(client):
    """Every worker's identity (address -> info), fetched from the scheduler now.

    ``Client.scheduler_info()`` returns a cache that the client's periodic
    refresh overwrites with a worker-less summary (it asks for 0 workers), so
    a call that races the refresh can see a cluster with no workers at all.
    """
    from .._cluster import scheduler_patience

    return client.sync(client.scheduler.identity, n_workers=-1,
                       callback_timeout=scheduler_patience())["workers"]


def memory_available(client):
    """Total worker memory limit of the cluster, or this machine's free memory."""
    if client is not None:
        info = cluster_workers(client).values()
        return float(sum(w.get("memory_limit", 0) or 0 for w in info))
    import psutil

    return float(psutil.virtual_memory().available)


def persist_decision(persist, nbytes, is_lazy, client, expected_passes):
    """Whether to read the data into memory once before the first pass, and why.

    ``persist`` is the user's setting (``"auto"``, True or False); ``nbytes``
    the size of X (NaN when unknown). Returns ``(bool, reason)``; the reason
    starts with where the call computes when :mod:`daskfit.engine.placement`
    decided it.
    """
    do_persist, reason = _persist_decision(persist, nbytes, is_lazy, client, expected_passes)
    note = placement_note()
    return do_persist, (f"{note}; {reason}" if note else reason)


def _persist_decision(persist, nbytes, is_lazy, client, expected_passes):
    if persist is False:
        return False, "persist=False: streaming from the source every pass"
    if persist is True:
        return True, "persist=True"
    where = "cluster" if client is not None else "local"
    if not is_lazy and client is None:
        return False, "in-memory NumPy input, local scheduler: nothing to persist"
    if expected_passes <= 1:
        return False, "one-pass solver: streaming is cheaper than persisting"
    budget = PERSIST_MEMORY_FRACTION * memory_available(client)
    if math.isnan(nbytes):
        # A Dask DataFrame's row count is unknown before a pass: persisting it
        # could exceed the cluster's memory, so the safe choice is to stream.
        return False, (f"data size unknown before the first pass (row counts of a Dask "
                       f"DataFrame), so it cannot be checked against {PERSIST_MEMORY_FRACTION:.0%} "
                       f"of {where} memory ({budget / 2**20:.0f} MiB): streaming from the source "
                       "every pass (pass persist=True if it fits)")
    if not (nbytes <= budget):
        return False, (f"data ({nbytes / 2**20:.0f} MiB) exceeds {PERSIST_MEMORY_FRACTION:.0%} "
                       f"of {where} memory ({budget / 2**20:.0f} MiB): streaming from the source "
                       "every pass")
    return True, f"persisted once ({where} memory)"


def known_nbytes(X):
    """Bytes of the Dask array ``X``, or NaN while its row chunks are unknown."""
    return math.nan if any(math.isnan(c) for c in X.chunks[0]) else float(X.nbytes)


def persisted_once(arrays, *, persist, nbytes, is_lazy, client, expected_passes, holder=None):
    """The one persist policy: decide (:func:`persist_decision`), then persist once.

    Every reader of the data (the row engine, the column-block engine, the
    CLI's encoded data) goes through here, so the decision and the way data
    is held (with retries on a cluster; the local scheduler's BLAS threads
    limited without one) are the same everywhere.

    Parameters
    ----------
    arrays : sequence of Dask collections or None
        Persisted together; ``None`` entries are passed through.
    persist, nbytes, is_lazy, client, expected_passes
        As :func:`persist_decision`.
    holder : object with a ``release()`` method, optional
        The engine that keeps the persisted data: when it persists inside a
        public call, a failure of that call releases it
        (:func:`released_on_error`).

    Returns
    -------
    arrays : list
        The persisted collections (or ``arrays`` unchanged when not persisted).
    persisted : bool
    reason : str
        Why, as :func:`persist_decision` says it.
    """
    do_persist, reason = persist_decision(persist, nbytes, is_lazy, client, expected_passes)
    arrays = list(arrays)
    if not do_persist:
        return arrays, False, reason
    present = [a for a in arrays if a is not None]
    if client is not None:
        held = client.persist(present, retries=TRANSIENT_RETRIES)
    else:
        scheduler = local_scheduler()
        with local_blas_threads(scheduler):
            held = dask.persist(*present, scheduler=scheduler)
    it = iter(held)
    if holder is not None:
        _hold_until_call_ends(holder)
    return [next(it) if a is not None else None for a in arrays], True, reason


def payload_bytes(obj):
    """Bytes of the arrays in a task's input or output (the parts that travel).

    An estimate of communication that does not depend on the transport: the
    coefficient vector sent to each chunk task and the partial sums each
    returns (a merged result has the shape of one chunk's partial).
    """
    if obj is None:
        return 0
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(v) for v in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(payload_bytes(getattr(obj, f)) for f in obj.__dataclass_fields__)
    if isinstance(obj, (int, float, np.number)):
        return 8
    return 0


def reduction_tree(layer, leaves, merge, split_every, node_name, root_key):
    """Add the tasks that tree-reduce ``leaves`` with ``merge`` to ``layer``.

    The one tree builder of daskfit (the row engine's passes and the
    column-block engine's rounds): each node merges at most ``split_every``
    keys; inner nodes are ``(node_name, depth, index)``, the root is
    ``root_key``, merging what is left.

    Returns
    -------
    root_key : key
    depth : int
        Levels of merge tasks, at least 1.
    """
    level, depth = list(leaves), 1
    while len(level) > split_every:
        nxt = []
        for start in range(0, len(level), split_every):
            key = (node_name, depth, start // split_every)
            layer[key] = (merge, level[start:start + split_every])
            nxt.append(key)
        level, depth = nxt, depth + 1
    layer[root_key] = (merge, level)
    return root_key, depth


def compute(*collections):
    """Compute Dask collections where the engine would run them.

    On the current running client if there is one, else on the local threaded
    scheduler, whatever a stale ``scheduler`` setting left by a closed client
    says.
    """
    client = current_client()
    if client is not None:
        from .._cluster import wait_result

        return tuple(wait_result(client, f) for f in client.compute(list(collections)))
    scheduler = local_scheduler()
    with local_blas_threads(scheduler):
        return dask.compute(*collections, scheduler=scheduler)


#: Engines that persisted something during the current public call.
_HOLDING = contextvars.ContextVar("daskfit_holding", default=None)


def _hold_until_call_ends(engine):
    holding = _HOLDING.get()
    if holding is not None and engine not in holding:
        holding.append(engine)


@contextmanager
def released_on_error():
    """Release what a failed call persisted, and the locals its frames pinned.

    A fit that fails (bad chunk, diverging solver, Ctrl-C) must not leave
    its persisted chunks in cluster memory until the client closes: every
    engine that persisted during the call is released, and the locals of the
    failed call's frames (graphs that refer to persisted futures) are
    cleared from the traceback before it propagates.
    """
    holding = []
    token = _HOLDING.set(holding)
    try:
        yield
    except BaseException as exc:
        for engine in holding:
            engine.release()
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        _HOLDING.reset(token)
        # asyncio copies the current context into the timer handles of bounded
        # waits, and a handle outlives the wait until its deadline: emptied,
        # the list keeps no engine (nor its persisted chunks) alive meanwhile.
        holding.clear()


class WorkerCrashError(DaskfitError, RuntimeError):
    """One chunk's task killed every worker that ran it (Dask's ``KilledWorker``)."""

    @classmethod
    def from_killed(cls, exc, n_chunks, batches=None, killed=()):
        """The error for Dask's ``KilledWorker`` ``exc``, naming the chunk to blame.

        ``killed`` lists every task the scheduler gave up on after the same
        crashes. Tasks that merely shared a dying worker fail with the culprit
        (with few allowed failures), and any of them may be the one ``exc``
        names; a chunk's reader or source task (a key outside daskfit's pass)
        is blamed before a daskfit kernel.
        """
        candidates = [exc.task if hasattr(exc, "task") else None]
        candidates += [k for k in killed if k != candidates[0]]
        sources = [k for k in candidates if isinstance(k, tuple) and len(k) > 1
                   and isinstance(k[1], int) and not str(k[0]).startswith("daskfit-")]
        key = sources[0] if sources else candidates[0]
        task = key[1] if isinstance(key, tuple) and len(key) > 1 else None
        batched = (batches is not None and len(batches) < n_chunks
                   and isinstance(key, tuple) and str(key[0]).startswith("daskfit-"))
        # Several chunks' sources given up on after the same crashes: a task
        # queued on a dying worker counts the deaths as much as the one that
        # ran, so Dask cannot tell which killed it, and neither can we.
        lost = sorted({k[1] for k in sources})
        where = "A task"
        if len(lost) > 1:
            where = "One of row chunks " + ", ".join(map(str, lost)) + f" of {n_chunks}"
        elif isinstance(task, int) and batched:
            members = batches[task]  # a batch task: name its chunks
            if len(members) == 1:
                where = f"Row chunk {members[0]} of {n_chunks}"
            else:
                contiguous = members == list(range(members[0], members[-1] + 1))
                listed = (f"{members[0]}-{members[-1]}" if contiguous else
                          ", ".join(map(str, members[:5])) + (", ..." if len(members) > 5 else ""))
                where = f"One of row chunks {listed} of {n_chunks}"
        elif isinstance(task, int):
            where = f"Row chunk {task} of {n_chunks}"
        tasks = (f"task {key!r}" if len(lost) < 2 else
                 "tasks " + ", ".join(repr(k) for k in dict.fromkeys(sources)))
        return cls(
            f"{where} ({tasks}) crashed {getattr(exc, 'allowed_failures', '?')} worker "
            "process(es) in a row, so Dask gave up on it and nothing was fitted. The chunk, "
            "or the reader that loads it, kills the process (out of memory, a crash in "
            "native code). Inspect or drop that chunk (for Parquet, its file or row group), "
            "or give the workers more memory.")


class Engine:
    """Map a kernel over row chunks and tree-reduce; count the passes.

    Parameters
    ----------
    data : ChunkedData
        Row-chunked ``X``, ``y`` and ``sample_weight``.
    split_every : int, default=8
        Fan-in of the reduction tree.
    persist : {"auto", True, False}, default="auto"
        Read the data into (cluster) memory once before the first pass.
        ``"auto"`` persists lazy inputs when they fit in
        ``PERSIST_MEMORY_FRACTION`` of the memory available and the solver
        makes more than one pass.
    client : distributed.Client, optional
        Defaults to the current client; without one, Dask's local
        schedulers run the passes.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from daskfit._data import ChunkedData
    >>> from daskfit.kernels.chunks import moments_chunk
    >>> X = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2))
    >>> y = da.from_array(np.arange(6.0), chunks=2)
    >>> engine = Engine(ChunkedData(X, y, None, is_lazy=True))
    >>> engine.reduce(moments_chunk, None, "gram")["n"], engine.passes
    (6, 1)
    """

    def __init__(self, data, *, split_every=DEFAULT_SPLIT_EVERY, persist="auto", client=None):
        if not isinstance(split_every, int) or split_every < 2:
            raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}.")
        self.data = data
        self.split_every = split_every
        self.client = client if client is not None else current_client()
        self.persist = persist
        self.passes = 0
        self.bytes_communicated = 0
        # (label, seconds) per pass, for reports and tuning; each pass is reported
        # to the call's progress (verbose lines, the notebook bar) as it is logged.
        self.pass_log = PassLog()
        self.persisted = False
        self.persist_reason = "not decided yet"
        self.chunk_rows = None
        self._batches = None
        self._bundle_list = None
        self._streamed_plans = None

    # ------------------------------------------------------------- persist
    def prepare(self, expected_passes):
        """Decide whether to persist, and do it once (before the first pass)."""
        data = self.data
        sources = (data.X, data.y, data.sample_weight)
        held, persisted, self.persist_reason = persisted_once(
            sources, persist=self.persist, nbytes=known_nbytes(data.X), is_lazy=data.is_lazy,
            client=self.client, expected_passes=expected_passes, holder=self)
        if persisted:
            self._sources = sources
            data.X, data.y, data.sample_weight = held
            self.persisted = True

    def release(self):
        """Drop what this engine persisted (the data, the batch bundles).

        The cluster frees the chunks once nothing else refers to them; the
        data the caller passed in is left as it was.
        """
        if self.persisted:
            self.data.X, self.data.y, self.data.sample_weight = self._sources
            self.persisted = False
        self._bundle_list = None
        self._streamed_plans = None

    # ------------------------------------------------------------- reduce
    def graph(self, kernel, spec, label):
        """The Dask graph of one pass.

        One task per *batch* of row chunks (see :meth:`batches`): it runs
        the kernel on each chunk of the batch and merges their partials, so
        the scheduler sees a few tasks per worker thread, not one per chunk.

        Returns
        -------
        result : Delayed
            The merged partial dict.
        depth : int
            Levels of combine tasks: ``ceil(log(n_tasks, split_every))``, at
            least 1.
        """
        name, layer, deps = self._kernel_layer(kernel, spec, label)
        _, depth = reduction_tree(layer, [(name, b) for b in range(len(layer))], combine,
                                  self.split_every, f"{name}-combine", name)
        hlg = HighLevelGraph.from_collections(name, layer, dependencies=deps)
        return Delayed(name, hlg), depth

    def leaves(self, kernel, spec, label):
        """The kernel tasks of one pass, unmerged: one ``Delayed`` per task.

        For :meth:`reduce` when the partials are small enough to merge on
        the client (see :meth:`_merges_on_client`).
        """
        name, layer, deps = self._kernel_layer(kernel, spec, label)
        hlg = HighLevelGraph.from_collections(name, layer, dependencies=deps)
        return [Delayed(key, hlg, layer=name) for key in layer]

    def _kernel_layer(self, kernel, spec, label):
        """``(name, layer, dependencies)``: one kernel task per batch, keys ``(name, b)``."""
        data = self.data
        token = uuid.uuid4().hex
        name = f"daskfit-{label}-{token}"
        chunk_keys = self._chunk_keys()
        xkeys, ykeys, wkeys = zip(*chunk_keys)
        layer = {}
        batches = self.batches()
        if self._streamed_plans is not None:
            # Streamed batches: each task makes its chunks one at a time from
            # the source's per-chunk graph (see daskfit.engine.streaming).
            for b, members in enumerate(batches):
                layer[(name, b)] = streamed_batch_task(kernel, members, chunk_keys,
                                                       self._streamed_plans[b], spec)
            deps = [a for a in (data.X, data.y, data.sample_weight) if a is not None]
        elif len(batches) < data.n_chunks:
            # Each task reads one persisted bundle: a pass graph of a few keys,
            # not one reference per chunk (which costs the scheduler as much
            # as a task would).
            bundles = self._bundles(xkeys, ykeys, wkeys)
            for b, members in enumerate(batches):
                layer[(name, b)] = (run_batch, kernel, members, bundles[b].key, spec)
            deps = list(bundles)
        else:
            for i in range(data.n_chunks):
                layer[(name, i)] = (kernel, i, xkeys[i], ykeys[i], wkeys[i], spec)
            deps = [a for a in (data.X, data.y, data.sample_weight) if a is not None]
        return name, layer, deps

    def _bundles(self, xkeys, ykeys, wkeys):
        """One persisted ``(xs, ys, ws)`` bundle per batch, built on first use.

        A bundle holds references to its chunks (no copy: its task runs on
        the worker holding them), so every later pass depends on a few
        bundle keys instead of three keys per chunk. A lost worker loses its
        bundles and Dask recomputes them from the chunks' own lineage.
        """
        if self._bundle_list is None:
            data = self.data
            name = f"daskfit-bundle-{uuid.uuid4().hex}"
            layer = {(name, b): (bundle_chunks, [xkeys[i] for i in members],
                                 [ykeys[i] for i in members], [wkeys[i] for i in members])
                     for b, members in enumerate(self.batches())}
            deps = [a for a in (data.X, data.y, data.sample_weight) if a is not None]
            hlg = HighLevelGraph.from_collections(name, layer, dependencies=deps)
            bundles = [Delayed(key, hlg, layer=name) for key in layer]
            _hold_until_call_ends(self)
            if self.client is not None:
                self._bundle_list = self.client.persist(bundles, retries=TRANSIENT_RETRIES)
            else:
                self._bundle_list = list(dask.persist(*bundles, scheduler=local_scheduler()))
        return self._bundle_list

    def batches(self):
        """Row chunk indices per task of a pass, decided once per engine.

        With at most ``TASKS_PER_THREAD`` chunks per worker thread every
        chunk is its own task. Beyond that, chunks already in memory
        (persisted, or NumPy input) are batched so that a pass is about
        ``TASKS_PER_THREAD`` tasks per thread: the scheduler costs about a
        millisecond per task whatever the task does, which would otherwise
        dominate a pass over thousands of small chunks. Persisted chunks are
        batched with the chunks held by the same worker, so a batch runs
        where its data already is. Streamed chunks are batched too when
        their source's per-chunk graph can travel inside the batch task
        (:mod:`daskfit.engine.streaming`): the task makes and reduces one chunk at
        a time, so a batch never holds more than one of them.
        """
        if self._batches is not None:
            return self._batches
        n = self.data.n_chunks
        target = max(1, self._threads() * TASKS_PER_THREAD)
        groups = self._chunks_in_memory() if n > target else None
        streamed = (n > target and groups is None and self.data.is_lazy
                    and not self.persisted)
        if streamed:
            groups = [list(range(n))]
        if groups is None:
            self._batches = [[i] for i in range(n)]
        else:
            size = math.ceil(n / target)
            self._batches = [group[j:j + size] for group in groups
                             for j in range(0, len(group), size)]
        if streamed:
            data = self.data
            arrays = [a for a in (data.X, data.y, data.sample_weight) if a is not None]
            self._streamed_plans = plan_streamed_batches(arrays, self._chunk_keys(),
                                                         self._batches)
            if self._streamed_plans is None:  # the source cannot be inlined
                self._batches = [[i] for i in range(n)]
        return self._batches

    def _chunk_keys(self):
        """``(x_key, y_key, w_key)`` per row chunk, ``None`` where an input is absent."""
        data = self.data
        xkeys = [row[0] for row in data.X.__dask_keys__()]
        ykeys = data.y.__dask_keys__() if data.y is not None else [None] * len(xkeys)
        wkeys = (data.sample_weight.__dask_keys__() if data.sample_weight is not None
                 else [None] * len(xkeys))
        return list(zip(xkeys, ykeys, wkeys))

    def _threads(self):
        if self.client is None:
            return 1 if local_scheduler() == "sync" else usable_cores()
        workers = cluster_workers(self.client).values()
        return max(1, sum(w.get("nthreads", 1) for w in workers))

    def _chunks_in_memory(self):
        """Chunk indices grouped by the worker holding them; ``None`` when streamed."""
        n = self.data.n_chunks
        if self.client is None:
            return [list(range(n))] if (self.persisted or not self.data.is_lazy) else None
        from distributed import futures_of

        futures = futures_of(self.data.X)  # persisted here or by the caller
        if len(futures) != n:
            return None
        from .._cluster import scheduler_patience

        # Client.who_has passes extra keywords on to the scheduler, so the bound
        # goes on the scheduler call itself.
        where = self.client.sync(self.client.scheduler.who_has, keys=[f.key for f in futures],
                                 callback_timeout=scheduler_patience())
        by_key = {f.key: i for i, f in enumerate(futures)}
        groups = {}
        for key, workers in where.items():
            groups.setdefault(min(workers) if workers else "", []).append(by_key[key])
        if sum(len(g) for g in groups.values()) != n:  # keys we could not place
            return [list(range(n))]
        return [sorted(groups[w]) for w in sorted(groups)]

    def reduce(self, kernel, spec, label):
        """Run one pass and return the merged partial dict.

        Raises
        ------
        DataError
            If a chunk reported bad input (first bad chunk named).
        FloatingPointError
            If a chunk overflowed without bad input: the solver diverged.
        """
        started = time.perf_counter()
        if self.client is not None and self._merges_on_client():
            futures = self.client.compute(self.leaves(kernel, spec, label),
                                          retries=TRANSIENT_RETRIES)
            result = combine(self._computed_all(futures))
        elif self.client is not None:
            delayed, _ = self.graph(kernel, spec, label)
            result = self._computed(self.client.compute(delayed, retries=TRANSIENT_RETRIES))
        else:
            delayed, _ = self.graph(kernel, spec, label)
            scheduler = "sync" if self.data.n_chunks == 1 else local_scheduler()
            with local_blas_threads(scheduler):
                (result,) = dask.compute(delayed, scheduler=scheduler)
        self.passes += 1
        self.pass_log.append((label, time.perf_counter() - started))
        # The spec travels into every task and a partial comes out of it.
        self.bytes_communicated += len(self.batches()) * (
            payload_bytes(spec) + payload_bytes(result))
        if "chunk_rows" in result:
            rows = result.pop("chunk_rows")
            self.chunk_rows = tuple(rows[i] for i in sorted(rows))
        errors = sorted(result.get("errors", []), key=lambda e: e[0])
        if errors:
            index, message = errors[0]
            where = f" (first found in row chunk {index} of {self.data.n_chunks})"
            if message == "overflow":
                raise FloatingPointError(
                    "The objective or its gradient overflowed to inf/NaN"
                    f"{where} although the input is finite: the solver diverged. "
                    "Standardise the features, increase the regularisation, or use "
                    "solver='newton' or 'lbfgs'."
                )
            raise DataError(message + where)
        return result

    def _merges_on_client(self):
        """Whether a pass's partials are merged on the client instead of a worker.

        A merge task on a worker costs a scheduling round trip and a
        worker-to-worker transfer before the result travels to the client:
        10-20 ms a pass on a loopback cluster, a tenth of a Newton pass over
        2,000,000 x 50. When the partials are small and few (one tree level),
        the client fetches them directly (one transfer per worker, in
        parallel) and merges them itself. The largest partial a row kernel
        returns is a ``(p + 1)^2`` Hessian, so the rule bounds that.
        """
        n_tasks = len(self.batches())
        p = self.data.X.shape[1] + 1
        return (n_tasks <= self.split_every
                and n_tasks * p * p * 8 <= CLIENT_MERGE_BYTES)

    def _computed(self, future):
        """A pass's result; a chunk that keeps killing workers becomes one clear error.

        The wait ends with ``daskfit.SchedulerUnresponsive`` when the scheduler
        stops answering pings (see ``daskfit._cluster.wait_result``).
        """
        from distributed import KilledWorker

        from .._cluster import wait_result

        try:
            return wait_result(self.client, future)
        except KilledWorker as exc:
            raise WorkerCrashError.from_killed(exc, self.data.n_chunks, self._batches,
                                               self._killed_tasks()) from None

    def _computed_all(self, futures):
        """The results of several futures, fetched in one gather; waits bounded as in :meth:`_computed`."""
        from distributed import KilledWorker

        from .._cluster import wait_futures

        try:
            wait_futures(self.client, futures)
            return self.client.gather(futures)
        except KilledWorker as exc:
            raise WorkerCrashError.from_killed(exc, self.data.n_chunks, self._batches,
                                               self._killed_tasks()) from None

    def _killed_tasks(self):
        """Keys the scheduler gave up on after worker deaths (for the error's blame)."""

        def erred_after_deaths(dask_scheduler):
            return [ts.key for ts in dask_scheduler.tasks.values()
                    if ts.state == "erred" and ts.suspicious]

        try:
            from .._cluster import scheduler_patience

            return self.client.run_on_scheduler(erred_after_deaths,
                                                callback_timeout=scheduler_patience())
        except (OSError, TimeoutError):  # the scheduler is gone too: blame what KilledWorker names
            return []

    # ------------------------------------------------------ asynchronous
    def map_chunks_as_completed(self, kernel, next_spec, label):
        """Run ``kernel`` once per row chunk and resubmit each chunk as it completes.

        A generator for asynchronous solvers. Every row chunk ``i`` is
        submitted as its own task with ``next_spec(i)`` (the coefficients
        travel inside the task, as in :meth:`reduce`); each completed task is
        yielded as ``(index, spec, result)`` and, once the caller has used
        it, that chunk is resubmitted with a fresh ``next_spec(index)`` (the
        newest coefficients). ``next_spec`` returning ``None`` retires the
        chunk; the generator ends when no task is left. Closing it (or
        leaving the ``for`` loop) cancels the tasks still in flight.

        With a distributed client every chunk is in flight at once and
        results arrive in completion order (``distributed.wait``, first completed),
        so a slow worker never stalls the others; the order, and so the
        result of an asynchronous solver, can differ from run to run.
        Without one, chunks run one at a time in round-robin order on the
        synchronous scheduler, each submitted just before it runs:
        deterministic, with no staleness.

        Cost accounting is the same as :meth:`reduce`'s: every ``n_chunks``
        completed tasks count as one pass (a final partial round counts as
        one more), and each task adds the bytes of its spec and its result.

        Raises
        ------
        DataError, FloatingPointError
            As :meth:`reduce`, when a chunk reports bad input or overflow.
        """
        data = self.data
        n_chunks = data.n_chunks
        chunk_keys = self._chunk_keys()
        deps = [a for a in (data.X, data.y, data.sample_weight) if a is not None]

        def task(index, spec):
            key = (f"daskfit-{label}-{uuid.uuid4().hex}", index)
            layer = {key: (kernel, index, *chunk_keys[index], spec)}
            return Delayed(key, HighLevelGraph.from_collections(key[0], layer,
                                                                dependencies=deps),
                           layer=key[0])

        def check(index, result):
            errors = sorted(result.get("errors", []), key=lambda e: e[0])
            if not errors:
                return
            message = errors[0][1]
            where = f" (found in row chunk {index} of {n_chunks})"
            if message == "overflow":
                raise FloatingPointError(
                    f"The computation overflowed to inf/NaN{where} although the input is "
                    "finite: the solver diverged. Standardise the features, lower the "
                    "learning rate, or use solver='newton' or 'lbfgs'.")
            raise DataError(message + where)

        visits = 0
        started = time.perf_counter()

        def count(spec, result):
            nonlocal visits, started
            visits += 1
            self.bytes_communicated += payload_bytes(spec) + payload_bytes(result)
            if visits % n_chunks == 0:
                self.passes += 1
                self.pass_log.append((label, time.perf_counter() - started))
                started = time.perf_counter()

        in_flight = {}
        try:
            if self.client is None:
                from collections import deque

                queue = deque(range(n_chunks))
                while queue:
                    index = queue.popleft()
                    spec = next_spec(index)
                    if spec is None:
                        continue
                    (result,) = dask.compute(task(index, spec), scheduler="sync")
                    count(spec, result)
                    check(index, result)
                    yield index, spec, result
                    queue.append(index)
            else:
                from .._cluster import wait_futures

                def submit(index):
                    spec = next_spec(index)
                    if spec is not None:
                        future = self.client.compute(task(index, spec))
                        in_flight[future.key] = (index, spec, future)

                for index in range(n_chunks):
                    submit(index)
                while in_flight:
                    # Completion order, each wait bounded by the scheduler's patience.
                    done, _ = wait_futures(self.client, [f for _, _, f in in_flight.values()],
                                           return_when="FIRST_COMPLETED")
                    for future in done:
                        index, spec, _ = in_flight.pop(future.key)
                        result = future.result()
                        count(spec, result)
                        check(index, result)
                        yield index, spec, result
                        submit(index)
        finally:
            if in_flight and self.client is not None:
                self.client.cancel([f for _, _, f in in_flight.values()])
            if visits % n_chunks:
                self.passes += 1
                self.pass_log.append((label, time.perf_counter() - started))
