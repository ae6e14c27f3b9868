#!/usr/bin/env python
"""One chunk, one thread: the moments kernel against NumPy's X'X and X'y.

The single-pass fits (``LinearRegression``, ``Ridge``, ``RidgeCV``) spend
their time in :func:`daskfit.kernels.chunks.moments_chunk` (and, for the fold pass,
:func:`daskfit.model_selection._fold_kernels.fold_moments_chunk`). This
measures them on one in-memory chunk with BLAS limited to one thread (as in
a 1-thread Dask worker), next to the NumPy floor for the same chunk, in the
same run:

* ``centred``: standard normal features plus 1 (the raw-product path);
* ``large means``: features around 1e6 (the shifted-block path);
* ``weighted``: centred data with sample weights (shifted blocks);
* ``fold pass``: the K-fold (5 folds of 2M rows) codes of the second
  250,000-row chunk, which holds two folds.

Usage::

    python benchmarks/bench_moments_kernel.py                 # 250,000 x 50
    python benchmarks/bench_moments_kernel.py --rows 100000 --repeats 21
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits


def timings(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=250_000)
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)

    from daskfit.kernels.chunks import moments_chunk
    from daskfit.model_selection._fold_kernels import FoldSpec, fold_moments_chunk, pack_codes
    from daskfit.model_selection._split import FoldLayout, plain_kfold
    from sklearn.model_selection import KFold

    n, q = args.rows, args.features
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, q)) + 1.0
    y = X @ rng.normal(size=q) + rng.standard_normal(n)
    X_large = X + 1e6
    w = rng.uniform(0.5, 1.5, size=n)
    layout = FoldLayout.from_kfold(plain_kfold(KFold(5), 8 * n))
    yc = pack_codes(y, layout.chunk_codes(n, 2 * n), n)

    cases = [
        ("NumPy X'X, X'y (the floor)", lambda: (X.T @ X, X.T @ y)),
        ("moments_chunk, centred (raw product)", lambda: moments_chunk(0, X, y, None, None)),
        ("moments_chunk, large means (shifted blocks)",
         lambda: moments_chunk(0, X_large, y, None, None)),
        ("moments_chunk, weighted (shifted blocks)", lambda: moments_chunk(0, X, y, w, None)),
        ("fold_moments_chunk, K-fold (2 folds in the chunk)",
         lambda: fold_moments_chunk(0, X, yc, None, FoldSpec(layout.n_codes))),
    ]
    rows = []
    with threadpool_limits(1):
        for label, fn in cases:
            fn()  # warm-up: first-touch page faults, BLAS buffers
            rows.append((label, timings(fn, args.repeats)))
    floor_min = min(rows[0][1])
    floor_med = statistics.median(rows[0][1])
    print(f"Command: `python {' '.join(sys.argv)}`")
    print(f"One chunk of {n} x {q} float64, BLAS limited to 1 thread, {args.repeats} runs each")
    print()
    print("| kernel | best s | median s | ratio to floor (best / median) |")
    print("|---|---|---|---|")
    for label, ts in rows:
        print(f"| {label} | {min(ts):.4f} | {statistics.median(ts):.4f} | "
              f"{min(ts) / floor_min:.2f}x / {statistics.median(ts) / floor_med:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
