#!/usr/bin/env python
"""What a Client costs a fit that computes in-process (NumPy input under a Client).

daskfit fits NumPy input where it already is when the cluster has no more
cores than this process (see ``persist_reason_``). The same in-process fit is
timed three ways, in one run:

* no Client at all;
* under a ``LocalCluster`` (its scheduler runs on an event-loop thread of
  this process);
* under a Client to a ``dask scheduler`` and two ``dask worker`` processes
  started as subprocesses (nothing of the cluster runs in this process).

Usage::

    python benchmarks/bench_client_overhead.py --repeats 7
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

import numpy as np


def timed_fits(daskfit, X, y, repeats):
    """Best and median seconds of ``repeats`` default logistic fits, after a warm-up."""
    daskfit.LogisticRegression().fit(X, y)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        daskfit.LogisticRegression().fit(X, y)
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    import daskfit
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, args.features))
    z = X @ np.linspace(-1.0, 1.0, args.features)
    y = (rng.random(args.rows) < 1.0 / (1.0 + np.exp(-z))).astype(float)

    rows = [("no Client", timed_fits(daskfit, X, y, args.repeats))]
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster):
        rows.append(("LocalCluster (scheduler in this process)",
                     timed_fits(daskfit, X, y, args.repeats)))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs += [subprocess.Popen([sys.executable, "-m", "dask", "worker", address,
                                    "--nthreads", "1", "--no-dashboard"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for _ in range(2)]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            rows.append(("dask scheduler + 2 workers in other processes",
                         timed_fits(daskfit, X, y, args.repeats)))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)

    base = rows[0][1][0]
    print(f"LogisticRegression() on NumPy {args.rows} x {args.features}, in-process; "
          f"best of {args.repeats}\n")
    print("| where the cluster runs | best s | median s | best / no Client |")
    print("|---|---:|---:|---:|")
    for name, (best, median) in rows:
        print(f"| {name} | {best:.3f} | {median:.3f} | {best / base:.2f}x |")


if __name__ == "__main__":
    main()
