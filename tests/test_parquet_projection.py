"""X and y taken from the same Parquet files read each column once per pass.

``daskfit.io.read_parquet`` reads one file per partition; Dask projects a
column selection into that read, so ``fit(df[features], df["y"])`` decodes
the feature columns for X and only the ``y`` column for y, not every file
twice (which made a streamed least-squares pass cost 2x a read-and-sum pass).
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest

import daskfit
import daskfit.io._read as reader
from daskfit._data import as_chunked
from daskfit.io import read_parquet

FEATURES = ["a", "b", "c"]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(5)
    frames = []
    for i in range(3):
        frame = pd.DataFrame(rng.normal(size=(7, 5)), columns=FEATURES + ["y", "unused"])
        frame.to_parquet(tmp_path / f"part.{i}.parquet", index=False)
        frames.append(frame)
    return tmp_path, pd.concat(frames, ignore_index=True)


def test_features_and_target_each_read_only_their_columns(files, monkeypatch):
    folder, whole = files
    reads = []
    real = reader._read_parquet_file

    def spy(path, fs, schema=None, first=None, columns=None):
        reads.append((path.rsplit("/", 1)[-1], columns))
        return real(path, fs, schema, first, columns)

    monkeypatch.setattr(reader, "_read_parquet_file", spy)
    df = read_parquet(folder)
    data = as_chunked(daskfit.LinearRegression(), df[FEATURES], df["y"])
    X, y = dask.compute(data.X, data.y, scheduler="sync")
    np.testing.assert_array_equal(X, whole[FEATURES].to_numpy())
    np.testing.assert_array_equal(y, whole["y"].to_numpy())
    # Each file once for the features, once for y, and "unused" never.
    assert sorted(reads) == sorted([(f"part.{i}.parquet", FEATURES) for i in range(3)]
                                   + [(f"part.{i}.parquet", ["y"]) for i in range(3)])


def test_schema_drift_in_a_column_not_read_is_still_an_error(files):
    folder, _ = files
    drifted = pd.read_parquet(folder / "part.2.parquet")
    drifted["unused"] = drifted["unused"].astype("float32")
    drifted.to_parquet(folder / "part.2.parquet", index=False)
    df = read_parquet(folder)
    with pytest.raises(daskfit.DataError,
                       match=r"part\.2\.parquet.*'unused' has type float"):
        df["y"].compute(scheduler="sync")
