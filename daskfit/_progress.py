"""Progress of long operations: scikit-learn's ``verbose``, a notebook bar, the log.

Every public long operation (an estimator's ``fit``, the CV estimators'
``fit``, ``cross_validate``, ``diagnose``) runs inside :func:`reporting`,
which installs a :class:`Reporter` for the current context. The engines tell
it about each finished pass (:func:`pass_done`, from the row and column
engines' pass logs) and the solvers about each recorded iteration
(:func:`iteration_done`, from ``solvers._result.record``), so no solver and
no estimator formats a progress line of its own.

What the reporter does with them:

* ``verbose >= 1``: one line per pass on stdout (``print``, as
  scikit-learn's linear models, SGD and ``GridSearchCV`` print theirs: a
  ``verbose`` user expects output without configuring logging), with the
  pass's label and seconds and, when a solver recorded an iteration right
  after the pass, the loss and gradient norm of that iteration. A line is
  printed when the next event arrives (the iteration, the next pass or the
  end of the call), so the count of pass lines equals ``n_passes_``.
  ``verbose >= 2`` adds a line for every iteration that no pass carried
  (client-side iterations, such as coordinate descent on a Gram matrix).
* In a Jupyter kernel with ``verbose >= 1``, a ``tqdm`` bar counting passes
  (``tqdm.notebook`` when ipywidgets is installed, else tqdm's text bar on
  stdout); it only counts, so results and pass counts never change.
* Always: the level-1 lines go to the ``"daskfit.progress"`` logger at INFO
  (silent unless logging is configured; the CLI's run log and ``-v`` show
  them), the level-2 lines at DEBUG.

Nested calls (the fits inside ``cross_validate`` or ``diagnose``) report at
``max(their own verbose, outer verbose - 1)``: ``cross_validate(verbose=1)``
prints a line per fold, ``verbose=2`` also each fold fit's passes.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import logging
import numbers
import sys
import time

import numpy as np

from .errors import ParameterError

__all__ = ["Reporter", "check_verbose", "in_notebook", "iteration_done", "make_bar",
           "pass_done", "PassLog", "reported", "reporting", "say", "step",
           "valid_verbose"]

log = logging.getLogger("daskfit.progress")

#: Seconds between redraws of the notebook bar: passes of a small fit finish faster than
#: a notebook can render, and every redraw of the text bar is an output kept in the file.
BAR_INTERVAL = 0.5

_CURRENT = contextvars.ContextVar("daskfit_progress", default=None)


def valid_verbose(value):
    """True for scikit-learn's ``verbose`` values: an int >= 0 or a bool."""
    return isinstance(value, (numbers.Integral, np.bool_)) and value >= 0


def check_verbose(value, owner):
    """Raise :class:`~daskfit.errors.ParameterError` unless ``value`` is a valid ``verbose``."""
    if not valid_verbose(value):
        raise ParameterError(f"The 'verbose' parameter of {owner} must be an int >= 0 (0: "
                             f"silent, 1: a line per pass or fold, 2: more); got {value!r}.",
                             parameter="verbose", value=value)


