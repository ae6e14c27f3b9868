"""Cluster security: loopback only by default, TLS end to end, bounded waits.

- every socket a default ``connect()`` cluster listens on (scheduler,
  workers, nannies, dashboards) is bound to 127.0.0.1;
- a fit over ``tls://`` equals the fit over ``tcp://``;
- ``require_encryption`` refuses a plain ``tcp://`` scheduler before sending
  anything, and a client without certificates cannot talk to a TLS cluster;
- an unreachable scheduler is a ``ClusterUnreachable`` within the timeout.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import psutil
import pytest
from distributed import Client

import daskfit
from daskfit.engine.rows import cluster_workers

from conftest import make_binary


def _listening(processes, exclude=()):
    found = set()
    for proc in processes:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr not in exclude:
                found.add((proc.pid, conn.laddr.ip, conn.laddr.port))
    return found


def test_default_local_cluster_listens_on_loopback_only():
    me = psutil.Process()
    before = {c.laddr for c in me.net_connections(kind="inet")
              if c.status == psutil.CONN_LISTEN}
    client = daskfit.connect(n_workers=2, threads_per_worker=1, dashboard_address=":0")
    try:
        procs = [me] + me.children(recursive=True)
        sockets = _listening(procs, exclude=before)
        # scheduler + its dashboard, and per worker process at least its own server.
        assert len(sockets) >= 4
        assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert client.dashboard_link.startswith("http://127.0.0.1:")
    finally:
        client.close()
        client.cluster.close()


def _fit(client, X, y):
    return daskfit.LogisticRegression(solver="newton", tol=1e-10).fit(X, y)


def test_a_fit_over_tls_equals_the_fit_over_tcp(client):
    import dask.array as da

    X, y, _ = make_binary(seed=31, n=4_000)
    Xd, yd = da.from_array(X, chunks=(1_000, 5)), da.from_array(y, chunks=1_000)
    over_tcp = _fit(client, Xd, yd)
    tls = daskfit.connect(security="temporary", n_workers=2, threads_per_worker=1,
                          processes=False, dashboard_address=":0")
    try:
        assert tls.scheduler.address.startswith("tls://127.0.0.1:")
        workers = cluster_workers(tls)
        assert len(workers) == 2 and all(a.startswith("tls://") for a in workers)
        with tls.as_current():
            over_tls = _fit(tls, Xd, yd)
        # Equal up to BLAS round-off (in-process vs process workers).
        np.testing.assert_allclose(over_tls.coef_, over_tcp.coef_, rtol=1e-12, atol=0)
        # Without the cluster's certificates nobody gets in.
        with pytest.raises(ValueError, match="speaks TLS"):
            daskfit.connect(tls.scheduler.address, timeout="2s")
        with pytest.raises(daskfit.ClusterUnreachable, match="Could not reach"):
            daskfit.connect(tls.scheduler.address, security="temporary", timeout="2s")
    finally:
        tls.close()
        tls.cluster.close()


def test_require_encryption_refuses_a_plain_tcp_scheduler(cluster):
    started = time.monotonic()
    with pytest.raises(daskfit.ClusterUnreachable, match="not tls://"):
        daskfit.connect(cluster.scheduler_address, require_encryption=True)
    assert time.monotonic() - started < 1.0  # refused before any connection attempt


def test_require_encryption_makes_a_local_cluster_use_tls():
    client = daskfit.connect(require_encryption=True, n_workers=1, threads_per_worker=1,
                             processes=False, dashboard_address=":0")
    try:
        assert client.scheduler.address.startswith("tls://")
        assert client.security.require_encryption
    finally:
        client.close()
        client.cluster.close()


def test_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(daskfit.ClusterUnreachable, match=f"127.0.0.1:{port}"):
        daskfit.connect(f"tcp://127.0.0.1:{port}", timeout="2s")
    assert time.monotonic() - started < 15


def test_bad_security_settings_are_named():
    with pytest.raises(ValueError, match="tls_cert_file"):
        daskfit.connect("tls://127.0.0.1:1", security={"tls_cert_file": "x.pem"})
    with pytest.raises(ValueError, match="security must be"):
        daskfit.connect("tls://127.0.0.1:1", security=42)


@pytest.mark.timeout(30)
def test_a_port_that_accepts_and_never_answers_is_unreachable_within_the_timeout(silent_port):
    started = time.monotonic()
    with pytest.raises(daskfit.ClusterUnreachable, match=f"127.0.0.1:{silent_port}"):
        daskfit.connect(f"tcp://127.0.0.1:{silent_port}", timeout="1s")
    assert time.monotonic() - started < 5


#: A scheduler and one in-process worker in their own process; prints the address.
FREEZABLE_CLUSTER = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1",
                       dashboard_address="127.0.0.1:0", protocol="tcp://")
print(cluster.scheduler_address, flush=True)
time.sleep(120)   # the test kills it long before
"""


