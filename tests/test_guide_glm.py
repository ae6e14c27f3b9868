"""The GLM guide's insurance example (docs/guide/glm.md) runs, on simulated policies, and says true things.

The snippet is executed as written over Parquet
files of policies simulated from a known model: claim counts Poisson with
mean ``exposure * exp(x b + region)``, each claim's cost Gamma with mean
``exp(x s)``. What it fits must recover that model: the frequency
coefficients within 4 of their standard errors, the severity ones within 4
of theirs, the region effects; and the two pure premiums (frequency x
severity, and Tweedie's) must agree with each other and with the claims paid.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).parent.parent
ROWS, FILES, REGIONS = 20_000, 4, 30
FREQ = {"intercept": np.log(0.3), "driver_age": -0.02, "vehicle_power": 0.05}
SEV = {"intercept": np.log(1000.0), "driver_age": 0.006, "vehicle_power": -0.04}
SHAPE = 2.0  # Gamma shape of one claim's cost


GUIDE = ROOT / "docs" / "guide" / "glm.md"


def guide_snippet():
    """The first python example of the page's insurance section, as written."""
    page = GUIDE.read_text()
    section = page[page.index("## An insurance example"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def simulate(folder):
    """Policies as FILES Parquet files; returns the simulated region effects."""
    rng = np.random.default_rng(2024)
    region_effect = rng.normal(0.0, 0.3, REGIONS)
    frame = pd.DataFrame({"driver_age": rng.uniform(18, 85, ROWS),
                          "vehicle_power": rng.integers(4, 16, ROWS).astype(float),
                          "region": rng.integers(0, REGIONS, ROWS)})
    frame["exposure"] = np.where(rng.uniform(size=ROWS) < 0.5, 1.0, rng.uniform(0.05, 1, ROWS))
    eta = FREQ["intercept"] + sum(FREQ[f] * frame[f] for f in ("driver_age", "vehicle_power"))
    claims = rng.poisson(frame["exposure"] * np.exp(eta + region_effect[frame["region"]]))
    sev_mean = np.exp(SEV["intercept"] + sum(SEV[f] * frame[f]
                                             for f in ("driver_age", "vehicle_power")))
    # The sum of k claims of Gamma(SHAPE, mean / SHAPE) costs is Gamma(k SHAPE, mean / SHAPE).
    amount = np.where(claims > 0, rng.gamma(np.maximum(claims, 1) * SHAPE, sev_mean / SHAPE), 0.0)
    frame = frame.assign(claims=claims.astype(float), amount=amount,
                         region=[f"R{r:02d}" for r in frame["region"]])
    folder.mkdir()
    for i in range(FILES):
        frame.iloc[i::FILES].to_parquet(folder / f"part-{i}.parquet", index=False)
    return pd.Series(region_effect, index=[f"R{r:02d}" for r in range(REGIONS)])


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    """The snippet's variables after running it over simulated policies.

    On Dask's local scheduler (no client), as the snippet runs without one:
    about 35 passes cost 2 s there against 10 s or more on the test cluster;
    the same calls on a cluster are what ``benchmarks/bench_glm.py`` runs.
    """
    folder = tmp_path_factory.mktemp("guide")
    region_effect = simulate(folder / "policies")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # the snippet reads "policies"
        names = {"__name__": "guide_glm"}
        exec(compile(guide_snippet(), "docs/guide/glm.md (an insurance example)", "exec"), names)
        names["region_effect"] = region_effect
        names["premium_values"] = np.asarray(names["premium"].compute())
        names["tweedie_values"] = np.asarray(
            names["tweedie"].predict(names["df"][names["factors"]]).compute())
        names["sev_table"] = names["sev"].summary(
            names["claimed"][names["factors"]],
            names["claimed"]["amount"] / names["claimed"]["claims"],
            sample_weight=names["claimed"]["claims"])
        names["frame"] = pd.concat([pd.read_parquet(p)
                                    for p in sorted((folder / "policies").iterdir())])
        names["expected_claims"] = np.asarray(
            names["model"].predict(names["df"][names["factors"] + ["region", "log_exposure"]])
            .compute())
        yield names


def _within(table, truth, sigmas):
    off = (table["coef"] - pd.Series(truth)).abs() / table["std_err"]
    assert (off < sigmas).all(), off


def test_frequency_recovers_the_simulated_coefficients(guide):
    table = guide["table"]
    assert list(table.index) == ["intercept", "driver_age", "vehicle_power"]
    # The region effects (mean about 0 on the log scale, but not exactly) are
    # left out of this model: the intercept absorbs their average, so it is
    # checked against the simulated log rate averaged over regions.
    truth = dict(FREQ, intercept=FREQ["intercept"] + np.log(
        np.mean(np.exp(guide["region_effect"]))))
    _within(table, truth, 4)
    assert guide["freq"].inference_.passes == 1
    # With the offset, predicted claims (rate x exposure) balance the observed
    # ones exactly (Poisson, log link, intercept: the intercept's score equation).
    df, freq = guide["df"], guide["freq"]
    expected = freq.predict(df[guide["factors"]], offset=df["log_exposure"]).sum().compute()
    np.testing.assert_allclose(expected, guide["frame"]["claims"].sum(), rtol=1e-6)


def test_severity_recovers_the_simulated_coefficients(guide):
    _within(guide["sev_table"], SEV, 4)


def test_pure_premiums_agree(guide):
    premium, tweedie = guide["premium_values"], guide["tweedie_values"]
    exposure, amount = guide["frame"]["exposure"].to_numpy(), guide["frame"]["amount"].sum()
    # Frequency x severity and Tweedie model the same expected cost per year at risk.
    assert np.median(np.abs(premium / tweedie - 1)) < 0.05
    # Both predict the claims paid over the portfolio (premium x exposure).
    assert abs((premium * exposure).sum() / amount - 1) < 0.05
    assert abs((tweedie * exposure).sum() / amount - 1) < 0.05


def test_region_model_balances_and_recovers_the_region_effects(guide):
    model, frame = guide["model"], guide["frame"]
    # Poisson with an intercept (unpenalised) predicts the observed claim total exactly.
    np.testing.assert_allclose(guide["expected_claims"].sum(), frame["claims"].sum(), rtol=1e-4)
    names = list(model.encoder.feature_names_out_)
    fitted = pd.Series({n.split("=", 1)[1]: c for n, c in zip(names, model.estimator.coef_)
                        if n.startswith("region=")})
    truth = guide["region_effect"]
    # Effects relative to the reference level (the first region, no column).
    relative = truth[fitted.index] - truth.iloc[0]
    assert np.corrcoef(fitted, relative)[0, 1] > 0.9
