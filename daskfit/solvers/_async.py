"""Asynchronous local SGD: no chunk waits for another.

The client keeps the global coefficients and, for every row chunk, the end
point of that chunk's latest local run. Every chunk is submitted as its own
task (:meth:`daskfit.objective.Objective.local_sgd_as_completed`); a task runs
local SGD on its chunk from the coefficients it was given
(:func:`daskfit.kernels.sgd.local_sgd_chunk`) and, in the same read, returns the
chunk's loss and gradient at its start point. As each task completes the
client

1. replaces that chunk's entry in its table (end point, and gradient at the
   start point),
2. sets the global coefficients to the sample-weight-weighted average of the
   table's end points, and
3. resubmits the chunk at once with the newest coefficients,

so a slow worker never stalls the others. Because the table holds one entry
per chunk, a chunk whose tasks finish more often than the others' (a small
chunk, a fast worker) does not count more: every chunk weighs what its
sample weights hold. Empty chunks are retired after their first task.

The local runs are variance reduced as in parameter averaging (SVRG inside
the chunk plus SCAFFOLD's drift correction, :mod:`daskfit.kernels.sgd`), with the
table standing in for the global gradient: the anchor of a chunk's next run
is the start point of its previous one, where the table holds its gradient,
and the global gradient there is estimated by the table's weighted mean
(SAGA-style). At a common fixed point every chunk's run stays put, so the
fixed point is the exact optimum.

Staleness: an update computed from coefficients more than ``max_staleness``
accepted updates old is **discarded** (its gradient still refreshes the
table; the chunk is resubmitted with the newest coefficients).

Stopping: every ``eval_every`` epochs (one epoch = as many completed tasks
as there are non-empty chunks, i.e. each chunk's update applied once on
average) the objective and its gradient at the current coefficients are
evaluated with a normal pass (counted in ``passes``); the solver stops when
the relative change between two such evaluations, or the gradient norm, is
below ``tol``, or after ``max_iter`` epochs.
"""

from __future__ import annotations

import numpy as np

from ..kernels.sgd import standardisation
from ._averaging import check_sgd_options, diverged, sgd_spec, subgradient_norm
from ._result import FitResult, record
from ._steps import objective_stalled

__all__ = ["solve_async_sgd"]

#: Default bound on staleness, in multiples of the number of chunks: with
#: every chunk in flight a task typically waits for about one update per
#: other chunk, so twice that only drops updates from a straggler.
STALENESS_PER_CHUNK = 2


