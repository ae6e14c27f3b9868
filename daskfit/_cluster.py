"""Connecting to a Dask cluster."""

from __future__ import annotations

__all__ = ["connect"]


def connect(address=None, **local_cluster_kwargs):
    """Return a distributed ``Client``: a loopback ``LocalCluster`` or ``address``.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``, ``tls://...``). When omitted a
        ``LocalCluster`` bound to 127.0.0.1 is started.
    **local_cluster_kwargs
        Passed to ``distributed.LocalCluster`` (``n_workers``,
        ``threads_per_worker``, ``memory_limit``, ...); only without
        ``address``.

    Returns
    -------
    client : distributed.Client
        Also the default client, so estimators use it. Its dashboard link
        is printed and is ``client.dashboard_link``.

    Examples
    --------
    >>> import daskfit
    >>> client = daskfit.connect(n_workers=1, threads_per_worker=1, processes=False,
    ...                          dashboard_address=":0")   # doctest: +ELLIPSIS
    Dask dashboard: http://127.0.0.1:.../status
    >>> client.close(); client.cluster.close()
    """
    from distributed import Client, LocalCluster

    if address is not None:
        if local_cluster_kwargs:
            raise TypeError(
                f"connect(address=...) attaches to an existing scheduler; LocalCluster "
                f"options {sorted(local_cluster_kwargs)} do not apply. Drop them or drop address."
            )
        client = Client(address)
    else:
        # Loopback only: nothing outside this machine can reach the cluster.
        # tcp even for in-process workers, so the address is always host:port.
        options = {"host": "127.0.0.1", "protocol": "tcp://"}
        options.update(local_cluster_kwargs)
        client = Client(LocalCluster(**options))
    print(f"Dask dashboard: {client.dashboard_link}")
    return client
