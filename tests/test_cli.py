"""The ``daskfit`` command, run as a subprocess: run directories, metrics, exit codes.

Runs attach to the shared test cluster with ``--scheduler`` (starting a
LocalCluster per command would cost more than the work). Metrics are checked
against independent recomputation with scikit-learn on the same rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model
import sklearn.metrics
from sklearn.model_selection import KFold

import daskfit
from daskfit.engine.rows import cluster_workers
from daskfit.cli import (BAD_CONFIG, BAD_DATA, CLUSTER_UNREACHABLE, INTERNAL_ERROR,
                         MISSING_INPUT, OK)

SCRIPT = Path(sys.executable).parent / "daskfit"
RUN_FILES = ["config.toml", "manifest.json", "metrics.json", "model", "overfitting.html",
             "overfitting.png", "report.html", "run.log"]


def command(*args):
    """The installed console script (what users type), or the same entry point via -c."""
    if SCRIPT.exists():
        return [str(SCRIPT), *map(str, args)]
    return [sys.executable, "-c", "from daskfit.cli import main; main()", *map(str, args)]


def daskfit_cmd(*args, cwd=None, timeout=240):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(command(*args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def many(argv_list, cwd=None):
    """Run several commands at once (each is mostly interpreter start-up)."""
    env = dict(os.environ, MPLBACKEND="Agg")
    # An entry starting with the interpreter is run as is; others are daskfit arguments.
    procs = [subprocess.Popen(list(map(str, a)) if a[0] == sys.executable else command(*a),
                              cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for a in argv_list]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Datasets written by ``daskfit make-data`` (two commands in parallel)."""
    root = tmp_path_factory.mktemp("cli")
    reg, clf = many([
        ("make-data", root / "reg", "--rows", 6000, "--features", 4, "--segments", 3,
         "--partition-rows", 1500, "--noise", 0.5, "--no-progress"),
        ("make-data", root / "clf", "--rows", 4000, "--features", 3, "--segments", 2,
         "--task", "classification", "--partition-rows", 1000, "--no-progress"),
    ])
    assert reg.returncode == OK, reg.stderr
    assert clf.returncode == OK, clf.stderr
    return root


def write_config(path, text):
    path.write_text(textwrap.dedent(text))
    return path


REG_CONFIG = """
    [data]
    path = "reg"
    target = "y"

    [model]
    estimator = "Ridge"
    params = {{ alpha = {alpha} }}

    [cv]
    folds = 3
    random_state = 7

    [overfitting]
    param_name = "alpha"
    param_range = [0.1, 10.0, 1000.0]
    train_sizes = [0.5, 1.0]
    """


def key_prefix(key):
    """'daskfit-gram-<hex>' or ('daskfit-gram-<hex>', 3) -> 'daskfit-gram'."""
    name = key[0] if isinstance(key, tuple) else key
    head, _, tail = str(name).rpartition("-")
    return head if head and all(c in "0123456789abcdef" for c in tail) else str(name)


def read_data(path):
    return pd.read_parquet(path)


def test_make_data_known_coefficients(workdir):
    truth = json.loads((workdir / "reg" / "_daskfit_truth.json").read_text())
    df = read_data(workdir / "reg")
    assert len(df) == 6000 and list(df.columns) == ["x0", "x1", "x2", "x3", "segment", "y"]
    effect = df["segment"].map(truth["segment_effects"])
    residual = df["y"] - truth["intercept"] - df[truth["features"]] @ truth["coef"] - effect
    # The residual is the noise: N(0, 0.5^2).
    assert abs(residual.mean()) < 0.05 and abs(residual.std() - 0.5) < 0.03


