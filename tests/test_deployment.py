"""The deployment guide's path, for real: ``dask scheduler`` + ``dask worker`` over TLS.

docs/guide/deployment.md tells how to run a scheduler and workers by hand
with certificates and attach daskfit to them. This module does exactly that
on 127.0.0.1, with the commands and flags the page shows (a free port and a
scheduler file instead of 8786, no dashboards, so that tests never collide):

- a certificate authority and a certificate signed by it, made here;
- ``dask scheduler --protocol tls ... --tls-ca-file --tls-cert --tls-key`` and
  ``dask worker tls://... --nworkers 1 --nthreads 1 --memory-limit ... --preload daskfit`` as
  subprocesses, with ``distributed.comm.require-encryption`` on (the
  ``DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION`` variable the page shows);
- ``daskfit.connect("tls://...", security={...paths...})``: a fit on the
  worker equals the in-process fit; a pipeline's ``[cluster]`` TLS keys
  (paths relative to the file) attach the same way;
- a ``tcp://`` address is refused by ``require_encryption`` before anything is
  sent, a client without certificates cannot use the TLS scheduler, and
  ``require_encryption`` alone is not taken for certificates;
- ``connect`` warns when a worker has another daskfit than the client.

Every wait is bounded; the subprocesses are always killed.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import pytest
from distributed.versions import VersionMismatchWarning

import daskfit

from conftest import make_binary

#: Bound on starting a scheduler or a worker process (a loaded 2-core machine).
START_TIMEOUT = 30


def _write_certificates(directory):
    """A CA and one certificate + key it signed (for 127.0.0.1), as PEM files.

    What ``openssl`` makes in the guide; distributed checks the chain (both
    ways), not host names.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5),
             "not_valid_after": now + datetime.timedelta(days=1)}

    def signed(subject, key, issuer, issuer_key, extension):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(valid["not_valid_before"])
                   .not_valid_after(valid["not_valid_after"]))
        return builder.add_extension(*extension).sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "daskfit-test-ca")])
    ca = signed(ca_name, ca_key, ca_name, ca_key,
                (x509.BasicConstraints(ca=True, path_length=None), True))
    cert = signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dask")]), key, ca_name,
                  ca_key, (x509.SubjectAlternativeName(
                      [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False))
    pem = serialization.Encoding.PEM
    paths = {name: str(directory / f"{name}.pem") for name in ("ca", "cert", "key")}
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


def _tls_flags(paths):
    return ["--tls-ca-file", paths["ca"], "--tls-cert", paths["cert"], "--tls-key", paths["key"]]


def _environment(**extra):
    # The page's DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION: the scheduler and
    # the workers refuse any unencrypted connection.
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION="True", **extra)
    return env


def _dask(*args, log, env):
    """``dask SUBCOMMAND ...`` (as ``python -m dask``, the same command line)."""
    # Started outside the checkout: ``python -m`` puts the working directory
    # first on the path, and a checkout's ``daskfit.egg-info`` (an editable
    # install) would then answer for the installed daskfit.
    return subprocess.Popen([sys.executable, "-m", "dask", *args], env=env,
                            cwd=Path(log.name).parent, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc):
    """Kill ``proc`` and what it started (the nanny's worker process), waiting at most 10 s each."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):  # it ended with its parent
            child.kill()
    psutil.wait_procs(family, timeout=10)


def _start_worker(address, paths, log, env, *extra):
    return _dask("worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--memory-limit", "1GiB", "--host", "127.0.0.1", "--no-dashboard",
                 *_tls_flags(paths), *extra, log=log, env=env)


def _read_scheduler_file(path, proc, log_path):
    """The scheduler's address from its ``--scheduler-file``, waiting at most START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dask scheduler exited {proc.returncode}:\n"
                                 + open(log_path).read())
        try:
            with open(path) as f:
                return json.load(f)["address"]
        except (FileNotFoundError, json.JSONDecodeError):  # not written (completely) yet
            time.sleep(0.05)
    raise AssertionError(f"dask scheduler wrote no {path} in {START_TIMEOUT} s:\n"
                         + open(log_path).read())


