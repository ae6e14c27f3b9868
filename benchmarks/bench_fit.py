#!/usr/bin/env python
"""Benchmark daskfit's LinearRegression and LogisticRegression in one run.

Compares, on one synthetic float64 problem held in the memory of a 2-worker
``distributed.LocalCluster``:

* a NumPy "floor": one in-memory pass (``X'X`` and ``X'y`` for least squares,
  one logistic gradient ``X'(expit(Xw0) - y)`` for logistic regression);
* daskfit's estimators with their default solvers (on the persisted Dask arrays);
* scikit-learn on the gathered NumPy copy;
* dask-ml (``dask_ml.linear_model``), when it imports, with solvers
  ``newton`` and ``lbfgs``.

Every time is the best of ``--repeats`` runs with ``time.perf_counter``
(the median and the spread are shown too); daskfit's fits follow one
untimed warm-up fit each, and the time to generate and persist the data is
not included. A Markdown table is
printed (and optionally written with ``--output-markdown``), followed by
whether the performance targets hold.

Usage::

    python benchmarks/bench_fit.py                       # 2M x 50, 250k-row chunks
    python benchmarks/bench_fit.py --rows 200000 --repeats 1 --skip-dask-ml
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
LOGISTIC_C = 1e4


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


def max_abs_diff(est, reference):
    if est is None or reference is None:
        return None
    a, b = coef_vector(est), coef_vector(reference)
    if a.shape != b.shape:
        return float("nan")
    return float(np.max(np.abs(a - b)))


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


# ------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--chunk-rows", type=int, default=250_000)
    p.add_argument("--repeats", type=int, default=3)
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
    return args


def load_dask_ml(skip):
    """Return ``(module, None)`` or ``(None, reason)``."""
    if skip:
        return None, "skipped (--skip-dask-ml)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import dask_ml
            import dask_ml.linear_model as dml_lm
        return dml_lm, None
    except Exception as exc:  # noqa: BLE001
        return None, f"dask-ml not usable: {short_error(exc, 300)}"


def dask_ml_kwargs(cls, *, logistic, solver):
    """Constructor arguments for dask-ml, adapted to its signature.

    dask-glm minimises ``sum_i loss_i + (1/C) * r(b)`` with ``r = |b|^2 / 2``
    for ``penalty="l2"`` -- scikit-learn's convention divided by ``C`` -- but
    it also penalises the intercept. The "newton" solver ignores the penalty.
    For least squares no penalty is wanted: ``penalty=None`` skips the
    regulariser in the solvers that would apply one.
    """
    params = inspect.signature(cls).parameters
    kw = {"solver": solver}
    if "fit_intercept" in params:
        kw["fit_intercept"] = True
    if logistic:
        if "penalty" in params:
            kw["penalty"] = "l2"
        if "C" in params:
            kw["C"] = LOGISTIC_C
    else:
        if "penalty" in params:
            kw["penalty"] = None
        elif "C" in params:
            kw["C"] = np.inf
    return kw


def main(argv=None):
    args = parse_args(argv)
    command_line = shlex.join([os.path.basename(sys.executable), *sys.argv])

    import dask
    import dask.array as da
    import distributed
    from distributed import Client, LocalCluster, wait

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
    try:
        try:
            client.register_plugin(make_graph_counter())
        except Exception as exc:  # noqa: BLE001
            print(f"(graph counter unavailable: {short_error(exc)})")

        # ----------------------------------------------------------- the data
        print(f"Generating X ({n} x {p}, float64, {fmt_bytes(8 * n * p)}) in "
              f"{n_chunks} row chunks of {chunk} ...", flush=True)
        t0 = time.perf_counter()
        coef_rng = np.random.default_rng(SEED)
        w_linear = coef_rng.normal(size=p)
        w_logistic = coef_rng.normal(scale=0.3, size=p)
        b_logistic = 0.25
        rng = da.random.default_rng(SEED + 1)
        X = rng.standard_normal((n, p), chunks=(chunk, p), dtype=np.float64)
        noise = rng.standard_normal(n, chunks=chunk, dtype=np.float64)
        u = rng.random(n, chunks=chunk, dtype=np.float64)
        y_linear = X @ w_linear + 1.0 + noise
        y_binary = (u < da.map_blocks(expit, X @ w_logistic + b_logistic, dtype=np.float64)
                    ).astype(np.float64)
        X, y_linear, y_binary = client.persist([X, y_linear, y_binary])
        wait([X, y_linear, y_binary])
        assert X.chunks[0] == y_linear.chunks[0] == y_binary.chunks[0]
        t_persist = time.perf_counter() - t0
        print(f"  persisted in {t_persist:.1f} s", flush=True)
        # --------------------------------------------------------- daskfit
        # Timed first, before the client holds NumPy copies and runs BLAS.
        print("daskfit ...", flush=True)
        # One untimed fit of each first: a fresh cluster's workers import
        # daskfit and SciPy during the first fit (seconds), which is not the
        # cost of a fit. (The median below would otherwise include it.)
        daskfit.LinearRegression().fit(X, y_linear)
        daskfit.LogisticRegression(C=LOGISTIC_C).fit(X, y_binary)
        df_lin_t = best_of(counted(client, lambda: daskfit.LinearRegression().fit(X, y_linear)),
                           args.repeats, label="daskfit LinearRegression")
        df_log_t = best_of(
            counted(client, lambda: daskfit.LogisticRegression(C=LOGISTIC_C).fit(X, y_binary)),
            args.repeats, label="daskfit LogisticRegression")

        print("gathering NumPy copies ...", flush=True)
        t0 = time.perf_counter()
        X_np, y_lin_np, y_bin_np = client.compute([X, y_linear, y_binary], sync=True)
        # Arrays deserialised from the cluster can be views on unaligned
        # buffers, which NumPy cannot hand to BLAS (10-100x slower matmul):
        # take owned, aligned, C-ordered copies.
        X_np, y_lin_np, y_bin_np = (np.require(a, np.float64, ["C", "A", "O"]).copy()
                                    for a in (X_np, y_lin_np, y_bin_np))
        assert X_np.flags.aligned and X_np.flags.owndata
        print(f"  gathered in {time.perf_counter() - t0:.1f} s; "
              f"mean(y_binary) = {y_bin_np.mean():.3f}", flush=True)

        rows = []  # (system, model, solver, passes, Timed | None, floor, diff, note)
        notes = []

        # ----------------------------------------------------- NumPy floor
        print("NumPy floor ...", flush=True)

        def numpy_linear():
            return X_np.T @ X_np, X_np.T @ y_lin_np

        w0 = np.random.default_rng(SEED + 2).normal(scale=0.1, size=p)

        def numpy_gradient():
            return X_np.T @ (expit(X_np @ w0) - y_bin_np)

        floor_lin = best_of(numpy_linear, args.repeats, label="numpy X'X, X'y")
        floor_grad = best_of(numpy_gradient, args.repeats, label="numpy one gradient")
        rows.append(("NumPy (in memory)", "least squares floor: X'X, X'y", "-", "1",
                     floor_lin, floor_lin.best, None))
        rows.append(("NumPy (in memory)", "logistic floor: one gradient X'(expit(Xw0)-y)",
                     "-", "1", floor_grad, floor_grad.best, None))

        # ----------------------------------------------------- scikit-learn
        sk_lin = sk_log = None
        if not args.skip_sklearn:
            import sklearn.linear_model as sk_lm

            print("scikit-learn ...", flush=True)
            sk_lin_t = best_of(lambda: sk_lm.LinearRegression().fit(X_np, y_lin_np),
                               args.repeats, label="sklearn LinearRegression")
            sk_log_t = best_of(
                lambda: sk_lm.LogisticRegression(C=LOGISTIC_C, solver="lbfgs",
                                                 max_iter=1000).fit(X_np, y_bin_np),
                args.repeats, label="sklearn LogisticRegression")
            sk_lin, sk_log = sk_lin_t.result, sk_log_t.result
            sk_log_passes = (f"{int(np.max(sk_log.n_iter_))} iter" if sk_log is not None
                             else "-")
        else:
            print("scikit-learn: skipped (--skip-sklearn)", flush=True)

        def daskfit_row(model, timed, floor):
            est, graphs = timed.result if timed.result is not None else (None, None)
            if est is not None:
                notes.append(f"daskfit {model}: solver_={est.solver_!r} "
                             f"({getattr(est, 'solver_reason_', '')}); n_passes_="
                             f"{est.n_passes_}; graphs submitted per fit={graphs}; "
                             f"converged={getattr(est.fit_result_, 'converged', '?')}; "
                             f"persist: {getattr(est, 'persist_reason_', '?')}; "
                             f"all fit times: {[round(t, 3) for t in timed.times]}; "
                             "seconds per pass (last fit): "
                             f"{[(lab, round(sec, 3)) for lab, sec in est.pass_log_]}")
            return est, ("daskfit", model, est.solver_ if est else "auto",
                         str(est.n_passes_) if est else "-", timed, floor)

        df_lin, row = daskfit_row("LinearRegression()", df_lin_t, floor_lin.best)
        rows.append((*row, max_abs_diff(df_lin, sk_lin)))
        df_log, row = daskfit_row(f"LogisticRegression(C={LOGISTIC_C:g})", df_log_t,
                                  floor_grad.best)
        rows.append((*row, max_abs_diff(df_log, sk_log)))

        if not args.skip_sklearn:
            rows.append(("scikit-learn (in memory)", "LinearRegression()", "lstsq (scipy)",
                         "-", sk_lin_t, floor_lin.best, 0.0 if sk_lin is not None else None))
            rows.append(("scikit-learn (in memory)",
                         f"LogisticRegression(C={LOGISTIC_C:g}, max_iter=1000)", "lbfgs",
                         sk_log_passes, sk_log_t, floor_grad.best,
                         0.0 if sk_log is not None else None))

        # ------------------------------------------------------------ dask-ml
        dml_best = {}  # "linear"/"logistic" -> (seconds, solver)
        if dml_lm is not None:
            print("dask-ml ...", flush=True)
            for kind, cls_name, y_dask, floor, ref in (
                ("linear", "LinearRegression", y_linear, floor_lin.best, sk_lin),
                ("logistic", "LogisticRegression", y_binary, floor_grad.best, sk_log),
            ):
                cls = getattr(dml_lm, cls_name)
                for solver in ("newton", "lbfgs"):
                    kw = dask_ml_kwargs(cls, logistic=(kind == "logistic"), solver=solver)
                    shown = ", ".join(f"{k}={v!r}" for k, v in kw.items() if k != "solver")
                    label = f"dask-ml {cls_name}({solver})"

                    def fit(cls=cls, kw=kw, y_dask=y_dask):
                        return cls(**kw).fit(X, y_dask)

                    timed = best_of(counted(client, fit), args.repeats,
                                    budget_s=args.dask_ml_budget, label=label)
                    est, graphs = timed.result if timed.result is not None else (None, None)
                    rows.append(("dask-ml", f"{cls_name}({shown})", solver,
                                 f"~{graphs}" if graphs is not None else "-", timed, floor,
                                 max_abs_diff(est, ref)))
                    if timed.best is not None and (kind not in dml_best
                                                   or timed.best < dml_best[kind][0]):
                        dml_best[kind] = (timed.best, solver)
            for kind, (secs, solver) in dml_best.items():
                notes.append(f"dask-ml fastest {kind}: {solver} ({secs:.3f} s)")
            notes.append("dask-ml passes = graphs submitted to the scheduler during one fit "
                         "(each reads the persisted X about once); dask-glm standardises X "
                         "first and penalises the intercept too; its 'newton' ignores the "
                         "penalty; lamduh = 1/C.")
        else:
            notes.append(f"dask-ml not measured: {dml_reason}")

        # ------------------------------------------------------------ report
        def cell_seconds(timed):
            if timed is None:
                return "-"
            if timed.best is None:
                return f"error: {short_error(timed.error)}" if timed.error else "-"
            return f"{timed.best:.3f}"

        lines = []
        lines.append(
            f"Machine: {platform.node()} | nproc={os.cpu_count()} | RAM={fmt_bytes(total_ram())} | "
            f"python {platform.python_version()} | numpy {np.__version__} (BLAS: {blas_info()}) | "
            f"dask {dask.__version__} | distributed {distributed.__version__} | "
            f"scikit-learn {version_of('sklearn')} | scipy {version_of('scipy')} | "
            f"daskfit {daskfit.__version__} | dask-ml "
            f"{version_of('dask_ml') if dml_lm is not None else 'not used'}")
        lines.append(
            f"Data: rows={n} features={p} float64 ({fmt_bytes(8 * n * p)}), "
            f"chunks={n_chunks} x {chunk} rows; LocalCluster 2 workers x 1 thread; "
            f"best of {args.repeats}; persist time ({t_persist:.1f} s) excluded")
        lines.append(f"Command: `{command_line}`")
        lines.append("")
        lines.append("| system | model | solver | passes | seconds (best) | median [spread] | "
                     "ratio to NumPy floor (best / median) | max \\|coef diff\\| vs sklearn |")
        lines.append("|---|---|---|---|---|---|---|---|")
        floor_median = {floor_lin.best: floor_lin.median, floor_grad.best: floor_grad.median}
        for system, model, solver, passes, timed, floor, diff in rows:
            ratio = (f"{timed.best / floor:.2f}x / {timed.median / floor_median[floor]:.2f}x"
                     if timed is not None and timed.best and floor else "-")
            med = (f"{timed.median:.3f} [{min(timed.times):.3f}-{max(timed.times):.3f}]"
                   if timed is not None and timed.times else "-")
            if diff is None:
                diff_s = "-"
            elif system.startswith("scikit-learn"):
                diff_s = "(reference)"
            else:
                diff_s = f"{diff:.2e}"
            lines.append(f"| {system} | {model} | {solver} | {passes} | "
                         f"{cell_seconds(timed)} | {med} | {ratio} | {diff_s} |")
        lines.append("")
        lines.append("Ratios: least-squares rows / NumPy X'X+X'y time; logistic rows / NumPy "
                     "one-gradient time. Coefficient diffs include the intercept.")

        # targets
        lines.append("")
        lines.append("Targets:")

        def verdict(ok):
            return "PASS" if ok else "FAIL"

        if df_lin_t.best is not None:
            limit = 2 * floor_lin.best
            lines.append(f"- daskfit LinearRegression <= 2x NumPy floor: {df_lin_t.best:.3f} s "
                         f"vs {limit:.3f} s (ratio {df_lin_t.best / floor_lin.best:.2f}x) -> "
                         f"{verdict(df_lin_t.best <= limit)}")
            ratio_median = df_lin_t.median / floor_lin.median
            lines.append(f"- the same by medians of {args.repeats}: {df_lin_t.median:.3f} s vs "
                         f"floor {floor_lin.median:.3f} s (ratio {ratio_median:.2f}x) -> "
                         f"{verdict(ratio_median <= 2)}")
        else:
            lines.append("- daskfit LinearRegression <= 2x NumPy floor: FAIL (fit raised)")
        if df_log_t.best is None:
            lines.append("- daskfit LogisticRegression: FAIL (fit raised)")
        else:
            if not args.skip_sklearn and sk_log_t.best is not None:
                lines.append(f"- daskfit LogisticRegression <= scikit-learn lbfgs: "
                             f"{df_log_t.best:.3f} s vs {sk_log_t.best:.3f} s -> "
                             f"{verdict(df_log_t.best <= sk_log_t.best)}")
            else:
                lines.append("- daskfit LogisticRegression <= scikit-learn lbfgs: not measured")
            if "logistic" in dml_best:
                secs, solver = dml_best["logistic"]
                speedup = secs / df_log_t.best
                lines.append(f"- daskfit LogisticRegression >= 5x faster than dask-ml's fastest "
                             f"({solver}, {secs:.3f} s): {speedup:.1f}x -> "
                             f"{verdict(speedup >= 5)}")
            else:
                lines.append("- daskfit LogisticRegression >= 5x faster than dask-ml: not "
                             f"measured ({dml_reason or 'every dask-ml logistic fit failed'})")

        lines.append("")
        lines.append("Notes:")
        for note in notes:
            lines.append(f"- {note}")
        for system, model, solver, _, timed, _, _ in rows:
            if timed is not None:
                for w in timed.warnings:
                    lines.append(f"- warning in {system} {model} [{solver}]: {w}")
        lines.append(f"- total wall time of this run: {time.perf_counter() - t_start:.1f} s")

        report = "\n".join(lines)
        print("\n" + report, flush=True)
        if args.output_markdown:
            with open(args.output_markdown, "w", encoding="utf-8") as fh:
                fh.write(report + "\n")
            print(f"\n(written to {args.output_markdown})")
    finally:
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
