"""Worker faults on a real process cluster (nanny workers, processes killed for real).

- a worker killed in the middle of a pass: the lost tasks are recomputed and
  the coefficients equal a fault-free fit's;
- a worker holding persisted chunks killed between passes: those chunks are
  recomputed from their source, same coefficients;
- a chunk that kills every worker that runs it: one clear error naming the
  chunk, and the cluster is still usable;
- a transient read error: retried where it failed, the fit is unaffected.

The coefficient vector travels inside every task (never scattered), which
is what makes a lost worker cost only a recompute.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import dask
import dask.array as da
import numpy as np
import psutil
import pytest
from distributed import Client, LocalCluster, futures_of

import daskfit
from daskfit.engine.rows import Engine, cluster_workers

from conftest import make_binary


def _process_cluster(**config):
    with dask.config.set(config):
        return LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address="127.0.0.1:0",
                            memory_limit="1GiB")


@pytest.fixture(scope="module")
def nanny_cluster():
    with _process_cluster() as cluster:
        yield cluster


@pytest.fixture
def nanny_client(nanny_cluster):
    with Client(nanny_cluster) as client:
        client.wait_for_workers(2)
        yield client


def _data(n=40_000, p=8, chunks=8):
    X, y, _ = make_binary(seed=21, n=n, p=p)
    return da.from_array(X, chunks=(n // chunks, p)), da.from_array(y, chunks=n // chunks)


def _kill(client, address):
    """SIGKILL the worker process at ``address`` (its nanny starts a new one)."""
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    return pid


def _kill_on_pass(monkeypatch, client, pass_number, *, during, victim=None):
    """Kill a worker when the engine starts pass ``pass_number``.

    ``during=True``: 20 ms into the pass (tasks in flight are lost);
    ``during=False``: just before it (results and persisted chunks are lost).
    Returns a dict filled with what happened.
    """
    original = Engine.reduce
    seen = {"passes": 0, "killed": None, "held": None}

    def reduce(self, kernel, spec, label):
        seen["passes"] += 1
        if seen["passes"] == pass_number:
            address = victim or sorted(cluster_workers(client))[0]
            who_has = client.who_has(futures_of(self.data.X))  # empty unless persisted
            seen["held"] = [k for k, where in who_has.items() if address in where]
            if during:
                timer = threading.Timer(0.02, lambda: seen.update(killed=_kill(client, address)))
                timer.start()
            else:
                seen["killed"] = _kill(client, address)
        return original(self, kernel, spec, label)

    monkeypatch.setattr(Engine, "reduce", reduce)
    return seen


def _fit(X, y, **params):
    return daskfit.LogisticRegression(solver="newton", tol=1e-10, **params).fit(X, y)


def test_worker_killed_during_a_pass_gives_the_same_coefficients(nanny_client, monkeypatch):
    X, y = _data()
    expected = _fit(X, y, persist=False)
    seen = _kill_on_pass(monkeypatch, nanny_client, 3, during=True)
    got = _fit(X, y, persist=False)
    assert seen["killed"] is not None and not psutil.pid_exists(seen["killed"])
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(got.intercept_, expected.intercept_, rtol=1e-12, atol=0)
    assert got.n_passes_ == expected.n_passes_


def test_worker_holding_persisted_chunks_killed_recomputes_from_source(nanny_client,
                                                                       monkeypatch):
    X, y = _data()
    expected = _fit(X, y, persist=False)
    seen = _kill_on_pass(monkeypatch, nanny_client, 2, during=False)
    got = _fit(X, y, persist=True)
    assert got.fit_plan_.persist
    assert seen["held"], "the victim held none of the persisted chunks: nothing tested"
    assert not psutil.pid_exists(seen["killed"])
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-12, atol=0)


def _poison(block, block_info=None):
    if block_info[0]["chunk-location"][0] == 3:
        os._exit(1)  # what an out-of-memory kill or a segfault looks like from outside
    return block


def test_a_chunk_that_kills_every_worker_is_one_clear_error():
    with _process_cluster(**{"distributed.scheduler.allowed-failures": 1}) as cluster, \
            Client(cluster) as client:
        X, y = _data(n=6_000, chunks=6)
        Xp = X.map_blocks(_poison, dtype=X.dtype)
        with pytest.raises(daskfit.WorkerCrashError) as info:
            daskfit.LogisticRegression(persist=False).fit(Xp, y)
        assert "nothing was fitted" in str(info.value)
        # Chunk 3 is named: alone, or with a chunk that was queued on the same
        # dying workers (Dask gives up on both and cannot tell them apart).
        named = re.match(r"(?:Row chunk|One of row chunks) ([\d, ]+) of 6", str(info.value))
        assert named and 3 in [int(i) for i in named.group(1).split(", ")], str(info.value)
        # The cluster survives: nannies restarted the workers. (Fresh keys: the
        # scheduler remembers the keys that were running when workers died.)
        client.wait_for_workers(2, timeout=60)
        Xf, yf = (da.from_array(a.compute(scheduler="sync"), chunks=a.chunks, name=False)
                  for a in (X, y))
        fitted = daskfit.LogisticRegression(tol=1e-10).fit(Xf, yf)
        expected = daskfit.LogisticRegression(tol=1e-10).fit(X.compute(scheduler="sync"),
                                                             y.compute(scheduler="sync"))
        np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=1e-10)


def _flaky(block, marker_dir, block_info=None):
    """Fails the first time each chunk is read (a dropped connection), then works."""
    marker = os.path.join(marker_dir, str(block_info[0]["chunk-location"][0]))
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError("Connection reset by peer (simulated transient read error)")
    return block


def test_transient_read_errors_are_retried(client, tmp_path):
    X, y = _data(n=6_000, chunks=6)
    expected = daskfit.LogisticRegression(tol=1e-10).fit(X, y)
    flaky = X.map_blocks(_flaky, str(tmp_path), dtype=X.dtype)
    got = daskfit.LogisticRegression(tol=1e-10, persist=False).fit(flaky, y)
    assert len(os.listdir(tmp_path)) == 6  # every chunk failed once
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-12)


def _wait_for_restart(client, killed_pid, timeout=120):
    """Both workers up again, the killed one replaced by its nanny."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set(client.run(os.getpid).values()) if cluster_workers(client) else set()
        if len(pids) == 2 and killed_pid not in pids:
            return
        time.sleep(0.2)
    raise AssertionError(f"workers did not come back within {timeout} s: "
                         f"{cluster_workers(client).keys()}")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("DASKFIT_SOAK_TEST"),
                    reason="opt-in (DASKFIT_SOAK_TEST=1): in 2 of the last 3 full-suite runs "
                           "a nanny's replacement worker did not register within 120 s after "
                           "the fifth SIGKILL (never when this module runs alone); cause not "
                           "found yet")