@pytest.fixture(scope="module")
def tls_scheduler(tmp_path_factory):
    """A TLS ``dask scheduler`` and one ``dask worker`` (1 process x 1 thread), as the guide runs them."""
    directory = tmp_path_factory.mktemp("deployment")
    paths = _write_certificates(directory)
    scheduler_file = directory / "scheduler.json"
    logs = {name: open(directory / f"{name}.log", "w") for name in ("scheduler", "worker")}
    procs = []
    try:
        procs.append(_dask("scheduler", "--protocol", "tls", "--host", "127.0.0.1",
                           "--port", "0", "--no-dashboard", *_tls_flags(paths),
                           "--scheduler-file", str(scheduler_file),
                           log=logs["scheduler"], env=_environment()))
        address = _read_scheduler_file(scheduler_file, procs[0], directory / "scheduler.log")
        procs.append(_start_worker(address, paths, logs["worker"], _environment(),
                                   "--preload", "daskfit"))
        yield {"address": address, "paths": paths, "directory": directory,
               "security": {"tls_ca_file": paths["ca"], "tls_client_cert": paths["cert"],
                            "tls_client_key": paths["key"]}}
    finally:
        for proc in procs:
            _stop(proc)
        for log in logs.values():
            log.close()


def _close(client):
    client.close(timeout=10)


def test_a_fit_through_a_tls_scheduler_and_worker_equals_the_in_process_fit(tls_scheduler):
    import dask.array as da
    from distributed import get_task_stream

    X, y, _ = make_binary(seed=11, n=240)
    here = daskfit.LogisticRegression(solver="newton", tol=1e-10).fit(X, y)

    assert tls_scheduler["address"].startswith("tls://127.0.0.1:")
    client = daskfit.connect(tls_scheduler["address"], security=tls_scheduler["security"],
                             require_encryption=True, timeout="10s")
    try:
        client.wait_for_workers(1, timeout=START_TIMEOUT)
        assert all(w.startswith("tls://") for w in client.scheduler_info()["workers"])
        with get_task_stream(client) as stream:
            remote = daskfit.LogisticRegression(solver="newton", tol=1e-10).fit(
                da.from_array(X, chunks=60), da.from_array(y, chunks=60))
        assert stream.data, "the passes must run on the dask worker"
    finally:
        _close(client)
    np.testing.assert_allclose(remote.coef_, here.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(remote.intercept_, here.intercept_, rtol=1e-8, atol=1e-10)


def test_require_encryption_refuses_a_tcp_address_before_sending_anything(tls_scheduler):
    # A listening socket that records whether anyone connected.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(daskfit.ClusterUnreachable, match="tls://"):
            daskfit.connect(f"tcp://127.0.0.1:{port}", security=tls_scheduler["security"],
                            require_encryption=True, timeout="5s")
        assert time.monotonic() - started < 1
        with pytest.raises(socket.timeout):
            listener.accept()   # nothing was sent, not even a TCP connection


def test_a_client_without_certificates_cannot_use_the_tls_scheduler(tls_scheduler):
    host_port = tls_scheduler["address"].removeprefix("tls://")
    started = time.monotonic()
    with pytest.raises(daskfit.ClusterUnreachable, match=host_port):
        daskfit.connect(f"tcp://{host_port}", timeout="2s")
    assert time.monotonic() - started < 8      # the 2 s bound and slack, not minutes


def test_connect_warns_when_a_worker_runs_another_daskfit(tls_scheduler, tmp_path):
    # A worker whose installed daskfit says 9.9.9: a distribution record first on its path.
    record = tmp_path / "site" / "daskfit-9.9.9.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text("Metadata-Version: 2.1\nName: daskfit\nVersion: 9.9.9\n")
    path = os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])
    with open(tmp_path / "worker.log", "w") as log:
        other = _start_worker(tls_scheduler["address"], tls_scheduler["paths"], log,
                              _environment(PYTHONPATH=path), "--no-nanny")  # cheaper
        try:
            from distributed import Client
            from distributed.security import Security

            security = Security(**tls_scheduler["security"], require_encryption=True)
            with Client(tls_scheduler["address"], security=security, timeout="10s") as watcher:
                watcher.wait_for_workers(2, timeout=START_TIMEOUT)
            with pytest.warns(VersionMismatchWarning, match="9.9.9") as caught:
                client = daskfit.connect(tls_scheduler["address"],
                                         security=tls_scheduler["security"], timeout="10s")
            _close(client)
            message = str(next(w.message for w in caught
                               if "9.9.9" in str(w.message)))
            assert "daskfit" in message and daskfit.__version__ in message
        finally:
            _stop(other)


