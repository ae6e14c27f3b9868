"""``daskfit run``: from a configuration to a run directory, all or nothing.

Stages (each timed, each a step of the progress bar): find and fingerprint
the input; connect; read and encode (one pass: categories, means, scales,
partition lengths); fit; score on the training data (one pass);
cross-validate; diagnose overfitting; write. The run directory
``OUTPUT_DIR/NAME-RUNID`` is assembled in a hidden temporary directory next
to it and renamed into place at the end, so a failed run leaves nothing
behind, and a finished one is never half-overwritten. The run id hashes the
configuration (without ``[cluster]``, which changes where, not what) and the
input fingerprint: re-running an unchanged job finds its run directory and
does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from .. import errors
from ._exit import ConfigError, Unreachable, as_cli_error, output_errors
from ._input import explain_csv_error, explain_csv_nan, find_input, read_table
from ._config import TLS_FILES, resolve_path
from ._checks import check_offset
from ._validate import build_model, check_config, estimator_classes  # noqa: F401 (API)
from ._redact import RedactFilter, redact, redacted_config_text
from ._report import Report, run_report_html

__all__ = ["run", "run_id", "connect_cluster", "build_model"]

log = logging.getLogger("daskfit.run")

STAGES = ("input", "cluster", "encode", "fit", "score", "cv", "overfitting", "write")


def run_id(config, fingerprint):
    """12 hex digits from the configuration (less [cluster]) and the input fingerprint."""
    what = {k: v for k, v in config.items() if k not in ("cluster", "checkpoint", "_file")}
    what["output"] = {"name": config["output"]["name"]}
    blob = json.dumps([what, fingerprint], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def connect_cluster(config, scheduler=None):
    """A distributed Client (and the LocalCluster it started, or None) via :func:`daskfit.connect`.

    ``--scheduler`` or ``[cluster] address``, else a loopback LocalCluster; TLS
    from ``[cluster]`` (temporary certificates, or PEM paths relative to the
    configuration file); a bounded wait, then :class:`Unreachable`.
    """
    from .._cluster import ClusterUnreachable, connect

    c = config["cluster"]
    address = scheduler or c["address"]
    security = c.get("security")
    tls = {k: resolve_path(config, c[k]) for k in TLS_FILES if c.get(k)}
    if tls:
        security = tls
    kwargs = {}
    if not address:
        kwargs = {k: c[k] for k in ("n_workers", "threads_per_worker", "memory_limit")
                  if c[k] is not None}
        kwargs.update(processes=c["processes"], dashboard_address=c["dashboard_address"])
    try:
        client = connect(address or None, security=security,
                         require_encryption=bool(c.get("require_encryption")),
                         timeout=c["timeout"], **kwargs)
    except ClusterUnreachable as exc:
        raise Unreachable(f"{exc} (--scheduler or [cluster] address)") from None
    except errors.ConfigError as exc:   # names the setting when one is to blame
        key = f"cluster.{exc.setting}" if exc.setting in c else "cluster"
        raise ConfigError(config.get("_file", "--scheduler"), key, str(exc)) from None
    except (ValueError, TypeError) as exc:  # LocalCluster options that do not fit
        raise ConfigError(config.get("_file", "--scheduler"), "cluster", str(exc)) from None
    return client, (None if address else client.cluster)


class _Stages:
    """Times each stage and drives the progress bar."""

    def __init__(self, bar):
        self.bar, self.seconds = bar, {}

    @contextlib.contextmanager
    def __call__(self, name):
        log.info("stage %s ...", name)
        t0 = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 4)
        log.info("stage %s done in %.2f s", name, self.seconds[name])
        if self.bar is not None:
            self.bar.update(1, f"{name} done in {self.seconds[name]:.2f} s")


def input_columns(config, frame):
    """Feature, categorical, target and weight columns, checked against the data."""
    file, data = config["_file"], config["data"]
    columns = [str(c) for c in frame.columns]
    for key in ("target", "sample_weight", "offset"):
        if data[key] is not None and data[key] not in columns:
            raise ConfigError(file, f"data.{key}", f"{data[key]!r} is not a column of "
                                                   f"{data['path']}; its columns are {columns}")
    check_offset(config)
    skip = {data["target"], data["sample_weight"], data["offset"]}
    features = data["features"] or [c for c in columns if c not in skip]
    for key, names in (("features", features), ("categorical", data["categorical"] or [])):
        missing = [c for c in names if c not in columns]
        if missing:
            raise ConfigError(file, f"data.{key}", f"{missing} are not columns of "
                                                   f"{data['path']}; its columns are {columns}")
    if data["categorical"] and not set(data["categorical"]) <= set(features):
        raise ConfigError(file, "data.categorical", "must be a subset of data.features")
    if data["target"] in features:
        raise ConfigError(file, "data.features", "must not contain the target column")
    return features


def versions():
    import dask
    import distributed
    import pandas
    import pyarrow
    import scipy
    import sklearn

    from .. import __version__

    return {"python": platform.python_version(), "daskfit": __version__,
            "dask": dask.__version__, "distributed": distributed.__version__,
            "numpy": np.__version__, "pandas": pandas.__version__,
            "scikit-learn": sklearn.__version__, "scipy": scipy.__version__,
            "pyarrow": pyarrow.__version__}


def _plain(value):
    """NumPy values to JSON (non-finite floats as None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value, dtype=object).tolist()] if isinstance(
            value, np.ndarray) else [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def checkpoint_dir(out_dir, run_name):
    """Where a run's checkpoints live: outside its run directory (which exists only once
    complete), keyed by the run id, so they survive a killed run."""
    return Path(out_dir) / ".checkpoints" / run_name


def run(config_path, *, scheduler=None, force=False, progress=True, echo=None, resume=False,
        report=None, overrides=None):
    """Run one pipeline; return the run directory (existing or new).

    With ``resume`` a run killed mid-fit continues from its last checkpoint
    (``[checkpoint] every``); without it, stale checkpoints of this run id are
    cleared first. ``report`` (:class:`~daskfit.cli._report.Report`) decides
    what is printed: a bar or stage lines, the summary, JSON. An existing run
    directory counts as complete only if its manifest's checksums verify;
    otherwise it is run again. Raises the errors of :mod:`daskfit.cli._exit`
    (each with its exit code); on any failure, also Ctrl-C or SIGTERM, the
    log is kept as ``NAME-RUNID.failed.log`` and nothing else is left. ``overrides``
    (environment and ``--set``) replace keys of the file; every problem of the
    result is reported at once before any work (:func:`check_config`), and the
    applied overrides are recorded in metrics.json.
    """
    import click

    from ..io._persistence import (ModelFormatError, clean_dead_temp_dirs, make_temp_dir,
                                   remove_temp_dir, replace_dir, verify_manifest,
                                   write_manifest)

    echo = echo or click.echo
    report = report or Report(echo, progress=progress)
    checked = check_config(config_path, overrides)   # every problem, before any work
    config, estimator = checked.config, checked.estimator
    name = config["output"]["name"] or config["_file"].stem
    config["output"]["name"] = name
    source = find_input(config)
    frame = read_table(config, source)          # metadata only
    features = input_columns(config, frame)
    rid = run_id(config, source.fingerprint)
    out_dir = Path(resolve_path(config, config["output"]["dir"]))
    final = out_dir / f"{name}-{rid}"
    if final.exists() and not force:
        try:
            verify_manifest(final)
            report.already_complete(final)
            return final
        except ModelFormatError as exc:   # damaged since: not complete, so run it again
            report.note(f"Run directory {final} does not verify ({exc}); running it again.")
    checkpoints = checkpoint_dir(out_dir, final.name)
    if not resume and checkpoints.exists():
        log.info("clearing stale checkpoints %s (no --resume)", checkpoints)
        shutil.rmtree(checkpoints)
    checkpoint = ({"directory": str(checkpoints), "every": config["checkpoint"]["every"]}
                  if config["checkpoint"]["every"] else None)
    with output_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        for dead in clean_dead_temp_dirs(out_dir):
            report.note(f"Removed {dead}, left by a run whose process is gone.")
        tmp = make_temp_dir(out_dir, final.name)
        handler = logging.FileHandler(tmp / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter())
    handlers = [(logging.getLogger(name), handler) for name in ("daskfit", "py.warnings")]
    for logger, h in handlers:
        logger.addHandler(h)
    logging.getLogger("daskfit").setLevel(logging.INFO)
    logging.captureWarnings(True)

    def detach():
        for logger, h in handlers:
            logger.removeHandler(h)
        logging.captureWarnings(False)
        handler.close()

    failed_log = out_dir / f"{final.name}.failed.log"
    try:
        with report.stages(STAGES) as bar:
            metrics = _run_stages(config, estimator, source, frame, features, rid, tmp,
                                  scheduler, bar, echo, checkpoint, report)
            metrics["overrides"] = checked.overrides.record()
        with output_errors(out_dir):
            _write_json(tmp / "metrics.json", metrics)
            _write_text(tmp / "report.html", run_report_html(metrics))
            log.info("run %s complete", rid)
            detach()   # run.log is final before its checksum goes into the manifest
            write_manifest(tmp)
            replace_dir(tmp, final)
        shutil.rmtree(checkpoints, ignore_errors=True)   # the run is complete
        failed_log.unlink(missing_ok=True)   # an earlier failure of this run is now stale
    except BaseException as exc:
        _keep_failed_log(exc, handler, detach, tmp, failed_log)
        remove_temp_dir(tmp)
        report.failed(failed_log)
        raise
    finally:
        detach()
    report.complete(final, metrics)
    return final


def _keep_failed_log(exc, handler, detach, tmp, failed_log):
    """Log ``exc`` into the run's log and move it to ``failed_log`` (a full disk must not
    hide the error being reported behind one about its log)."""
    try:
        if handler in logging.getLogger("daskfit").handlers:
            log.error("run failed: %s", exc, exc_info=True)
            detach()
        elif (tmp / "run.log").exists():   # failed while committing: the log was closed
            import traceback

            with open(tmp / "run.log", "a") as failed:
                failed.write(redact(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR daskfit.run: "
                                    f"run failed while committing: {exc}\n"
                                    + "".join(traceback.format_exception(exc))))
        # No run directory for a failed run; its log stays, next to where it would be.
        if (tmp / "run.log").exists():
            os.replace(tmp / "run.log", failed_log)
    except OSError as problem:
        log.warning("could not keep the failed run's log at %s: %s", failed_log, problem)


def _run_stages(config, estimator, source, frame, features, rid, tmp, scheduler, bar, echo,
                checkpoint=None, report=None):

    from ..estimators._inference import inference_record
    from ..io import FrameEncoder, TabularModel, save

    stage = _Stages(bar)
    t_start = time.perf_counter()
    data, cv, over = config["data"], config["cv"], config["overfitting"]
    with stage("input"):
        # The copy is redacted at the level of parsed values: storage_options (credentials)
        # are never saved, whatever their TOML spelling.
        (tmp / "config.toml").write_text(
            redacted_config_text(Path(config["_file"]).read_text()))
    with stage("cluster"), (report.link_output() if report else contextlib.nullcontext()):
        client, cluster = connect_cluster(config, scheduler)
    try:
        # daskfit.connect printed the dashboard link.
        log.info("cluster %s, dashboard %s", client.scheduler.address, client.dashboard_link)
        # A reference level per categorical column when the model has an intercept:
        # the design stays full rank (no singular Gram matrix, no extra QR pass).
        drop = "first" if getattr(estimator, "fit_intercept", True) else None
        model = TabularModel(encoder=FrameEncoder(numeric=None, categorical=data["categorical"],
                                                  standardize=config["model"]["standardize"],
                                                  drop=drop),
                             estimator=estimator, target=data["target"], offset=data["offset"])
        y = frame[data["target"]]
        w = frame[data["sample_weight"]] if data["sample_weight"] else None
        o = frame[data["offset"]] if data["offset"] else None
        X = frame[features]
        with stage("encode"), data_errors("reading and encoding", source, frame,
                                           [*features, data["target"]]):
            model.encoder.fit(X)
            Xe, ye, we = model.encode(X, y, w)
            # The offset column on the encoded rows' chunks, as y is made.
            oe = None if o is None else model.encode(X, o)[1]
            Xe, ye, we, oe, persist_reason = _persist(client, Xe, ye, we, oe)
        log.info("encoded data: %s", persist_reason)
        log.info("%d rows, %d encoded features %s", model.encoder.n_rows_, Xe.shape[1],
                 list(model.encoder.feature_names_out_))
        used = [c for c in [*features, data["target"], data["sample_weight"], data["offset"]]
                if c]
        with stage("fit"), data_errors("fitting", source, frame, used):
            fit_estimator(config, estimator, Xe, ye, we, checkpoint, oe)
            model.feature_names_in_ = np.array(features, dtype=object)
            model.n_features_in_ = len(features)
        with stage("score"), data_errors("scoring"):
            train_score = float(estimator.score(Xe, ye, sample_weight=we,
                                                **({} if oe is None else {"offset": oe})))
            inference = inference_record(estimator, Xe, ye, we, model.encoder.feature_names_out_,
                                         offset=oe)
        folds = cv["folds"]
        cv_out = {"skipped": "cv.folds < 2"}
        report = None
        with stage("cv"), data_errors("cross-validating"):
            if folds >= 2 and over["enabled"]:
                # The diagnosis scores the same folds (same splitter, seed and
                # scoring): its per-fold scores ARE the cross-validation.
                report = _diagnosis(config, estimator, Xe, ye, we, oe)
                cv_out = _cv_summary(report.folds["train"], report.folds["validation"],
                                     folds, cv["scoring"], "overfitting diagnosis")
            elif folds >= 2:
                cv_out = _cross_validate(estimator, Xe, ye, we, folds, cv, oe)
        over_out = {"skipped": "overfitting.enabled = false" if not over["enabled"]
                    else "cv.folds < 2"}
        with stage("overfitting"), data_errors("diagnosing overfitting"):
            if report is not None:
                over_out = _write_diagnosis(report, tmp)
        with stage("write"):
            save(model, tmp / "model")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    result = estimator.fit_result_ if hasattr(estimator, "fit_result_") else None
    return {
        "run_id": rid, "name": config["output"]["name"], "config_file": str(config["_file"]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "input": dict(source.describe(), rows=model.encoder.n_rows_,
                      partitions=len(getattr(model.encoder, "_partition_rows", ()))),
        "features": {"columns": features, "categorical": model.encoder.categorical_,
                     "encoded": list(model.encoder.feature_names_out_),
                     "standardized": config["model"]["standardize"]},
        "model": {"estimator": type(estimator).__name__,
                  "params": _plain({k: v for k, v in estimator.get_params(deep=False).items()
                                    if isinstance(v, (int, float, str, bool, type(None)))}),
                  "solver": getattr(estimator, "solver_", None),
                  "solver_reason": getattr(estimator, "solver_reason_", None),
                  "persist_reason": getattr(estimator, "persist_reason_", None),
                  "encoded_data": persist_reason,
                  "n_iter": _plain(getattr(estimator, "n_iter_", None)),
                  "resumed_from_iteration": _plain(getattr(estimator, "resumed_from_", None)),
                  "n_passes": _plain(getattr(estimator, "n_passes_", None)),
                  "converged": None if result is None else bool(result.converged)},
        "scores": {"train": train_score,
                   "cv_test_mean": cv_out.get("mean_test_score"),
                   "cv_train_mean": cv_out.get("mean_train_score")},
        "cv": cv_out,
        "inference": inference,
        "overfitting": over_out,
        "timings": dict(stage.seconds, total=round(time.perf_counter() - t_start, 4)),
        "versions": versions(),
    }


def fit_estimator(config, estimator, X, y, w, checkpoint, offset=None):
    """``estimator.fit``, checkpointed when ``checkpoint`` is not None.

    An estimator refusing the checkpoint (a one-pass solver, chosen or
    ``"auto"``, has no iterate to save) is a configuration error of
    ``[checkpoint] every``, told apart from other errors by its type.
    """
    extra = {} if offset is None else {"offset": offset}  # only a configured offset
    if checkpoint is None:
        estimator.fit(X, y, sample_weight=w, **extra)
        return
    try:
        estimator.fit(X, y, sample_weight=w, checkpoint=checkpoint, **extra)
    except errors.ParameterError as exc:
        if exc.parameter != "checkpoint":
            raise
        raise ConfigError(config["_file"], "checkpoint.every",
                          f"{exc} Or set every = 0.") from None
    log.info("fit resumed from iteration %s", getattr(estimator, "resumed_from_", 0))


def _persist(client, X, y, w, o=None):
    """Hold the encoded data (and the offset) in cluster memory when it fits (CV and
    the diagnosis read it many times); stream it from the source every pass when it
    does not."""
    from ..engine.rows import persisted_once

    nbytes = sum(a.nbytes for a in (X, y, w, o) if a is not None)
    (X, y, w, o), _, reason = persisted_once((X, y, w, o), persist="auto", nbytes=nbytes,
                                             is_lazy=True, client=client, expected_passes=2)
    return X, y, w, o, reason


def _cv_summary(train, test, folds, scoring, source):
    """The cv section of metrics.json from per-fold train and validation scores."""
    return {"test_score": _plain(np.asarray(test)), "train_score": _plain(np.asarray(train)),
            "folds": folds, "scoring": scoring or "estimator.score", "source": source,
            "mean_test_score": float(np.mean(test)), "std_test_score": float(np.std(test)),
            "mean_train_score": float(np.mean(train))}


def _cross_validate(estimator, X, y, w, folds, cv, offset=None):
    """Per-fold scores without a diagnosis: the fold-moments pass where the estimator
    has one (one pass, fold codes made on the workers), else ``cross_validate``."""
    from ..overfitting._folds import make_splits
    from ..overfitting._scores import score_grid

    _, y_values, _ = _row_info(X, y)
    splits = make_splits(folds, len(y_values), y_values, None, _is_classifier(estimator),
                         cv["random_state"])
    train, test = (a[0] for a in score_grid(estimator, None, None, X, y, w, splits,
                                            cv["scoring"], offset))
    return _cv_summary(train, test, folds, cv["scoring"], "cross-validation")


def _row_info(X, y):
    from ..model_selection._split import row_lengths

    return row_lengths(X, y, True)


def _is_classifier(estimator):
    from sklearn.base import is_classifier

    return is_classifier(estimator)


def _diagnosis(config, estimator, X, y, w, offset=None):
    from sklearn.base import clone

    from ..overfitting import diagnose

    over, cv = config["overfitting"], config["cv"]
    kwargs = {}
    if over["train_sizes"] is not None:
        kwargs["train_sizes"] = tuple(over["train_sizes"])
    try:
        report = diagnose(clone(estimator), X, y, cv=cv["folds"], scoring=cv["scoring"],
                          sample_weight=w, param_name=over["param_name"],
                          param_range=over["param_range"], random_state=cv["random_state"],
                          offset=offset, **kwargs)
    except errors.ParameterError as exc:
        key = overfitting_key(exc, over["param_name"])
        if key is None:
            raise
        raise ConfigError(config["_file"], key, str(exc)) from None
    return report


def overfitting_key(exc, param_name):
    """The ``[overfitting]`` key a :class:`~daskfit.errors.ParameterError` of a diagnosis
    blames: its own ``param_name``/``param_range``, or ``param_name`` when the estimator
    refused a value of that parameter; ``None`` when the error is about something else."""
    if exc.parameter in ("param_name", "param_range"):
        return f"overfitting.{exc.parameter}"
    if param_name and exc.parameter == param_name:
        return "overfitting.param_name"
    return None


def _write_diagnosis(report, tmp):
    report.to_html(tmp / "overfitting.html")
    report.plot().savefig(tmp / "overfitting.png", dpi=100)
    log.info("overfitting verdict: %s (%s)", report.verdict, report.rule)
    return report.to_dict()


@contextlib.contextmanager
def data_errors(doing, source=None, frame=None, columns=None):
    """Anticipated errors become their :class:`CliError` (see ``_exit.as_cli_error``).

    With the CSV ``source`` and its ``frame``, bad values are traced to their
    file, by the error's type: daskfit's :class:`~daskfit.errors.DataError`
    (NaN or infinity found in a pass) to the file, column and row holding a
    missing or infinite value of the ``columns`` the run uses; another
    library's ``ValueError`` (Dask's dtype mismatch of a CSV read) to the
    file and column whose value is not a number. Each explanation reads the
    files only on this failure path and gives ``None`` when the files hold
    no such value; the error then keeps its own message.
    """
    try:
        yield
    except Exception as exc:
        error = None
        csv = source is not None and source.format == "csv"
        if csv and columns and isinstance(exc, errors.DataError):
            error = explain_csv_nan(source, columns)
        elif csv and isinstance(exc, ValueError) and not isinstance(exc, errors.DaskfitError):
            error = explain_csv_error(source, frame._meta)
        error = error or as_cli_error(exc, doing, client=_default_client())
        task = getattr(exc, "task", None)
        if (source is not None and isinstance(task, tuple) and len(task) == 2
                and isinstance(task[1], int) and "read" in str(task[0])
                and task[1] < len(source.files) and len(source.files) > 1):
            # One partition per input file: name the file that kills the workers.
            error = type(error)(f"Reading input file {source.files[task[1]]} "
                                f"(partition {task[1]}): {error}")
        if error is None or error is exc:
            raise
        raise error from exc


def _default_client():
    """The run's client (``daskfit.connect`` makes it the default), or None."""
    from distributed import default_client

    try:
        return default_client()
    except ValueError:   # no client: nothing ran on a cluster
        return None


def _write_json(path, obj):
    _write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _write_text(path, text):
    """Write ``text`` (redacted) to ``path`` atomically: a temporary file, then a rename."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(redact(text))
    os.replace(tmp, path)
