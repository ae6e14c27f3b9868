"""The one result object every solver returns, and option checking."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._progress import iteration_done

__all__ = ["FitResult", "append_entry", "check_options", "record"]


# A result: read, not built by users; its fields are its documented Attributes
# (numpydoc's PR01 would want them as constructor Parameters).
@dataclass
class FitResult:  # numpydoc ignore=PR01
    """What a solver found and what it cost.

    Attributes
    ----------
    theta : ndarray of shape (n_params,)
        The packed parameter vector (:mod:`daskfit.model.layout`): per class
        block the coefficients, then the intercept. ``coef`` is a read-only
        alias kept for code written before the name was unified.
    loss : float
        Objective value at ``theta`` (mean loss + penalty).
    grad_norm : float
        Max-abs of the (projected or proximal) gradient at ``theta``;
        ``nan`` for direct solvers that never form it.
    n_iter : int
        Iterations of the solver (0 for direct solves).
    passes : int
        Passes over the data, the first (validating) one included.
    converged : bool
    message : str
        Why it stopped, in words.
    history : list of dict
        One entry per iteration: ``iter``, ``objective``, ``grad_norm``,
        ``passes``, ``bytes`` (communicated so far).
    solver : str
        The solver that ran (``"normal"``, ``"lbfgs"``...), as it names itself.
    fallback : str
        When the solver had to change method mid-fit (the normal equations'
        QR pass on an ill-conditioned Gram matrix): what it did, why, and the
        extra passes; empty otherwise. Appended to ``solver_reason_``.
    classes : ndarray or None
        The class labels the first pass found (classification), set by
        ``solve``.
    persist_reason : str
        Why the data was (or was not) read into memory once, set by ``solve``.
    persisted : bool
        Whether it was (False: streamed from its source every pass), set by
        ``solve``.
    pass_log : list of tuple
        One ``(label, ..., seconds)`` entry per pass, set by ``solve``.
    coef_blocks : dask Array or None
        Model-parallel solvers: the fitted coefficients (intercept excluded)
        as a Dask array chunked like ``X``'s columns; ``None`` otherwise.
    rounds : int
        Model-parallel solvers: the rounds (graphs) run; 0 otherwise.
    """

    theta: np.ndarray
    loss: float
    grad_norm: float
    n_iter: int
    passes: int
    converged: bool
    message: str
    history: list = field(default_factory=list)
    solver: str = ""
    fallback: str = ""
    classes: object = None
    persist_reason: str = ""
    persisted: bool = False
    pass_log: list = field(default_factory=list)
    coef_blocks: object = None
    rounds: int = 0

    @property
    def coef(self):
        """The packed vector under its old name (it always held ``theta``)."""
        return self.theta


def check_options(solver_name, options, allowed):
    """Raise on options the solver does not know (no silent swallowing)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"Solver {solver_name!r} got unknown option(s) {unknown}; it accepts "
            f"{sorted(allowed)}."
        )


def record(history, iteration, value, grad_norm, objective, **extra):
    """Append one iteration to ``history``, with the cost so far.

    ``passes`` and ``bytes`` (an estimate of the bytes sent between client
    and workers: coefficients in, partial sums out) come from the
    objective's engine, so every strategy's history is comparable.
    """
    entry = {"iter": iteration, "objective": float(value), "grad_norm": float(grad_norm),
             "passes": int(objective.passes), "bytes": int(objective.bytes_communicated)}
    entry.update(extra)
    append_entry(history, entry)


def append_entry(history, entry):
    """Append a history entry and report it to the call's progress (``verbose``).

    The one hook of the solvers: :func:`record` and the model-parallel
    solvers' own recorder both append through here.
    """
    history.append(entry)
    iteration_done(entry)


def evaluate_trial(fn, theta):
    """Evaluate a trial point of a line search; overflow means "step too long".

    The engine raises ``FloatingPointError`` when a pass overflows on finite
    data. At a *trial* point that is an answer, not a failure: the caller
    rejects the step and backtracks. Returns ``None`` in that case.
    """
    try:
        return fn(theta)
    except FloatingPointError:
        return None
