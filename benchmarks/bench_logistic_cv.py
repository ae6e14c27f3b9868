#!/usr/bin/env python
"""LogisticRegressionCV: k folds for the passes of one path, against the peers.

On one synthetic binary problem persisted on a 2-worker x 1-thread
``LocalCluster``, with 5 stratified folds and 10 values of ``C``:

* daskfit ``LogisticRegressionCV`` (all fold models and the refit together);
* daskfit ``LogisticRegression`` at one ``C`` (the cost of a single fit);
* ``GridSearchCV(daskfit.LogisticRegression)``: the same search fold by fold
  and ``C`` by ``C`` (50 fits + the refit), what daskfit would cost without
  the joint path;
* scikit-learn's ``LogisticRegressionCV`` (lbfgs) on the gathered NumPy copy.

Median of ``--repeats`` runs each; passes over the data are counted for the
daskfit rows.

Usage::

    python benchmarks/bench_logistic_cv.py --rows 200000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

SEED = 11


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-grid", action="store_true")
    args = parser.parse_args(argv)

    import dask.array as da
    import sklearn.linear_model as sk
    from distributed import Client, LocalCluster, wait
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    import daskfit

    rng = np.random.default_rng(SEED)
    n, p = args.rows, args.features
    X = rng.normal(size=(n, p))
    y = (X @ rng.normal(size=p) / np.sqrt(p) + rng.logistic(size=n) > 0).astype(int)
    Cs = np.logspace(-4, 4, 10)
    folds = list(StratifiedKFold(5).split(X, y))
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        Xd = da.from_array(X, chunks=(n // 8, p))
        yd = da.from_array(y, chunks=n // 8)
        Xd, yd = client.persist([Xd, yd])
        wait([Xd, yd])
        cv_model = daskfit.LogisticRegressionCV(Cs=Cs, cv=folds)
        t, est = timed(lambda: cv_model.fit(Xd, yd), args.repeats)
        rows.append(("daskfit LogisticRegressionCV (5 folds x 10 C, with refit)", t,
                     est.n_passes_))
        t_one, one = timed(lambda: daskfit.LogisticRegression(C=1.0).fit(Xd, yd), args.repeats)
        rows.append(("daskfit LogisticRegression, one fit at C=1", t_one, one.n_passes_))
        if not args.skip_grid:
            grid = GridSearchCV(daskfit.LogisticRegression(), {"C": list(Cs)}, cv=folds)
            t_grid, g = timed(lambda: grid.fit(Xd, yd), 1)
            rows.append(("GridSearchCV(daskfit.LogisticRegression), same folds and C", t_grid,
                         None))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t_sk, _ = timed(lambda: sk.LogisticRegressionCV(
                Cs=Cs, cv=folds, l1_ratios=(0,), use_legacy_attributes=False).fit(X, y), 1)
        rows.append(("scikit-learn LogisticRegressionCV (lbfgs, in memory)", t_sk, None))
    print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}; {n:,} x {p}, 8 chunks, 2 workers x 1 thread; command: "
          "python benchmarks/bench_logistic_cv.py " + " ".join(argv or sys.argv[1:]))
    print("\n| run | time (median) | passes | vs daskfit LogisticRegressionCV |")
    print("|---|---:|---:|---:|")
    for label, t, passes in rows:
        print(f"| {label} | {t:.2f} s | {'' if passes is None else passes} | "
              f"{t / rows[0][1]:.2f}x |")


if __name__ == "__main__":
    main()
