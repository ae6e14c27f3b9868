#!/usr/bin/env python
"""Benchmark daskfit's RidgeCV against one Ridge fit and the peers' grid searches.

One synthetic float64 regression problem held in the memory of a 2-worker x
1-thread ``distributed.LocalCluster``; 30 alphas (``np.logspace(-3, 3, 30)``)
and 5 folds everywhere:

* daskfit ``Ridge(alpha=1.0)``: one fit, the unit of the target;
* daskfit ``RidgeCV(alphas, cv=5)``: every fold at every alpha and the refit;
* scikit-learn ``GridSearchCV(Ridge(), {"alpha": alphas}, cv=KFold(5))`` on
  the gathered NumPy copy (in one process, NumPy's BLAS on every core);
* dask-ml ``dask_ml.model_selection.GridSearchCV`` of the same scikit-learn
  ``Ridge`` and grid on the persisted Dask arrays, on the same cluster: the
  same model, objective and folds, scheduled by dask-ml (its own
  ``dask_ml.linear_model`` has no plain ridge: it penalises the intercept and
  fits iteratively, so it would not be the same problem);
* for scale, the NumPy floor: ``X'X`` and ``X'y`` in memory.

The daskfit fits alternate (Ridge, RidgeCV, Ridge, RidgeCV, ...), after one
untimed warm-up fit of each, so that a busy machine slows both alike; each is reported as the median of
``--repeats`` runs with the spread (min-max). The peers' grid searches run
``--peer-repeats`` times (default once: minutes each). ``--sklearn-rows``
runs scikit-learn on the first rows only and extrapolates its time linearly
to all rows; the table then says so.

Usage::

    python benchmarks/bench_cv.py                                  # 2M x 50, everything
    python benchmarks/bench_cv.py --rows 500000 --skip-dask-ml --sklearn-rows 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fit import (  # noqa: E402  (the shared helpers of the fit benchmark)
    Timed,
    blas_info,
    counted,
    fmt_bytes,
    make_graph_counter,
    short_error,
    total_ram,
    version_of,
)

SEED = 20240611
ALPHAS = np.logspace(-3, 3, 30)
N_FOLDS = 5


def timed_call(fn, label, out):
    """Run ``fn`` once into the ``Timed`` record ``out``; False if it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        try:
            out.result = fn()
        except Exception as exc:  # noqa: BLE001
            out.error = exc
            print(f"    {label}: FAILED: {short_error(exc, 300)}", flush=True)
            return False
        elapsed = time.perf_counter() - t0
    out.times.append(elapsed)
    for w in caught:
        msg = f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}"
        if msg not in out.warnings:
            out.warnings.append(msg)
    print(f"    {label}: run {len(out.times)}: {elapsed:.3f} s", flush=True)
    return True


def median(timed):
    return statistics.median(timed.times) if timed.times else None


