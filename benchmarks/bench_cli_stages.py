"""``daskfit run`` stage times: do cross-validation and diagnosis cost about a fit?

Makes ``daskfit make-data DIR --rows N`` (default 5,000,000 rows, 20 features,
3 segments), runs ``pipelines/regression.toml`` adapted to it (Ridge, 5 folds,
a 5-value validation curve) as the ``daskfit`` command does, and prints each
stage's seconds from ``metrics.json`` with the target ratio
``(cv + overfitting) / fit`` (goal: <= 3), and the largest graph the client
sent (distributed's large-graph warning, lowered to 1 MiB, is recorded).

    python benchmarks/bench_cli_stages.py --rows 5000000 --workdir /tmp/bench-cli
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
import warnings
from pathlib import Path

CONFIG = """
[data]
path = "{data}"
target = "y"
categorical = ["segment"]

[model]
estimator = "Ridge"
params = {{ alpha = 1.0 }}

[cv]
folds = 5

[overfitting]
param_name = "alpha"
param_range = [0.01, 1.0, 100.0, 10000.0, 1000000.0]

[output]
dir = "{runs}"

[cluster]
n_workers = {workers}
threads_per_worker = 1
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/daskfit-bench-cli")
    args = parser.parse_args()

    import dask

    from daskfit.cli._make_data import make_data
    from daskfit.cli._run import run

    work = Path(args.workdir)
    data, runs = work / "data", work / "runs"
    if not data.exists():
        make_data(data, rows=args.rows, segments=3, progress=False)
    shutil.rmtree(runs, ignore_errors=True)
    cfg = work / "bench.toml"
    cfg.write_text(CONFIG.format(data=data, runs=runs, workers=args.workers))
    sizes = []
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1MiB"}), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        run_dir = run(cfg, progress=False, echo=lambda *a, **k: None)
        total = time.perf_counter() - t0
    for w in caught:
        m = re.search(r"Sending large graph of size ([\d.]+ \w+)", str(w.message))
        if m:
            sizes.append(m.group(1))
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    t = metrics["timings"]
    ratio = (t["cv"] + t["overfitting"]) / t["fit"]
    print(f"rows={metrics['input']['rows']} partitions={metrics['input']['partitions']} "
          f"workers={args.workers} passes(fit)={metrics['model']['n_passes']}")
    for stage in ("encode", "fit", "score", "cv", "overfitting", "write", "total"):
        print(f"  {stage:12s} {t[stage]:8.2f} s")
    print(f"(cv + overfitting) / fit = {ratio:.2f}  (goal <= 3)   wall {total:.1f} s")
    print(f"graphs over 1 MiB: {sizes or 'none'}")


if __name__ == "__main__":
    main()
