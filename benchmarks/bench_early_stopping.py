#!/usr/bin/env python
"""What early stopping costs per pass, and what it saves per fit.

One logistic regression problem held in the memory of a 2-worker x 1-thread
``LocalCluster``. Two measurements, each early stopping against the same
fit without it, in the same run:

* **per pass**: the median seconds of a ``gradient`` pass of L-BFGS
  (``pass_log_``) with and without a held-out ``validation_fraction``: the
  mask and the validation sums are computed inside the training pass, so
  the ratio is the whole price of early stopping on the data side;
* **per fit**: passes and seconds of an early-stopped L-BFGS fit against the
  same solver run to its gradient tolerance.

Usage::

    python benchmarks/bench_early_stopping.py                 # 1,000,000 x 50
    python benchmarks/bench_early_stopping.py --rows 200000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings

import numpy as np


def make_problem(n_rows, n_features, rows_per_chunk, seed=0):
    """Logistic data made on the workers (nothing large travels in the graph)."""
    import dask.array as da

    X = da.random.RandomState(seed).standard_normal((n_rows, n_features),
                                                    chunks=(rows_per_chunk, -1))
    coef = np.random.default_rng(seed).normal(scale=0.3, size=n_features)
    u = da.random.RandomState(seed + 1).uniform(size=n_rows, chunks=rows_per_chunk)
    y = (u < 1 / (1 + da.exp(-(X @ coef)))).astype(float)
    return X, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    import daskfit

    rows = -(-args.rows // args.chunks)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        Xd, yd = client.persist(list(make_problem(args.rows, args.features, rows)))

        def fit(**params):
            est = daskfit.LogisticRegression(C=1.0, solver="lbfgs", tol=1e-8, max_iter=200,
                                             random_state=0, **params)
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(Xd, yd)
            return est, time.perf_counter() - started

        results = {}
        for _ in range(args.repeats):
            # Interleaved, so both see the same machine load.
            for label, params in [("plain", {}), ("early_stopping", {"early_stopping": True})]:
                est, seconds = fit(**params)
                passes = [s for name, s in est.pass_log_ if name == "gradient"]
                entry = results.setdefault(label, {"pass": [], "fit": [], "est": est})
                entry["pass"].append(float(np.median(passes)))
                entry["fit"].append(seconds)

    print(f"Machine: nproc={os.cpu_count()}; numpy {np.__version__}; "
          f"daskfit {daskfit.__version__}")
    print(f"Problem: logistic regression, {args.rows} x {args.features} float64, "
          f"{args.chunks} row chunks, persisted; LocalCluster 2 workers x 1 thread")
    print(f"Command: `{shlex.join(['python', *sys.argv])}`\n")
    print("| fit | iterations | passes | median s per gradient pass (best of runs) | "
          "fit seconds (best) | validation score |")
    print("|---|---|---|---|---|---|")
    for label, entry in results.items():
        est = entry["est"]
        score = ("-" if est.best_validation_score_ is None
                 else f"{est.best_validation_score_:.4f}")
        print(f"| {label} | {est.n_iter_[0]} | {est.n_passes_} | {min(entry['pass']):.4f} | "
              f"{min(entry['fit']):.3f} | {score} |")
    ratio = min(results["early_stopping"]["pass"]) / min(results["plain"]["pass"])
    print(f"\nPer-pass cost of early stopping: {ratio:.3f}x a plain gradient pass "
          f"(the held-out rows are scored inside it; no pass of its own)")


if __name__ == "__main__":
    main()
