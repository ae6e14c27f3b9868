"""Connecting to a Dask cluster: loopback by default, TLS on request, bounded waits."""

from __future__ import annotations

import asyncio
import threading
import time

# Defined with the other typed errors; importable from here as before.
from .errors import ClusterUnreachable, ConfigError, SchedulerUnresponsive

__all__ = ["ClusterUnreachable", "SchedulerUnresponsive", "check_memory_limit",
           "check_worker_versions", "connect", "loopback_dashboard", "make_security",
           "scheduler_patience", "wait_futures", "wait_result"]

#: How long to wait for a scheduler before giving up. Distributed's own
#: default (30 s, then retries) is long for a scheduled job that should fail
#: fast and say why.
DEFAULT_CONNECT_TIMEOUT = "10s"

#: Distributed binds the dashboard to all interfaces unless told otherwise.
LOOPBACK_DASHBOARD = "127.0.0.1:8787"

#: Keys of a TLS configuration given as a dict (paths to PEM files), as
#: ``distributed.security.Security`` names them.
TLS_KEYS = ("tls_ca_file", "tls_client_cert", "tls_client_key", "tls_scheduler_cert",
            "tls_scheduler_key", "tls_worker_cert", "tls_worker_key", "tls_min_version")


#: How long a scheduler may take to answer a ping during a fit before the fit
#: gives up on it (``daskfit.scheduler-timeout`` in Dask's configuration, or
#: the ``DASK_DASKFIT__SCHEDULER_TIMEOUT`` environment variable). A healthy
#: scheduler answers in milliseconds even while it runs a long pass; one
#: frozen (SIGSTOP, a hung host, a blocked event loop) never does, and
#: distributed would wait for minutes before noticing.
DEFAULT_SCHEDULER_TIMEOUT = "30s"


#: The smallest per-worker ``memory_limit`` :func:`connect` accepts. A worker
#: process that has imported daskfit (distributed, NumPy, pandas, pyarrow,
#: SciPy, scikit-learn) holds about 320 MiB before it sees any data
#: (measured on Linux, Python 3.11); distributed pauses a worker at 80 % of
#: its limit and kills it at 95 %, so below about 400 MiB every worker is
#: paused or restarted as soon as the first task arrives, for ever. 512 MiB
#: leaves room for a few chunks.
MIN_WORKER_MEMORY = 512 * 2**20

#: Packages whose version on every worker :func:`connect` compares with this
#: process's when it attaches to a scheduler. Distributed already compares
#: Python, dask, distributed, NumPy, pandas, cloudpickle, ... (its
#: ``VersionMismatchWarning``) but not daskfit, whose kernels run on the
#: workers by reference (a different daskfit there runs different code),
#: nor SciPy (sparse chunks) and pyarrow (Parquet read on the workers).
WORKER_PACKAGES = ("daskfit", "scipy", "pyarrow")


def make_security(security, require_encryption=False):
    """A ``distributed.Security`` from daskfit's ``security`` argument.

    Parameters
    ----------
    security : None, "temporary", dict or distributed.Security
        ``"temporary"``: a throw-away self-signed certificate (for a local
        cluster; needs the ``cryptography`` package). A dict: paths of PEM
        files under the keys of ``TLS_KEYS``.
    require_encryption : bool
        Refuse any unencrypted connection.

    Returns
    -------
    distributed.Security or None
    """
    from distributed.security import Security

    if security is None:
        if not require_encryption:
            return None
        security = "temporary"
    if isinstance(security, Security):
        if require_encryption and not security.require_encryption:
            security.require_encryption = True
        return security
    if security == "temporary":
        return Security.temporary()  # always requires encryption
    if isinstance(security, dict):
        unknown = sorted(set(security) - set(TLS_KEYS))
        if unknown:
            raise ConfigError(f"Unknown TLS setting(s) {unknown}; expected some of "
                              f"{sorted(TLS_KEYS)}.", setting="security")
        return Security(require_encryption=True if require_encryption else None, **security)
    raise ConfigError(
        "security must be None, 'temporary', a dict of TLS file paths or a "
        f"distributed.Security; got {type(security).__name__}.", setting="security")


def loopback_dashboard(address):
    """The dashboard address with a bare port (``8789``, ``"8789"``, ``":0"``) on 127.0.0.1.

    Distributed reads a bare port as "every interface": the dashboard would
    be reachable from the network while the printed link says 127.0.0.1. A
    host given explicitly (``"0.0.0.0:8787"``) is the caller's choice and is
    kept; ``None`` (no dashboard) too.
    """
    if isinstance(address, bool):
        raise TypeError(f"dashboard_address must be a port or 'host:port'; got {address!r}.")
    if isinstance(address, int):
        return f"127.0.0.1:{address}"
    if isinstance(address, str):
        text = address.strip()
        if text.isdigit():
            return f"127.0.0.1:{text}"
        if text.startswith(":"):
            return "127.0.0.1" + text
    return address


