"""``daskfit run`` under faults: exit codes, atomic checksummed artifacts, resume, TLS, secrets,
bad data.

Most runs are in-process (``daskfit.cli.main``) on the shared test cluster, to keep the
interpreter start-up cost out; the resume test kills a real subprocess with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import daskfit
from daskfit.cli import BAD_CONFIG, BAD_DATA, CLUSTER_UNREACHABLE, MISSING_INPUT, OK, main
from daskfit.io._persistence import ModelFormatError


def cli(capsys, *argv):
    """Run ``daskfit ARGV`` in this process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def frame(rows, seed, classification=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3))
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    df["segment"] = rng.choice(["a", "b"], size=rows)
    z = X @ np.array([1.5, -2.0, 0.5]) + (df["segment"] == "b") * 0.7
    df["y"] = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(float) if classification \
        else z + rng.normal(scale=0.3, size=rows)
    return df


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """reg/: 3 Parquet files; clf/: 3 files of a logistic target (Newton iterates)."""
    root = tmp_path_factory.mktemp("rel")
    for name, classification in (("reg", False), ("clf", True)):
        (root / name).mkdir()
        for i in range(3):
            frame(600, 10 * i + classification, classification).to_parquet(
                root / name / f"part.{i}.parquet")
    return root


def config(root, name, *, path="reg", estimator="Ridge", params="{ alpha = 1.0 }", extra=""):
    return write(root / f"{name}.toml", f"""
        [data]
        path = "{path}"
        target = "y"
        [model]
        estimator = "{estimator}"
        params = {params}
        [cv]
        folds = 0
        [overfitting]
        enabled = false
        [output]
        dir = "runs-{name}"
        """ + textwrap.dedent(extra))


def run_dirs(directory):
    """The run directories (not the hidden checkpoint area, not failed logs)."""
    return [p for p in Path(directory).iterdir() if p.is_dir() and not p.name.startswith(".")]


def only_failed_log(directory):
    names = os.listdir(directory)
    assert len(names) == 1 and names[0].endswith(".failed.log"), names
    return directory / names[0]


# --------------------------------------------------------------- exit codes
def test_worker_crash_is_bad_data_naming_the_chunk_and_leaves_no_run(data, cluster, capsys,
                                                                     monkeypatch):
    # What the engine raises when Dask gives up on a chunk that killed every worker
    # (the engine's side is tested on a real process cluster in test_faults.py).
    killed = SimpleNamespace(task=("daskfit-gram-0123abcd", 2), allowed_failures=3)

    def crash(self, *args, **kwargs):
        raise daskfit.WorkerCrashError.from_killed(killed, 3)

    monkeypatch.setattr(daskfit.Ridge, "fit", crash)
    cfg = config(data, "crash")
    code, out, err = cli(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                         "--no-progress")
    assert code == BAD_DATA, err
    assert "Row chunk 2 of 3" in err and "crashed 3 worker" in err and "Traceback" not in err
    log = only_failed_log(data / "runs-crash")        # no run directory, no temporary one
    assert "Row chunk 2 of 3" in log.read_text()


def test_unreachable_scheduler_fails_fast_with_its_code(data, cluster, capsys):
    cfg = config(data, "unreach", extra='[cluster]\ntimeout = "1s"\n')
    t0 = time.perf_counter()
    code, _, err = cli(capsys, "run", cfg, "--scheduler", "tcp://127.0.0.1:9", "--no-progress")
    assert code == CLUSTER_UNREACHABLE and "tcp://127.0.0.1:9" in err, err
    assert time.perf_counter() - t0 < 15          # bounded by the 1 s timeout, not 30 s retries
    # require_encryption refuses a plain tcp:// scheduler (a live one) before sending anything.
    enc = config(data, "enc", extra="[cluster]\nrequire_encryption = true\n")
    code, _, err = cli(capsys, "run", enc, "--scheduler", cluster.scheduler_address,
                       "--no-progress")
    assert code == CLUSTER_UNREACHABLE and "require_encryption" in err, err


@pytest.mark.timeout(30)
def test_a_silent_scheduler_port_fails_within_the_timeout_with_its_code(data, silent_port,
                                                                         capsys):
    cfg = config(data, "silent", extra='[cluster]\ntimeout = "1s"\n')
    t0 = time.perf_counter()
    code, _, err = cli(capsys, "run", cfg, "--scheduler", f"tcp://127.0.0.1:{silent_port}",
                       "--no-progress")
    assert code == CLUSTER_UNREACHABLE and f"127.0.0.1:{silent_port}" in err, err
    assert time.perf_counter() - t0 < 10           # accepted, never answered: still bounded


