#!/usr/bin/env python
"""A claim-frequency GLM out of core: Poisson with exposure and a 100,000-level categorical.

Writes (once, to ``--data-dir``, reused by the next run of the same size)
``--rows`` rows of insurance-like data as Parquet files of
``--rows-per-file`` rows: five numeric rating factors, ``vehicle_brand``
(100 levels), ``region`` (``--levels`` levels, Zipf-like frequencies: a few
large regions, a long tail of small ones), ``exposure`` in (0, 1] and
``claims`` drawn from a Poisson with mean ``exposure * exp(x b + brand +
region)``. Then, on a LocalCluster of 2 workers x 1 thread with
``--worker-memory`` each (at 10,000,000 rows neither the table nor the
encoded data fits in what the workers have beyond their own ~270 MiB: every
pass streams from the files), with each worker's peak RSS sampled every 0.1 s:

1. **floor**: a bare Dask read-and-sum pass over the same files and columns
   (``daskfit.io.read_parquet``, one partition per file, as the fit reads);
2. **fit**: what a user writes -- ``TabularModel(FrameEncoder(categorical=
   ["vehicle_brand", "region"]), PoissonRegressor(alpha), offset=
   "log_exposure")`` on ``read_parquet(...)``: the encoder's one pass, then
   the one-hot columns as CSR chunks (``sparse="auto"``), L-BFGS over
   streamed passes. Passes are the library's (``n_passes_`` + the encoder's
   one) and the file reads the task stream saw;
3. **summary()**: on the region model it is refused at full size (more
   coefficients than inference's limit of 5,000: k x k matrices per task;
   attempted at smaller sizes), so it is also measured on the
   numeric-factors model (``PoissonRegressor(alpha=0)`` with the same
   offset): its passes and time against the floor;
4. **correctness**: on the first ``--check-rows`` rows, the numeric factors
   and ``vehicle_brand`` (sparse CSR chunks forced), coefficients and
   standard errors against statsmodels' ``GLM(Poisson, offset=log(exposure))``;
   and the full fit's numeric coefficients against the simulated ones.

Usage::

    python benchmarks/bench_glm.py --data-dir /tmp/daskfit-glm      # 10,000,000 rows
    python benchmarks/bench_glm.py --rows 200000 --levels 2000 --rows-per-file 50000 \\
        --worker-memory 2GiB --check-rows 50000                     # smoke run, ~35 s
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scale import PeakMemory, cluster, median_time  # noqa: E402  (shared helpers)

SEED = 11
#: Rating factors: name -> (sampler, coefficient on the raw scale).
NUMERIC = {
    "driver_age": (lambda rng, m: rng.uniform(18, 85, m), -0.012),
    "vehicle_age": (lambda rng, m: rng.integers(0, 21, m).astype(float), -0.025),
    "vehicle_power": (lambda rng, m: rng.integers(4, 16, m).astype(float), 0.03),
    "bonus_malus": (lambda rng, m: rng.uniform(50, 150, m), 0.011),
    "log_density": (lambda rng, m: rng.normal(6.0, 1.5, m), 0.08),
}
#: Mean of each factor (uniform and normal means above): the intercept makes
#: the mean yearly claim frequency about 0.1.
MEANS = {"driver_age": 51.5, "vehicle_age": 10.0, "vehicle_power": 9.5, "bonus_malus": 100.0,
         "log_density": 6.0}
BRANDS = 100


# --------------------------------------------------------------------- data
def level_effects(levels, scale, seed):
    """Zipf-like level probabilities (rank r: 1 / (r + 10)^1.1) and N(0, scale) effects."""
    rng = np.random.default_rng([SEED, seed])
    p = 1.0 / (np.arange(levels) + 10.0) ** 1.1
    return p / p.sum(), rng.normal(0.0, scale, levels)


def make_piece(index, rows, levels):
    """Rows of file ``index``: a pandas frame, generated from its own seed."""
    import pandas as pd

    rng = np.random.default_rng([SEED, index])
    frame = pd.DataFrame({name: draw(rng, rows) for name, (draw, _) in NUMERIC.items()})
    eta = np.log(0.1) + sum(b * (frame[name] - MEANS[name]) for name, (_, b) in NUMERIC.items())
    for column, n_levels, scale, seed in (("vehicle_brand", BRANDS, 0.2, 1),
                                          ("region", levels, 0.3, 2)):
        p, effect = level_effects(n_levels, scale, seed)
        codes = rng.choice(n_levels, size=rows, p=p)
        width = len(str(n_levels - 1))
        labels = np.array([f"{column[0].upper()}{k:0{width}d}" for k in range(n_levels)],
                          dtype=object)
        frame[column] = labels[codes]
        eta = eta + effect[codes]
    # Half the policies are in force all year, the rest part of it.
    frame["exposure"] = np.where(rng.uniform(size=rows) < 0.5, 1.0,
                                 rng.uniform(0.01, 1.0, rows))
    frame["claims"] = rng.poisson(frame["exposure"] * np.exp(eta)).astype(np.float64)
    return frame


def write_data(folder, rows, levels, rows_per_file):
    """The Parquet files (written unless a complete set of this size is there)."""
    import dask

    marker = os.path.join(folder, f"complete-{rows}-rows-{levels}-levels-{rows_per_file}")
    files = sorted(glob.glob(os.path.join(folder, "part-*.parquet")))
    if os.path.exists(marker):
        return files, "reused"
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    sizes = [min(rows_per_file, rows - start) for start in range(0, rows, rows_per_file)]

    def write(i, m):
        make_piece(i, m, levels).to_parquet(os.path.join(folder, f"part-{i:05d}.parquet"),
                                            index=False)

    with dask.config.set(scheduler="threads", num_workers=2):  # never whole in memory
        dask.compute(*[dask.delayed(write)(i, m) for i, m in enumerate(sizes)])
    open(marker, "w").close()
    return sorted(glob.glob(os.path.join(folder, "part-*.parquet"))), "written"


# --------------------------------------------------------------------- measuring
class Measured:
    """One run: wall time, peak worker RSS, and the bytes the workers read.

    Bytes are each worker process's ``read_chars`` (every ``read`` call,
    page cache included): divided by the floor pass's bytes they count
    passes over the files independently of the library's own count.
    """

    def __init__(self, label, client):
        self.label, self.client = label, client

    def _read_chars(self):
        import psutil

        return sum(self.client.run(lambda: psutil.Process().io_counters().read_chars).values())

    def run(self, fn, repeats=1):
        results = []
        before = self._read_chars()
        with PeakMemory(self.client) as mem:
            self.time, self.lo, self.hi = median_time(lambda: results.append(fn()), repeats)
        self.read = (self._read_chars() - before) / repeats
        self.peak = max(mem.peak.values())
        print(f"  {self.label}: {self.time:.2f} s", file=sys.stderr, flush=True)
        return results[-1]


def floor_pass(files, columns):
    """The bare read-and-sum pass: every column the fit reads, summed or counted."""
    from daskfit.io import read_parquet

    df = read_parquet(files)
    numeric = [c for c in columns if c not in ("vehicle_brand", "region")]
    return (df[numeric].sum(), df["vehicle_brand"].count(), df["region"].count())


def region_fit(files, alpha, max_iter):
    """The fit a user writes: encoder + PoissonRegressor on the raw table, log exposure offset."""
    import daskfit
    from daskfit.io import FrameEncoder, TabularModel

    model = TabularModel(
        encoder=FrameEncoder(categorical=["vehicle_brand", "region"]),  # sparse="auto"
        estimator=daskfit.PoissonRegressor(alpha=alpha, max_iter=max_iter),
        target="claims", offset="log_exposure")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*training(files))
    model.warnings_ = [str(w.message).split(".")[0] for w in caught]
    return model


def numeric_model(files):
    """The numeric rating factors only: unpenalised, so summary() applies."""
    import daskfit
    from daskfit.io import read_parquet

    df = read_parquet(files)
    X, y, offset = df[list(NUMERIC)], df["claims"], np.log(df["exposure"])
    return daskfit.PoissonRegressor(alpha=0), (X, y, offset)


def check_against_statsmodels(files, check_rows):
    """The first files (``check_rows`` rows or more): daskfit on CSR chunks against statsmodels."""
    import pandas as pd
    import statsmodels.api as sm

    import daskfit
    from daskfit.io import FrameEncoder, TabularModel, read_parquet

    sizes = np.cumsum([pq_rows(f) for f in files])
    files = files[:int(np.searchsorted(sizes, check_rows)) + 1]
    columns = list(NUMERIC) + ["vehicle_brand", "log_exposure"]
    df = read_parquet(files)
    df = df.assign(log_exposure=np.log(df["exposure"]))
    model = TabularModel(encoder=FrameEncoder(categorical=["vehicle_brand"], sparse=True),
                         estimator=daskfit.PoissonRegressor(alpha=0, tol=1e-10),
                         offset="log_exposure").fit(df[columns], df["claims"])
    table = summary_or_refusal(model, df[columns], df["claims"])
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    dense = model.encoder.transform(frame[columns[:-1]]).to_numpy()
    ref = sm.GLM(frame["claims"].to_numpy(), sm.add_constant(dense),
                 family=sm.families.Poisson(), offset=np.log(frame["exposure"].to_numpy())
                 ).fit(tol=1e-12, wls_method="lstsq")  # its default pinv is 3x slower
    est = model.estimator
    ours = np.r_[est.intercept_, est.coef_]
    rel = lambda a, b: float(np.max(np.abs(a - b) / np.abs(b)))  # noqa: E731
    return {"rows": len(frame), "params": len(ours), "coef": rel(ours, ref.params),
            "se": rel(table["std_err"].to_numpy(), ref.bse), "sparse": model.encoder.sparse_}


def pq_rows(path):
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def summary_or_refusal(model, X, y):
    """``summary()`` of a fitted :class:`TabularModel`'s estimator on its training table,
    or why there is none: the ``ValueError`` that refuses it (over 5,000
    coefficients), or the crash of workers too small for its k x k matrices."""
    import daskfit

    Xe, ye, _ = model.encode(X.drop(columns=[model.offset]), y)
    offset = model.encode(X, X[model.offset])[1]
    try:
        return model.estimator.summary(Xe, ye, offset=offset)
    except ValueError as exc:
        return "refused, no pass: " + str(exc).split(";")[0]
    except daskfit.WorkerCrashError as exc:
        return "workers crashed: " + str(exc).split(",")[0]


def recovered(model):
    """Largest |fitted - simulated| over the numeric factors' raw-scale coefficients."""
    enc = model.encoder
    coef = model.estimator.coef_[:len(NUMERIC)] / enc.scale_
    true = np.array([b for _, b in NUMERIC.values()])
    return float(np.max(np.abs(coef - true))), float(np.max(np.abs(true)))