def solve_async_sgd(objective, coef0, *, tol=1e-4, max_iter=50, max_staleness=None,
                    local_steps=None, learning_rate=None, batch_size=None, eval_every=1,
                    random_state=0):
    """Asynchronous data-parallel SGD with a table of per-chunk local results.

    **Not deterministic with a distributed client**: the coefficients depend
    on the order in which tasks complete, which depends on worker speed and
    scheduling, so two fits on the same data differ slightly (each within
    the stopping tolerance of the optimum). Without a client the chunks run
    one at a time in a fixed order and results are reproducible.

    Parameters
    ----------
    objective : Objective
        Started objective; any loss and penalty (L1 by a proximal step).
    coef0 : ndarray of shape (n_params,)
    tol : float, default=1e-4
        Stop when the relative change of the objective between two exact
        evaluations, or the max-abs (minimum-norm sub)gradient, is below
        ``tol``.
    max_iter : int, default=50
        Maximum number of epochs (completed tasks / non-empty chunks).
    max_staleness : int or None, default=None
        Discard updates computed from coefficients more than this many
        accepted updates old. ``None``: twice the number of chunks.
    local_steps : int or None, default=None
        Mini-batch SGD steps per task; ``None``: one epoch over the chunk.
    learning_rate : float or None, default=None
        Local SGD step on standardised features; ``None`` derives it from
        the data (see :mod:`daskfit.kernels.sgd`).
    batch_size : int or None, default=None
        Rows per local step; ``None``: about 128 steps per chunk epoch, 32
        to 256 rows each.
    eval_every : int, default=1
        Epochs between exact evaluations (one pass each) of the objective.
        Passes: one per epoch of chunk tasks plus one per evaluation, plus
        the first pass: ``n_iter * (1 + 1 / eval_every) + 1`` for equal
        non-empty chunks.
    random_state : int, default=0
        Seeds each task's shuffling by (chunk, visit number).

    Returns
    -------
    FitResult
        ``solver="async-sgd"``; ``n_iter`` is the number of epochs; the
        history has one entry per exact evaluation with ``updates`` (accepted
        so far) and ``discarded`` (too stale).

    Examples
    --------
    Without a client the chunks run one after the other (reproducibly):

    >>> import dask.array as da, numpy as np
    >>> from daskfit._data import ChunkedData
    >>> from daskfit.engine.rows import Engine
    >>> from daskfit.model.losses import LOSSES
    >>> from daskfit.objective import Objective
    >>> from daskfit.model.penalties import Penalty
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + 1.0 + rng.normal(scale=0.1, size=600)
    >>> data = ChunkedData(da.from_array(X, chunks=(200, 3)), da.from_array(y, chunks=200),
    ...                    None, is_lazy=True)
    >>> objective = Objective(Engine(data), LOSSES["squared"], lambda sw: Penalty(),
    ...                       fit_intercept=True).start("grad")
    >>> result = solve_async_sgd(objective, np.zeros(4), tol=1e-8)
    >>> np.round(result.theta, 2), result.converged
    (array([ 1. , -2. ,  0.5,  1. ]), True)
    """
    check_sgd_options(learning_rate=learning_rate, schedule="constant",
                      batch_size=batch_size, random_state=random_state)
    for name, value in (("max_iter", max_iter), ("eval_every", eval_every)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if local_steps is not None and (not isinstance(local_steps, (int, np.integer))
                                    or local_steps < 1):
        raise ValueError(f"local_steps must be None or a positive integer, got {local_steps!r}.")
    n_chunks = objective.n_chunks
    if max_staleness is None:
        max_staleness = STALENESS_PER_CHUNK * n_chunks
    elif not isinstance(max_staleness, (int, np.integer)) or max_staleness < 0:
        raise ValueError(f"max_staleness must be None or an integer >= 0, got {max_staleness!r}.")

    coef0 = np.array(coef0, dtype=np.float64, copy=True)
    theta = coef0.copy()
    n_params = len(theta)
    sw_total = objective.sum_weights
    # Per-chunk table: weight, latest accepted end point, latest start-point gradient.
    chunk_sw = np.full(n_chunks, np.nan)
    ends = np.zeros((n_chunks, n_params))
    has_end = np.zeros(n_chunks, dtype=bool)
    grads = np.zeros((n_chunks, n_params))
    anchors = np.zeros((n_chunks, n_params))  # where each chunk's gradient was taken
    xsum = [None] * n_chunks
    x2sum = [None] * n_chunks
    submitted_at = np.zeros(n_chunks, dtype=np.int64)
    visits = np.zeros(n_chunks, dtype=np.int64)
    state = {"version": 0, "completed": 0, "discarded": 0, "epoch": 0, "stop": False,
             "mean": None, "scale": None, "evaluated_at": -1}
    start_grad = objective.cached_gradient(theta)

    def table_gradient():
        known = ~np.isnan(chunk_sw)
        weight = chunk_sw[known].sum()
        if weight <= 0:
            return start_grad
        return grads[known].sum(axis=0) / weight

    def next_spec(index):
        if state["stop"] or chunk_sw[index] == 0:
            return None  # finished, or a chunk with no weight: nothing to learn from it
        submitted_at[index] = state["version"]
        visits[index] += 1
        if np.isnan(chunk_sw[index]):
            # First task of this chunk: anchor at the start point, if its gradient is known.
            anchor, anchor_grad = coef0, start_grad
        else:
            # SAGA-style: this chunk's own table entry is the anchor, the table's mean
            # the gradient there, so the correction is exact at a common fixed point.
            anchor, anchor_grad = anchors[index].copy(), table_gradient()
        return sgd_spec(
            objective, theta, epochs=1, steps=local_steps, batch_size=batch_size,
            learning_rate=learning_rate, schedule="constant", epochs_done=0.0,
            polyak=False, seed=(int(random_state), int(visits[index])),
            mean=state["mean"], scale=state["scale"],
            anchor=None if anchor_grad is None else anchor, anchor_grad=anchor_grad,
            normalise=False, variance_reduction=True)

    history = []
    best = None
    previous_f = None
    converged, message = False, f"max_iter={max_iter} epochs reached"

    def evaluate():
        nonlocal best, previous_f, converged, message
        f_smooth, g = objective.smooth_value_and_grad(theta)
        f = f_smooth + objective.l1_value(theta)
        gnorm = subgradient_norm(objective, theta, g)
        record(history, state["epoch"], f, gnorm, objective, updates=state["version"],
               discarded=state["discarded"])
        if best is None or f <= best[0]:
            best = (f, theta.copy(), gnorm)
        if gnorm <= tol:
            converged, message = True, "gradient norm below tol"
        elif objective_stalled(previous_f, f, tol):
            converged, message = True, "relative objective change below tol"
        previous_f = f
        return converged

    stream = objective.local_sgd_as_completed(next_spec)
    non_finite = False
    try:
        for index, spec, result in stream:
            sw = result["sw"]
            chunk_sw[index] = sw
            grads[index] = result["grad"]
            anchors[index] = spec.theta
            if "xsum" in result:
                xsum[index], x2sum[index] = result["xsum"], result["x2sum"]
                if state["mean"] is None and all(s is not None for s in xsum):
                    # Every chunk has reported: standardise with global statistics.
                    state["mean"], state["scale"] = standardisation(
                        sw_total, sum(xsum), sum(x2sum), objective.fit_intercept)
            if sw > 0:
                if state["version"] - submitted_at[index] > max_staleness:
                    state["discarded"] += 1
                else:
                    ends[index] = result["coef_sum"] / sw
                    has_end[index] = True
                    weights = np.where(has_end, chunk_sw, 0.0)
                    theta = (weights @ ends) / weights.sum()
                    state["version"] += 1
                    if not np.all(np.isfinite(theta)):
                        non_finite = True
                        break
            if sw <= 0:
                continue  # an empty chunk: retired, and no part of any epoch
            state["completed"] += 1
            active = n_chunks - int(np.sum(chunk_sw == 0))
            if state["completed"] < active * (state["epoch"] + 1):
                continue
            state["epoch"] += 1
            last = state["epoch"] >= max_iter
            if (state["epoch"] % eval_every == 0 or last) and (
                    state["version"] > state["evaluated_at"] or best is None):
                state["evaluated_at"] = state["version"]
                if evaluate():
                    break
            if last:
                break
    except FloatingPointError as error:
        raise diverged("async-sgd", "a pass overflowed", learning_rate) from error
    finally:
        state["stop"] = True
        stream.close()
    if non_finite:
        raise diverged("async-sgd", "the average is not finite", learning_rate)
    if best is None:  # every chunk retired before an epoch ended
        evaluate()
    f, coef, gnorm = best
    return FitResult(theta=coef, loss=float(f), grad_norm=float(gnorm), n_iter=state["epoch"],
                     passes=objective.passes, converged=converged, message=message,
                     history=history, solver="async-sgd")
