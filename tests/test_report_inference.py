"""The CLI's HTML report carries the coefficient table (or why there is none).

Every ``daskfit run`` writes ``report.html``; it shows the fit's inference
table (coef, std_err, z or t, p_value, CI) as an HTML table with the
numbers of ``metrics.json``'s ``inference`` section, or its skip reason
(an L1 penalty has no standard errors), and links the diagnosis page when
there is one.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daskfit.cli._report import inference_html


class _Tables(HTMLParser):
    """Rows (lists of cell texts) of the tables with class ``daskfit-inference``."""

    def __init__(self):
        super().__init__()
        self.rows, self._inside, self._row, self._cell = [], False, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and "daskfit-inference" in (dict(attrs).get("class") or ""):
            self._inside = True
        elif self._inside and tag == "tr":
            self._row = []
        elif self._inside and tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._inside = False
        elif self._inside and tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif self._inside and tag == "tr":
            self.rows.append(self._row)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def parsed_table(page):
    """The inference table of an HTML page as a DataFrame of floats."""
    parser = _Tables()
    parser.feed(page)
    header, *body = parser.rows
    return pd.DataFrame([[float(v) for v in row[1:]] for row in body],
                        index=[row[0] for row in body], columns=header[1:])


def write_parquet(directory, frame):
    directory.mkdir()
    for i, (a, b) in enumerate([(0, 150), (150, len(frame))]):
        frame.iloc[a:b].to_parquet(directory / f"part{i}.parquet")


def run_config(tmp_path, cluster, name, data, model, folds):
    from daskfit.cli._run import run

    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'[data]\npath = "data"\n{data}\n[model]\n{model}\nstandardize = false\n'
        f'[cv]\nfolds = {folds}\n[overfitting]\nparam_name = "alpha"\n'
        'param_range = [0.01, 1.0]\ntrain_sizes = [1.0]\n')
    run_dir = Path(run(config, scheduler=cluster.scheduler_address, progress=False,
                       echo=lambda *a, **k: None))
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def rates_frame():
    rng = np.random.default_rng(21)
    n = 300
    X = rng.normal(scale=0.5, size=(n, 2))
    log_exposure = np.log(rng.uniform(0.5, 3.0, size=n))
    claims = rng.poisson(np.exp(X @ [0.4, -0.3] - 0.2 + log_exposure)).astype(float)
    return pd.DataFrame(X, columns=["x0", "x1"]).assign(claims=claims,
                                                        log_exposure=log_exposure)


def test_lasso_run_html_report_says_why_there_is_no_table(tmp_path, cluster, rates_frame):
    write_parquet(tmp_path / "data", rates_frame.drop(columns="log_exposure"))
    run_dir, metrics = run_config(tmp_path, cluster, "lasso", 'target = "claims"',
                                  'estimator = "Lasso"\nparams = { alpha = 0.01 }', folds=0)
    reason = metrics["inference"]["skipped"]
    assert "l1" in reason.lower()
    page = (run_dir / "report.html").read_text()
    parser = _Tables()
    parser.feed(page)
    assert parser.rows == []
    assert f"No coefficient table: {reason}" in page.replace("&#x27;", "'")
    # No diagnosis (folds = 0): the page says so and links no overfitting page.
    assert "not diagnosed" in page and "overfitting.html" not in page


def test_poisson_run_html_report_carries_the_coefficient_table(tmp_path, cluster, rates_frame):
    write_parquet(tmp_path / "data", rates_frame)
    run_dir, metrics = run_config(
        tmp_path, cluster, "rates", 'target = "claims"\noffset = "log_exposure"',
        'estimator = "PoissonRegressor"\nparams = { alpha = 0.001, tol = 1e-10 }', folds=0)
    table = parsed_table((run_dir / "report.html").read_text())
    expected = pd.DataFrame.from_dict(metrics["inference"]["table"], orient="index")
    assert list(table.index) == ["intercept", "x0", "x1"] == list(expected.index)
    assert list(table.columns) == ["coef", "std_err", "z", "p_value", "ci_lower", "ci_upper"]
    # Printed to 6 significant digits.
    np.testing.assert_allclose(table.to_numpy(), expected[table.columns].to_numpy(),
                               rtol=1e-5, atol=1e-300)
    # Also when no diagnosis ran (folds = 0): no overfitting page, the table still here.
    assert not (run_dir / "overfitting.html").exists()


def test_run_report_links_the_diagnosis_and_escapes():
    from daskfit.cli._report import run_report_html

    page = run_report_html({"name": "<run>", "run_id": "abc", "scores": {"train": 0.5},
                            "model": {"estimator": "Ridge"},
                            "overfitting": {"verdict": "fine", "rule": "T - V <= 0.1 S"},
                            "inference": {"skipped": "no <inference>"}})
    assert "href='overfitting.html'" in page and "&lt;run&gt;" in page
    assert "No coefficient table: no &lt;inference&gt;" in page


def test_inference_html_escapes_feature_names_and_skips_none():
    record = {"cov_type": "nonrobust", "alpha": 0.05, "nobs": 10.0, "table": {
        "intercept": {"coef": 1.0, "std_err": 0.5, "z": 2.0, "p_value": 0.0455,
                      "ci_lower": 0.02, "ci_upper": 1.98},
        "<b>x</b>": {"coef": -2.0, "std_err": None, "z": None, "p_value": None,
                     "ci_lower": None, "ci_upper": None}}}
    page = inference_html(record)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    table = parsed_table(page)
    assert table.loc["<b>x</b>", "coef"] == -2.0 and np.isnan(table.loc["<b>x</b>", "std_err"])
    assert inference_html(None) == ""