# --------------------------------------------------------------------- main
def run(args):
    from dask.utils import parse_bytes

    limit = parse_bytes(args.worker_memory)
    keep = args.data_dir is not None
    folder = args.data_dir or tempfile.mkdtemp(prefix="daskfit-glm-")
    alpha = args.alpha if args.alpha is not None else 10.0 / args.rows
    try:
        started = time.perf_counter()
        files, how = write_data(folder, args.rows, args.levels, args.rows_per_file)
        print(f"  data {how} in {time.perf_counter() - started:.1f} s ({len(files)} files)",
              file=sys.stderr, flush=True)
        columns = list(NUMERIC) + ["vehicle_brand", "region", "exposure", "claims"]
        lc, client = cluster(2, memory_limit=limit)
        with lc, client:
            at_rest = _worker_rss(client)  # what a worker process takes before any data
            floor = Measured("read-and-sum pass (dask)", client)
            _compute(floor_pass(files, columns))  # warm-up: file system cache
            floor.run(lambda: _compute(floor_pass(files, columns)), args.repeats)
            fit = Measured("Poisson fit: FrameEncoder + PoissonRegressor", client)
            model = fit.run(lambda: region_fit(files, alpha, args.max_iter))
            region_summary = Measured("its summary()", client)
            region_table = region_summary.run(lambda: summary_or_refusal(model, *training(files)))
            numeric = Measured("numeric factors only, PoissonRegressor(alpha=0): fit", client)
            est, data = numeric_model(files)
            numeric.run(lambda: est.fit(*data[:2], offset=data[2]))
            summ = Measured("its summary()", client)
            table = summ.run(lambda: est.summary(*data[:2], offset=data[2]))
            check = check_against_statsmodels(files, args.check_rows)
        runs = [(floor, 1), (fit, model.estimator.n_passes_ + 1),  # + the encoder's pass
                (region_summary, _passes(model.estimator)), (numeric, est.n_passes_),
                (summ, est.inference_.passes)]
        describe(args, alpha, files, model, limit, at_rest)
        print_runs(runs, floor, limit, args.repeats)
        print_summary(model, region_table, est, table, summ, floor)
        print_correctness(model, check)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def training(files):
    """The region model's training table and target, as ``region_fit`` reads them."""
    from daskfit.io import read_parquet

    df = read_parquet(files)
    df = df.assign(log_exposure=np.log(df["exposure"]))
    return df[list(NUMERIC) + ["vehicle_brand", "region", "log_exposure"]], df["claims"]


