"""Connecting to a Dask cluster: loopback by default, TLS on request, bounded waits."""

from __future__ import annotations

__all__ = ["ClusterUnreachable", "connect", "make_security"]

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


class ClusterUnreachable(ConnectionError):
    """The scheduler could not be reached (or refused us) within the timeout."""


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
            raise ValueError(f"Unknown TLS setting(s) {unknown}; expected some of "
                             f"{sorted(TLS_KEYS)}.")
        return Security(require_encryption=True if require_encryption else None, **security)
    raise ValueError(
        "security must be None, 'temporary', a dict of TLS file paths or a "
        f"distributed.Security; got {type(security).__name__}.")


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
        How long to wait for the scheduler.
    **local_cluster_kwargs
        Passed to ``distributed.LocalCluster`` (``n_workers``,
        ``threads_per_worker``, ``memory_limit``, ...); only without
        ``address``.

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
        if str(address).startswith("tls://") and sec is None:
            raise ValueError(
                f"The scheduler at {address!r} speaks TLS: pass security={{'tls_ca_file': ..., "
                "'tls_client_cert': ..., 'tls_client_key': ...}} (paths to PEM files).")
        try:
            client = Client(address, security=sec, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnreachable(
                f"Could not reach the Dask scheduler at {address!r} within {timeout}: {exc}. "
                "Check that the scheduler is running, the address and port, and that TLS "
                "settings match the scheduler's.") from None
    else:
        # Loopback only: nothing outside this machine can reach the cluster.
        # tcp even for in-process workers, so the address is always host:port.
        # The dashboard too: distributed binds it to every interface by default.
        options = {"host": "127.0.0.1", "protocol": "tcp://",
                   "dashboard_address": LOOPBACK_DASHBOARD}
        if sec is not None:
            options.update(protocol="tls://", security=sec)
        options.update(local_cluster_kwargs)
        dashboard = options.get("dashboard_address")
        if isinstance(dashboard, str) and dashboard.startswith(":"):
            # ":0" (any port) would also mean "any interface": keep it on loopback.
            options["dashboard_address"] = "127.0.0.1" + dashboard
        cluster = LocalCluster(**options)
        client = Client(cluster, security=sec)
    print(f"Dask dashboard: {client.dashboard_link}")
    return client