def connect(address=None, *, security=None, require_encryption=False,
            timeout=DEFAULT_CONNECT_TIMEOUT, **local_cluster_kwargs):
    """Return a distributed ``Client``: a loopback ``LocalCluster`` or ``address``.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``, ``tls://...``). When omitted a
        ``LocalCluster`` bound to 127.0.0.1 is started.
    security : None, "temporary", dict or distributed.Security, optional
        TLS. For a local cluster ``"temporary"`` makes throw-away
        certificates and the whole cluster speaks ``tls://``; for a remote
        scheduler pass the certificate paths (see :func:`make_security`).
    require_encryption : bool, default=False
        Refuse unencrypted connections: a ``tcp://`` address is refused
        before anything is sent, and a local cluster uses TLS.
    timeout : str or float, default="10s"
        How long to wait for the scheduler: the connection *and* its
        handshake (a port that accepts and never answers is unreachable too).
    **local_cluster_kwargs
        Passed to ``distributed.LocalCluster`` (``n_workers``,
        ``threads_per_worker``, ``memory_limit``, ...); only without
        ``address``. ``dashboard_address`` given as a bare port (``8789``,
        ``"8789"``, ``":0"``) binds 127.0.0.1, not every interface. A
        ``memory_limit`` below :data:`MIN_WORKER_MEMORY` (512 MiB) is refused:
        the workers would be restarted for ever.

    Returns
    -------
    client : distributed.Client
        Also the default client, so estimators use it. Its dashboard link
        is printed and is ``client.dashboard_link``.

    Raises
    ------
    ClusterUnreachable
        The scheduler did not answer within ``timeout`` or refused the
        connection (a TLS mismatch, for example).
    daskfit.errors.ConfigError
        A ``ValueError``: ``memory_limit`` is too small for a worker (before
        anything starts), or ``security`` does not fit (``.setting`` says which).

    Warns
    -----
    distributed.versions.VersionMismatchWarning
        With ``address``: a worker connected now has another daskfit, SciPy
        or pyarrow than this process, or none (:func:`check_worker_versions`).

    Examples
    --------
    >>> import daskfit
    >>> client = daskfit.connect(n_workers=1, threads_per_worker=1, processes=False,
    ...                          dashboard_address="127.0.0.1:0")   # doctest: +ELLIPSIS
    Dask dashboard: http://127.0.0.1:.../status
    >>> client.close(); client.cluster.close()
    """
    from distributed import Client, LocalCluster

    sec = make_security(security, require_encryption)
    if address is not None:
        if local_cluster_kwargs:
            raise TypeError(
                f"connect(address=...) attaches to an existing scheduler; LocalCluster "
                f"options {sorted(local_cluster_kwargs)} do not apply. Drop them or drop address."
            )
        if require_encryption and not str(address).startswith("tls://"):
            raise ClusterUnreachable(
                f"require_encryption is set but the scheduler address {address!r} is not "
                "tls://: refusing to send anything unencrypted. Use the scheduler's tls:// "
                "address with its certificates.")
        # The caller's own certificates: require_encryption alone would make
        # throw-away ones above, which no remote scheduler accepts.
        if str(address).startswith("tls://") and security is None:
            raise ConfigError(
                f"The scheduler at {address!r} speaks TLS: pass security={{'tls_ca_file': ..., "
                "'tls_client_cert': ..., 'tls_client_key': ...}} (paths to PEM files).",
                setting="security")
        try:
            # distributed bounds the TCP connect but not the handshake after it:
            # a port that accepts and never answers would hang Client() for ever.
            _probe_scheduler(address, sec, timeout)
            client = Client(address, security=sec, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnreachable(
                f"Could not reach the Dask scheduler at {address!r} within {timeout}: {exc}. "
                "Check that the scheduler is running, the address and port, and that TLS "
                "settings match the scheduler's.") from None
        check_worker_versions(client, timeout)
    else:
        # Loopback only: nothing outside this machine can reach the cluster.
        # tcp even for in-process workers, so the address is always host:port.
        # The dashboard too: distributed binds it to every interface by default.
        options = {"host": "127.0.0.1", "protocol": "tcp://",
                   "dashboard_address": LOOPBACK_DASHBOARD}
        if sec is not None:
            options.update(protocol="tls://", security=sec)
        options.update(local_cluster_kwargs)
        check_memory_limit(options.get("memory_limit"))
        options["dashboard_address"] = loopback_dashboard(options.get("dashboard_address"))
        cluster = LocalCluster(**options)
        client = Client(cluster, security=sec)
    print(f"Dask dashboard: {client.dashboard_link}")
    return client


def check_worker_versions(client, timeout=DEFAULT_CONNECT_TIMEOUT):
    """Warn when a worker's daskfit (SciPy, pyarrow) differs from this process's.

    Every package of :data:`WORKER_PACKAGES` is looked up the same way on both
    sides (its installed distribution's version, as distributed's own check
    does), on the workers connected now; workers that join later are not
    checked. A warning, not an error: a package missing on the workers may
    still be installed there afterwards (``distributed.diagnostics.plugin.PipInstall``).

    Parameters
    ----------
    client : distributed.Client
    timeout : str or float
        How long to wait for the workers' answers; past it, a warning says
        that nothing was checked.

    Returns
    -------
    dict
        ``{package: (client version, {worker address: worker version})}`` for
        each package that differs (``None``: not installed); empty when all agree.

    Warns
    -----
    distributed.versions.VersionMismatchWarning
        Naming each package, its version here and on each differing worker.
    UserWarning
        The workers did not all answer within ``timeout``: nothing was checked.
    """
    import warnings

    from distributed.versions import VersionMismatchWarning, get_package_info

    seconds = _seconds(timeout, "timeout")
    try:
        answers = client.sync(client.scheduler.broadcast,
                              msg={"op": "versions", "packages": list(WORKER_PACKAGES)},
                              on_error="ignore", callback_timeout=seconds)
    except (OSError, TimeoutError) as exc:
        warnings.warn(f"daskfit could not compare the workers' versions of "
                      f"{', '.join(WORKER_PACKAGES)} with this process's within {seconds:g} s "
                      f"({type(exc).__name__}: {exc}); nothing was checked.", UserWarning,
                      stacklevel=3)
        return {}
    mine = get_package_info(WORKER_PACKAGES)
    differing = _version_differences(mine, answers)
    if differing:
        lines = [f"  {pkg}: {mine[pkg] or 'not installed'} here; "
                 + "; ".join(f"{found or 'not installed'} on {', '.join(sorted(where))}"
                             for found, where in _by_version(workers).items())
                 for pkg, (_, workers) in differing.items()]
        warnings.warn(VersionMismatchWarning(
            "The Dask workers run other versions than this process:\n" + "\n".join(lines)
            + "\nEach worker runs daskfit's kernels with its own installed packages, so the "
            "results may differ from a fit here, or the fit may fail. Install the same "
            "versions on the workers as on the client (same environment or image)."),
            stacklevel=3)  # the caller of connect()
    return differing


def _version_differences(mine, answers):
    """``{package: (mine, {worker: version})}`` for the packages some worker has otherwise."""
    differing = {}
    for pkg in WORKER_PACKAGES:
        other = {worker: (reply or {}).get("packages", {}).get(pkg)
                 for worker, reply in answers.items()}
        other = {worker: found for worker, found in other.items() if found != mine[pkg]}
        if other:
            differing[pkg] = (mine[pkg], other)
    return differing


def _by_version(workers):
    """``{version: [workers]}`` from ``{worker: version}``, for a short message."""
    grouped = {}
    for worker, found in workers.items():
        grouped.setdefault(found, []).append(worker)
    return grouped


def check_memory_limit(memory_limit):
    """Refuse a per-worker memory limit below :data:`MIN_WORKER_MEMORY`.

    ``None``, ``0`` (no limit) and ``"auto"`` (a share of this machine's
    memory) are left to distributed.

    Raises
    ------
    daskfit.errors.ConfigError
        A ``ValueError`` (``setting="memory_limit"``): the limit is unreadable,
        or too small for a worker to run a fit.
    """
    if memory_limit is None or memory_limit == "auto":
        return
    import logging

    from dask.utils import format_bytes
    from distributed.worker_memory import parse_memory_limit

    try:
        limit = parse_memory_limit(memory_limit, 1, logger=logging.getLogger(__name__))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"memory_limit {memory_limit!r} is not a size such as '2GiB': "
                          f"{exc}", setting="memory_limit") from None
    if limit is not None and limit < MIN_WORKER_MEMORY:
        raise ConfigError(
            f"memory_limit {memory_limit!r} ({format_bytes(limit)} per worker) is below what "
            f"a worker running daskfit needs ({format_bytes(MIN_WORKER_MEMORY)}): a worker "
            "process holds about 320 MiB once daskfit is imported, and distributed would "
            "restart it for exceeding its limit over and over. Give each worker at least "
            f"{format_bytes(MIN_WORKER_MEMORY)}, or use fewer workers with more memory each.",
            setting="memory_limit")


