"""Exit codes of the ``daskfit`` command, and the errors that carry them.

A scheduler (cron, Airflow, Prefect) decides what to do from the exit code
alone: retry later (cluster unreachable, input not there yet), page someone
(bad configuration, bad data), or file a bug (internal error).
"""

from __future__ import annotations

import errno

__all__ = ["BAD_CONFIG", "BAD_DATA", "CLUSTER_UNREACHABLE", "CliError", "ConfigError",
           "DataProblem", "ENVIRONMENT", "EXIT_CODES", "EnvironmentProblem", "INTERRUPTED",
           "Interrupted", "TERMINATED", "output_errors", "INTERNAL_ERROR", "InputMissing", "MISSING_INPUT", "OK",
           "Unreachable", "UsageProblem", "as_cli_error"]

#: Success, also when the run already exists and there is nothing to do.
OK = 0
#: A bug in daskfit or an environment problem nobody anticipated; the log has the traceback.
INTERNAL_ERROR = 1
#: The configuration file or the command line is wrong (click's usage errors also exit 2).
BAD_CONFIG = 2
#: The input data (or model) is not where the configuration says: often "not yet" — retry.
MISSING_INPUT = 3
#: The data is there but unusable: NaN/inf, unreadable files, wrong types, a divergent fit.
BAD_DATA = 4
#: The Dask scheduler could not be reached within the timeout, or was lost mid-run: retry later.
CLUSTER_UNREACHABLE = 5
#: The machine, not the data: disk full, quota, the output not writable (permissions, a
#: read-only file system, a file where the output directory should be), or workers killed
#: for exceeding their memory limit (the infrastructure, not a bad chunk). Fix it, retry.
ENVIRONMENT = 6
#: Ctrl-C (SIGINT): the shell's 128 + signal number; the failed log is written.
INTERRUPTED = 130
#: SIGTERM (an orchestrator stopping the run): 128 + 15; the failed log is written.
TERMINATED = 143

#: Each exit code and what it means, in words (``daskfit --help`` prints them).
EXIT_CODES = {
    OK: "success (also: the run already exists, nothing to do)",
    INTERNAL_ERROR: "internal error (the log has the traceback)",
    BAD_CONFIG: "bad configuration or usage (the message names the key and the file)",
    MISSING_INPUT: "missing input (data or model not found)",
    BAD_DATA: "bad data (unreadable, NaN/inf, wrong types, a chunk that crashes every "
              "worker, a divergent fit)",
    CLUSTER_UNREACHABLE: "cluster unreachable, or the scheduler lost mid-run",
    ENVIRONMENT: "environment: disk full, the output not writable, or workers killed for "
                 "exceeding their memory limit",
    INTERRUPTED: "interrupted (Ctrl-C); the failed log is written, nothing else is left",
    TERMINATED: "terminated (SIGTERM); the failed log is written, nothing else is left",
}

#: errno values that are the machine's fault wherever they happen.
ENVIRONMENT_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS")
                               if hasattr(errno, name))


class CliError(Exception):
    """An error the command reports in one line and exits with ``code``."""

    code = INTERNAL_ERROR


class ConfigError(CliError):
    """A bad configuration value: names the file and the key."""

    code = BAD_CONFIG

    def __init__(self, file, key, message):
        self.file, self.key = file, key
        super().__init__(f"{file}: [{key}] {message}" if key else f"{file}: {message}")


class UsageProblem(CliError):
    """An option that does not fit the rest of the command (``--proba`` on a regressor)."""

    code = BAD_CONFIG


class InputMissing(CliError):
    code = MISSING_INPUT


class DataProblem(CliError):
    code = BAD_DATA


class Unreachable(CliError):
    code = CLUSTER_UNREACHABLE


class EnvironmentProblem(CliError):
    """The machine is the problem (disk full, output not writable), not the data."""

    code = ENVIRONMENT


class Interrupted(BaseException):
    """SIGTERM, raised in the main thread so a run cleans up as on Ctrl-C (a
    BaseException: no ``except Exception`` on the way may swallow it)."""


def exit_codes_help():
    """The table of exit codes, for ``--help`` and the README."""
    return "\n".join(f"  {code}  {text}" for code, text in sorted(EXIT_CODES.items()))


#: The scheduler's event topic of the nanny's memory manager restarting a worker.
MEMORY_RESTART_TOPIC = "worker-restart-memory"
#: Seconds to wait for the scheduler's event log while explaining a failure.
EVENTS_TIMEOUT = 5


