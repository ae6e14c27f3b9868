"""``daskfit check``, overrides (``DASKFIT_*``, ``--set``), the JSON Schema, ``--version``.

In-process (``daskfit.cli.main``), so each test costs milliseconds, not an
interpreter start-up; the one real run attaches to the session's cluster
and fits 200 rows with no folds.
"""

from __future__ import annotations

import json
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model

import daskfit
from daskfit.cli import BAD_CONFIG, OK, main

PIPELINES = sorted((Path(__file__).parent.parent / "pipelines").glob("*.toml"))

#: Five mistakes on known lines (and valid keys between them).
BAD = """\
[data]
path = "nowhere"
target = "y"
traget = "y"

[model]
estimator = "Ridge"
params = { alpha = -1.0, alpah = 2.0 }

[cv]
folds = "five"
this line is not TOML

[overfitting]
train_sizes = [0.5, 2.0]
"""
#: (line, key) of each mistake of BAD: unknown key, bad parameter value, unknown
#: parameter, bad type, syntax error (no key), list element out of range.
BAD_PROBLEMS = [(4, "[data.traget]"), (8, "[model.params.alpha]"), (8, "[model.params.alpah]"),
                (11, "[cv.folds]"), (12, "is not valid TOML"), (15, "[overfitting.train_sizes]")]


def daskfit_main(capsys, *argv):
    """``daskfit ARGV`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if anything starts a LocalCluster or connects a Client."""
    import distributed

    started = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(distributed.LocalCluster, "__init__", refuse)
    monkeypatch.setattr(distributed.Client, "__init__", refuse)
    yield started
    assert not started


def test_check_reports_every_problem_with_its_line_and_starts_no_cluster(tmp_path, capsys,
                                                                        no_cluster):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD)
    for command in ("check", "run"):   # run fails on the same checks, before any work
        code, out, err = daskfit_main(capsys, command, cfg, *(
            ["--no-progress"] if command == "run" else []))
        assert code == BAD_CONFIG, err
        assert f"{len(BAD_PROBLEMS)} problems" in err
        lines = [line.strip() for line in err.splitlines() if line.startswith("  ")]
        assert len(lines) == len(BAD_PROBLEMS), err
        for number, what in BAD_PROBLEMS:   # each once, with its line; in file order
            assert sum(line.startswith(f"{cfg}:{number}: ") and what in line
                       for line in lines) == 1, (number, what, err)
        numbers = [int(line[len(f"{cfg}:"):].split(":")[0]) for line in lines]
        assert numbers == sorted(numbers)
        assert "Did you mean 'target'?" in err and "Did you mean 'alpha'?" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: p.stem)
def test_every_shipped_pipeline_checks_ok(pipeline, capsys, no_cluster):
    code, out, err = daskfit_main(capsys, "check", pipeline)
    assert code == OK, err
    estimator = tomllib.loads(pipeline.read_text())["model"]["estimator"]
    assert "OK" in out and f"model:     {estimator}(" in out


def test_checks_that_need_the_estimator_are_all_reported(tmp_path, capsys, no_cluster):
    cfg = tmp_path / "est.toml"
    cfg.write_text(textwrap.dedent("""\
        [data]
        path = "x"
        target = "y"
        offset = "exposure"
        features = ["a", "exposure"]
        [model]
        estimator = "RidgeCV"
        params = { solver = "lbfgs", solver_options = { memroy = 5 } }
        [cv]
        scoring = "roc_auc"
        [checkpoint]
        every = 3
        """))
    code, _, err = daskfit_main(capsys, "check", cfg)
    assert code == BAD_CONFIG
    for line, key in [(5, "data.features"), (8, "model.params"), (10, "cv.scoring"),
                      (12, "checkpoint.every")]:
        assert any(f"{cfg}:{line}: [{key}" in e for e in err.splitlines()), (key, err)


def test_key_lines_places_headers_dotted_quoted_and_inline_keys():
    from daskfit.cli._toml_lines import key_lines, line_of, parse_recovering

    text = textwrap.dedent('''\
        # a = 1 in a comment is no key
        [model]
        estimator = "Ridge"   # trailing = comment
        params = { alpha = 1.0, solver_options = { memory = 5 } }
        note = """a multi-line
        string with x = 2 inside"""
        [cv]
        "folds" = 3
        [overfitting]
        param_range = [
          1.0, 2.0,
        ]
        train_sizes = [0.5]
        [model.extra]
        a.b = 1
        ''')
    lines = key_lines(text)
    assert lines["model"] == 2 and lines["model.estimator"] == 3
    assert lines["model.params"] == lines["model.params.alpha"] == 4
    assert lines["model.params.solver_options.memory"] == 4
    assert lines["cv.folds"] == 8 and lines["overfitting.train_sizes"] == 13
    assert lines["model.extra.a.b"] == 15 and "a" not in lines and "x" not in lines
    assert line_of(lines, "overfitting.param_name") == 9   # not in the file: its section
    document, errors = parse_recovering(text)
    assert errors == [] and document == tomllib.loads(text)
    document, errors = parse_recovering("[cv\nfolds = 3\n[model]\nx = = 1\ny = 2\n")
    assert [line for line, _ in errors] == [1, 4] and document["model"] == {"y": 2}


