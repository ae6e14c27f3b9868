"""What ``daskfit run`` tells its caller: a person at a terminal, or a scheduler.

At a terminal (stderr is a TTY) the stages drive a progress bar. Under cron,
Airflow or systemd (stderr is a file or a pipe) a bar is noise, so each
stage prints one line when it ends (``daskfit run: [4/8] fit done in
1.52 s``). Either way the run ends with a summary on stdout: run directory,
scores, overfitting verdict. ``--json`` makes stdout exactly one JSON
object (also for a failed run, with its exit code), and sends everything
else, the dashboard link included, to stderr; ``-q`` prints errors only;
``-v`` adds the run log's INFO lines to stderr.

Every run directory also holds ``report.html`` (:func:`run_report_html`):
one self-contained page with the run's scores, the overfitting verdict (and
a link to ``overfitting.html`` when the diagnosis ran) and the fit's
coefficient table from ``metrics.json``'s ``inference`` section (coef,
std_err, z or t, p_value, CI), or why there is none.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import sys

__all__ = ["Report", "inference_html", "run_report_html"]


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


# ------------------------------------------------------------------ report.html

#: Fit statistics shown under the coefficient table, when the record has them.
_INFERENCE_FACTS = ("nobs", "df_resid", "deviance", "null_deviance", "dispersion", "aic", "bic")


def inference_html(record):
    """The coefficient table of ``metrics.json``'s ``inference`` section as HTML.

    pandas' ``DataFrame.to_html`` with escaping on (row names are the
    user's column names), numbers to 6 significant digits, missing values
    (JSON ``null``: a non-finite statistic) as ``NaN``. A record without a
    table (an L1 penalty, the multinomial model, a singular design) gives
    its ``skipped`` reason instead.
    """
    if not record:
        return ""
    if "table" not in record:
        reason = record.get("skipped", "no coefficient table was computed")
        return (f"<h2>Coefficients</h2><p class='daskfit-inference-skipped'>No coefficient "
                f"table: {html.escape(str(reason))}</p>")
    import pandas as pd

    table = pd.DataFrame.from_dict(record["table"], orient="index").astype(float)
    body = table.to_html(escape=True, float_format=lambda v: f"{v:.6g}", na_rep="NaN",
                         classes="daskfit-inference", border=0)
    level = 100 * (1 - float(record.get("alpha", 0.05)))
    facts = ", ".join(f"{name} {record[name]:.6g}" for name in _INFERENCE_FACTS
                      if isinstance(record.get(name), (int, float)))
    return (f"<h2>Coefficients</h2><p>{html.escape(str(record.get('cov_type', '')))} "
            f"covariance, {level:g}% confidence intervals, {record.get('passes', 'n/a')} "
            f"extra pass(es).</p>{body}<p><small>{html.escape(facts)}</small></p>")


def run_report_html(metrics):
    """``report.html`` of a run: scores, verdict and the coefficient table, from ``metrics``."""
    scores, model = metrics.get("scores", {}), metrics.get("model", {})
    over = metrics.get("overfitting", {})
    name = html.escape(str(metrics.get("name", "")))
    if "verdict" in over:
        verdict = (f"<b>{html.escape(str(over['verdict']))}</b> &mdash; "
                   f"{html.escape(str(over.get('rule', '')))} "
                   "(<a href='overfitting.html'>overfitting diagnosis</a>)")
    else:
        verdict = f"not diagnosed ({html.escape(str(over.get('skipped', 'n/a')))})"
    rows = [("estimator", model.get("estimator")), ("solver", model.get("solver")),
            ("passes over the data", model.get("n_passes")),
            ("rows", metrics.get("input", {}).get("rows")),
            ("train score", _fmt(scores.get("train"))),
            ("mean cross-validation score", _fmt(scores.get("cv_test_mean")))]
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                      for k, v in rows)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>daskfit run {name}</title></head><body>"
            f"<h1>daskfit run {name} ({html.escape(str(metrics.get('run_id', '')))})</h1>"
            f"<table class='daskfit-run'>{summary}</table>"
            f"<p>Overfitting: {verdict}</p>"
            f"{inference_html(metrics.get('inference'))}</body></html>\n")