def test_foreign_checkpoint_is_refused_with_bad_config(data, cluster, capsys):
    from daskfit._checkpoint import Checkpointer
    from daskfit.cli._run import checkpoint_dir

    cfg = config(data, "foreign", path="clf", estimator="LogisticRegression",
                 params='{ solver = "newton", tol = 1e-10 }', extra="[checkpoint]\nevery = 1\n")
    # Plant a checkpoint written for other data where this run looks for its own.
    code, out, _ = cli(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                       "--no-progress")
    assert code == OK
    (run_dir,) = run_dirs(data / "runs-foreign")
    ckpt = checkpoint_dir(data / "runs-foreign", run_dir.name)
    assert not ckpt.exists()                  # a complete run clears its checkpoints
    Checkpointer(ckpt, "0" * 64).save(2, passes=3, theta=np.zeros(5))
    code, _, err = cli(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                       "--force", "--resume", "--no-progress")
    assert code == BAD_CONFIG and "other data or another configuration" in err, err
    assert "without --resume" in err
    # Without --resume the stale checkpoint is cleared and the run succeeds.
    code, _, err = cli(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                       "--force", "--no-progress")
    assert code == OK, err
    assert not ckpt.exists()
    # A one-pass solver has no iterate to checkpoint: a configuration error, naming the key.
    normal = config(data, "normal", params='{ solver = "normal" }',
                    extra="[checkpoint]\nevery = 1\n")
    code, _, err = cli(capsys, "run", normal, "--scheduler", cluster.scheduler_address,
                       "--no-progress")
    assert code == BAD_CONFIG and "[checkpoint.every]" in err and "'normal'" in err, err


# ----------------------------------------------------------- atomic artifacts
def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_manifest_and_model_checksums_refuse_tampering(data, cluster, capsys, monkeypatch):
    cfg = config(data, "manifest")
    code, _, err = cli(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                       "--no-progress")
    assert code == OK, err
    (run_dir,) = run_dirs(data / "runs-manifest")
    manifest = json.loads((run_dir / "manifest.json").read_text())["files"]
    every = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")
                   if p.is_file() and p.name != "manifest.json")
    assert sorted(manifest) == every and "model/arrays.npz" in every and "run.log" in every
    assert all(manifest[f] == sha(run_dir / f) for f in every)
    model = daskfit.load(run_dir / "model")
    coef = model.estimator.coef_.copy()

    # An injected crash in the final rename of `run --force` keeps the previous run whole.
    import daskfit.io._persistence as persistence

    real = os.replace

    def flaky(src, dst):
        if Path(dst) == run_dir and Path(src).name.startswith(f".{run_dir.name}."):
            raise OSError("disk full (injected)")
        return real(src, dst)

    monkeypatch.setattr(persistence.os, "replace", flaky)
    code, _, err = cli(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                       "--force", "--no-progress")
    monkeypatch.undo()
    from daskfit.cli import ENVIRONMENT

    assert code == ENVIRONMENT and "disk full" in err   # the machine's fault, not the data's
    names = sorted(os.listdir(data / "runs-manifest"))
    assert names == sorted([run_dir.name, run_dir.name + ".failed.log"])   # no temp dirs
    failed_log = (data / "runs-manifest" / (run_dir.name + ".failed.log")).read_text()
    assert "run failed while committing" in failed_log and "disk full (injected)" in failed_log
    np.testing.assert_array_equal(daskfit.load(run_dir / "model").estimator.coef_, coef)

    # A flipped byte in arrays.npz, or an edited model.json, is refused on load.
    npz = run_dir / "model" / "arrays.npz"
    original = npz.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    npz.write_bytes(bytes(flipped))
    with pytest.raises(ModelFormatError, match="arrays.npz fails its sha256"):
        daskfit.load(run_dir / "model")
    npz.write_bytes(original)
    doc = run_dir / "model" / "model.json"
    doc.write_text(doc.read_text().replace('"alpha": 1.0', '"alpha": 2.0'))
    with pytest.raises(ModelFormatError, match="model.json fails its sha256"):
        daskfit.load(run_dir / "model")
    # Re-sealing the model's own checksums does not help: the run manifest disagrees.
    persistence.write_manifest(run_dir / "model", persistence.CHECKSUMS)
    with pytest.raises(ModelFormatError, match=r"model/(checksums|model)\.json fails its "
                                               r"sha256 checksum in manifest\.json"):
        daskfit.load(run_dir / "model")