def _seconds(value, what):
    """``value`` (``"3s"``, ``"2 minutes"``, a number of seconds) in seconds, > 0."""
    from dask.utils import parse_timedelta

    try:
        seconds = parse_timedelta(value, "s")
    except (ValueError, TypeError, KeyError):
        seconds = None
    if seconds is None or not seconds > 0:
        raise ConfigError(f"{what} must be a positive duration such as '10s' or 30; "
                          f"got {value!r}.", setting=what)
    return seconds


def _probe_scheduler(address, security, timeout):
    """Connect to ``address`` and ask its identity, all of it within ``timeout``.

    Runs on a private event loop in a helper thread, so it works whether or
    not the caller has a running loop (Jupyter).

    Raises
    ------
    TimeoutError
        Nothing answered within ``timeout`` (including a port that accepts
        the connection and then stays silent).
    OSError
        The connection was refused or closed, or TLS failed.
    """
    from distributed.comm import connect as open_comm

    seconds = _seconds(timeout, "timeout")
    args = security.get_connection_args("client") if security is not None else {}

    async def identity():
        comm = await open_comm(address, timeout=seconds, **args)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded():
        try:
            return await asyncio.wait_for(identity(), seconds)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer within {seconds:g} s") from None

    outcome = {}

    def probe():
        try:
            outcome["reply"] = asyncio.run(bounded())
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=probe, name="daskfit-probe-scheduler", daemon=True)
    thread.start()
    # asyncio.wait_for already bounds the probe; this join is the backstop.
    thread.join(seconds + 5)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]


