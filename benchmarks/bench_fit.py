#!/usr/bin/env python
"""Benchmark daskfit's LinearRegression and LogisticRegression the way users hand data over.

One run on one synthetic float64 problem and a 2-worker x 1-thread
``distributed.LocalCluster``, for each *source* of the chunks (``--source``,
all three by default):

* ``worker``: chunks made on the workers (``dask.array.random``, persisted);
* ``from-array``: ``da.from_array(X).persist()`` of a NumPy array, what a
  notebook does: the chunks travel from the client and arrive on the
  workers at misaligned addresses;
* ``numpy-client``: the NumPy array passed to ``fit`` while the Client is
  active.

For each source it times daskfit's ``LinearRegression()`` and
``LogisticRegression()`` (C=1, default settings), one daskfit gradient pass,
and dask-ml's logistic solvers on the same data; once per run it times the
NumPy floor (``X'X, X'y``; one logistic gradient ``X'(expit(Xw0) - y)``, on
aligned in-memory arrays with the machine's BLAS threads) and scikit-learn at
its defaults. Every logistic fit's relative coefficient error is measured
against a tight reference solution (scikit-learn's newton-cholesky at
``tol=1e-14``): ``max|theta - theta*| / max|theta*|``, intercept included.

Every time is the best of ``--repeats`` (medians shown too); daskfit's and
dask-ml's fits follow one untimed warm-up each. A Markdown table is printed
(and optionally written with ``--output-markdown``), then the targets.

Usage::

    python benchmarks/bench_fit.py                               # 2M x 50, all sources
    python benchmarks/bench_fit.py --source from-array --repeats 1 --skip-dask-ml
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import shlex
import sys
import time
import traceback
import warnings

import numpy as np
from scipy.special import expit

SEED = 20240611
SOURCES = ("worker", "from-array", "numpy-client")


# --------------------------------------------------------------------------- helpers
def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024


def total_ram():
    try:
        import psutil

        return psutil.virtual_memory().total
    except Exception:  # pragma: no cover - psutil is a daskfit dependency
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def version_of(module_name):
    try:
        module = __import__(module_name)
        return getattr(module, "__version__", "?")
    except Exception as exc:  # noqa: BLE001
        return f"not importable ({type(exc).__name__})"


def blas_info():
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return ", ".join(f"{i.get('internal_api')} x{i.get('num_threads')}" for i in infos) or "?"
    except Exception:  # noqa: BLE001
        return "?"


def short_error(exc, limit=90):
    msg = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "\\|")
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def coef_vector(est):
    """Coefficients and intercept of a fitted binary/regression model, as one flat vector."""
    coef = np.ravel(np.asarray(est.coef_, dtype=np.float64))
    intercept = np.ravel(np.asarray(est.intercept_, dtype=np.float64))
    return np.concatenate([coef, intercept])


class Timed:
    """Outcome of ``best_of``: best seconds, all times, last return value, warnings, error."""

    def __init__(self):
        self.times = []
        self.result = None
        self.error = None
        self.warnings = []
        self.extra = {}

    @property
    def best(self):
        return min(self.times) if self.times else None

    @property
    def median(self):
        return float(np.median(self.times)) if self.times else None


def best_of(fn, repeats, *, budget_s=None, label=""):
    """Call ``fn()`` ``repeats`` times; keep the best time, the last result, warnings.

    When ``budget_s`` is given and one call takes longer than it, no further
    repeats are run (a soft per-fit time limit: a running fit cannot be
    interrupted safely, but slow fits are not repeated).
    """
    out = Timed()
    for i in range(repeats):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001
                out.error = exc
                print(f"    {label}: FAILED: {short_error(exc, 300)}", flush=True)
                traceback.print_exc()
                return out
            elapsed = time.perf_counter() - t0
        out.times.append(elapsed)
        out.result = result
        for w in caught:
            msg = f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}"
            if msg not in out.warnings:
                out.warnings.append(msg)
        print(f"    {label}: run {i + 1}/{repeats}: {elapsed:.3f} s", flush=True)
        if budget_s is not None and elapsed > budget_s and i + 1 < repeats:
            print(f"    {label}: {elapsed:.1f} s > budget {budget_s:.0f} s; not repeating",
                  flush=True)
            break
    return out


# -------------------------------------------------------- counting graphs (passes)
def make_graph_counter():
    from distributed.diagnostics.plugin import SchedulerPlugin

    class GraphCounter(SchedulerPlugin):
        """Counts graphs submitted to the scheduler (one per compute/persist call)."""

        name = "daskfit-bench-graph-counter"

        def __init__(self):
            self.count = 0

        def update_graph(self, scheduler, *args, **kwargs):
            self.count += 1

    return GraphCounter()


def graph_count(client):
    def _read(dask_scheduler=None):
        plugin = dask_scheduler.plugins.get("daskfit-bench-graph-counter")
        return -1 if plugin is None else plugin.count

    try:
        return client.run_on_scheduler(_read)
    except Exception:  # noqa: BLE001
        return -1


def counted(client, fn):
    """Wrap ``fn`` so that its result is ``(value, graphs submitted during the call)``."""

    def wrapper():
        before = graph_count(client)
        value = fn()
        after = graph_count(client)
        return value, (after - before if before >= 0 and after >= 0 else None)

    return wrapper


def relative_error(est, reference):
    """``max|theta - theta*| / max|theta*|`` (coefficients and intercept)."""
    if est is None or reference is None:
        return None
    a, b = coef_vector(est), coef_vector(reference)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--chunk-rows", type=int, default=250_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--source", action="append", choices=SOURCES,
                   help="where the chunks come from (repeatable; default: all three)")
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument("--skip-dask-ml", action="store_true")
    p.add_argument("--dask-ml-budget", type=float, default=120.0,
                   help="a dask-ml fit slower than this many seconds is not repeated "
                        "(default 120)")
    p.add_argument("--output-markdown", metavar="PATH", default=None)
    args = p.parse_args(argv)
    for name in ("rows", "features", "chunk_rows", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    args.source = args.source or list(SOURCES)
    return args


def load_dask_ml(skip):
    """Return ``(module, None)`` or ``(None, reason)``."""
    if skip:
        return None, "skipped (--skip-dask-ml)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import dask_ml.linear_model as dml_lm
        return dml_lm, None
    except Exception as exc:  # noqa: BLE001
        return None, f"dask-ml not usable: {short_error(exc, 300)}"


def dask_ml_logistic(cls, solver):
    """dask-ml's LogisticRegression closest to scikit-learn's C=1 default.

    dask-glm minimises ``sum_i loss_i + (1/C) |b|^2 / 2`` for ``penalty="l2"``
    (scikit-learn's objective divided by C) but also penalises the intercept;
    its "newton" solver ignores the penalty.
    """
    params = inspect.signature(cls).parameters
    kw = {"solver": solver}
    for name, value in (("fit_intercept", True), ("penalty", "l2"), ("C", 1.0)):
        if name in params:
            kw[name] = value
    return cls(**kw)


def one_pass_seconds(daskfit, X, y):
    """Median seconds of one daskfit value-and-gradient pass (L-BFGS, 4 evaluations)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = daskfit.LogisticRegression(solver="lbfgs", max_iter=3).fit(X, y)
    times = [sec for label, sec in est.pass_log_ if label == "gradient"]
    return float(np.median(times)) if times else None, est.pass_log_


def main(argv=None):
    args = parse_args(argv)
    command_line = shlex.join([os.path.basename(sys.executable), *sys.argv])

    import dask
    import dask.array as da
    import distributed
    from distributed import Client, LocalCluster, wait
    from sklearn.linear_model import LinearRegression, LogisticRegression

    import daskfit

    n, p, chunk = args.rows, args.features, min(args.chunk_rows, args.rows)
    n_chunks = -(-n // chunk)
    t_start = time.perf_counter()
    dml_lm, dml_reason = load_dask_ml(args.skip_dask_ml)
    if dml_reason:
        print(f"dask-ml: {dml_reason}", flush=True)

    print("Starting LocalCluster(n_workers=2, threads_per_worker=1) ...", flush=True)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=":0")
    client = Client(cluster)
    rows, notes, targets = [], [], []
    try:
        try:
            client.register_plugin(make_graph_counter())
        except Exception as exc:  # noqa: BLE001
            print(f"(graph counter unavailable: {short_error(exc)})")

        # ----------------------------------------------------------- the data
        print(f"Generating X ({n} x {p}, float64, {fmt_bytes(8 * n * p)}) in {n_chunks} "
              f"row chunks of {chunk} on the workers ...", flush=True)
        coef_rng = np.random.default_rng(SEED)
        w_linear = coef_rng.normal(size=p)
        w_logistic = coef_rng.normal(scale=0.3, size=p)
        rng = da.random.default_rng(SEED + 1)
        X = rng.standard_normal((n, p), chunks=(chunk, p), dtype=np.float64)
        noise = rng.standard_normal(n, chunks=chunk, dtype=np.float64)
        u = rng.random(n, chunks=chunk, dtype=np.float64)
        y_lin = X @ w_linear + 1.0 + noise
        y_bin = (u < da.map_blocks(expit, X @ w_logistic + 0.25, dtype=np.float64)
                 ).astype(np.float64)
        X, y_lin, y_bin = client.persist([X, y_lin, y_bin])
        wait([X, y_lin, y_bin])
        worker_data = (X, y_lin, y_bin)
        X_np, y_lin_np, y_bin_np = client.compute([X, y_lin, y_bin], sync=True)
        # Owned, aligned copies: the floor and the peers get NumPy at its best.
        X_np, y_lin_np, y_bin_np = (np.require(a, np.float64, ["C", "A", "O"]).copy()
                                    for a in (X_np, y_lin_np, y_bin_np))

        # ----------------------------------------------------- NumPy floor
        print("NumPy floor ...", flush=True)
        w0 = np.random.default_rng(SEED + 2).normal(scale=0.1, size=p)
        floor_lin = best_of(lambda: (X_np.T @ X_np, X_np.T @ y_lin_np), args.repeats,
                            label="numpy X'X, X'y")
        floor_grad = best_of(lambda: X_np.T @ (expit(X_np @ w0) - y_bin_np), args.repeats,
                             label="numpy one gradient")
        rows.append(("NumPy, in memory", "-", "X'X, X'y (least-squares floor)", "1",
                     floor_lin, floor_lin, None))
        rows.append(("NumPy, in memory", "-", "one logistic gradient (floor)", "1",
                     floor_grad, floor_grad, None))

        # ----------------------------------------- reference and scikit-learn
        print("tight reference (newton-cholesky, tol=1e-14) ...", flush=True)
        reference = LogisticRegression(solver="newton-cholesky", tol=1e-14,
                                       max_iter=100).fit(X_np, y_bin_np)
        sk_log_t = None
        if not args.skip_sklearn:
            print("scikit-learn ...", flush=True)
            sk_lin_t = best_of(lambda: LinearRegression().fit(X_np, y_lin_np), args.repeats,
                               label="sklearn LinearRegression")
            sk_log_t = best_of(lambda: LogisticRegression().fit(X_np, y_bin_np), args.repeats,
                               label="sklearn LogisticRegression")
            rows.append(("scikit-learn, in memory", "-", "LinearRegression()", "-",
                         sk_lin_t, floor_lin, None))
            sk_err = relative_error(sk_log_t.result, reference)
            rows.append(("scikit-learn, in memory", "-", "LogisticRegression() (lbfgs)",
                         f"{int(np.max(sk_log_t.result.n_iter_))} iter", sk_log_t, floor_grad,
                         sk_err))

        # ---------------------------------------------------- per source
        for source in args.source:
            print(f"source {source} ...", flush=True)
            if source == "worker":
                Xs, ys_lin, ys_bin = worker_data
            elif source == "from-array":
                t0 = time.perf_counter()
                Xs, ys_lin, ys_bin = client.persist(
                    [da.from_array(X_np, chunks=(chunk, p)),
                     da.from_array(y_lin_np, chunks=chunk), da.from_array(y_bin_np, chunks=chunk)])
                wait([Xs, ys_lin, ys_bin])
                misaligned = Xs.map_blocks(lambda b: np.array([[not b.flags.aligned]]),
                                           chunks=(1, 1), dtype=bool).sum().compute()
                notes.append(f"from-array: persisted in {time.perf_counter() - t0:.1f} s; "
                             f"{misaligned} of {n_chunks} chunks misaligned on the workers")
            else:
                Xs, ys_lin, ys_bin = X_np, y_lin_np, y_bin_np

            daskfit.LinearRegression().fit(Xs, ys_lin)  # warm-ups: imports on the workers
            daskfit.LogisticRegression().fit(Xs, ys_bin)
            lin_t = best_of(counted(client, lambda: daskfit.LinearRegression().fit(Xs, ys_lin)),
                            args.repeats, label=f"daskfit LinearRegression [{source}]")
            log_t = best_of(counted(client, lambda: daskfit.LogisticRegression().fit(Xs, ys_bin)),
                            args.repeats, label=f"daskfit LogisticRegression [{source}]")
            lin_est = lin_t.result[0] if lin_t.result else None
            log_est = log_t.result[0] if log_t.result else None
            rows.append(("daskfit", source, "LinearRegression()",
                         str(lin_est.n_passes_) if lin_est else "-", lin_t, floor_lin, None))
            log_err = relative_error(log_est, reference)
            rows.append(("daskfit", source, "LogisticRegression()",
                         str(log_est.n_passes_) if log_est else "-", log_t, floor_grad, log_err))
            for label, est in (("LinearRegression", lin_est), ("LogisticRegression", log_est)):
                if est is not None:
                    notes.append(f"daskfit {label} [{source}]: solver_={est.solver_!r}; "
                                 f"n_passes_={est.n_passes_}; persist: {est.persist_reason_}; "
                                 f"passes: {[(lab, round(sec, 3)) for lab, sec in est.pass_log_]}")
            per_pass, log = one_pass_seconds(daskfit, Xs, ys_bin)
            efficiency = per_pass / floor_grad.best if per_pass else None

            dml_best = None
            if dml_lm is not None:
                for solver in ("newton", "lbfgs"):
                    label = f"dask-ml LogisticRegression({solver}) [{source}]"
                    fit = (lambda solver=solver:
                           dask_ml_logistic(dml_lm.LogisticRegression, solver).fit(Xs, ys_bin))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fit()  # warm-up
                    timed = best_of(fit, args.repeats, budget_s=args.dask_ml_budget, label=label)
                    rows.append(("dask-ml", source, f"LogisticRegression(C=1, {solver})", "-",
                                 timed, floor_grad, relative_error(timed.result, reference)))
                    if timed.best is not None and (dml_best is None or timed.best < dml_best[0]):
                        dml_best = (timed.best, solver)

            # targets for this source
            client_numpy = source == "numpy-client"
            lin_limit = 1.5 if client_numpy else 1.0
            if lin_t.best is not None:
                ratio = lin_t.best / floor_lin.best
                targets.append((source, f"LinearRegression <= {lin_limit}x the floor",
                                f"{ratio:.2f}x", ratio <= lin_limit))
            log_limit = 1.0 if client_numpy else 0.75
            if log_t.best is not None and sk_log_t is not None and sk_log_t.best:
                ratio = log_t.best / sk_log_t.best
                targets.append((source, f"LogisticRegression() <= {log_limit}x scikit-learn's "
                                "default lbfgs time", f"{ratio:.2f}x", ratio <= log_limit))
                sk_err = relative_error(sk_log_t.result, reference)
                targets.append((source, "LogisticRegression() error <= scikit-learn's default",
                                f"{log_err:.1e} vs {sk_err:.1e}", log_err <= sk_err))
            if dml_best is not None and log_t.best is not None:
                speedup = dml_best[0] / log_t.best
                targets.append((source, f">= 10x faster than dask-ml's fastest ({dml_best[1]})",
                                f"{speedup:.1f}x", speedup >= 10))
            if efficiency is not None:
                targets.append((source, "one gradient pass <= 1.3x a NumPy gradient (2 cores)",
                                f"{efficiency:.2f}x ({per_pass:.3f} s)", efficiency <= 1.3))
            if source == "from-array":
                del Xs, ys_lin, ys_bin  # release the second copy before the next source

        # ------------------------------------------------------------ report
        lines = [
            f"Machine: {platform.node()} | nproc={os.cpu_count()} | RAM={fmt_bytes(total_ram())} | "
            f"python {platform.python_version()} | numpy {np.__version__} (BLAS: {blas_info()}) | "
            f"dask {dask.__version__} | distributed {distributed.__version__} | "
            f"scikit-learn {version_of('sklearn')} | daskfit {daskfit.__version__} | dask-ml "
            f"{version_of('dask_ml') if dml_lm is not None else 'not used'}",
            f"Data: rows={n} features={p} float64 ({fmt_bytes(8 * n * p)}), chunks={n_chunks} x "
            f"{chunk} rows; LocalCluster 2 workers x 1 thread; best of {args.repeats}",
            f"Command: `{command_line}`", "",
            "| system | source | model | passes | seconds (best) | median | ratio to floor "
            "| rel. coef error vs tight optimum |",
            "|---|---|---|---|---:|---:|---:|---:|"]
        for system, source, model, passes, timed, floor, err in rows:
            best = f"{timed.best:.3f}" if timed.best is not None else (
                f"error: {short_error(timed.error)}" if timed.error else "-")
            med = f"{timed.median:.3f}" if timed.median is not None else "-"
            ratio = f"{timed.best / floor.best:.2f}x" if timed.best and floor.best else "-"
            err_s = "-" if err is None else f"{err:.1e}"
            lines.append(f"| {system} | {source} | {model} | {passes} | {best} | {med} | "
                         f"{ratio} | {err_s} |")
        lines += ["", "Ratios: least-squares rows / NumPy X'X+X'y; logistic rows / one NumPy "
                  "gradient.", "", "Targets:"]
        for source, what, value, ok in targets:
            lines.append(f"- [{source}] {what}: {value} -> {'PASS' if ok else 'FAIL'}")
        lines += ["", "Notes:"] + [f"- {note}" for note in notes]
        for system, source, model, _, timed, _, _ in rows:
            for w in timed.warnings:
                lines.append(f"- warning in {system} [{source}] {model}: {w}")
        lines.append(f"- total wall time of this run: {time.perf_counter() - t_start:.1f} s")
        report = "\n".join(lines)
        print("\n" + report, flush=True)
        if args.output_markdown:
            with open(args.output_markdown, "w", encoding="utf-8") as fh:
                fh.write(report + "\n")
    finally:
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