def in_notebook():
    """True inside a Jupyter (IPython) kernel; a kernel has always imported IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def make_bar(owner):
    """A ``tqdm`` bar counting passes: the widget when ipywidgets is there, else text."""
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm

        return tqdm(desc=owner, unit=" pass", mininterval=BAR_INTERVAL)
    from tqdm.std import tqdm

    # stdout, not tqdm's stderr: Jupyter shows stderr as an alarm.
    return tqdm(desc=owner, unit=" pass", file=sys.stdout, dynamic_ncols=True,
                mininterval=BAR_INTERVAL)


class Reporter:
    """The progress of one public call (see the module docstring).

    Parameters
    ----------
    owner : str
        What the lines name (``"LogisticRegression"``, ``"cross_validate"``).
    level : int
        The effective verbosity.
    bar : tqdm or None
        The notebook bar, shared with nested reporters.
    """

    def __init__(self, owner, level, bar=None):
        self.owner, self.level, self.bar = owner, int(level), bar
        self.passes = 0
        self._pending = None  # (number, label, seconds) of the pass not yet reported

    def on_pass(self, label, seconds):
        self.flush()
        self.passes += 1
        self._pending = (self.passes, label, float(seconds))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"{label} {seconds:.2f} s", refresh=False)

    def on_iteration(self, entry):
        """A solver's history entry: it completes the pending pass's line, or is a line."""
        numbers_ = _loss_and_gradient(entry)
        if self._pending is not None:
            self.flush(numbers_)
            return
        self.emit(f"{self.owner} iteration {entry.get('iter')}{numbers_}", detail=True)

    def flush(self, extra=""):
        """Report the pending pass (``extra``: its iteration's loss and gradient norm)."""
        if self._pending is None:
            return
        number, label, seconds = self._pending
        self._pending = None
        self.emit(f"{self.owner} pass {number} ({label}): {seconds:.3f} s{extra}")

    def emit(self, text, *, detail=False):
        """One line: to the log always, to stdout at the reporter's level."""
        log.log(logging.DEBUG if detail else logging.INFO, text)
        if self.level >= (2 if detail else 1):
            line = f"[daskfit] {text}"
            if self.bar is not None:
                type(self.bar).write(line, file=sys.stdout)  # above the bar, not through it
            else:
                print(line, flush=True)


def _loss_and_gradient(entry):
    parts = []
    for key, name in (("objective", "objective"), ("grad_norm", "gradient norm")):
        value = entry.get(key)
        if value is not None and np.isfinite(value):
            parts.append(f"{name} {value:.6g}")
    return (", " + ", ".join(parts)) if parts else ""


@contextlib.contextmanager
def reporting(verbose, owner):
    """Report the passes, iterations and steps of the call inside (see the module docstring).

    Yields the :class:`Reporter`. Raises
    :class:`~daskfit.errors.ParameterError` for an invalid ``verbose``.
    """
    check_verbose(verbose, owner)
    parent = _CURRENT.get()
    level = int(verbose) if parent is None else max(int(verbose), parent.level - 1)
    bar = None if parent is None else parent.bar
    own_bar = bar is None and level >= 1 and in_notebook()
    if own_bar:
        bar = make_bar(owner)
    reporter = Reporter(owner, level, bar)
    token = _CURRENT.set(reporter)
    try:
        yield reporter
    finally:
        reporter.flush()  # the last pass, also when the call failed after it
        _CURRENT.reset(token)
        if own_bar:
            bar.close()


def reported(method):
    """Decorate a ``fit`` method: run it inside :func:`reporting` at ``self.verbose``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with reporting(self.verbose, type(self).__name__):
            return method(self, *args, **kwargs)

    return wrapper


class PassLog(list):
    """An engine's ``pass_log``: a list of ``(label, ..., seconds)`` that reports each pass.

    The one hook of the engines: every place that counts a pass appends here.
    """

    def append(self, entry):
        super().append(entry)
        pass_done(entry[0], entry[-1])

    def note(self, label, seconds):
        """Log a step that reads no full pass (a warm start's sample fit): listed in
        ``pass_log_`` and reported as a line of its own, never counted as a pass."""
        super().append((label, seconds))
        reporter = _CURRENT.get()
        if reporter is not None:
            reporter.flush()
            reporter.emit(f"{reporter.owner} {label} (not a pass): {seconds:.3f} s")


def pass_done(label, seconds):
    """An engine finished a pass (or a model-parallel round)."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.on_pass(label, seconds)


def iteration_done(entry):
    """A solver recorded an iteration (``entry``: its history dict)."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.on_iteration(entry)


def say(text, *, detail=False):
    """A line of the current call's own (a fold, a stage), after any pending pass."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.flush()
        reporter.emit(text, detail=detail)


@contextlib.contextmanager
def step(text):
    """Time the block and report ``"<text>: <seconds> s"`` when it ends."""
    started = time.perf_counter()
    yield
    say(f"{text}: {time.perf_counter() - started:.2f} s")