def scheduler_patience():
    """Seconds a scheduler may take to answer a ping during a fit.

    ``daskfit.scheduler-timeout`` in Dask's configuration (default
    :data:`DEFAULT_SCHEDULER_TIMEOUT`); the environment variable
    ``DASK_DASKFIT__SCHEDULER_TIMEOUT`` sets it for a whole process tree.
    """
    import dask

    value = dask.config.get("daskfit.scheduler-timeout", DEFAULT_SCHEDULER_TIMEOUT)
    return _seconds(value, "daskfit.scheduler-timeout")


def wait_result(client, future, patience=None):
    """``future.result()``, but a scheduler that stops answering ends the wait.

    A pass may legitimately run for hours, so the wait itself has no fixed
    limit; instead, every ``patience`` seconds without a result the scheduler
    is pinged, and one that does not answer within ``patience`` seconds is
    declared frozen or gone. A frozen scheduler therefore ends the wait
    within about ``2 * patience`` seconds.

    Parameters
    ----------
    client : distributed.Client
    future : distributed.Future
    patience : float, optional
        Seconds; default :func:`scheduler_patience`.

    Raises
    ------
    SchedulerUnresponsive
        The scheduler did not answer a ping within ``patience`` seconds.
    """
    patience = scheduler_patience() if patience is None else patience
    while True:
        try:
            return future.result(timeout=patience)
        except TimeoutError:
            if future.done():  # finished just now, or the task itself raised TimeoutError
                return future.result()
        _ping_scheduler(client, patience)


def wait_futures(client, futures, *, return_when="ALL_COMPLETED", patience=None):
    """``distributed.wait``, bounded the same way as :func:`wait_result`.

    Returns the ``(done, not_done)`` pair of ``distributed.wait``.
    """
    from distributed import wait

    patience = scheduler_patience() if patience is None else patience
    while True:
        try:
            return wait(futures, timeout=patience, return_when=return_when)
        except TimeoutError:
            _ping_scheduler(client, patience)


def _ping_scheduler(client, patience):
    started = time.monotonic()
    try:
        client.sync(client.scheduler.identity, callback_timeout=patience)
    except (OSError, TimeoutError) as exc:
        waited = time.monotonic() - started
        raise SchedulerUnresponsive(
            f"The Dask scheduler at {client.scheduler.address} did not answer for "
            f"{waited:.3g} s while the fit waited for a pass ({type(exc).__name__}: {exc}): "
            "it is frozen, overloaded or gone, so the fit stops here. Check the scheduler "
            "process; if it is only slow, raise the 'daskfit.scheduler-timeout' Dask setting "
            f"(now {patience:g} s).") from None
