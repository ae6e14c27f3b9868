"""Zarr input for ``daskfit run``: one 1-D array per column of a Zarr group."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

zarr = pytest.importorskip("zarr")

import daskfit  # noqa: E402
from daskfit.cli._config import load_config  # noqa: E402
from daskfit.cli._input import find_input, read_table  # noqa: E402


def test_a_zarr_group_reads_as_the_same_table_and_fits(tmp_path):
    rng = np.random.default_rng(0)
    n = 3_000
    frame = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(3)})
    frame["y"] = frame.to_numpy() @ np.array([1.0, -2.0, 0.5]) + 0.3 + rng.normal(size=n)
    group = zarr.open_group(str(tmp_path / "table.zarr"), mode="w")
    for name in frame.columns:
        group.create_array(name, data=frame[name].to_numpy(), chunks=(1_000,))
    config_path = tmp_path / "zarr.toml"
    config_path.write_text(textwrap.dedent("""
        [data]
        path = "table.zarr"
        target = "y"
        features = ["x0", "x1", "x2"]
        [model]
        estimator = "LinearRegression"
        """))
    config = load_config(config_path)
    source = find_input(config)
    assert source.format == "zarr"
    table = read_table(config, source)
    got = table.compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(got[frame.columns], frame, check_exact=True)
    fitted = daskfit.LinearRegression().fit(table[["x0", "x1", "x2"]], table["y"])
    expected = np.linalg.lstsq(np.column_stack([frame.iloc[:, :3], np.ones(n)]),
                               frame["y"], rcond=None)[0]
    np.testing.assert_allclose(fitted.coef_, expected[:3], rtol=1e-10)