def test_run_directory_metrics_and_idempotence(workdir, cluster):
    from distributed import Client

    cfg = write_config(workdir / "ridge.toml", REG_CONFIG.format(alpha=2.0))
    with Client(cluster) as watcher:
        watcher.get_task_stream()   # installs the scheduler's task-stream recorder
        t0 = __import__("time").time()
        res = daskfit_cmd("run", cfg, "--scheduler", cluster.scheduler_address)
        stream = watcher.get_task_stream(start=t0)
    assert res.returncode == OK, res.stderr
    # The dashboard's task stream reads as the fit's structure.
    prefixes = {key_prefix(t["key"]) for t in stream}
    assert {"daskfit-read-parquet", "daskfit-gram"} <= prefixes, sorted(prefixes)
    # (Encoding shows no task of its own: streamed passes over more files than
    # 4 per worker thread read and encode each file inside their batch tasks.)
    assert "Dask dashboard: http" in res.stdout
    (run_dir,) = (workdir / "runs").iterdir()
    assert run_dir.name.startswith("ridge-")
    assert sorted(os.listdir(run_dir)) == RUN_FILES
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model = daskfit.load(run_dir / "model")
    est = model.estimator

    # Independent recomputation on the same rows, in memory, with scikit-learn.
    df = read_data(workdir / "reg")
    X = model.encoder.transform(df.drop(columns="y")).to_numpy()
    y = df["y"].to_numpy()
    ref = sklearn.linear_model.Ridge(alpha=2.0).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    assert metrics["scores"]["train"] == pytest.approx(
        sklearn.metrics.r2_score(y, ref.predict(X)), rel=1e-10)
    folds = KFold(3, shuffle=True, random_state=7).split(X)
    cv_ref = [sklearn.linear_model.Ridge(alpha=2.0).fit(X[tr], y[tr]).score(X[te], y[te])
              for tr, te in folds]
    np.testing.assert_allclose(metrics["cv"]["test_score"], cv_ref, rtol=1e-8)
    assert metrics["model"]["n_iter"] == est.n_iter_ == 1
    assert metrics["model"]["n_passes"] == est.n_passes_ == 1
    assert metrics["model"]["solver"] == est.solver_ == "normal"
    assert metrics["input"]["rows"] == 6000 and metrics["input"]["n_files"] == 4
    assert metrics["overfitting"]["verdict"] in ("overfitting", "underfitting", "fine")
    assert set(metrics["timings"]) >= {"encode", "fit", "cv", "overfitting", "total"}
    assert metrics["versions"]["daskfit"] == daskfit.__version__
    table = metrics["inference"]["table"]  # statistical inference, one extra pass
    assert list(table) == ["intercept", *model.encoder.feature_names_out_]
    np.testing.assert_allclose([table[n]["coef"] for n in model.encoder.feature_names_out_],
                               est.coef_, rtol=1e-12)
    # Coefficients in the features' own units recover the truth.
    truth = json.loads((workdir / "reg" / "_daskfit_truth.json").read_text())
    np.testing.assert_allclose(est.coef_[:4] / model.encoder.scale_, truth["coef"], atol=0.03)

    # Idempotent: the same configuration on the same input does nothing.
    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    again = daskfit_cmd("run", cfg, "--scheduler", cluster.scheduler_address)
    assert again.returncode == OK and "already complete" in again.stdout
    assert (run_dir / "metrics.json").stat().st_mtime_ns == stamp
    assert [p.name for p in (workdir / "runs").iterdir()] == [run_dir.name]


def test_run_id_follows_config_and_input(workdir):
    from daskfit.cli._config import load_config
    from daskfit.cli._input import find_input
    from daskfit.cli._run import run_id

    def rid(alpha, cluster_line=""):
        cfg = write_config(workdir / "id.toml", REG_CONFIG.format(alpha=alpha) + cluster_line)
        config = load_config(cfg)
        return run_id(config, find_input(config).fingerprint)

    base = rid(2.0)
    assert rid(2.0) == base
    assert rid(2.0, '\n[cluster]\naddress = "tcp://elsewhere:8786"\n') == base  # where, not what
    assert rid(3.0) != base
    extra = workdir / "reg" / "part.99999.parquet"
    shutil.copy(workdir / "reg" / "part.00000.parquet", extra)
    try:
        assert rid(2.0) != base
    finally:
        extra.unlink()
    assert rid(2.0) == base


