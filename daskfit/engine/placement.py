"""Where a fit computes: on the cluster, in this process, or from inside a task.

Three situations a user creates without thinking of them, each decided once
per public call (``fit``, ``score``, ``cross_validate``, ``diagnose``) by
:func:`placed`:

* **NumPy or pandas input while a Client is active.** The data is already in
  this process's memory. Shipping it to the workers puts the whole array in
  the task graph, where it is serialised, sent and deserialised (at
  misaligned addresses) before the first pass can start. When the cluster
  offers no more worker threads than this process has cores (a
  ``LocalCluster`` on the same machine, the common case), the fit runs here
  on Dask's threaded scheduler instead: the same kernels and passes, no
  transfer. A larger cluster gets the data once (persisted for an iterative
  solver, one streamed pass for a one-pass solver).
* **A fit inside a Dask task** (joblib's dask backend, dask-ml's
  ``GridSearchCV``, a ``client.submit``-ted function). The task's worker
  thread must not wait on tasks it queued itself. Data already in the task
  (NumPy, pandas) is fitted in the task on the synchronous scheduler; Dask
  collections are fitted through :func:`distributed.worker_client`, which
  secedes the task from the worker's thread pool while it waits.
* Otherwise Dask collections go to the current Client, or to Dask's local
  schedulers without one.

The choice and its reason are readable inside the call (:func:`placement_note`)
and end up in the estimator's ``persist_reason_`` and ``fit_plan_``.
"""

from __future__ import annotations

import contextvars
import functools
import os
from contextlib import contextmanager

__all__ = ["placed", "local_scheduler", "client_override", "placement_note"]

#: (scheduler for in-process passes or None, client to use or None, reason)
_PLACEMENT = contextvars.ContextVar("daskfit_placement", default=None)


def local_scheduler(default="threads"):
    """The Dask local scheduler in-process passes use (``"sync"`` inside a task)."""
    current = _PLACEMENT.get()
    return current[0] if current is not None and current[0] is not None else default


def client_override():
    """``(True, client or None)`` while :func:`placed` has decided, else ``(False, None)``."""
    current = _PLACEMENT.get()
    return (False, None) if current is None else (True, current[1])


def placement_note():
    """Why the current call computes where it does ("" outside :func:`placed`)."""
    current = _PLACEMENT.get()
    return "" if current is None else current[2]


def usable_cores():
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def inside_dask_task():
    """True when called from a task running on a Dask worker."""
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def _in_memory(X):
    from .._data import is_dask_collection

    return not is_dask_collection(X)


def _cluster_threads(client):
    from .rows import cluster_workers

    return sum(w.get("nthreads", 1) for w in cluster_workers(client).values())


@contextmanager
def _decided(scheduler, client, reason):
    token = _PLACEMENT.set((scheduler, client, reason))
    try:
        yield
    finally:
        _PLACEMENT.reset(token)


@contextmanager
def _placement(X):
    from .rows import default_client_or_none

    if _PLACEMENT.get() is not None:  # nested call (CV refits, diagnose's fits)
        yield
        return
    if inside_dask_task():
        if _in_memory(X):
            with _decided("sync", None, "inside a Dask task with the data in the task: "
                          "fitted in the task on the synchronous scheduler (waiting on the "
                          "cluster from a worker thread would deadlock it)"):
                yield
            return
        from distributed import worker_client

        with worker_client() as client, _decided(
                None, client, "inside a Dask task: the task secedes from its worker's "
                "thread pool while the cluster fits"):
            yield
        return
    client = default_client_or_none()
    if client is None or not _in_memory(X):
        yield
        return
    threads, cores = _cluster_threads(client), usable_cores()
    if threads <= cores:
        decision = ("threads", None, f"in-memory input with a Client whose {threads} worker "
                    f"thread(s) are no more than this process's {cores} core(s): fitted "
                    "here on Dask's threaded scheduler (shipping the array to the workers "
                    "costs more than the cluster's cores would save)")
    else:
        decision = (None, client, f"in-memory input sent once to the cluster's {threads} "
                    f"worker threads (more than this process's {cores} core(s))")
    with _decided(*decision):
        yield


def placed(method):
    """Decorate a public call whose first array argument is ``X`` (see the module doc).

    The call also releases whatever it persisted if it fails
    (:func:`daskfit.engine.rows.released_on_error`).
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        from .rows import released_on_error

        X = args[1] if len(args) > 1 else kwargs.get("X")
        with _placement(X), released_on_error():
            return method(*args, **kwargs)

    return wrapper
