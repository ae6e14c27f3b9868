"""``daskfit make-data``: synthetic Parquet datasets with known coefficients.

Features ``x0 .. x{p-1}`` are normal with known means and scales (so
standardisation matters), an optional categorical column ``segment`` adds a
known effect per level, and the target ``y`` is

- regression: ``intercept + x @ coef + effect[segment] + noise * N(0, 1)``;
- classification: ``1`` with probability ``sigmoid(intercept + x @ coef +
  effect[segment])``, else ``0``.

The truth (coefficients in the features' own units, intercept, effects,
feature means and scales) is written to ``_daskfit_truth.json`` in the dataset
directory (Parquet readers skip names starting with ``_``). Each partition
is generated and written by its own task, seeded from ``(seed, partition)``,
so the data never has to fit in memory.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["make_data", "export_sklearn_dataset", "TRUTH_FILE"]

TRUTH_FILE = "_daskfit_truth.json"
#: Rows per partition aim at this many bytes of features: large enough that
#: per-task overhead is small, small enough for a worker with little memory.
PARTITION_BYTES = 32 * 2**20
SEGMENTS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
SKLEARN_DATASETS = ("breast_cancer", "diabetes", "iris", "wine")


def truth(task, n_features, n_segments, seed, noise):
    """The known model: coefficients, intercept, segment effects, feature means and scales."""
    rng = np.random.default_rng([seed, 2**31 - 1])
    scale = rng.uniform(0.5, 3.0, size=n_features)
    mean = rng.uniform(-2.0, 2.0, size=n_features)
    # Coefficients of standardised features are O(1); in the features' own units
    # they are divided by the scale.
    coef_std = rng.normal(scale=1.0 if task == "regression" else 0.7, size=n_features)
    effects = rng.normal(scale=0.5, size=n_segments) if n_segments else np.zeros(0)
    return {
        "task": task, "target": "y", "noise": noise if task == "regression" else None,
        "features": [f"x{j}" for j in range(n_features)],
        "coef": (coef_std / scale).tolist(), "intercept": float(rng.normal()),
        "segment_effects": dict(zip(SEGMENTS[:n_segments], effects.tolist())),
        "feature_mean": mean.tolist(), "feature_scale": scale.tolist(), "seed": seed,
    }


def _partition(index, rows, spec, dtype):
    import pandas as pd

    rng = np.random.default_rng([spec["seed"], index])
    p = len(spec["features"])
    X = rng.standard_normal((rows, p)) * spec["feature_scale"] + spec["feature_mean"]
    margin = X @ np.asarray(spec["coef"]) + spec["intercept"]
    frame = pd.DataFrame(X.astype(dtype, copy=False), columns=spec["features"])
    if spec["segment_effects"]:
        names = np.array(list(spec["segment_effects"]), dtype=object)
        codes = rng.integers(0, len(names), size=rows)
        margin += np.asarray(list(spec["segment_effects"].values()))[codes]
        frame["segment"] = names[codes]
    if spec["task"] == "regression":
        frame["y"] = margin + spec["noise"] * rng.standard_normal(rows)
    else:
        frame["y"] = (rng.uniform(size=rows) < 1 / (1 + np.exp(-margin))).astype(np.int64)
    return frame


def _write(index, rows, spec, dtype, path):
    frame = _partition(index, rows, spec, dtype)
    name = Path(path) / f"part.{index:05d}.parquet"
    tmp = name.with_name("." + name.name)
    # Random floats neither compress nor dictionary-encode: trying costs ~10x the
    # write time, so only the categorical column is dictionary-encoded.
    frame.to_parquet(tmp, index=False, compression=None,
                     use_dictionary=["segment"] if "segment" in frame else False)
    os.replace(tmp, name)
    return len(frame)


def make_data(path, *, rows, features=20, task="regression", segments=0, noise=1.0,
              seed=0, partition_rows=None, dtype="float64", progress=True):
    """Write a Parquet dataset of ``rows`` rows with known coefficients; return the truth.

    Parameters
    ----------
    path : str or path-like
        Directory to create (must not exist or be empty).
    rows, features : int
    task : {"regression", "classification"}
    segments : int
        Levels of the categorical column ``segment`` (0: no such column).
    noise : float
        Standard deviation of the regression noise.
    seed : int
    partition_rows : int, optional
        Rows per file (default: about 32 MiB of features per file).
    dtype : {"float64", "float32"}
    progress : bool
        Show Dask's progress bar.

    Returns
    -------
    truth : dict
        Also written to ``path/_daskfit_truth.json``.

    Examples
    --------
    >>> import tempfile, dask.dataframe as dd
    >>> from daskfit.cli import make_data
    >>> folder = tempfile.mkdtemp() + "/data"
    >>> t = make_data(folder, rows=1000, features=3, segments=2, progress=False)
    >>> df = dd.read_parquet(folder)
    >>> list(df.columns), len(df)
    (['x0', 'x1', 'x2', 'segment', 'y'], 1000)
    """
    import dask
    from dask.diagnostics import ProgressBar

    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification'; got {task!r}.")
    if not 0 <= segments <= len(SEGMENTS):
        raise ValueError(f"segments must be between 0 and {len(SEGMENTS)}; got {segments}.")
    path = Path(path)
    itemsize = np.dtype(dtype).itemsize
    if partition_rows is None:
        partition_rows = max(1000, PARTITION_BYTES // (features * itemsize))
    n_parts = max(1, math.ceil(rows / partition_rows))
    sizes = [partition_rows] * (n_parts - 1) + [rows - partition_rows * (n_parts - 1)]
    spec = truth(task, features, segments, seed, noise)
    if path.exists() and any(path.iterdir()):
        # The same request again (a re-run quick start, a cron job) is a no-op.
        done = dict(spec, rows=rows, n_partitions=n_parts, dtype=dtype)
        if _read_json(path / TRUTH_FILE) == json.loads(json.dumps(done)):
            return dict(done, existed=True)
        raise FileExistsError(f"{path} exists and is not empty (or holds other data); "
                              "choose a new directory.")
    path.mkdir(parents=True, exist_ok=True)
    tasks = [dask.delayed(_write, name=f"daskfit-make-data-{i}")(i, n, spec, dtype, str(path))
             for i, n in enumerate(sizes)]
    # Threads: NumPy's generators and Parquet writing release the GIL.
    if progress:
        with ProgressBar():
            dask.compute(*tasks, scheduler="threads")
    else:
        dask.compute(*tasks, scheduler="threads")
    spec.update(rows=rows, n_partitions=n_parts, dtype=dtype)
    _write_json(path / TRUTH_FILE, spec)
    return spec


def export_sklearn_dataset(name, path):
    """Write one of scikit-learn's bundled datasets as one Parquet file in ``path``.

    The target column is ``target``; classification labels are the class names.

    Parameters
    ----------
    name : {"breast_cancer", "diabetes", "iris", "wine"}
        The dataset (``daskfit make-data --sklearn-dataset NAME``).
    path : str or Path
        A new or empty directory.
    """
    import sklearn.datasets

    if name not in SKLEARN_DATASETS:
        raise ValueError(f"dataset must be one of {list(SKLEARN_DATASETS)}; got {name!r}.")
    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame
    if name != "diabetes":
        frame["target"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path} exists and is not empty; choose a new directory.")
    path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path / "part.00000.parquet", index=False)
    info = {"dataset": name, "rows": len(frame), "target": "target",
            "features": [c for c in frame.columns if c != "target"]}
    _write_json(path / TRUTH_FILE, info)
    return info


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path, obj):
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
