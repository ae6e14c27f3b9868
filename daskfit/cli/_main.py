"""The ``daskfit`` command (click): run, check, schema, predict, make-data, plan."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback

import click

from ._config import schema_help
from ._redact import RedactFilter, redact
# BAD_CONFIG (2) is also the code of click's own usage errors.
from ._exit import (INTERNAL_ERROR, INTERRUPTED, TERMINATED, CliError, EnvironmentProblem,
                    Interrupted, Unreachable, as_cli_error, exit_codes_help)

__all__ = ["cli", "main"]

#: ``--set`` of ``run`` and ``check`` (the environment's ``DASKFIT_*`` overrides come first).
_set_option = click.option(
    "--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE",
    help="Override a key of CONFIG (repeatable), e.g. --set model.params.alpha=0.5; the value "
         "is read as TOML, else as a string. Precedence: the file < DASKFIT_SECTION__KEY "
         "environment variables (__ for each dot) < --set.")


@click.group(epilog="\b\n" + "Exit codes:\n" + exit_codes_help(),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="daskfit")
def cli():
    """daskfit: fit linear models on data larger than memory, with Dask.

    \b
    daskfit make-data data/reg --rows 1000000      synthetic Parquet, known coefficients
    daskfit check pipelines/regression.toml        every problem of the file at once
    daskfit run pipelines/regression.toml          fit, cross-validate, diagnose, save
    daskfit predict runs/NAME-ID --input data/reg --output preds.parquet
    daskfit plan pipelines/regression.toml         the planner's choice, no fitting
    """


@cli.command(epilog="\b\nConfiguration keys:\n" + schema_help() + "\n\n\b\nExit codes:\n"
             + exit_codes_help())
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--scheduler", metavar="ADDRESS",
              help="Attach to this Dask scheduler (overrides [cluster] address).")
@click.option("--force", is_flag=True,
              help="Run again even if this run id's directory exists (it is replaced).")
@click.option("--resume", is_flag=True,
              help="Continue a killed run from its last checkpoint ([checkpoint] every); "
                   "without it a run starts over and clears stale checkpoints.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show the stages on stderr: a bar at a terminal, one line per finished "
                   "stage otherwise (cron, Airflow, a log file).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON summary on stdout (status, run_dir, scores, verdict; for a "
                   "failure: exit_code, error); everything else goes to stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Print errors only.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also print the run log's INFO lines (stages, cluster, solver) on stderr.")
@_set_option
def run(config, scheduler, force, resume, progress, as_json, quiet, verbose, sets):
    """Fit the pipeline of CONFIG (TOML) and write a run directory.

    Reads the data, one-hot encodes and standardises it, fits the estimator,
    cross-validates, diagnoses overfitting and writes OUTPUT_DIR/NAME-RUNID
    with model/ (JSON + .npz), metrics.json, overfitting.html/.png, run.log
    and a copy of the configuration. RUNID hashes the configuration and the
    input files' names, sizes and stamps: an unchanged run is not repeated.
    The Dask dashboard link is printed.
    """
    from ._overrides import Overrides
    from ._report import Report
    from ._run import run as run_pipeline

    overrides = Overrides.collect(sets)
    if quiet and verbose:
        raise click.UsageError("Give -q or -v, not both.")
    _STATE["json"] = as_json
    report = Report(click.echo, progress=progress, verbosity=-1 if quiet else int(verbose),
                    as_json=as_json)
    with _info_on_stderr(verbose):
        run_pipeline(config, scheduler=scheduler, force=force, progress=progress,
                     echo=click.echo, resume=resume, report=report, overrides=overrides)


@cli.command(epilog="\b\nExit codes:\n  0  the configuration is valid\n  2  it is not (every "
             "problem is listed, each as FILE:LINE: [key] message)")
@click.argument("config", type=click.Path(dir_okay=False))
@_set_option
def check(config, sets):
    """Check CONFIG (TOML) as `daskfit run` would, reporting every problem at once.

    Unknown sections and keys, types, ranges, conflicting keys, the
    estimator and each of its parameters, solver options, the scorer and the
    validation curve: each problem with its file, line and key. Reads no
    data and starts no cluster. Prints what the run would do when valid.
    """
    from ._overrides import Overrides
    from ._validate import check_config, describe

    checked = check_config(config, Overrides.collect(sets))
    click.echo(describe(checked, config))


@cli.command()
def schema():
    """Print the JSON Schema of a pipeline file (for editors; daskfit/cli/pipeline.schema.json)."""
    from ._schema import schema_text

    click.echo(schema_text(), nl=False)


@cli.command()
@click.argument("model", type=click.Path())  # a run directory or its model/
@click.option("--input", "input_", required=True, metavar="PATH",
              help="Parquet (directory or glob) or CSV to score; local or fsspec URL.")
@click.option("--output", required=True, metavar="PATH",
              help="Parquet directory to write (one file per input partition).")
@click.option("--keep", multiple=True, metavar="COLUMN",
              help="Input column to copy to the output (repeatable), e.g. an id.")
@click.option("--proba", is_flag=True, help="Also write class probabilities (classifiers).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Attach to this Dask scheduler (default: a loopback LocalCluster).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show Dask's progress bar.")
def predict(model, input_, output, keep, proba, scheduler, progress):
    """Score data with MODEL (a run directory, or its model/), out of core, into Parquet."""
    from ._predict import load_for_predict, predict as score
    from ._run import connect_cluster

    loaded = load_for_predict(model, proba)   # a bad model or option: no cluster started

    config = {"cluster": {"address": None, "timeout": "10s", "n_workers": None,
                          "threads_per_worker": None, "memory_limit": None,
                          "processes": True, "dashboard_address": "127.0.0.1:8787"}}
    client, cluster = connect_cluster(config, scheduler)
    try:
        # daskfit.connect printed the dashboard link.
        n = score(loaded, input_, output, keep=keep, proba=proba, client=client,
                  progress=progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    click.echo(f"Wrote {n} partitions to {output}")


@cli.command("make-data")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--rows", type=click.IntRange(min=1), default=None,
              help="Rows to write (default 100,000 unless --size is given).")
@click.option("--size", metavar="BYTES",
              help="Approximate size of the features instead of --rows, e.g. 300MB, 2GiB.")
@click.option("--features", type=click.IntRange(min=1), default=20, show_default=True,
              help="Numeric features x0..x{n-1}.")
@click.option("--task", type=click.Choice(["regression", "classification"]),
              default="regression", show_default=True, help="Kind of target y.")
@click.option("--segments", type=click.IntRange(0, 8), default=3, show_default=True,
              help="Levels of the categorical column 'segment' (0: none).")
@click.option("--noise", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Noise standard deviation (regression).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--partition-rows", type=click.IntRange(min=1), default=None,
              help="Rows per Parquet file (default: about 32 MiB of features).")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True, help="Feature dtype.")
@click.option("--sklearn-dataset", type=click.Choice(["breast_cancer", "diabetes", "iris",
                                                      "wine"]),
              help="Instead: export this dataset bundled with scikit-learn (target: 'target').")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show Dask's progress bar.")
def make_data_cmd(path, rows, size, features, task, segments, noise, seed, partition_rows,
                  dtype, sklearn_dataset, progress):
    """Write a synthetic Parquet dataset with known coefficients to PATH.

    The truth (coefficients in the features' units, intercept, segment
    effects) is written to PATH/_daskfit_truth.json.
    """
    import json

    from dask.utils import parse_bytes

    from ._make_data import export_sklearn_dataset, make_data

    try:
        if sklearn_dataset:
            info = export_sklearn_dataset(sklearn_dataset, path)
            click.echo(f"Wrote scikit-learn's {sklearn_dataset} ({info['rows']} rows) to {path}")
            return
        if rows is not None and size is not None:
            raise click.UsageError("Give --rows or --size, not both.")
        if size is not None:
            try:
                nbytes = parse_bytes(size)
            except (ValueError, TypeError):
                raise click.BadParameter(f"{size!r} is not a size like 300MB",
                                         param_hint="--size") from None
            rows = max(1, nbytes // (features * (4 if dtype == "float32" else 8)))
        truth = make_data(path, rows=rows or 100_000, features=features, task=task,
                          segments=segments, noise=noise, seed=seed,
                          partition_rows=partition_rows, dtype=dtype, progress=progress)
    except FileExistsError as exc:
        raise click.UsageError(str(exc)) from None
    if truth.get("existed"):
        click.echo(f"{path} already holds this dataset; nothing to do.")
        return
    click.echo(f"Wrote {truth['rows']} rows x {features} features ({task}) in "
               f"{truth['n_partitions']} files to {path}")
    click.echo("truth: " + json.dumps({"intercept": round(truth["intercept"], 6),
                                       "coef[:3]": [round(c, 6) for c in truth["coef"][:3]]}))


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--scheduler", metavar="ADDRESS",
              help="Attach to this Dask scheduler (overrides [cluster] address).")
def plan(config, scheduler):
    """Print the planner's choice (strategy, solver, passes, memory) for CONFIG; no fit.

    Reads the data once for the categories and row counts.
    """
    from ._predict import plan_run

    plan_run(config, scheduler=scheduler, echo=click.echo)


#: What the command being run asked for that main() needs when it reports a failure.
_STATE = {"json": False}


@contextlib.contextmanager
def _info_on_stderr(enabled):
    """With -v, daskfit's INFO records (the run log's lines) on stderr too."""
    if not enabled:
        yield
        return
    handler = _CurrentStderr()
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter())
    handler.addFilter(lambda record: record.levelno < logging.WARNING)  # root prints those
    logger = logging.getLogger("daskfit")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises :class:`Interrupted` in the main thread, so a run cleans up (failed
    log kept, temporary directory removed) as it does on Ctrl-C, then exits 143."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Interrupted("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(code, message):
    """Report a failure on stderr (and, with --json, as the JSON summary) and exit."""
    click.echo(redact(message), err=True)
    if _STATE["json"]:
        from ._report import failure_json

        click.echo(redact(failure_json(code, message)))
    sys.exit(code)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (not the stream it found when created), so
    in-process callers that swap stderr (tests, notebooks) never hit a closed stream."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def main(argv=None):
    """Entry point of the ``daskfit`` console script; returns (exits with) the exit code.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after ``daskfit`` (``["check", "pipeline.toml"]``);
        ``None`` reads ``sys.argv``.
    """
    # stderr: warnings and errors only (the run's log file has the INFO lines).
    # The run's stage lines and tracebacks go to its run.log (see _run), not here.
    root = logging.getLogger()
    if not any(getattr(h, "_daskfit_cli", False) for h in root.handlers):
        stderr = _CurrentStderr()
        stderr._daskfit_cli = True
        stderr.setLevel(logging.WARNING)
        stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stderr.addFilter(lambda record: not record.name.startswith("daskfit.run"))
        stderr.addFilter(RedactFilter())
        root.addHandler(stderr)
    _STATE["json"] = False
    try:
        with _sigterm_raises():
            cli.main(args=argv, prog_name="daskfit", standalone_mode=False)
    except click.exceptions.Exit as exc:      # --help, --version
        sys.exit(exc.exit_code)
    except click.ClickException as exc:       # usage errors: exit 2, as click does
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):  # click turns Ctrl-C at a prompt into Abort
        _fail(INTERRUPTED, "daskfit: interrupted (Ctrl-C)")
    except Interrupted:
        _fail(TERMINATED, "daskfit: terminated (SIGTERM)")
    except Exception as exc:
        # Every anticipated exception maps to its exit code in one place (_exit.as_cli_error).
        error = as_cli_error(exc) if not isinstance(exc, CliError) else exc
        if error is not None and (isinstance(exc, (CliError, FileNotFoundError))
                                  or isinstance(error, (EnvironmentProblem, Unreachable))
                                  or type(exc).__module__.startswith(("daskfit", "distributed"))):
            _fail(error.code, f"daskfit: error: {error}")
        _fail(INTERNAL_ERROR, "daskfit: internal error (please report it):\n"
              + traceback.format_exc())
    sys.exit(0)