def spread(timed):
    if not timed.times:
        return "-"
    return f"{min(timed.times):.3f}-{max(timed.times):.3f}"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--chunk-rows", type=int, default=250_000)
    p.add_argument("--repeats", type=int, default=5,
                   help="runs of each daskfit fit (alternating), default 5")
    p.add_argument("--peer-repeats", type=int, default=1,
                   help="runs of each peer grid search, default 1")
    p.add_argument("--sklearn-rows", type=int, default=None,
                   help="run scikit-learn on the first N rows and extrapolate linearly "
                        "(default: all rows, measured)")
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument("--skip-dask-ml", action="store_true")
    p.add_argument("--output-markdown", metavar="PATH", default=None)
    args = p.parse_args(argv)
    for name in ("rows", "features", "chunk_rows", "repeats", "peer_repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.sklearn_rows is not None and not 1 <= args.sklearn_rows <= args.rows:
        p.error("--sklearn-rows must be between 1 and --rows")
    return args


def main(argv=None):
    args = parse_args(argv)
    command_line = shlex.join([os.path.basename(sys.executable), *sys.argv])

    import dask
    import dask.array as da
    import distributed
    import sklearn
    from distributed import Client, LocalCluster, wait
    from sklearn.linear_model import Ridge as SkRidge
    from sklearn.model_selection import GridSearchCV as SkGridSearchCV
    from sklearn.model_selection import KFold

    import daskfit

    n, p, chunk = args.rows, args.features, min(args.chunk_rows, args.rows)
    n_chunks = -(-n // chunk)
    t_start = time.perf_counter()
    grid = {"alpha": ALPHAS}

    print("Starting LocalCluster(n_workers=2, threads_per_worker=1) ...", flush=True)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=":0")
    client = Client(cluster)
    try:
        try:
            client.register_plugin(make_graph_counter())
        except Exception as exc:  # noqa: BLE001
            print(f"(graph counter unavailable: {short_error(exc)})")

        print(f"Generating X ({n} x {p}, float64, {fmt_bytes(8 * n * p)}) in "
              f"{n_chunks} row chunks of {chunk} ...", flush=True)
        t0 = time.perf_counter()
        # Small coefficients against unit noise: the best alpha (about
        # p * noise^2 / |coef|^2 = 100) lies inside the grid, not at its edge.
        coef = 0.1 * np.random.default_rng(SEED).normal(size=p)
        rng = da.random.default_rng(SEED + 1)
        X = rng.standard_normal((n, p), chunks=(chunk, p), dtype=np.float64)
        y = X @ coef + 1.0 + rng.standard_normal(n, chunks=chunk, dtype=np.float64)
        X, y = client.persist([X, y])
        wait([X, y])
        t_persist = time.perf_counter() - t0
        print(f"  persisted in {t_persist:.1f} s", flush=True)

        # ------------------------------------------------ daskfit, alternating
        print("daskfit (Ridge and RidgeCV alternating) ...", flush=True)
        ridge_t, cv_t = Timed(), Timed()
        ridge_fit = counted(client, lambda: daskfit.Ridge(alpha=1.0).fit(X, y))
        cv_fit = counted(client, lambda: daskfit.RidgeCV(alphas=ALPHAS, cv=N_FOLDS).fit(X, y))
        # One untimed fit of each first: the workers import daskfit and warm
        # their caches (the first fit on a fresh cluster took up to 10x longer).
        ridge_fit(), cv_fit()
        for _ in range(args.repeats):
            timed_call(ridge_fit, "daskfit Ridge(alpha=1.0)", ridge_t)
            timed_call(cv_fit, f"daskfit RidgeCV(30 alphas, cv={N_FOLDS})", cv_t)
        pair_ratios = [c / r for r, c in zip(ridge_t.times, cv_t.times)]

        # ------------------------------------------------------------ dask-ml
        dml_t, dml_reason = Timed(), None
        if args.skip_dask_ml:
            dml_reason = "skipped (--skip-dask-ml)"
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from dask_ml.model_selection import GridSearchCV as DmlGridSearchCV
            except Exception as exc:  # noqa: BLE001
                dml_reason = f"dask-ml not usable: {short_error(exc, 200)}"
        if dml_reason is None:
            print("dask-ml GridSearchCV(sklearn Ridge) on the cluster ...", flush=True)
            for _ in range(args.peer_repeats):
                if not timed_call(lambda: DmlGridSearchCV(SkRidge(), grid, cv=KFold(N_FOLDS))
                                  .fit(X, y), "dask-ml GridSearchCV", dml_t):
                    break
        else:
            print(f"dask-ml: {dml_reason}", flush=True)

        # ------------------------------------------------ in memory: NumPy, sklearn
        print("gathering NumPy copies ...", flush=True)
        X_np, y_np = client.compute([X, y], sync=True)
        # Owned, aligned copies: BLAS is 10-100x slower on unaligned buffers.
        X_np, y_np = (np.require(a, np.float64, ["C", "A", "O"]).copy() for a in (X_np, y_np))

        floor_t = Timed()
        for _ in range(args.repeats):
            timed_call(lambda: (X_np.T @ X_np, X_np.T @ y_np), "NumPy X'X, X'y", floor_t)

        sk_t, sk_rows = Timed(), args.sklearn_rows or n
        if not args.skip_sklearn:
            print(f"scikit-learn GridSearchCV(Ridge) on {sk_rows} rows ...", flush=True)
            Xs, ys = X_np[:sk_rows], y_np[:sk_rows]
            for _ in range(args.peer_repeats):
                if not timed_call(lambda: SkGridSearchCV(SkRidge(), grid, cv=KFold(N_FOLDS))
                                  .fit(Xs, ys), "sklearn GridSearchCV", sk_t):
                    break
        scale = n / sk_rows

        # ------------------------------------------------------------ report
        cv_est, cv_graphs = cv_t.result if cv_t.result is not None else (None, None)
        ridge_est, ridge_graphs = ridge_t.result if ridge_t.result is not None else (None, None)
        sk_search = sk_t.result
        dml_search = dml_t.result
        unit = median(ridge_t)

        def ratio(seconds):
            return f"{seconds / unit:.2f}x" if seconds and unit else "-"

        def alpha_of(search):
            return f"{search.best_params_['alpha']:.4g}" if search is not None else "-"

        sk_median = median(sk_t)
        sk_seconds = sk_median * scale if sk_median else None
        sk_label = (f"{sk_seconds:.1f}" + (f" (extrapolated from {sk_rows} rows: "
                                           f"{sk_median:.1f} s x {scale:.2f})"
                                           if scale != 1 else "")) if sk_median else "-"
        rows = [
            ("NumPy, in memory", "X'X, X'y (the one-pass floor)", "1",
             f"{median(floor_t):.3f}", spread(floor_t), ratio(median(floor_t)), "-"),
            ("**daskfit**", "Ridge(alpha=1.0): one fit",
             str(ridge_est.n_passes_) if ridge_est else "-",
             f"{unit:.3f}" if unit else "-", spread(ridge_t), "1.00x", "-"),
            ("**daskfit**", f"RidgeCV(30 alphas, cv={N_FOLDS})",
             str(cv_est.n_passes_) if cv_est else "-",
             f"{median(cv_t):.3f}" if cv_t.times else "-", spread(cv_t),
             ratio(median(cv_t)), f"{cv_est.alpha_:.4g}" if cv_est else "-"),
            ("scikit-learn, in memory", f"GridSearchCV(Ridge(), 30 alphas, KFold({N_FOLDS}))",
             "-", sk_label, spread(sk_t) if scale == 1 else "-", ratio(sk_seconds),
             alpha_of(sk_search)),
            ("dask-ml 2025.1.0" if dml_reason is None else "dask-ml",
             f"GridSearchCV(sklearn Ridge(), 30 alphas, KFold({N_FOLDS}))",
             "-", f"{median(dml_t):.1f}" if dml_t.times else (dml_reason or "failed"),
             spread(dml_t), ratio(median(dml_t)), alpha_of(dml_search)),
        ]
        lines = [
            f"Machine: {platform.node()} | nproc={os.cpu_count()} | RAM={fmt_bytes(total_ram())} | "
            f"python {platform.python_version()} | numpy {np.__version__} (BLAS: {blas_info()}) | "
            f"dask {dask.__version__} | distributed {distributed.__version__} | "
            f"scikit-learn {sklearn.__version__} | daskfit {daskfit.__version__} | dask-ml "
            f"{version_of('dask_ml') if dml_reason is None else 'not used'}",
            f"Data: rows={n} features={p} float64 ({fmt_bytes(8 * n * p)}), chunks={n_chunks} x "
            f"{chunk} rows; LocalCluster 2 workers x 1 thread; 30 alphas "
            f"np.logspace(-3, 3, 30), {N_FOLDS} folds; daskfit: median of {args.repeats} "
            f"alternating runs after one untimed warm-up fit each; peers: median of "
            f"{args.peer_repeats}; persist time "
            f"({t_persist:.1f} s) excluded",
            f"Command: `{command_line}`",
            "",
            "| system | what | passes | seconds (median) | spread | ratio to one daskfit "
            "Ridge fit | chosen alpha |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines += ["", "Targets:"]

        def verdict(ok):
            return "PASS" if ok else "FAIL"

        if cv_t.times and unit:
            r = median(cv_t) / unit
            lines.append(f"- RidgeCV <= 1.5x one Ridge fit: {median(cv_t):.3f} s / {unit:.3f} s "
                         f"= {r:.2f}x (per alternating pair: "
                         f"{', '.join(f'{x:.2f}' for x in pair_ratios)}) -> {verdict(r <= 1.5)}")
        else:
            lines.append("- RidgeCV <= 1.5x one Ridge fit: FAIL (a fit raised)")
        if sk_seconds and cv_t.times:
            speedup = sk_seconds / median(cv_t)
            how = "measured" if scale == 1 else f"extrapolated from {sk_rows} rows"
            lines.append(f"- RidgeCV >= 20x faster than scikit-learn's GridSearchCV ({how}): "
                         f"{speedup:.0f}x -> {verdict(speedup >= 20)}")
        else:
            lines.append("- RidgeCV >= 20x faster than scikit-learn: not measured")

        lines += ["", "Notes:"]
        if cv_est is not None:
            lines.append(f"- daskfit RidgeCV: n_passes_={cv_est.n_passes_}, graphs submitted "
                         f"per fit={cv_graphs}, seconds per pass (last fit): "
                         f"{[(lab, round(sec, 3)) for lab, sec in cv_est.pass_log_]}; "
                         f"all times: {[round(t, 3) for t in cv_t.times]}")
        if ridge_est is not None:
            lines.append(f"- daskfit Ridge: solver_={ridge_est.solver_!r}, graphs submitted "
                         f"per fit={ridge_graphs}, all times: "
                         f"{[round(t, 3) for t in ridge_t.times]}")
        if cv_est is not None and sk_search is not None and scale == 1:
            diff = np.max(np.abs(np.r_[cv_est.coef_, cv_est.intercept_]
                                 - np.r_[sk_search.best_estimator_.coef_,
                                         sk_search.best_estimator_.intercept_]))
            lines.append(f"- same alpha as scikit-learn: "
                         f"{cv_est.alpha_ == sk_search.best_params_['alpha']}; max |coef diff| "
                         f"of the refitted models: {diff:.1e}")
        lines.append("- scikit-learn runs in the client process (n_jobs=None, NumPy's BLAS "
                     "threads on both cores); dask-ml's GridSearchCV caches the 5 fold splits "
                     "on the workers and fits each (split, alpha) as a task.")
        for label, t in (("daskfit RidgeCV", cv_t), ("scikit-learn", sk_t), ("dask-ml", dml_t)):
            for w in t.warnings:
                lines.append(f"- warning in {label}: {w}")
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