def test_predict_identical_to_loaded_model(workdir, cluster):
    cfg = write_config(workdir / "logit.toml", """
        [data]
        path = "clf"
        target = "y"
        [model]
        estimator = "LogisticRegression"
        params = { C = 0.5 }
        [cv]
        folds = 0
        [output]
        dir = "runs-clf"
        """)
    res = daskfit_cmd("run", cfg, "--scheduler", cluster.scheduler_address, "--no-progress")
    assert res.returncode == OK, res.stderr
    (run_dir,) = (workdir / "runs-clf").iterdir()
    assert "overfitting.html" not in os.listdir(run_dir)  # folds = 0: no diagnosis
    out = workdir / "preds.parquet"
    res = daskfit_cmd("predict", run_dir / "model", "--input", workdir / "clf", "--output", out,
                      "--keep", "segment", "--proba", "--scheduler", cluster.scheduler_address)
    assert res.returncode == OK, res.stderr
    preds = pd.read_parquet(out)
    df = read_data(workdir / "clf")
    model = daskfit.load(run_dir / "model")
    X = model.encoder.transform(df).to_numpy()
    assert list(preds.columns) == ["segment", "prediction", "proba_0", "proba_1"]
    np.testing.assert_array_equal(preds["prediction"], model.estimator.predict(X))
    np.testing.assert_array_equal(preds[["proba_0", "proba_1"]], model.estimator.predict_proba(X))
    np.testing.assert_array_equal(preds["segment"], df["segment"])
    ref = sklearn.linear_model.LogisticRegression(C=0.5, tol=1e-10, max_iter=1000).fit(X, df["y"])
    np.testing.assert_allclose(model.estimator.coef_, ref.coef_, rtol=1e-4, atol=1e-5)


def test_plan_prints_the_planner_choice(workdir, cluster):
    cfg = write_config(workdir / "plan.toml", REG_CONFIG.format(alpha=1.0))
    res = daskfit_cmd("plan", cfg, "--scheduler", cluster.scheduler_address)
    assert res.returncode == OK, res.stderr
    assert "daskfit plan:" in res.stdout and "solver='normal'" in res.stdout
    assert "6000 rows, 6 encoded features" in res.stdout