def test_save_crash_mid_write_keeps_previous_model_and_no_temp_files(tmp_path, monkeypatch):
    import daskfit.io._persistence as persistence

    X = np.arange(12.0).reshape(6, 2)
    old = daskfit.save(daskfit.Ridge(alpha=1.0).fit(X, X @ [1.0, 2.0]), tmp_path / "model")
    new = daskfit.Ridge(alpha=1.0).fit(X, X @ [-3.0, 4.0])
    real = os.replace
    def crash(src, dst):   # the rename of the new model into place fails
        if Path(dst) == old and Path(src).parent == tmp_path and Path(src).name != "x":
            raise OSError("crash (injected)")
        return real(src, dst)

    monkeypatch.setattr(persistence.os, "replace", crash)
    with pytest.raises(OSError, match="injected"):
        daskfit.save(new, old)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model"]
    np.testing.assert_allclose(daskfit.load(old).predict([[1.0, 1.0]]),
                               daskfit.Ridge(alpha=1.0).fit(X, X @ [1.0, 2.0]).predict(
                                   [[1.0, 1.0]]))


# ------------------------------------------------------------------- resume
RESUME_DRIVER = """
import sys, time
import daskfit._checkpoint as c
real = c.Checkpointer.save
def slow(self, *a, **k):
    real(self, *a, **k)
    time.sleep(30)        # a long iteration: the test kills the process here
c.Checkpointer.save = slow
from daskfit.cli import main
main(sys.argv[1:])
"""