def _worker_rss(client):
    """Largest worker RSS once the modules a fit uses are imported (no data yet)."""
    return max(client.run(_imported_rss).values())


def _imported_rss():
    import importlib

    import psutil

    for name in ("pandas", "pyarrow.parquet", "scipy.sparse", "daskfit", "daskfit.io"):
        importlib.import_module(name)
    return psutil.Process().memory_info().rss


def _passes(est):
    stats = vars(est).get("inference_")
    return 0 if stats is None else stats.passes


def _compute(parts):
    import dask

    return dask.compute(*parts)


def describe(args, alpha, files, model, limit, at_rest):
    est, enc = model.estimator, model.encoder
    import pandas as pd

    disk = sum(os.path.getsize(f) for f in files)
    table = pd.read_parquet(files[0]).memory_usage(deep=True).sum() * args.rows / pq_rows(files[0])
    encoded = _encoded_bytes(args.rows, len(NUMERIC) + 2)
    room = max(2 * (limit - at_rest), 1)
    print(f"\n### Poisson claim frequency, out of core: {args.rows:,} rows, "
          f"{len(enc.feature_names_out_):,} features ({len(NUMERIC)} numeric, "
          f"vehicle_brand {len(enc.categories_['vehicle_brand'])} and region "
          f"{len(enc.categories_['region']):,} levels seen of {args.levels:,}, one-hot as "
          f"{'CSR chunks' if enc.sparse_ else 'dense blocks'}), offset log(exposure)\n")
    print(f"{len(files)} Parquet files of {args.rows_per_file:,} rows, {disk / 2**20:.0f} MiB "
          f"on disk. A worker process takes {at_rest / 2**20:.0f} MiB at rest, so 2 "
          f"workers x 1 thread x {args.worker_memory} leave {room / 2**20:.0f} MiB for data: "
          f"the table in memory (pandas) takes ~{table / 2**20:.0f} MiB, {table / room:.1f}x "
          f"that, the encoded design, y and (weight, offset) records ~{encoded / 2**20:.0f} "
          f"MiB, {encoded / room:.1f}x. "
          f"PoissonRegressor(alpha={alpha:.3g}): solver {est.solver_}, {est.n_iter_} "
          f"iterations, {est.fit_result_.message}; {est.persist_reason_}.\n")
    if model.warnings_:
        print(f"Warnings during the fit: {sorted(set(model.warnings_))}\n")