def test_overrides_env_then_set_recorded_in_the_run(tmp_path, capsys, monkeypatch, cluster):
    from daskfit.io._persistence import verify_manifest

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    frame = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1],
                          "y": X @ [1.0, -2.0] + rng.normal(scale=0.1, size=200)})
    (tmp_path / "data").mkdir()
    frame.to_parquet(tmp_path / "data" / "part.0.parquet")
    cfg = tmp_path / "small.toml"
    cfg.write_text('[data]\npath = "data"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                   'params = { alpha = 1.0, tol = 1e-6 }\n[cv]\nfolds = 3\n')
    # alpha: file 1.0 < environment 5.0 < --set 40.0; folds: file 3 < environment 0;
    # fit_intercept only from --set; a DASKFIT_ name without "__" is no override.
    monkeypatch.setenv("DASKFIT_MODEL__PARAMS__ALPHA", "5.0")
    monkeypatch.setenv("DASKFIT_CV__FOLDS", "0")
    monkeypatch.setenv("DASKFIT_UNRELATED_SETTING", "1")
    monkeypatch.setenv("DASKFIT_DATA__STORAGE_OPTIONS__AUTO_MKDIR", "false")
    code, out, err = daskfit_main(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                                  "--no-progress", "--set", "model.params.alpha=40.0",
                                  "--set", "model.params.fit_intercept=false")
    assert code == OK, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    verify_manifest(run_dir)   # metrics.json, with the overrides, is in the manifest
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["model"]["params"]["alpha"] == 40.0
    assert metrics["model"]["params"]["fit_intercept"] is False
    assert metrics["model"]["params"]["tol"] == 1e-6       # the file's, not overridden
    assert "skipped" in metrics["cv"]                      # folds = 0 from the environment
    model = daskfit.load(run_dir / "model")
    Z = model.encoder.transform(frame[["x0", "x1"]]).to_numpy()
    ref = sklearn.linear_model.Ridge(alpha=40.0, fit_intercept=False).fit(Z, frame["y"])
    np.testing.assert_allclose(model.estimator.coef_, ref.coef_, rtol=1e-6)  # --set's alpha
    recorded = {(o["source"], o["key"]): o for o in metrics["overrides"]}
    assert set(recorded) == {("--set", "model.params.alpha"),
                             ("--set", "model.params.fit_intercept"),
                             ("env", "cv.folds"),
                             ("env", "data.storage_options.auto_mkdir")}
    assert recorded[("env", "cv.folds")]["origin"] == "DASKFIT_CV__FOLDS"
    assert recorded[("--set", "model.params.alpha")]["value"] == 40.0
    assert recorded[("env", "data.storage_options.auto_mkdir")]["value"] == "***"  # secret-ish


def test_override_problems_name_the_override_and_bad_set_is_a_usage_error(capsys, monkeypatch,
                                                                          no_cluster):
    pipeline = PIPELINES[0]
    monkeypatch.setenv("DASKFIT_MODEL__PARAMS__C", "-1")   # LogisticRegression's C, by case
    code, _, err = daskfit_main(capsys, "check", pipeline, "--set", "cv.folds=many")
    assert code == BAD_CONFIG
    assert "[model.params.C]" in err and "environment DASKFIT_MODEL__PARAMS__C" in err
    assert "[cv.folds]" in err and "--set cv.folds" in err
    monkeypatch.delenv("DASKFIT_MODEL__PARAMS__C")
    code, out, err = daskfit_main(capsys, "check", pipeline, "--set", "model.params.C=2.5")
    assert code == OK and "overrides: model.params.C (--set model.params.C)" in out
    for bad in ("cv.folds", "folds=3", "=3"):
        code, _, err = daskfit_main(capsys, "check", pipeline, "--set", bad)
        assert code == BAD_CONFIG and "SECTION.KEY=VALUE" in err


def test_json_schema_is_in_sync_validates_the_pipelines_and_rejects_mistakes(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    from daskfit.cli._schema import SCHEMA_FILE, schema_text

    # The published file is what the validator's tables generate (regenerate:
    # `daskfit schema > daskfit/cli/pipeline.schema.json`), and what the command prints.
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "stale: run `daskfit schema > daskfit/cli/pipeline.schema.json`")
    code, out, _ = daskfit_main(capsys, "schema")
    assert code == OK and out == schema_text()
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for pipeline in PIPELINES:
        assert list(validator.iter_errors(tomllib.loads(pipeline.read_text()))) == []
    good = tomllib.loads(PIPELINES[-1].read_text())
    broken = {  # one mistake each; daskfit check refuses every one too
        ("model", "params", "alpah"): 1.0, ("model", "params", "alpha"): -1.0,
        ("cv", "folds"): "five", ("data", "traget"): "y", ("modle",): {},
        ("overfitting", "train_sizes"): [2.0], ("model", "estimator"): "Forest",
    }
    for path, value in broken.items():
        document = json.loads(json.dumps(good))
        table = document
        for part in path[:-1]:
            table = table[part]
        table[path[-1]] = value
        assert list(validator.iter_errors(document)), path
    conflict = dict(good, cluster={"address": "tcp://x:1", "n_workers": 2})
    assert list(validator.iter_errors(conflict))


def test_schema_and_validator_agree_on_estimators_and_parameters():
    from daskfit.cli._schema import json_schema
    from daskfit.cli._validate import estimator_classes

    rules = json_schema()["properties"]["model"]["allOf"]
    assert rules[0]["properties"]["estimator"]["enum"] == sorted(estimator_classes())
    for rule in rules[1:]:
        cls = estimator_classes()[rule["if"]["properties"]["estimator"]["const"]]
        params = rule["then"]["properties"]["params"]["properties"]
        assert set(params) == set(cls().get_params(deep=False))


def test_version_prints_the_package_version(capsys):
    code, out, _ = daskfit_main(capsys, "--version")
    assert code == OK and daskfit.__version__ in out