def test_soak_fifty_fits_with_workers_killed_at_random(nanny_client, monkeypatch):
    """50 fits on one cluster, a worker killed at a random moment in every fifth:
    every result correct, no leaked processes, worker memory flat."""
    rng = np.random.default_rng(0)
    X, y = _data(n=8_000, chunks=4)
    expected = _fit(X, y, persist=False)
    ours = psutil.Process()

    def worker_rss():
        return sum(nanny_client.run(lambda: psutil.Process().memory_info().rss).values())

    children_before = len(ours.children(recursive=True))
    rss_start = None
    original = Engine.reduce
    for i in range(50):
        kill = i % 10 == 2
        if kill:
            pass_number = int(rng.integers(1, expected.n_passes_ + 1))
            seen = _kill_on_pass(monkeypatch, nanny_client, pass_number,
                                 during=bool(rng.integers(2)))
        got = _fit(X, y, persist=bool(i % 2))
        monkeypatch.setattr(Engine, "reduce", original)
        np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-10, err_msg=f"fit {i}")
        if kill:
            assert seen["killed"] is not None
            _wait_for_restart(nanny_client, seen["killed"])
        if i == 5:
            rss_start = worker_rss()
    nanny_client.wait_for_workers(2, timeout=30)
    time.sleep(0.5)
    assert len(ours.children(recursive=True)) == children_before  # no leaked processes
    # Flat: a leak of even one copy of the data (3 MB) per fit would add 130 MB.
    assert worker_rss() < rss_start + 100 * 2**20


def _worker_keys(client):
    return {str(k) for keys in client.run(lambda dask_worker: list(dask_worker.data)).values()
            for k in keys}


@pytest.mark.parametrize("make", [lambda: daskfit.LogisticRegression(persist=True),
                                  lambda: daskfit.Ridge(persist=True, solver="lbfgs")])
def test_a_failed_persisted_fit_releases_its_chunks(client, make):
    """A bad chunk fails the fit; what the fit persisted leaves the workers.

    The exception is kept alive (as a notebook keeps the last traceback), and
    the wait for the release is bounded.
    """
    X, y, _ = make_binary(n=4_000)
    X[3_100, 2] = np.nan  # in the fourth of eight chunks
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y.astype(float), chunks=500)
    before = _worker_keys(client)
    with pytest.raises(ValueError, match="NaN") as failure:
        make().fit(Xd, yd)
    deadline = time.monotonic() + 10
    while (left := _worker_keys(client) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == set()
    assert failure.value is not None


def test_a_persisted_fit_leaves_nothing_on_the_workers(client):
    """After a successful ``persist=True`` fit returns, its chunks leave the workers.

    Within seconds, not at the scheduler-patience deadline of the timer
    handles that bounded waits leave on the event loop (each holds a copy of
    the call's context).
    """
    X, y, _ = make_binary(n=4_000)
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y.astype(float), chunks=500)
    before = _worker_keys(client)
    daskfit.LogisticRegression(persist=True).fit(Xd, yd)
    deadline = time.monotonic() + 5
    while (left := _worker_keys(client) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == set()
