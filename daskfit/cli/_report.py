"""What ``daskfit run`` tells its caller: a person at a terminal, or a scheduler.

At a terminal (stderr is a TTY) the stages drive a progress bar. Under cron,
Airflow or systemd (stderr is a file or a pipe) a bar is noise, so each
stage prints one line when it ends (``daskfit run: [4/8] fit done in
1.52 s``). Either way the run ends with a summary on stdout: run directory,
scores, overfitting verdict. ``--json`` makes stdout exactly one JSON
object (also for a failed run, with its exit code), and sends everything
else, the dashboard link included, to stderr; ``-q`` prints errors only;
``-v`` adds the run log's INFO lines to stderr.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

__all__ = ["Report"]


class Report:
    """How one command reports: ``verbosity`` -1 (``-q``), 0 or 1 (``-v``), ``as_json``.

    Parameters
    ----------
    echo : callable
        ``click.echo``-like: ``echo(text, err=False)``.
    progress : bool
        A bar (at a terminal) or stage lines (elsewhere); ``--no-progress``
        turns both off.
    verbosity : int
    as_json : bool
    """

    def __init__(self, echo, progress=True, verbosity=0, as_json=False):
        self.echo, self.progress = echo, progress
        self.verbosity, self.as_json = verbosity, as_json

    # ----------------------------------------------------------- stages
    @contextlib.contextmanager
    def stages(self, names):
        """A bar-like object for :class:`daskfit.cli._run._Stages` (or None)."""
        if self.verbosity < 0 or not (self.progress or self.verbosity > 0):
            yield None
            return
        if sys.stderr.isatty() and self.verbosity == 0:
            import click

            with click.progressbar(length=len(names), label="daskfit run", file=sys.stderr,
                                   item_show_func=lambda s: s or "") as bar:
                yield bar
            return
        yield _StageLines(self.echo, len(names))

    def link_output(self):
        """Where ``daskfit.connect``'s dashboard line goes: stdout, stderr (--json) or the
        run log only (-q)."""
        if self.verbosity < 0:
            return contextlib.redirect_stdout(io.StringIO())
        if self.as_json:
            return contextlib.redirect_stdout(sys.stderr)
        return contextlib.nullcontext()

    def note(self, text):
        """Something the caller should know that is not an error (stderr; not with -q)."""
        if self.verbosity >= 0:
            self.echo(f"daskfit run: {text}", err=True)

    # ---------------------------------------------------------- endings
    def already_complete(self, final):
        self._finish({"status": "already complete", "run_dir": str(final)},
                     f"Run {final.name} already complete ({final}; its manifest checksums "
                     "verified); nothing to do. Use --force to run it again.")

    def complete(self, final, metrics):
        scores, over = metrics.get("scores", {}), metrics.get("overfitting", {})
        summary = {"status": "complete", "run_dir": str(final), "run_id": metrics.get("run_id"),
                   "scores": scores, "verdict": over.get("verdict"),
                   "solver": metrics.get("model", {}).get("solver"),
                   "seconds": metrics.get("timings", {}).get("total")}
        cv = scores.get("cv_test_mean")
        text = (f"Run directory: {final}\n"
                f"score: train {_fmt(scores.get('train'))}, cv {_fmt(cv)}; "
                f"overfitting verdict: {over.get('verdict') or over.get('skipped', 'n/a')}; "
                f"{_fmt(summary['seconds'])} s")
        self._finish(summary, text)

    def failed(self, failed_log):
        if not self.as_json:   # with --json the failure is in the JSON summary
            self.echo(f"Run failed; log: {failed_log}", err=True)

    def _finish(self, summary, text):
        if self.as_json:
            self.echo(json.dumps(summary, default=str))
        elif self.verbosity >= 0:
            self.echo(text)


def _fmt(value):
    return "n/a" if value is None else f"{value:.4g}"


class _StageLines:
    """One line per finished stage on stderr: what a log file should hold, not a bar."""

    def __init__(self, echo, total):
        self.echo, self.total, self.done = echo, total, 0

    def update(self, n, item):
        self.done += n
        self.echo(f"daskfit run: [{self.done}/{self.total}] {item}", err=True)


def failure_json(code, message):
    """The ``--json`` summary of a run that failed with exit ``code``."""
    return json.dumps({"status": "failed", "exit_code": code, "error": message})