BAD_CONFIGS = {
    # name: (TOML body, key the message must name)
    "missing target": ('[data]\npath = "reg"\n[model]\nestimator = "Ridge"\n', "data.target"),
    "unknown key": ('[data]\npath = "reg"\ntarget = "y"\ntargt = "y"\n[model]\n'
                    'estimator = "Ridge"\n', "data.targt"),
    "wrong type": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                   '[cv]\nfolds = "five"\n', "cv.folds"),
    "bool as int": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                    '[cv]\nfolds = true\n', "cv.folds"),
    "negative folds": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                       '[cv]\nfolds = -1\n', "cv.folds"),
    "unknown section": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                        '[modle]\n', "modle"),
    "missing section": ('[data]\npath = "reg"\ntarget = "y"\n', "model"),
    "unknown estimator": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                          'estimator = "RandomForest"\n', "model.estimator"),
    "unknown parameter": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                          'params = { alpah = 1.0 }\n', "model.params.alpah"),
    "bad parameter": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                      'params = { alpha = -1.0 }\n', "model.params.alpha"),
    "format": ('[data]\npath = "reg"\nformat = "xlsx"\ntarget = "y"\n[model]\n'
               'estimator = "Ridge"\n', "data.format"),
    "target not a column": ('[data]\npath = "reg"\ntarget = "label"\n[model]\n'
                            'estimator = "Ridge"\n', "data.target"),
    "feature not a column": ('[data]\npath = "reg"\ntarget = "y"\nfeatures = ["x0", "x9"]\n'
                             '[model]\nestimator = "Ridge"\n', "data.features"),
    "half a validation curve": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                                'estimator = "Ridge"\n[overfitting]\nparam_name = "alpha"\n',
                                "overfitting.param_range"),
    "train sizes": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                    '[overfitting]\ntrain_sizes = [0.5, 2.0]\n', "overfitting.train_sizes"),
    "local option with address": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                                  'estimator = "Ridge"\n[cluster]\naddress = "tcp://x:1"\n'
                                  'n_workers = 2\n', "cluster.n_workers"),
    "not TOML": ('[data\npath = "reg"\n', "line 1"),  # no key yet: the position
    "negative checkpoint": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                            '[checkpoint]\nevery = -1\n', "checkpoint.every"),
    "no checkpoint in CV": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                            'estimator = "RidgeCV"\n[checkpoint]\nevery = 5\n',
                            "checkpoint.every"),
    "half the TLS files": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                           '[cluster]\ntls_ca_file = "ca.pem"\n', "cluster.tls_client_cert"),
    # Found before any data is read (they used to fail after the fit, exit 4 or 1).
    "scoring a function name": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                                'estimator = "LogisticRegression"\n[cv]\n'
                                'scoring = "accuracy_score"\n', "cv.scoring"),
    "roc_auc on a regressor": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                               'estimator = "Ridge"\n[cv]\nscoring = "roc_auc"\n',
                               "cv.scoring"),
    "nonsense scoring": ('[data]\npath = "reg"\ntarget = "y"\n[model]\nestimator = "Ridge"\n'
                         '[cv]\nscoring = "nonsense"\n', "cv.scoring"),
    "unknown solver option": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                              'estimator = "Ridge"\nparams = { solver = "lbfgs", '
                              'solver_options = { memroy = 5 } }\n',
                              "model.params.solver_options"),
    "solver option under auto": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                                 'estimator = "Ridge"\nparams = { solver_options = '
                                 '{ memory = 5 } }\n', "model.params.solver_options"),
    "negative param_range": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                             'estimator = "Ridge"\n[overfitting]\nparam_name = "alpha"\n'
                             'param_range = [-1.0, 1.0]\n', "overfitting.param_range"),
    "empty param_range": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                          'estimator = "Ridge"\n[overfitting]\nparam_name = "alpha"\n'
                          'param_range = []\n', "overfitting.param_range"),
    "invalid curve value": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                            'estimator = "ElasticNet"\n[overfitting]\n'
                            'param_name = "l1_ratio"\nparam_range = [0.5, 2.0]\n',
                            "overfitting.param_range"),
    "output name escapes": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                            'estimator = "Ridge"\n[output]\nname = "../../x"\n',
                            "output.name"),
    "absolute output name": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                             'estimator = "Ridge"\n[output]\nname = "/tmp/x"\n',
                             "output.name"),
    "temporary TLS remote": ('[data]\npath = "reg"\ntarget = "y"\n[model]\n'
                             'estimator = "Ridge"\n[cluster]\naddress = "tls://x:1"\n'
                             'security = "temporary"\n', "cluster.security"),
}


