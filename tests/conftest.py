"""Shared fixtures: synthetic problems with known structure, input kinds, a cluster.

Every problem is made here (no network); the three input kinds and the
chunkings below (one chunk, several, many, uneven with empty chunks) are
produced from the same NumPy arrays so that results can be compared exactly.
"""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

N_ROWS = 300
N_FEATURES = 5

#: Row chunkings: one chunk, 7 and 50 chunks, and uneven with empty chunks.
CHUNKINGS = {
    "1": (N_ROWS,),
    "7": (43,) * 6 + (N_ROWS - 43 * 6,),
    "50": (6,) * 50,
    "uneven+empty": (0, 3, 120, 0, 1, 90, 0, N_ROWS - 214),
}

KINDS = ("numpy", "dask", "ddf")


def make_regression(seed=0, n=N_ROWS, p=N_FEATURES):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * np.linspace(0.5, 2.0, p) + np.linspace(-1, 1, p)
    coef = rng.normal(size=p)
    y = X @ coef + 0.7 + rng.normal(scale=0.5, size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    return X, y, w


def make_binary(seed=1, n=N_ROWS, p=N_FEATURES):
    X, _, w = make_regression(seed, n, p)
    rng = np.random.default_rng(seed + 100)
    margin = X @ rng.normal(scale=0.8, size=p) - 0.3
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-margin))).astype(int)
    return X, y, w


def make_multiclass(seed=2, n=N_ROWS, p=N_FEATURES, k=3):
    X, _, w = make_regression(seed, n, p)
    rng = np.random.default_rng(seed + 200)
    scores = X @ rng.normal(size=(p, k)) + rng.gumbel(size=(n, k))
    labels = np.array(["ant", "bee", "cat", "dog"][:k])
    return X, labels[scores.argmax(axis=1)], w


def make_counts(seed=3, n=N_ROWS, p=N_FEATURES):
    X, _, w = make_regression(seed, n, p)
    rng = np.random.default_rng(seed + 300)
    y = rng.poisson(np.exp(0.5 + X @ rng.normal(scale=0.2, size=p))).astype(float)
    return X, y, w


PROBLEMS = {
    "regression": make_regression,
    "binary": make_binary,
    "multiclass": make_multiclass,
    "counts": make_counts,
}


def as_kind(kind, X, y=None, w=None, chunks=None):
    """The same data as NumPy, Dask arrays or a Dask DataFrame (+ Series)."""
    if kind == "numpy":
        return X, y, w
    chunks = chunks or (len(X),)
    Xd = da.from_array(X, chunks=(chunks, X.shape[1]))
    yd = None if y is None else da.from_array(y, chunks=(chunks,))
    wd = None if w is None else da.from_array(w, chunks=(chunks,))
    if kind == "dask":
        return Xd, yd, wd
    assert kind == "ddf"
    columns = [f"x{i}" for i in range(X.shape[1])]
    pdf = pd.DataFrame(X, columns=columns)
    if y is not None:
        pdf["target"] = y
    if w is not None:
        pdf["weight"] = w
    bounds = np.cumsum((0,) + tuple(chunks))
    pieces = [pdf.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    # Partitions of the given (possibly empty) sizes, lengths unknown to Dask.
    frame = dd.from_map(_identity, pieces, meta=pdf.iloc[:0])
    Xf = frame[columns]
    return Xf, (None if y is None else frame["target"]), (None if w is None else frame["weight"])


def _identity(piece):
    return piece


@pytest.fixture(scope="session")
def cluster():
    """A real 2-worker x 1-thread process cluster on loopback."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", memory_limit="2GiB") as cluster:
        yield cluster


@pytest.fixture
def silent_port():
    """A port that accepts connections and never sends a byte."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # the fixture shut the socket down
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
    server.close()
    for conn in accepted:
        conn.close()
    thread.join(5)


@pytest.fixture
def client(cluster):
    """A client on the shared cluster, default for the duration of one test."""
    from distributed import Client

    with Client(cluster) as client:
        yield client


@pytest.fixture
def pandas_frame():
    X, y, w = make_regression()
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y, w


@pytest.fixture
def count_reductions(monkeypatch):
    """Labels of every pass the engine's reduce runs, whoever asks for it."""
    from daskfit.engine.rows import Engine

    calls = []
    original = Engine.reduce

    def counting(self, kernel, spec, label):
        calls.append(label)
        return original(self, kernel, spec, label)

    monkeypatch.setattr(Engine, "reduce", counting)
    return calls


@pytest.fixture(autouse=True)
def _restore_scheduler_setting():
    """A closed Client can leave ``scheduler="dask.distributed"`` in Dask's config;
    later plain ``.compute()`` calls in tests would then fail for no reason of
    their own. Put the setting back after every test."""
    import dask

    before = dask.config.get("scheduler", None)
    yield
    if dask.config.get("scheduler", None) != before:
        if before is None:
            dask.config.config.pop("scheduler", None)
        else:
            dask.config.set(scheduler=before)