def test_resume_after_sigkill_gives_the_uninterrupted_coefficients(data, cluster, capsys):
    from daskfit.cli._run import checkpoint_dir

    params = '{ solver = "newton", tol = 1e-12, C = 0.5 }'
    cfg = config(data, "resume", path="clf", estimator="LogisticRegression", params=params,
                 extra="[checkpoint]\nevery = 1\n")
    sched = ("--scheduler", cluster.scheduler_address)
    proc = subprocess.Popen([sys.executable, "-c", RESUME_DRIVER, "run", str(cfg), *sched,
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, MPLBACKEND="Agg"))
    out = data / "runs-resume"
    deadline = time.monotonic() + 120
    try:
        while not list(out.glob(".checkpoints/*/checkpoint-*.npz")):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not run_dirs(out)
    # Killed: no run directory, but the checkpoint (and a temporary directory) remain.
    code, _, err = cli(capsys, "run", cfg, *sched, "--resume", "--no-progress")
    assert code == OK, err
    (run_dir,) = run_dirs(out)
    # The killed run's temporary directory (its owner is dead) was removed by this one.
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".checkpoints"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["model"]["resumed_from_iteration"] >= 1
    assert not checkpoint_dir(out, run_dir.name).exists()
    # The same configuration run uninterrupted elsewhere: the same Newton coefficients. Two
    # uninterrupted CLI runs already differ in the last bit or two (the library's resume is
    # bitwise identical, test_checkpoint.py), so the tolerance is that noise floor.
    fresh_cfg = config(data, "fresh", path="clf", estimator="LogisticRegression",
                       params=params)
    code, _, err = cli(capsys, "run", fresh_cfg, *sched, "--no-progress")
    assert code == OK, err
    (fresh_dir,) = run_dirs(data / "runs-fresh")
    resumed = daskfit.load(run_dir / "model").estimator
    fresh = daskfit.load(fresh_dir / "model").estimator
    np.testing.assert_allclose(resumed.coef_, fresh.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(resumed.intercept_, fresh.intercept_, rtol=1e-12, atol=1e-14)
    assert resumed.n_iter_ == fresh.n_iter_ and resumed.n_iter_ > 2


# --------------------------------------------------------- security, secrets
def test_tls_local_cluster_fit_equals_tcp_fit(data, cluster, capsys):
    tcp = config(data, "tcp")
    tls = config(data, "tls", extra='[cluster]\nsecurity = "temporary"\nn_workers = 1\n'
                                    'processes = false\ndashboard_address = "127.0.0.1:0"\n')
    code, _, err = cli(capsys, "run", tcp, "--scheduler", cluster.scheduler_address,
                       "--no-progress")
    assert code == OK, err
    code, _, err = cli(capsys, "run", tls, "--no-progress")
    assert code == OK, err
    (tls_dir,) = run_dirs(data / "runs-tls")
    assert "cluster tls://127.0.0.1:" in (tls_dir / "run.log").read_text()
    (tcp_dir,) = run_dirs(data / "runs-tcp")
    np.testing.assert_allclose(daskfit.load(tls_dir / "model").estimator.coef_,
                               daskfit.load(tcp_dir / "model").estimator.coef_, rtol=1e-10)


def test_storage_option_secrets_never_printed_or_saved(data, cluster, capsys):
    cfg = config(data, "secret", extra='[cluster]\ntimeout = "5s"\n')
    text = cfg.read_text().replace('target = "y"',
                                   'target = "y"\nstorage_options = { key = "SECRET123" }')
    cfg.write_text(text)
    code, out, err = cli(capsys, "run", cfg, "--scheduler", cluster.scheduler_address,
                         "--no-progress")
    assert code == OK, err
    (run_dir,) = run_dirs(data / "runs-secret")
    saved = {p.name: p.read_text() for p in run_dir.iterdir() if p.suffix in (".log", ".json",
                                                                              ".toml")}
    assert set(saved) >= {"run.log", "metrics.json", "config.toml"}
    assert "storage_options = { key = \"***\" }" in saved["config.toml"]
    for where, written in dict(saved, stdout=out, stderr=err).items():
        assert "SECRET123" not in written, where
    # An error that quotes the options is redacted on stderr and in the failed log too.
    bad = write(data / "secret-bad.toml", text.replace('path = "reg"',
                                                       'path = "SECRET123-nowhere"'))
    code, out, err = cli(capsys, "run", bad, "--scheduler", cluster.scheduler_address,
                         "--no-progress")
    assert code == MISSING_INPUT and "***-nowhere" in err, err
    assert "SECRET123" not in err + out


# ---------------------------------------------------------------- bad data
def test_bad_data_names_the_file_with_its_exit_code(data, cluster, capsys, monkeypatch):
    sched = ("--scheduler", cluster.scheduler_address, "--no-progress")
    # CSV dtype drift: a string in a numeric column of the second file.
    csv = data / "csv"
    csv.mkdir()
    frame(300, 1).to_csv(csv / "a.csv", index=False)
    drift = frame(300, 2)
    drift["x1"] = drift["x1"].astype(object)
    drift.loc[250, "x1"] = "n/a?"
    drift.to_csv(csv / "b.csv", index=False)
    # Parquet schema drift: a column missing in one file, of another type in another.
    for name, change in (("missing-col", lambda d: d.drop(columns="x2")),
                         ("other-type", lambda d: d.assign(x0=d["x0"].astype(str)))):
        (data / name).mkdir()
        frame(200, 3).to_parquet(data / name / "part.0.parquet")
        change(frame(200, 4)).to_parquet(data / name / "part.1.parquet")
    cases = {
        "csvdrift": ("csv/*.csv", BAD_DATA, ["b.csv", "'x1'", "row 251: 'n/a?'"]),
        "schemamissing": ("missing-col", BAD_DATA, ["part.1.parquet", "'x2' is missing"]),
        "schematype": ("other-type", BAD_DATA, ["part.1.parquet", "'x0' has type"]),
        "noglob": ("reg/*.csv", MISSING_INPUT, ["reg/*.csv"]),
    }
    for name, (path, expected, words) in cases.items():
        code, _, err = cli(capsys, "run", config(data, name, path=path), *sched)
        assert code == expected, (name, err)
        assert all(w in err for w in words) and "Traceback" not in err, (name, err)
    # A file deleted between planning (listing, first file's schema) and reading.
    (data / "vanish").mkdir()
    for i in range(3):
        frame(200, i).to_parquet(data / "vanish" / f"part.{i}.parquet")
    import daskfit.cli._run as run_module

    columns = run_module.input_columns

    def delete_then_columns(*args):
        (data / "vanish" / "part.2.parquet").unlink()
        return columns(*args)

    monkeypatch.setattr(run_module, "input_columns", delete_then_columns)
    code, _, err = cli(capsys, "run", config(data, "vanish", path="vanish"), *sched)
    assert code == MISSING_INPUT and "part.2.parquet" in err and "is gone" in err, err
    only_failed_log(data / "runs-vanish")


def test_a_file_that_kills_every_worker_is_named_and_leaves_no_run(data, capsys):
    """A real crash: worker processes die (os._exit) reading one Parquet file."""
    import dask
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import WorkerPlugin

    class Poison(WorkerPlugin):   # local class: pickled by value, so workers need no tests/
        def setup(self, worker):
            import daskfit.io._read as reader

            real = reader._read_parquet_file

            def poisoned(path, *args, **kwargs):
                if str(path).endswith("part.1.parquet"):
                    os._exit(13)
                return real(path, *args, **kwargs)

            reader._read_parquet_file = poisoned

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0") as poisoned_cluster, \
            Client(poisoned_cluster) as client:
        client.register_plugin(Poison())
        code, _, err = cli(capsys, "run", config(data, "poison"), "--scheduler",
                           poisoned_cluster.scheduler_address, "--no-progress")
    assert code == BAD_DATA, err
    assert "part.1.parquet" in err and "crashed 2 worker" in err and "Traceback" not in err
    only_failed_log(data / "runs-poison")


def test_password_in_the_data_url_is_redacted(tmp_path):
    from daskfit.cli._config import load_config
    from daskfit.cli._redact import redact

    cfg = write(tmp_path / "url.toml", """
        [data]
        path = "s3://reader:PASSW0RD-xyz@bucket/table"
        target = "y"
        [model]
        estimator = "Ridge"
        """)
    config = load_config(cfg)
    assert redact(f"No input at {config['data']['path']}") == \
        "No input at s3://reader:***@bucket/table"


def test_divergence_raises_before_any_nan_coefficient_is_returned_or_saved(
        data, tmp_path, capsys):
    """A solver that diverges (parameter averaging with an absurd learning rate)
    raises in the library, leaving the estimator unfitted, and in the CLI exits
    with the bad-data code and saves no model."""
    df = pd.concat([pd.read_parquet(data / "reg" / f"part.{i}.parquet") for i in range(3)])
    est = daskfit.Ridge(solver="averaging", solver_options={"learning_rate": 1e6},
                        max_iter=20)
    with pytest.raises(FloatingPointError, match="diverged|overflow|learning_rate"):
        est.fit(df[["x0", "x1", "x2"]], df["y"])
    assert not hasattr(est, "coef_")
    cfg = config(data, "diverges", params='{ solver = "averaging", max_iter = 20, '
                                          'solver_options = { learning_rate = 1e6 } }')
    code, out, err = cli(capsys, "run", cfg, "--no-progress")
    assert code == BAD_DATA, err
    assert "FloatingPointError" in err or "diverged" in err
    assert not list((data / "runs-diverges").glob("*/model"))


# ------------------------------------------------------------- secrets, by parsed value
SPELLED_SECRETS = '''
[data]
path = "s3://reader:pa\\\\ss@bucket/table"
target = "y"
storage_options = { key = "SEC\\\\RET-1", token = "\\u0045SCAPED-2", pin = "x7q", nested = { password = """
MULTI-LINE-3""" } }
[model]
estimator = "Ridge"
'''


def test_secrets_are_redacted_whatever_their_toml_spelling(tmp_path):
    """Escapes, \\u sequences, multi-line strings, a backslash in a URL password, a
    3-character secret: parsed values are what is redacted, in every spelling a message
    may quote them (repr doubles a backslash)."""
    import tomllib

    from daskfit.cli._config import load_config
    from daskfit.cli._redact import redact, redacted_config_text

    cfg = tmp_path / "spelled.toml"
    cfg.write_text(SPELLED_SECRETS)
    config = load_config(cfg)
    secrets = ["SEC\\RET-1", "ESCAPED-2", "x7q", "\nMULTI-LINE-3", "pa\\ss"]
    assert config["data"]["storage_options"]["key"] == secrets[0]
    for secret in secrets:
        for spelling in (secret, repr(secret), str({"k": secret}), f"url {config['data']['path']}"):
            assert secret.strip() not in redact(spelling), spelling
            assert "***" in redact(spelling)
    # A short secret is masked as a token, not inside other words.
    assert redact("x7q and x7qz") == "*** and x7qz"
    saved = redacted_config_text(cfg.read_text())
    parsed = tomllib.loads(saved)
    assert parsed["data"]["storage_options"] == {"key": "***", "token": "***", "pin": "***",
                                                 "nested": {"password": "***"}}
    assert parsed["data"]["path"] == "s3://reader:***@bucket/table"
    assert parsed["model"] == {"estimator": "Ridge"}
    for secret in secrets:
        assert secret.strip() not in saved and repr(secret)[1:-1] not in saved


def test_wrong_typed_storage_options_are_not_echoed(tmp_path, capsys):
    cfg = write(tmp_path / "typed.toml", """
        [data]
        path = "reg"
        target = "y"
        storage_options = "AKIA-WRONG-TYPE"
        [model]
        estimator = "Ridge"
        """)
    code, out, err = cli(capsys, "run", cfg, "--no-progress")
    assert code == BAD_CONFIG and "data.storage_options" in err, err
    assert "AKIA-WRONG-TYPE" not in err + out


# ------------------------------------------------------------ predict and input paths
def test_predict_takes_the_run_directory_and_refuses_proba_on_a_regressor(data, cluster,
                                                                          capsys):
    sched = ("--scheduler", cluster.scheduler_address, "--no-progress")
    code, _, err = cli(capsys, "run", config(data, "predictdir"), *sched)
    assert code == OK, err
    (run_dir,) = run_dirs(data / "runs-predictdir")
    outputs = {}
    for name, model in (("dir", run_dir), ("model", run_dir / "model")):
        outputs[name] = data / f"preds-{name}"
        code, _, err = cli(capsys, "predict", model, "--input", data / "reg", "--output",
                           outputs[name], *sched)
        assert code == OK, err
    by_dir, by_model = (pd.read_parquet(outputs[k]) for k in ("dir", "model"))
    assert len(by_dir) == 1800
    pd.testing.assert_frame_equal(by_dir, by_model)
    # --proba on a regressor: a usage error, found before any cluster is contacted.
    code, _, err = cli(capsys, "predict", run_dir, "--proba", "--input", data / "reg",
                       "--output", data / "preds-proba", "--scheduler", "tcp://127.0.0.1:9")
    assert code == BAD_CONFIG and "--proba" in err and "Ridge" in err, err
    assert not (data / "preds-proba").exists()


def test_csv_directory_nan_and_truncated_parquet_are_named(data, cluster, capsys):
    sched = ("--scheduler", cluster.scheduler_address, "--no-progress")
    csv = data / "csvdir"
    csv.mkdir()
    for i in range(2):
        frame(300, 20 + i).to_csv(csv / f"part{i}.csv", index=False)
    nan = data / "csvnan"
    nan.mkdir()
    frame(300, 22).to_csv(nan / "a.csv", index=False)
    holed = frame(300, 23)
    holed.loc[140, "x2"] = np.nan
    holed.to_csv(nan / "b.csv", index=False)
    for name in ("trunc-later", "trunc-first"):
        shutil.copytree(data / "reg", data / name)
        victim = data / name / ("part.1.parquet" if name == "trunc-later" else "part.0.parquet")
        victim.write_bytes(victim.read_bytes()[:-200])

    def csv_config(name, path):
        cfg = config(data, name, path=path)
        cfg.write_text(cfg.read_text().replace('target = "y"', 'target = "y"\nformat = "csv"'))
        return cfg

    code, _, err = cli(capsys, "run", csv_config("csvdir", "csvdir"), *sched)
    assert code == OK, err
    (run_dir,) = run_dirs(data / "runs-csvdir")
    assert json.loads((run_dir / "metrics.json").read_text())["input"]["rows"] == 600
    code, _, err = cli(capsys, "run", csv_config("csvnan", "csvnan"), *sched)
    assert code == BAD_DATA, err
    assert "b.csv" in err and "'x2'" in err and "row 141" in err and "Traceback" not in err
    for name, culprit in (("trunc-later", "part.1.parquet"), ("trunc-first", "part.0.parquet")):
        code, _, err = cli(capsys, "run", config(data, name, path=name), *sched)
        assert code == BAD_DATA and culprit in err and "truncated" in err, (name, err)


# ------------------------------------------------------------ scheduled runs
def test_scheduled_run_prints_stages_summary_json_and_verifies_before_skipping(
        data, cluster, capsys):
    """stderr is not a terminal here (as under cron): one line per stage, a summary on
    stdout; --json is one JSON object; "already complete" only for a run that verifies;
    a later success removes the stale failed log."""
    sched = ("--scheduler", cluster.scheduler_address)
    cfg = config(data, "sched")
    out = data / "runs-sched"
    out.mkdir()
    code, stdout, err = cli(capsys, "run", cfg, *sched)
    assert code == OK, err
    (run_dir,) = run_dirs(out)
    for i, stage in enumerate(("input", "cluster", "encode", "fit", "score", "cv",
                               "overfitting", "write"), start=1):
        assert f"daskfit run: [{i}/8] {stage} done in " in err, err
    assert f"Run directory: {run_dir}" in stdout and "score: train 0.9" in stdout, stdout
    code, stdout, err = cli(capsys, "run", cfg, *sched, "--json")
    summary = json.loads(stdout)
    assert code == OK and summary == {"status": "already complete", "run_dir": str(run_dir)}
    code, stdout, err = cli(capsys, "run", cfg, *sched, "-q")
    assert code == OK and stdout == err == ""   # -q: errors only
    # Damaged after it was written: not complete, so it runs again (and a stale failed log
    # of the same run id goes once it succeeds).
    with open(run_dir / "metrics.json", "a") as handle:
        handle.write(" ")
    stale = out / f"{run_dir.name}.failed.log"
    stale.write_text("an old failure\n")
    code, stdout, err = cli(capsys, "run", cfg, *sched, "--json")
    assert code == OK and "does not verify" in err and "metrics.json" in err, err
    summary = json.loads(stdout)   # nothing but the JSON on stdout (no dashboard link)
    assert summary["status"] == "complete" and summary["run_dir"] == str(run_dir)
    assert summary["scores"]["train"] > 0.9 and summary["verdict"] is None
    assert not stale.exists() and sorted(os.listdir(out)) == [run_dir.name]
    from daskfit.io._persistence import verify_manifest

    verify_manifest(run_dir)
    # A failure under --json is a JSON object too, with its exit code.
    code, stdout, err = cli(capsys, "run", config(data, "sched-missing", path="nowhere"),
                            *sched, "--json")
    assert code == MISSING_INPUT and json.loads(stdout)["exit_code"] == MISSING_INPUT


def test_environment_and_lost_scheduler_have_their_own_exit_codes(data, cluster, capsys,
                                                                  monkeypatch):
    import errno

    from distributed.client import FutureCancelledError

    from daskfit.cli import CLUSTER_UNREACHABLE, ENVIRONMENT
    import daskfit.cli._run as run_module

    sched = ("--scheduler", cluster.scheduler_address, "--no-progress")
    # An output directory that cannot be created (a file is in the way): before any work.
    (data / "blocked").write_text("a file, not a directory")
    cfg = config(data, "blocked-out")
    cfg.write_text(cfg.read_text().replace('dir = "runs-blocked-out"',
                                           'dir = "blocked/runs"'))
    code, _, err = cli(capsys, "run", cfg, "--scheduler", "tcp://127.0.0.1:9")
    assert code == ENVIRONMENT and "blocked" in err and "Traceback" not in err, err
    # The disk fills while the run directory is written.
    real_write = run_module._write_json

    def disk_full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(run_module, "_write_json", disk_full)
    code, _, err = cli(capsys, "run", config(data, "full"), *sched, "-v")
    assert code == ENVIRONMENT and "No space left" in err, err
    assert "INFO daskfit.run: stage fit done in" in err   # -v: the run log's lines too
    only_failed_log(data / "runs-full")
    monkeypatch.setattr(run_module, "_write_json", real_write)
    # The scheduler cancels the run's futures (restarted or lost mid-fit).
    def cancelled(self, *args, **kwargs):
        raise FutureCancelledError("daskfit-gram-123", "scheduler-connection-lost")

    monkeypatch.setattr(daskfit.Ridge, "fit", cancelled)
    code, _, err = cli(capsys, "run", config(data, "cancelled"), *sched)
    assert code == CLUSTER_UNREACHABLE and "cancelled" in err and "Traceback" not in err, err
    only_failed_log(data / "runs-cancelled")


def test_ctrl_c_and_sigterm_exit_130_and_143_keeping_the_log_and_nothing_else(
        data, cluster, capsys, monkeypatch):
    """A real signal to this process in the middle of the fit (in-process: no interpreter
    start-up per case): exit 130 for SIGINT (Ctrl-C), 143 for SIGTERM, each leaving its
    failed log and no run or temporary directory."""
    from daskfit.cli import INTERRUPTED, TERMINATED

    # A user's Ctrl-C reaches a process whose SIGINT handler is Python's own;
    # make sure of it here, whatever ran before in this test process (a
    # SIGINT that once did not interrupt this test, in one full run, could not
    # be reproduced, and no daskfit code touches SIGINT's handler).
    found = signal.signal(signal.SIGINT, signal.default_int_handler)
    real = daskfit.Ridge.fit
    for sig, expected in ((signal.SIGINT, INTERRUPTED), (signal.SIGTERM, TERMINATED)):
        def interrupted_fit(self, *args, _sig=sig, **kwargs):
            real(self, *args, **kwargs)
            os.kill(os.getpid(), _sig)
            time.sleep(30)   # the signal arrives long before this ends

        monkeypatch.setattr(daskfit.Ridge, "fit", interrupted_fit)
        started = time.monotonic()
        code, _, err = cli(capsys, "run", config(data, f"sig{int(sig)}"), "--scheduler",
                           cluster.scheduler_address, "--no-progress")
        assert code == expected and time.monotonic() - started < 25, (sig, err)
        failed = only_failed_log(data / f"runs-sig{int(sig)}")   # no run, no temporary dir
        text = failed.read_text()
        assert "run failed" in text and ("SIGTERM" in text or "KeyboardInterrupt" in text)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # handler restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, found)


def test_temporary_directories_of_dead_processes_are_removed(tmp_path):
    import socket

    from daskfit.io._persistence import clean_dead_temp_dirs, make_temp_dir

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = make_temp_dir(tmp_path, "live")
    owners = {"dead": {"host": socket.gethostname(), "pid": dead.pid, "started": 1.0},
              "recycled": {"host": socket.gethostname(), "pid": os.getpid(), "started": 1.0},
              "remote": {"host": "elsewhere.invalid", "pid": dead.pid, "started": 1.0}}
    for name, owner in owners.items():
        (tmp_path / f".{name}.x").mkdir()
        (tmp_path / f".{name}.x" / "run.log").write_text("partial")
        (tmp_path / f".{name}.x.lock").write_text(json.dumps(owner))
    removed = clean_dead_temp_dirs(tmp_path)
    assert sorted(p.name for p in removed) == [".dead.x", ".recycled.x"]
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, mine.name + ".lock",
                                                   ".remote.x", ".remote.x.lock"])