#: Runs ``daskfit.cli.main`` once per argument list in ONE interpreter and
#: reports (exit code, stderr) as JSON: the same entry point the console script
#: calls, without paying for a Python start-up per configuration on 2 cores.
DRIVER = """
import contextlib, io, json, sys
from daskfit.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_every_config_error_names_key_and_file(workdir):
    paths = {}
    for i, (name, (body, key)) in enumerate(BAD_CONFIGS.items()):
        paths[name] = write_config(workdir / f"bad{i}.toml", body)
    # Every error is found before any cluster is contacted (the address is dead).
    argvs = [["run", str(paths[name]), "--scheduler", "tcp://127.0.0.1:9", "--no-progress"]
             for name in BAD_CONFIGS]
    res = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argvs)], capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout.splitlines()[-1])
    for (name, (body, key)), (code, stderr) in zip(BAD_CONFIGS.items(), results):
        assert code == BAD_CONFIG, (name, stderr)
        assert str(paths[name]) in stderr, (name, stderr)
        assert (key if key.startswith("line") else f"[{key}]") in stderr, (name, key, stderr)
        assert "Traceback" not in stderr, name
    assert not (workdir / "runs").exists() or all(
        p.name.startswith("ridge-") for p in (workdir / "runs").iterdir())


BOOM = ("import sys, daskfit.cli._run as r\n"
        "def boom(): raise RuntimeError('simulated bug')\n"
        "r.versions = boom\n"
        "from daskfit.cli import main\n"
        "main(sys.argv[1:])\n")


def test_exit_codes(workdir, cluster):
    # Bad data: a NaN target, and a file that is not Parquet.
    nan_dir = workdir / "nan"
    nan_dir.mkdir()
    df = read_data(workdir / "reg")
    df.loc[17, "y"] = np.nan
    df.to_parquet(nan_dir / "part.0.parquet")
    junk = workdir / "junk"
    junk.mkdir()
    (junk / "part.0.parquet").write_bytes(b"this is not parquet")
    base = '[model]\nestimator = "Ridge"\n[cv]\nfolds = 0\n[output]\ndir = "runs-codes"\n'
    configs = {
        "nan": write_config(workdir / "nan.toml", f'[data]\npath = "nan"\ntarget = "y"\n{base}'),
        "junk": write_config(workdir / "junk.toml", f'[data]\npath = "junk"\ntarget = "y"\n{base}'),
        "missing": write_config(workdir / "missing.toml",
                                f'[data]\npath = "nowhere"\ntarget = "y"\n{base}'),
        "unreachable": write_config(workdir / "unreach.toml",
                                    f'[data]\npath = "reg"\ntarget = "y"\n{base}'
                                    '[cluster]\naddress = "tcp://127.0.0.1:9"\ntimeout = "2s"\n'),
    }
    boom_cfg = write_config(workdir / "boom.toml", REG_CONFIG.format(alpha=5.0)
                            + '[output]\ndir = "runs-boom"\n')
    sched = ("--scheduler", cluster.scheduler_address)
    boom, nan, junk_res, missing, unreachable, no_model, no_config, usage = many([
        # Internal error: a bug after the fit, just before the run directory is complete.
        (sys.executable, "-c", BOOM, "run", boom_cfg, *sched, "--no-progress"),
        ("run", configs["nan"], *sched),
        ("run", configs["junk"], *sched),
        ("run", configs["missing"], *sched),
        ("run", configs["unreachable"]),
        ("predict", workdir / "no-model", "--input", workdir / "reg", "--output",
         workdir / "p.parquet", *sched),
        ("run", workdir / "no-such.toml"),
        ("run", configs["nan"], "--no-such-option"),
    ])
    assert boom.returncode == INTERNAL_ERROR, boom.stderr
    assert "simulated bug" in boom.stderr and "Traceback" in boom.stderr
    (failed_log,) = os.listdir(workdir / "runs-boom")
    assert failed_log.endswith(".failed.log")  # and no run directory, no temporary one
    assert "simulated bug" in (workdir / "runs-boom" / failed_log).read_text()
    assert nan.returncode == BAD_DATA and "NaN" in nan.stderr, nan.stderr
    assert junk_res.returncode == BAD_DATA, junk_res.stderr
    assert missing.returncode == MISSING_INPUT and "nowhere" in missing.stderr
    assert unreachable.returncode == CLUSTER_UNREACHABLE, unreachable.stderr
    assert "127.0.0.1:9" in unreachable.stderr
    assert no_model.returncode == MISSING_INPUT, no_model.stderr
    assert no_config.returncode == MISSING_INPUT and "no-such.toml" in no_config.stderr
    assert usage.returncode == BAD_CONFIG and "--no-such-option" in usage.stderr
    # Failed runs leave no run directory and no temporary one: only their logs.
    # (The junk file fails on its metadata, the missing input on its listing:
    # both before a run starts, so they leave no log either.)
    nan_log, unreachable_log = sorted(os.listdir(workdir / "runs-codes"))
    assert nan_log.startswith("nan-") and nan_log.endswith(".failed.log")
    assert unreachable_log.startswith("unreach-") and unreachable_log.endswith(".failed.log")
    assert "NaN" in (workdir / "runs-codes" / nan_log).read_text()


def test_help_documents_every_option_and_exit_code():
    res = daskfit_cmd("run", "--help")
    assert res.returncode == OK
    for option in ("--scheduler", "--force", "--resume", "--progress"):
        assert option in res.stdout
    from daskfit.cli._config import SCHEMA

    for section, keys in SCHEMA.items():
        assert f"[{section}]" in res.stdout
        for key in keys:
            assert f"  {key}: " in res.stdout, key
    for code in (OK, INTERNAL_ERROR, BAD_CONFIG, MISSING_INPUT, BAD_DATA, CLUSTER_UNREACHABLE):
        assert f"  {code}  " in res.stdout


#: Per-worker memory limit of the out-of-core test. A worker with pandas,
#: pyarrow, scikit-learn and daskfit imported already holds ~280-320 MB and
#: distributed pauses a worker at 80% of its limit, so this leaves ~160 MB
#: for the tasks in flight (one 8 MB partition each).
WORKER_LIMIT = 600 * 2**20


def _rss():
    import psutil

    return psutil.Process().memory_info().rss


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.skipif(not os.environ.get("DASKFIT_MEMORY_TEST"),
                    reason="writes and streams ~1.9 GB (minutes on 2 cores); "
                           "run with DASKFIT_MEMORY_TEST=1")
def test_run_on_data_three_times_cluster_memory(tmp_path):
    """daskfit run streams data 3x the cluster's memory limit; workers stay under it."""
    import threading

    from distributed import Client, LocalCluster

    n_features = 20
    n_workers = 1   # the total limit, and so the data (3x it), as small as a worker allows
    total_limit = n_workers * WORKER_LIMIT
    rows = 3 * total_limit // (n_features * 8) + 1
    res = daskfit_cmd("make-data", tmp_path / "big", "--rows", rows, "--features", n_features,
                      "--segments", 3, "--partition-rows", 50_000, "--no-progress", timeout=900)
    assert res.returncode == OK, res.stderr
    cfg = write_config(tmp_path / "big.toml", """
        [data]
        path = "big"
        target = "y"
        [model]
        estimator = "Ridge"
        params = { alpha = 1.0 }
        [cv]
        folds = 0
        """)
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=":0",
                      memory_limit=WORKER_LIMIT) as cluster, \
            Client(cluster) as client:
        client.run(lambda: __import__("daskfit"))   # the baseline the run will have
        workers = set(cluster_workers(client))
        peaks = {w: 0 for w in workers}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    for w, rss in client.run(_rss).items():
                        peaks[w] = max(peaks.get(w, 0), rss)
                except Exception:  # a worker restarting would show up as a new address
                    pass
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            res = daskfit_cmd("run", cfg, "--scheduler", cluster.scheduler_address,
                              "--no-progress", timeout=1200)
        finally:
            stop.set()
            sampler.join()
        assert res.returncode == OK, res.stderr
        assert set(cluster_workers(client)) == workers   # no worker was killed
    assert set(peaks) == workers
    print("peak worker RSS (MiB):", {w: round(p / 2**20) for w, p in peaks.items()})
    assert max(peaks.values()) < WORKER_LIMIT, {w: p / 2**20 for w, p in peaks.items()}
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["input"]["rows"] == rows
    assert rows * n_features * 8 >= 3 * total_limit
    assert "streaming" in metrics["model"]["encoded_data"]
    model = daskfit.load(run_dir / "model")
    assert metrics["model"]["n_passes"] == model.estimator.n_passes_ <= 2
    truth = json.loads((tmp_path / "big" / "_daskfit_truth.json").read_text())
    coef = model.estimator.coef_[:n_features] / model.encoder.scale_
    np.testing.assert_allclose(coef, truth["coef"], atol=2e-3)


def test_csv_input_reads_the_same_table(workdir):
    from daskfit.cli._config import load_config
    from daskfit.cli._input import find_input, read_table

    df = read_data(workdir / "reg")
    (workdir / "csv").mkdir(exist_ok=True)
    for i, part in enumerate([df.iloc[:2000], df.iloc[2000:4000], df.iloc[4000:]]):
        part.to_csv(workdir / "csv" / f"part{i}.csv", index=False)
    cfg = write_config(workdir / "csv.toml", '[data]\npath = "csv/*.csv"\ntarget = "y"\n'
                                             '[model]\nestimator = "Ridge"\n')
    config = load_config(cfg)
    source = find_input(config)
    assert source.format == "csv" and len(source.files) == 3
    got = read_table(config, source).compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(got, df, check_dtype=False, check_exact=False, rtol=1e-12)
