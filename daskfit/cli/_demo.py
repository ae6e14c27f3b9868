"""``daskfit-demo``: the main job on a loopback LocalCluster with its own data.

Starts a 2-worker ``LocalCluster`` on 127.0.0.1, makes a synthetic
regression and classification problem with known coefficients as chunked
Dask arrays, fits ``LinearRegression``, ``Ridge``, ``Lasso``,
``LogisticRegression`` and ``PoissonRegressor`` and prints, for each, the
solver, the passes over the data, the time and how close the coefficients
are to the truth.
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import numpy as np

from .. import (
    Lasso,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    connect,
)


def make_problem(n_rows, n_features, chunk_rows, seed=0):
    """Synthetic features and the true coefficients, as Dask arrays."""
    rs = da.random.RandomState(seed)
    X = rs.normal(size=(n_rows, n_features), chunks=(chunk_rows, n_features))
    coef = np.random.default_rng(seed).normal(size=n_features)
    return X, coef, rs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="daskfit-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000, help="rows of synthetic data")
    parser.add_argument("--features", type=int, default=20, help="features")
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="rows per chunk")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    args = parser.parse_args(argv)

    client = connect(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
    try:
        X, coef, rs = make_problem(args.rows, args.features, args.chunk_rows)
        X = X.persist()
        margin = X @ coef
        noise = rs.normal(size=args.rows, chunks=args.chunk_rows)
        y_lin = (margin + 1.0 + noise).persist()
        y_bin = (rs.uniform(size=args.rows, chunks=args.chunk_rows)
                 < 1 / (1 + da.exp(-margin))).astype(int).persist()
        y_cnt = rs.poisson(da.exp(0.2 * margin)).persist()
        print(f"data: {args.rows} x {args.features}, {X.numblocks[0]} chunks, "
              f"{client.cluster.workers.__len__()} workers")
        jobs = [
            ("LinearRegression", LinearRegression(), y_lin, coef),
            ("Ridge(alpha=10)", Ridge(alpha=10.0), y_lin, coef),
            ("Lasso(alpha=0.01)", Lasso(alpha=0.01), y_lin, coef),
            ("LogisticRegression", LogisticRegression(C=1e4), y_bin, coef),
            ("PoissonRegressor", PoissonRegressor(alpha=1e-6), y_cnt, 0.2 * coef),
        ]
        for label, est, y, truth in jobs:
            t0 = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - t0
            err = np.abs(np.ravel(est.coef_) - truth).max()
            print(f"{label:<20} solver={est.solver_:<8} passes={est.n_passes_:<3} "
                  f"time={seconds:6.2f}s  max|coef - truth|={err:.3f}")
    finally:
        client.close()
        client.cluster.close()


if __name__ == "__main__":
    main()
