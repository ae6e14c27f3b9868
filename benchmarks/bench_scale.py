#!/usr/bin/env python
"""How daskfit's cost grows: many chunks, more workers, float32, out of core.

Sections (``--section``, default all):

``chunks``
    One logistic gradient pass over the same 2,000,000 x 20 float64 data,
    persisted in 20, 200 and 2,000 chunks (2 workers x 1 thread). Median of
    ``--repeats`` passes, and the same pass with a kernel that does nothing
    (the scheduler's and the graph's share). Target: 2,000 chunks at most
    3x the cost of 20.
``workers``
    The same pass on 1, 2, 4, 8 and 16 worker processes of 1 thread (the data
    persisted on them), against the same kernel run serially on one core
    without Dask: speed-up ``serial / time`` and efficiency per core in use (``speed-up /
    min(workers, cores)``); past the core count, more and smaller workers
    only add scheduling and communication, which the no-op pass isolates.
``float32``
    ``LinearRegression`` and ``LogisticRegression`` fitted on float32 and on
    float64 copies of the same data: bytes per pass, time, and the
    coefficient difference against the float64 fit of the float32-rounded
    data at ``tol=1e-10`` (what float32 arithmetic costs in accuracy, apart
    from where the solver stops).
``ooc``
    Out of core: Parquet and Zarr on disk three times the cluster's memory
    limit (2 workers x ``--worker-memory``). A bare Dask read-and-sum pass,
    then ``LinearRegression`` (one streamed pass) and ``LogisticRegression``
    (a streamed pass per iteration), with each worker's peak RSS sampled
    every 0.1 s. Target: the linear fit at most 1.5x the read-and-sum pass,
    peak memory under the limit.

Usage::

    python benchmarks/bench_scale.py                  # everything (~5 min)
    python benchmarks/bench_scale.py --section chunks --repeats 5
    python benchmarks/bench_scale.py --section ooc --worker-memory 1GiB
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

SEED = 7


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), float(min(times)), float(max(times))


def cluster(n_workers, memory_limit="4GiB", threads=1):
    from distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      memory_limit=memory_limit)
    return lc, Client(lc)


def _noop_chunk(index, X, y, w, spec):
    return {"n": X.shape[0]}


def gradient_pass(X, y, client):
    """An engine and the two passes to time: the logistic gradient, and a no-op."""
    from daskfit._data import ChunkedData
    from daskfit.engine.rows import Engine
    from daskfit.kernels.chunks import EvalSpec, evaluate_chunk
    from daskfit.model.losses import LOSSES

    p = X.shape[1]
    engine = Engine(ChunkedData(X, y, None, is_lazy=True), persist=False, client=client)
    spec = EvalSpec(loss=LOSSES["logistic"], theta=np.full(p + 1, 0.01), n_features=p,
                    n_outputs=1, fit_intercept=True, classes=np.array([0.0, 1.0]), order=1,
                    checks=False)
    return (lambda: engine.reduce(evaluate_chunk, spec, "gradient"),
            lambda: engine.reduce(_noop_chunk, None, "noop"))


def make_data(n, p, chunks, client, dtype=np.float64):
    import dask.array as da
    from distributed import wait

    rng = da.random.default_rng(SEED)
    X = rng.normal(size=(n, p), chunks=(chunks, p)).astype(dtype)
    beta = np.random.default_rng(SEED).normal(size=p) / np.sqrt(p)
    y = ((X @ beta.astype(dtype)) + rng.logistic(size=n, chunks=chunks) > 0).astype(np.float64)
    X, y = client.persist([X, y])
    wait([X, y])
    return X, y


# --------------------------------------------------------------------- sections
def section_chunks(args):
    rows = []
    lc, client = cluster(2)
    with lc, client:
        base = None
        for n_chunks in (20, 200, 2000):
            X, y = make_data(args.rows, 20, args.rows // n_chunks, client)
            grad, noop = gradient_pass(X, y, client)
            grad()  # warm-up: batches, imports
            t, lo, hi = median_time(grad, args.repeats)
            t0, _, _ = median_time(noop, args.repeats)
            base = base or t
            rows.append((n_chunks, t, lo, hi, t0, t / base))
            del X, y
    print("\n### Many chunks: one logistic gradient pass, 2,000,000 x 20, 2 workers x 1 thread\n")
    print("| chunks | pass (median) | min-max | no-op pass (scheduler + graph) | vs 20 chunks |")
    print("|---:|---:|---:|---:|---:|")
    for n_chunks, t, lo, hi, t0, ratio in rows:
        print(f"| {n_chunks} | {t:.3f} s | {lo:.3f}-{hi:.3f} | {t0:.3f} s ({t0 / t:.0%}) "
              f"| {ratio:.2f}x |")
    verdict = rows[-1][-1] <= 3.0
    print(f"\nTarget (2,000 chunks <= 3x 20 chunks): {'met' if verdict else 'NOT met'}")
    if args.streamed:
        _streamed_chunks(args)


def _generated_rows(block_id=None, rows=0):
    return np.random.default_rng([SEED, block_id[0]]).standard_normal((rows, 20))


def _generated_labels(block_id=None, rows=0):
    return (np.random.default_rng([SEED, 1, block_id[0]]).uniform(size=rows) < 0.5) * 1.0


def _streamed_chunks(args):
    """The same pass over chunks generated on the fly (never persisted).

    Each chunk is made by a task of its own every pass, as a file read would
    be; the reference is Dask's own reduction over the same source (a sum of
    X and y), which pays the same per-chunk scheduling.
    """
    import dask
    import dask.array as da

    rows = []
    lc, client = cluster(2)
    repeats = min(args.repeats, 3)
    with lc, client:
        for n_chunks in (20, 200, 2000):
            r = args.rows // n_chunks
            X = da.map_blocks(_generated_rows, rows=r, chunks=((r,) * n_chunks, (20,)),
                              dtype=float, meta=np.empty((0, 0)))
            y = da.map_blocks(_generated_labels, rows=r, chunks=((r,) * n_chunks,),
                              dtype=float, meta=np.empty((0,)))
            grad, noop = gradient_pass(X, y, client)
            grad()
            t = median_time(grad, repeats)[0]
            t_sum = median_time(lambda: dask.compute(X.sum(axis=0), y.sum()), repeats)[0]
            rows.append((n_chunks, t, t_sum))
    print("\n### Many chunks, streamed: the same pass, chunks generated by a task each pass\n")
    print("| chunks | pass (median) | Dask's sum of X and y, same source | pass / sum "
          "| vs 20 chunks |")
    print("|---:|---:|---:|---:|---:|")
    for n_chunks, t, t_sum in rows:
        print(f"| {n_chunks} | {t:.3f} s | {t_sum:.3f} s | {t / t_sum:.2f}x | "
              f"{t / rows[0][1]:.2f}x |")


def section_workers(args):
    from scipy.special import expit
    from threadpoolctl import threadpool_limits

    from daskfit.kernels.chunks import EvalSpec, evaluate_chunk
    from daskfit.model.losses import LOSSES

    rng = np.random.default_rng(SEED)
    n, p, n_chunks = args.rows, 20, 32
    Xn = rng.normal(size=(n, p))
    yn = (rng.uniform(size=n) < 0.5).astype(float)
    w = np.full(p, 0.01)
    spec = EvalSpec(loss=LOSSES["logistic"], theta=np.full(p + 1, 0.01), n_features=p,
                    n_outputs=1, fit_intercept=True, classes=np.array([0.0, 1.0]), order=1,
                    checks=False)
    step = -(-n // n_chunks)

    def serial_pass():  # the same kernel over the same chunks, no Dask
        return [evaluate_chunk(i, Xn[i * step:(i + 1) * step], yn[i * step:(i + 1) * step],
                               None, spec) for i in range(n_chunks)]

    with threadpool_limits(1):  # one core, as one worker thread has
        floor, _, _ = median_time(lambda: Xn.T @ (expit(Xn @ w + 0.01) - yn), args.repeats)
        serial, _, _ = median_time(serial_pass, args.repeats)
    rows = []
    for workers in (1, 2, 4, 8, 16):
        # One cluster at a time: idle clusters alongside slow every measurement.
        lc, client = cluster(workers, memory_limit=f"{max(1, 16 // workers)}GiB")
        with lc, client:
            X, y = make_data(n, p, step, client)
            grad, noop = gradient_pass(X, y, client)
            grad()  # warm-up: batches, imports
            t, lo, hi = median_time(grad, args.repeats)
            t0, _, _ = median_time(noop, args.repeats)
            busiest = _busiest_worker_compute(client, grad)
            rows.append((workers, t, lo, hi, t0, busiest))
    cores = os.cpu_count()
    print(f"\n### Workers: one logistic gradient pass, {n:,} x {p}, {n_chunks} chunks, "
          f"{cores} cores\n")
    print(f"On one core (1 BLAS thread), no Dask: the NumPy gradient alone {floor:.3f} s; "
          f"daskfit's kernel (loss and gradient) over the same {n_chunks} chunks "
          f"{serial:.3f} s: the serial time the speed-up is against.\n")
    print("| worker processes x 1 thread | pass (median) | min-max | no-op pass | busiest "
          "worker's compute in one pass | speed-up over serial | efficiency per core in use |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for workers, t, lo, hi, t0, busiest in rows:
        speedup = serial / t
        print(f"| {workers} | {t:.3f} s | {lo:.3f}-{hi:.3f} | {t0:.3f} s | {busiest:.3f} s | "
              f"{speedup:.2f}x | {speedup / min(workers, cores):.0%} |")


def _busiest_worker_compute(client, one_pass):
    """Seconds of task compute on the busiest worker during one pass (Dask's task stream)."""
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        one_pass()
    busy = {}
    for task in stream.data:
        for part in task["startstops"]:
            if part["action"] == "compute":
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + part["stop"] - part["start"]
    return max(busy.values())


def section_float32(args):
    import daskfit

    lc, client = cluster(2)
    rows = []
    with lc, client:
        X32, y = make_data(args.rows, 50, args.rows // 16, client, dtype=np.float32)
        X64 = client.persist(X32.astype(np.float64))
        yr = client.persist(X32[:, 0].astype(np.float64) * 0.5 + X32[:, 1] + y)
        for name, cls, target in (("LinearRegression", daskfit.LinearRegression, yr),
                                  ("LogisticRegression", daskfit.LogisticRegression, y)):
            times, exact = {}, {}
            for label, X in (("float32", X32), ("float64", X64)):
                cls().fit(X, target)  # warm-up
                times[label] = median_time(lambda: cls().fit(X, target), args.repeats)[0]
                # Accuracy at a tight tolerance: at the default one the two fits
                # differ by where the solver stopped, not by the arithmetic.
                exact[label] = np.ravel(cls(tol=1e-10).fit(X, target).coef_)
            diff = np.max(np.abs(exact["float32"] - exact["float64"]))
            rows.append((name, X32.nbytes, X64.nbytes, times, diff,
                         np.max(np.abs(exact["float64"]))))
    print(f"\n### float32: {args.rows:,} x 50, 16 chunks, 2 workers x 1 thread\n")
    print("| model | float32 bytes per pass | float32 fit (median) | float64 fit (median) "
          "| float32 / float64 time | max coefficient difference, tol=1e-10 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, b32, b64, times, diff, scale in rows:
        print(f"| {name} | {b32 / 2**20:.0f} MiB (float64 {b64 / 2**20:.0f} MiB) | "
              f"{times['float32']:.3f} s | {times['float64']:.3f} s | "
              f"{times['float32'] / times['float64']:.2f}x | {diff:.1e} (largest "
              f"coefficient {scale:.2f}) |")


class PeakMemory:
    """Sample every worker's RSS every ``interval`` seconds; keep the peak per worker."""

    def __init__(self, client, interval=0.1):
        self.client, self.interval = client, interval
        self.peak = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                for worker, rss in self.client.run(
                        lambda: psutil.Process().memory_info().rss).items():
                    self.peak[worker] = max(self.peak.get(worker, 0), rss)
            except Exception:  # a worker restarting: sample again next time
                pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def section_ooc(args):
    import dask
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd
    from dask.utils import parse_bytes

    import daskfit
    from daskfit.io import read_parquet as read_files  # one partition per file

    limit = parse_bytes(args.worker_memory)
    total_limit = 2 * limit
    p = 20
    n = int(3 * total_limit / (8 * (p + 1))) + 1
    chunk = 100_000  # rows per file; 250,000-row files needed 500 MiB a worker
    keep = args.data_dir is not None
    workdir = args.data_dir or tempfile.mkdtemp(prefix="daskfit-ooc-")
    marker = os.path.join(workdir, f"complete-{n}-rows")
    try:
        # Written in pieces, never whole in memory.
        beta = np.random.default_rng(SEED).normal(size=p) / np.sqrt(p)

        def piece(i):
            rng = np.random.default_rng([SEED, i])
            m = min(chunk, n - i * chunk)
            X = rng.normal(size=(m, p))
            frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
            frame["y"] = X @ beta + rng.normal(size=m)
            frame["label"] = (X @ beta + rng.logistic(size=m) > 0).astype(float)
            return frame

        pieces = -(-n // chunk)
        frame = dd.from_map(piece, range(pieces))
        parquet = os.path.join(workdir, "data.parquet")
        zarr_path = os.path.join(workdir, "X.zarr")
        zarr_y_path = os.path.join(workdir, "y.zarr")
        zarr32_path = os.path.join(workdir, "X32.zarr")
        if not os.path.exists(marker):  # else: written by an earlier run (--data-dir)
            shutil.rmtree(workdir, ignore_errors=True)
            os.makedirs(workdir)
            _write_ooc_data(frame, parquet, zarr_path, zarr_y_path, p, chunk, read_files)
            open(marker, "w").close()
        if not os.path.exists(os.path.join(zarr32_path, "complete")):
            with dask.config.set(scheduler="threads", num_workers=2):
                da.to_zarr(da.from_zarr(zarr_path).astype(np.float32), zarr32_path,
                           overwrite=True)
            open(os.path.join(zarr32_path, "complete"), "w").close()
        parquet_bytes, zarr_bytes = _folder_bytes(parquet), _folder_bytes(zarr_path) + \
            _folder_bytes(zarr_y_path)
        zarr32_bytes = _folder_bytes(zarr32_path)
        in_memory = n * (p + 1) * 8  # X and y as float64 arrays
        rows = []
        lc, client = cluster(2, memory_limit=limit)
        with lc, client:
            features = [f"x{j}" for j in range(p)]

            def read_sum():
                # The same reader and partitions (one per file) as the fits:
                # dd.read_parquet would merge files into larger partitions.
                df = read_files(parquet)
                return df[features + ["y"]].sum().compute()

            def linear():
                df = read_files(parquet)
                return daskfit.LinearRegression(persist=False).fit(df[features], df["y"])

            def logistic():
                df = read_files(parquet)
                # persist="auto": it must see that the data cannot be held, and stream.
                return daskfit.LogisticRegression().fit(df[features], df["label"])

            def zarr_linear():
                X, y = da.from_zarr(zarr_path), da.from_zarr(zarr_y_path)
                return daskfit.LinearRegression(persist=False).fit(X, y)

            def zarr_read_sum():
                X, y = da.from_zarr(zarr_path), da.from_zarr(zarr_y_path)
                return dask.compute(X.sum(axis=0), y.sum())

            def zarr32_linear():  # the same X stored as float32: half the bytes read
                X, y = da.from_zarr(zarr32_path), da.from_zarr(zarr_y_path)
                return daskfit.LinearRegression(persist=False).fit(X, y)

            runs = (("Parquet: read-and-sum pass (dask)", read_sum),
                    ("Parquet: LinearRegression", linear),
                    ("Parquet: LogisticRegression", logistic),
                    ("Zarr: read-and-sum pass (dask)", zarr_read_sum),
                    ("Zarr: LinearRegression", zarr_linear),
                    ("Zarr, X as float32: LinearRegression", zarr32_linear))
            for label, fn in runs:
                if args.only and args.only not in label:
                    continue
                fn()  # warm-up (file system cache)
                results = []
                with PeakMemory(client) as mem:
                    t, lo, hi = median_time(lambda: results.append(fn()), args.repeats)
                passes = getattr(results[-1], "n_passes_", 1)
                if hasattr(results[-1], "persist_reason_"):
                    print(f"  {label}: persist_reason_ = {results[-1].persist_reason_}",
                          file=sys.stderr, flush=True)
                rows.append((label, t, lo, hi, passes, max(mem.peak.values())))
                print(f"  {label}: {t:.2f} s", file=sys.stderr, flush=True)
        print(f"\n### Out of core: {n:,} x {p} float64 and y ({in_memory / 2**30:.2f} GiB in "
              f"memory, {in_memory / total_limit:.1f}x the cluster's memory limit of 2 workers "
              f"x {args.worker_memory}); on disk Parquet {parquet_bytes / 2**30:.2f} GiB, "
              f"Zarr {zarr_bytes / 2**30:.2f} GiB (X as float32: "
              f"{zarr32_bytes / 2**30:.2f} GiB), {n // chunk + 1} files / chunks of "
              f"{chunk:,} rows\n")
        print("| run | time (median) | min-max | passes | per pass | peak worker RSS "
              "| under limit |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for label, t, lo, hi, passes, peak in rows:
            print(f"| {label} | {t:.2f} s | {lo:.2f}-{hi:.2f} | {passes} | {t / passes:.2f} s | "
                  f"{peak / 2**20:.0f} MiB | {'yes' if peak < limit else 'NO'} |")
        times = {label: t for label, t, *_ in rows}

        def ratio(a, b):
            return times[a] / times[b] if a in times and b in times else math.nan

        parquet_ratio = ratio("Parquet: LinearRegression", "Parquet: read-and-sum pass (dask)")
        zarr_ratio = ratio("Zarr: LinearRegression", "Zarr: read-and-sum pass (dask)")
        print(f"\nfloat32 / float64 Zarr LinearRegression = "
              f"{ratio('Zarr, X as float32: LinearRegression', 'Zarr: LinearRegression'):.2f}x")
        measured = [r for r in (parquet_ratio, zarr_ratio) if not math.isnan(r)]
        verdict = "not measured" if not measured else "met" if max(measured) <= 1.5 else "NOT met"
        print(f"Parquet LinearRegression / read-and-sum = {parquet_ratio:.2f}x; Zarr: "
              f"{zarr_ratio:.2f}x (target <= 1.5x: {verdict})")
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def _write_ooc_data(frame, parquet, zarr_path, zarr_y_path, p, chunk, read_files):
    import dask
    import dask.array as da

    with dask.config.set(scheduler="threads", num_workers=2):
        frame.to_parquet(parquet, write_index=False)
        table = read_files(parquet)
        da.to_zarr(table[[f"x{j}" for j in range(p)]].to_dask_array(lengths=True)
                   .rechunk((chunk, p)), zarr_path)
        da.to_zarr(table["y"].to_dask_array(lengths=True).rechunk((chunk,)), zarr_y_path)


def section_threads(args):
    """1 worker x 2 threads against 2 workers x 1 thread: do the kernels scale in threads?

    Kernels spend their time in BLAS and NumPy loops that release the GIL;
    the Python between them (the row-block loop, the merges) holds it.
    """
    import daskfit

    n, p = args.rows, 50
    rows = []
    for workers, threads in ((2, 1), (1, 2)):
        lc, client = cluster(workers, memory_limit=f"{8 // workers}GiB", threads=threads)
        with lc, client:
            X, y = make_data(n, p, -(-n // 16), client)
            grad, _ = gradient_pass(X, y, client)
            grad()
            t_grad = median_time(grad, args.repeats)[0]
            yl = (X @ np.linspace(-1, 1, p) + 1.0).persist()
            daskfit.LinearRegression().fit(X, yl)
            t_lin = median_time(lambda: daskfit.LinearRegression().fit(X, yl), args.repeats)[0]
            daskfit.LogisticRegression().fit(X, y)
            t_log = median_time(lambda: daskfit.LogisticRegression().fit(X, y), args.repeats)[0]
            rows.append((f"{workers} worker(s) x {threads} thread(s)", t_grad, t_lin, t_log))
    print(f"\n### Threads: {n:,} x {p} float64, 16 chunks, persisted; medians of "
          f"{args.repeats}\n")
    print("| cluster | gradient pass | LinearRegression() | LogisticRegression() |")
    print("|---|---:|---:|---:|")
    for label, *times in rows:
        print(f"| {label} | " + " | ".join(f"{t:.3f} s" for t in times) + " |")
    ratios = [b / a for a, b in zip(rows[0][1:], rows[1][1:])]
    print("| 1x2 / 2x1 | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


def section_client_blas(args):
    """Client-side solves with the machine's BLAS threads against one BLAS thread.

    Between passes the client factorises a (p+1) x (p+1) Hessian; OpenBLAS
    threads then spin for a while on cores the workers need for the next pass.
    """
    from threadpoolctl import threadpool_limits

    import daskfit

    n, p = args.rows // 4, 300
    lc, client = cluster(2)
    with lc, client:
        X, y = make_data(n, p, -(-n // 8), client)
        fit = lambda: daskfit.LogisticRegression(C=1.0).fit(X, y)  # noqa: E731
        fit()
        times = {"default": [], "1 thread": []}
        for _ in range(args.repeats):  # alternate, so drift hits both alike
            for label in times:
                started = time.perf_counter()
                if label == "default":
                    est = fit()
                else:
                    with threadpool_limits(1, user_api="blas"):
                        est = fit()
                times[label].append(time.perf_counter() - started)
    print(f"\n### Client BLAS threads: LogisticRegression() (newton, {est.n_passes_} passes) "
          f"on {n:,} x {p}; medians of {args.repeats}, alternated\n")
    print("| client BLAS threads | fit |")
    print("|---|---:|")
    for label, ts in times.items():
        print(f"| {label} | {np.median(ts):.3f} s |")


SECTIONS = {"chunks": section_chunks, "workers": section_workers,
            "float32": section_float32, "ooc": section_ooc, "threads": section_threads,
            "client-blas": section_client_blas}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker-memory", default="1GiB")
    parser.add_argument("--streamed", action="store_true",
                        help="chunks: also a pass over chunks made by a task each pass")
    parser.add_argument("--only", help="ooc: only the runs whose label contains this text "
                        "(e.g. Zarr)")
    parser.add_argument("--data-dir", help="ooc: write the files here and keep them (reused "
                        "by the next run with the same size); default a temporary folder")
    args = parser.parse_args(argv)
    print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}; command: python benchmarks/bench_scale.py "
          + " ".join(argv if argv is not None else sys.argv[1:]))
    for name in args.section or ["chunks", "workers", "float32", "ooc"]:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