def test_a_worker_killed_for_memory_is_not_blamed_on_the_chunk():
    """The nanny's memory manager (the infrastructure) killed the worker: exit 6 with the
    memory advice, not 4 "bad data" naming an innocent chunk; without such an event the
    chunk is blamed as before."""
    from distributed import KilledWorker

    from daskfit.cli import ENVIRONMENT
    from daskfit.cli._exit import MEMORY_RESTART_TOPIC, as_cli_error

    class Scheduler:
        events = "events"

    class FakeClient:
        scheduler = Scheduler()

        def __init__(self, worker):
            self.worker = worker

        def sync(self, func, topic, callback_timeout):
            assert func == "events" and topic == MEMORY_RESTART_TOPIC and callback_timeout
            return [(1.0, {"worker": self.worker, "pid": 7, "rss": 750 * 2**20})]

    killed = KilledWorker(("daskfit-read-parquet-abc", 1), SimpleNamespace(address="tcp://w:1"),
                          3)
    try:   # the engine raises WorkerCrashError while handling the KilledWorker
        try:
            raise killed
        except KilledWorker as exc:
            raise daskfit.WorkerCrashError.from_killed(exc, 6) from None
    except daskfit.WorkerCrashError as crash:
        chained = crash
    for exc in (killed, chained):
        error = as_cli_error(exc, "fitting", client=FakeClient("tcp://w:1"))
        assert error.code == ENVIRONMENT and "memory limit" in str(error), error
        blamed = as_cli_error(exc, "fitting", client=FakeClient("tcp://other:2"))
        assert blamed.code == BAD_DATA