def test_connect_is_silent_when_the_workers_match(tls_scheduler):
    from daskfit._cluster import check_worker_versions

    with warnings.catch_warnings():
        warnings.simplefilter("error", VersionMismatchWarning)
        client = daskfit.connect(tls_scheduler["address"], security=tls_scheduler["security"],
                                 timeout="10s")
        try:
            client.wait_for_workers(1, timeout=START_TIMEOUT)
            assert check_worker_versions(client) == {}
        finally:
            _close(client)


def test_require_encryption_alone_is_not_a_certificate_for_a_remote_tls_scheduler(
        tls_scheduler, tmp_path):
    from daskfit.cli._config import load_config
    from daskfit.cli._exit import BAD_CONFIG, ConfigError
    from daskfit.cli._run import connect_cluster

    # Before: require_encryption made throw-away certificates, which the scheduler
    # refused after a TLS handshake ("unreachable", exit 5): the fix is the certificates.
    with pytest.raises(daskfit.errors.ConfigError, match="tls_ca_file") as info:
        daskfit.connect(tls_scheduler["address"], require_encryption=True, timeout="5s")
    assert info.value.setting == "security"
    cfg = tmp_path / "run.toml"
    cfg.write_text('[data]\npath = "x"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                   f'[cluster]\naddress = "{tls_scheduler["address"]}"\n'
                   'require_encryption = true\ntimeout = "5s"\n')
    with pytest.raises(ConfigError, match="cluster.security") as info:
        connect_cluster(load_config(cfg))
    assert info.value.code == BAD_CONFIG


def test_a_pipeline_attaches_with_the_cluster_tls_keys_of_the_guide(tls_scheduler, tmp_path):
    import shutil

    from daskfit.cli._config import load_config
    from daskfit.cli._run import connect_cluster

    # The page's [cluster] section: certificate paths relative to the configuration file.
    (tmp_path / "certs").mkdir()
    for name, target in (("ca", "ca.pem"), ("cert", "dask.pem"), ("key", "dask.key")):
        shutil.copy(tls_scheduler["paths"][name], tmp_path / "certs" / target)
    cfg = tmp_path / "run.toml"
    cfg.write_text('[data]\npath = "x"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                   f'[cluster]\naddress = "{tls_scheduler["address"]}"\n'
                   'tls_ca_file = "certs/ca.pem"\ntls_client_cert = "certs/dask.pem"\n'
                   'tls_client_key = "certs/dask.key"\nrequire_encryption = true\n'
                   'timeout = "10s"\n')
    client, cluster = connect_cluster(load_config(cfg))
    try:
        assert cluster is None       # attached, nothing started here
        assert client.scheduler.address == tls_scheduler["address"]
        assert client.submit(sum, [1, 2]).result(timeout=START_TIMEOUT) == 3
    finally:
        _close(client)


def test_the_version_check_is_bounded_and_says_when_it_checked_nothing(tls_scheduler):
    from daskfit._cluster import check_worker_versions

    client = daskfit.connect(tls_scheduler["address"], security=tls_scheduler["security"],
                             timeout="10s")
    try:
        started = time.monotonic()
        # No round trip to the workers fits in a microsecond: the wait ends, with a warning.
        with pytest.warns(UserWarning, match="nothing was checked"):
            assert check_worker_versions(client, timeout=1e-6) == {}
        assert time.monotonic() - started < 5
    finally:
        _close(client)