@pytest.mark.timeout(60)
def test_a_scheduler_frozen_mid_fit_ends_the_fit_with_a_clear_error():
    import operator
    import os
    import signal
    import subprocess
    import sys

    import dask
    import dask.array as da

    proc = subprocess.Popen([sys.executable, "-c", FREEZABLE_CLUSTER], stdout=subprocess.PIPE,
                            text=True)
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), address
        X, y, _ = make_binary(seed=5, n=200)
        # The chunk's task stops its own process -- scheduler and worker -- with
        # SIGSTOP: the scheduler freezes exactly while the fit waits for a pass.
        name = "frozen-chunk"
        freeze = (os.kill, (os.getpid,), signal.SIGSTOP)
        graph = {(name, 0, 0): (operator.itemgetter(1), [freeze, X])}
        Xd = da.Array(graph, name, chunks=((200,), (5,)), dtype=float)
        with dask.config.set({"daskfit.scheduler-timeout": "0.5s"}), \
                Client(address, timeout="10s") as client:
            assert cluster_workers(client)
            started = time.monotonic()
            with pytest.raises(daskfit.SchedulerUnresponsive, match="did not answer"):
                daskfit.LogisticRegression().fit(Xd, da.from_array(y, chunks=200))
            assert time.monotonic() - started < 10     # 2 x 0.5 s and slack, not minutes
            proc.kill()  # so that closing the client does not wait on the frozen scheduler
    finally:
        proc.kill()
        proc.wait(10)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_bare_dashboard_port_binds_loopback_not_every_interface(tmp_path):
    from daskfit.cli._config import load_config
    from daskfit.cli._run import connect_cluster

    me = psutil.Process()
    port, text_port = _free_port(), _free_port()
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[data]\npath = "x"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                   f'[cluster]\nn_workers = 1\nprocesses = false\n'
                   f'dashboard_address = "{text_port}"\n')
    # connect() with an int port, and [cluster] dashboard_address with a port as text.
    starts = [lambda: daskfit.connect(n_workers=1, threads_per_worker=1, processes=False,
                                      dashboard_address=port),
              lambda: connect_cluster(load_config(cfg))[0]]
    for expected, start in zip((port, text_port), starts):
        client = start()
        try:
            bound = {c.laddr.ip for c in me.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == expected}
            assert bound == {"127.0.0.1"}, bound
            assert client.dashboard_link.startswith(f"http://127.0.0.1:{expected}/")
        finally:
            client.close()
            client.cluster.close()


@pytest.mark.timeout(30)
def test_a_memory_limit_below_a_workers_baseline_is_refused_before_any_worker_starts(tmp_path):
    from daskfit.cli._config import load_config
    from daskfit.cli._exit import ConfigError

    # 60 MiB: every worker would be restarted for exceeding its limit, for ever.
    for limit in ("60MiB", 60 * 2**20):
        with pytest.raises(ValueError, match="memory_limit"):
            daskfit.connect(n_workers=2, memory_limit=limit, dashboard_address=":0")
    cfg = tmp_path / "run.toml"
    cfg.write_text('[data]\npath = "x"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                   '[cluster]\nmemory_limit = "60MiB"\n')
    with pytest.raises(ConfigError, match="cluster.memory_limit"):
        load_config(cfg)
