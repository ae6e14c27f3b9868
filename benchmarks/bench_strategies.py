#!/usr/bin/env python
"""Rounds, passes and bytes each parallel strategy needs to reach 1e-3.

One problem (logistic regression with a small L2 penalty, rows split into
chunks of very unequal size), one 2-worker x 1-thread ``LocalCluster``. For
every strategy the fit runs with a tight tolerance and its per-iteration
history (objective, passes over the data, bytes communicated) is read back;
the table reports the first iteration whose objective is within ``--target``
(relative) of the optimum found by Newton at ``tol=1e-12``.

"Rounds" are communication rounds: solver iterations for the synchronous
methods (a line-search trial that re-reads the data counts as a pass, not a
round), averaging rounds, async epochs, sharded iterations.

Usage::

    python benchmarks/bench_strategies.py                 # 400,000 x 20
    python benchmarks/bench_strategies.py --rows 100000 --target 1e-4
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings

import numpy as np


def make_problem(n_rows, n_features, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)) * rng.uniform(0.5, 2.0, size=n_features)
    coef = rng.normal(scale=0.5, size=n_features)
    y = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-(X @ coef - 0.3)))).astype(float)
    return X, y


def unequal_chunks(n_rows, n_chunks, seed=1):
    """Chunk sizes spanning two orders of magnitude (and adding up to n_rows)."""
    weights = np.geomspace(1, 100, n_chunks)
    np.random.default_rng(seed).shuffle(weights)
    sizes = np.floor(weights / weights.sum() * n_rows).astype(int)
    sizes[-1] += n_rows - sizes.sum()
    return tuple(int(s) for s in sizes)


def first_within(history, optimum, target):
    for entry in history:
        if (entry["objective"] - optimum) / abs(optimum) <= target:
            return entry
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--column-chunks", type=int, default=4)
    parser.add_argument("--target", type=float, default=1e-3)
    parser.add_argument("--C", type=float, default=1.0)
    args = parser.parse_args(argv)

    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import daskfit

    X, y = make_problem(args.rows, args.features)
    sizes = unequal_chunks(args.rows, args.chunks)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        Xd = da.from_array(X, chunks=(sizes, args.features))
        yd = da.from_array(y, chunks=(sizes,))
        Xd, yd = client.persist([Xd, yd])
        Xcols = client.persist(Xd.rechunk((sizes, -(-args.features // args.column_chunks))))
        wait([Xd, yd, Xcols])

        def fit(solver, X_=Xd, max_iter=5_000, **options):
            est = daskfit.LogisticRegression(C=args.C, solver=solver, tol=1e-12,
                                             max_iter=max_iter,
                                             solver_options=options or None)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # capped runs may stop short: that is the point
                est.fit(X_, yd)
            return est, time.perf_counter() - t0

        reference, _ = fit("newton")
        optimum = reference.fit_result_.loss
        runs = [
            ("synchronous", "gradient descent", "gd", {}, Xd),
            ("synchronous", "gradient descent, Nesterov", "gd", {"accelerated": True}, Xd),
            ("synchronous", "L-BFGS", "lbfgs", {}, Xd),
            ("synchronous", "Newton", "newton", {}, Xd),
            ("parameter averaging", "averaging, 1 local epoch", "averaging",
             {"local_epochs": 1}, Xd),
            ("parameter averaging", "averaging, 2 local epochs", "averaging",
             {"local_epochs": 2}, Xd),
            ("parameter averaging", "averaging, 5 local epochs", "averaging",
             {"local_epochs": 5}, Xd),
            ("parameter averaging", "asynchronous SGD", "async-sgd", {}, Xd),
            ("model parallel", "feature-sharded gradient descent", "sharded-gd", {}, Xcols),
            ("model parallel", "block coordinate descent", "bcd", {}, Xcols),
        ]
        rows = []
        for strategy, label, solver, options, data in runs:
            max_iter = 200 if solver in ("averaging", "async-sgd") else 5_000
            est, seconds = fit(solver, data, max_iter=max_iter, **options)
            hit = first_within(est.fit_result_.history, optimum, args.target)
            rows.append((strategy, label, hit, est, seconds))

    print(f"Machine: nproc={os.cpu_count()}; numpy {np.__version__}; "
          f"daskfit {daskfit.__version__}")
    print(f"Problem: logistic regression, C={args.C}, {args.rows} x {args.features} float64, "
          f"{args.chunks} row chunks of very unequal size ({min(sizes)} to {max(sizes)} rows), "
          f"{args.column_chunks} column chunks for the model-parallel runs; "
          f"LocalCluster 2 workers x 1 thread")
    print(f"Command: `{shlex.join(['python', *sys.argv])}`")
    print(f"Target: objective within {args.target:g} (relative) of the Newton optimum "
          f"{optimum:.10f}\n")
    print("| strategy | method | rounds | passes | bytes communicated | final rel. gap | "
          "seconds |")
    print("|---|---|---|---|---|---|---|")
    gd_rounds = None
    for strategy, label, hit, est, seconds in rows:
        gap = (est.fit_result_.loss - optimum) / abs(optimum)
        if hit is None:
            cells = ("not reached", "-", "-")
        else:
            cells = (str(hit["iter"]), str(hit["passes"]), f"{hit['bytes']:,}")
            if label == "gradient descent":
                gd_rounds = hit["iter"]
        print(f"| {strategy} | {label} | {' | '.join(cells)} | {gap:.1e} | {seconds:.2f} |")
    best_avg = min((hit["iter"] for s, lab, hit, _, _ in rows
                    if lab.startswith("averaging") and hit is not None), default=None)
    if gd_rounds and best_avg:
        ratio = gd_rounds / best_avg
        print(f"\nTarget: averaging needs >= 5x fewer rounds than gradient descent: "
              f"{gd_rounds} / {best_avg} = {ratio:.1f}x -> {'PASS' if ratio >= 5 else 'FAIL'}")


if __name__ == "__main__":
    main()