def memory_restarts(exc, client):
    """The memory-limit restarts of the worker that last died running the task ``exc``
    (a ``KilledWorker``, or a ``WorkerCrashError`` raised while handling one) names.

    A nanny that kills its worker for exceeding the memory limit logs a
    ``worker-restart-memory`` event on the scheduler: then the
    infrastructure, not the chunk, killed the worker. Returns the events'
    messages (empty when there is none, no client, or the scheduler does not
    answer within :data:`EVENTS_TIMEOUT` seconds).
    """
    from distributed import KilledWorker

    killed = exc if isinstance(exc, KilledWorker) else exc.__context__
    if client is None or not isinstance(killed, KilledWorker):
        return []
    address = getattr(killed.last_worker, "address", None)
    try:
        events = client.sync(client.scheduler.events, topic=MEMORY_RESTART_TOPIC,
                             callback_timeout=EVENTS_TIMEOUT)
    except (OSError, TimeoutError):   # the scheduler is gone too: nothing more to learn
        return []
    return [msg for _, msg in events if isinstance(msg, dict) and msg.get("worker") == address]


def as_cli_error(exc, doing="", client=None):
    """The one place that maps an exception to the :class:`CliError` (and exit code) it means.

    Decided by the exception's type (``daskfit.errors``, Dask's and the
    built-ins), never by its text. Returns ``None`` for exceptions that are
    not anticipated: those are internal errors (exit 1, traceback). Order
    matters: ``ClusterUnreachable`` and a closed connection are ``OSError`` s,
    but the cluster's fault, not the data's; a ``CheckpointMismatch``, a
    ``ParameterError`` and a ``daskfit.errors.ConfigError`` are
    ``ValueError`` s, but their fix is in the configuration (for a checkpoint:
    run without ``--resume``). With the run's ``client``, workers that died
    from their memory limit (:func:`memory_restarts`) are the environment's
    fault, not a chunk's.
    """
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    from .. import errors
    from ..engine.rows import WorkerCrashError
    from ..io._persistence import ModelFormatError

    while_ = f" while {doing}" if doing else ""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, (errors.ClusterUnreachable, CommClosedError)):
        return Unreachable(f"Lost or could not reach the cluster{while_}: {exc}")
    if isinstance(exc, CancelledError):   # distributed's FutureCancelledError
        return Unreachable(f"The scheduler cancelled this run's computation{while_} (it was "
                           f"restarted, lost, or closed this client): {exc}. Retry once the "
                           "cluster is back.")
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return EnvironmentProblem(f"The machine refused a write{while_}: {exc}. Free space "
                                  "or fix the file system, then run again.")
    if isinstance(exc, errors.CheckpointError):
        return UsageProblem(f"Refusing to resume{while_}: {exc} Run again without --resume to "
                            "start this run over (its checkpoints are then cleared).")
    if isinstance(exc, errors.ParameterError):
        return UsageProblem(f"Bad value of the parameter {exc.parameter!r}{while_}: {exc}")
    if isinstance(exc, errors.ConfigError):
        return UsageProblem(f"Bad setting{while_}: {exc}")
    if isinstance(exc, (WorkerCrashError, KilledWorker)):
        restarts = memory_restarts(exc, client)
        if restarts:
            limit = f", at {restarts[-1]['rss'] / 2**20:.0f} MiB" if "rss" in restarts[-1] else ""
            return EnvironmentProblem(
                f"Workers were killed for exceeding their memory limit{while_} (worker "
                f"{restarts[-1].get('worker')} restarted by its nanny{limit}), not by bad "
                "data: the task needs more memory than a worker has. Give the workers more "
                "memory ([cluster] memory_limit), fewer threads each, or use smaller input "
                "files.")
    if isinstance(exc, WorkerCrashError):
        return DataProblem(f"A chunk crashed the workers{while_}: {exc}")
    if isinstance(exc, KilledWorker):   # outside the engine: reading, encoding, scoring
        allowed = getattr(exc, "allowed_failures", None)
        # The scheduler gives up once a task has killed allowed_failures + 1 workers.
        died = allowed + 1 if isinstance(allowed, int) else "several"
        return DataProblem(
            f"Task {getattr(exc, 'task', '?')!r} crashed {died} worker process(es) in a "
            f"row{while_}, so "
            "Dask gave up on it and nothing was written. The data it reads (or the reader) "
            "kills the process: out of memory, or a crash in native code.")
    if isinstance(exc, ModelFormatError):
        return DataProblem(str(exc))
    if isinstance(exc, FileNotFoundError):
        return InputMissing(f"Input disappeared{while_}: {exc}" if doing else str(exc))
    if isinstance(exc, (ValueError, TypeError, FloatingPointError, OSError, KeyError)):
        return DataProblem(f"Bad data{while_}: {type(exc).__name__}: {exc}")
    return None


class output_errors:   # noqa: N801 (a context manager used like a function)
    """Any ``OSError`` while writing the output (``where``) is the environment's: exit 6.

    A full disk, a quota, a read-only file system, missing permissions or a
    file where a directory should be: none of them is bad data or missing
    input, and each is fixed on the machine, not in the data or the
    configuration.
    """

    def __init__(self, where):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, OSError):
            raise EnvironmentProblem(
                f"Cannot write the output {self.where}: {type(exc).__name__}: {exc}. Free "
                "space, fix the permissions or choose another output.dir, then run "
                "again.") from exc
        return False