def print_runs(runs, floor, limit, repeats):
    print("| run | time | passes (library) | bytes read, in floor passes | per pass "
          "| per pass / floor | total / floor | peak worker RSS | under limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for run_, passes in runs:
        per = run_.time / max(passes, 1)
        print(f"| {run_.label} | {run_.time:.2f} s | {passes} | {run_.read / floor.read:.1f} | "
              f"{per:.2f} s | {per / floor.time:.2f}x | {run_.time / floor.time:.1f}x | "
              f"{run_.peak / 2**20:.0f} MiB | {'yes' if run_.peak < limit else 'NO'} |")
    print(f"\nFloor: median of {repeats} after a warm-up. Passes (library): n_passes_ (+ 1 "
          "for the encoder's pass), inference_.passes for summary(). Bytes read: the "
          "workers' read_chars over the run divided by the floor pass's (a pass reading "
          "fewer columns counts less than one).")


def print_summary(model, region_table, est, table, summ, floor):
    k = model.estimator.coef_.size + 1
    if isinstance(region_table, str):
        print(f"\nsummary() on the region model ({k:,} coefficients): {region_table}. So "
              "its cost is measured on the numeric-factors model:")
    else:
        print(f"\nsummary() on the region model ({k:,} coefficients, under inference's "
              f"limit of 5,000 at this size; ~100,000 at full size are refused): one table, "
              f"{_passes(model.estimator)} pass(es). On the numeric-factors model:")
    print(f"{est.inference_.passes} pass(es), {summ.time:.2f} s ({summ.time / floor.time:.2f}x "
          "the floor)\n")
    columns = list(table.columns)
    print("| | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in table.iterrows():
        print(f"| {name} | " + " | ".join(f"{v:.4g}" for v in row) + " |")


def print_correctness(model, check):
    err, scale = recovered(model)
    print(f"\nCorrectness: the full fit's numeric coefficients (raw scale) are within "
          f"{err:.2g} of the simulated ones (largest {scale:.3g}). On the first "
          f"{check['rows']:,} rows (numeric factors + vehicle_brand, {check['params']} "
          f"coefficients, {'CSR' if check['sparse'] else 'dense'} chunks, tol=1e-10) "
          f"against statsmodels' GLM(Poisson, offset=log(exposure)): coefficients "
          f"{check['coef']:.1e} and standard errors {check['se']:.1e} relative (max).")


def _encoded_bytes(rows, nnz_per_row):
    """CSR (float64 values, int32 indices, int64 row pointers), y, (weight, offset) records."""
    return rows * (nnz_per_row * 12 + 8 + 8 + 16)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="write the files here and keep them (reused by "
                        "the next run of the same size); default a temporary folder")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--levels", type=int, default=100_000,
                        help="levels of the region column")
    parser.add_argument("--rows-per-file", type=int, default=100_000)
    parser.add_argument("--worker-memory", default="640MiB",
                        help="memory limit of each of the 2 workers (Dask pauses a worker "
                        "at 80%% of it)")
    parser.add_argument("--alpha", type=float, default=None,
                        help="PoissonRegressor's alpha; default 10 / rows (the penalty "
                        "weighs as much as 10 rows' deviance per unit coefficient)")
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="floor pass repeats")
    parser.add_argument("--check-rows", type=int, default=200_000)
    args = parser.parse_args(argv)
    print(header(argv if argv is not None else sys.argv[1:]))
    run(args)


def header(argv):
    """Machine, versions and the exact command, for the results file."""
    import dask
    import distributed

    import daskfit

    return (f"Machine: {platform.platform()}, {os.cpu_count()} cores; Python "
            f"{sys.version.split()[0]}, dask {dask.__version__}, distributed "
            f"{distributed.__version__}, daskfit {daskfit.__version__}; command: "
            f"python benchmarks/bench_glm.py {' '.join(argv)}")


if __name__ == "__main__":
    main()
