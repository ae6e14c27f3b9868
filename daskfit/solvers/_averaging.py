"""Data-parallel parameter averaging (local SGD, "federated averaging").

Each *round* is one pass over the data: every row chunk starts from the
current global coefficients, runs ``local_epochs`` epochs of mini-batch
proximal SGD on its own rows (the kernel :func:`daskfit.kernels.sgd.local_sgd_chunk`)
and returns its local coefficients; the client averages them, weighted by the
sum of sample weights behind each chunk. Chunks with no weight (empty chunks)
contribute nothing, and a chunk of 3 rows weighs 3 rows, not 1/n_chunks.

By default (``variance_reduction=True``) the local runs are corrected so that
they follow the *global* objective, not their chunk's: SVRG inside the chunk
plus SCAFFOLD's drift correction with the global gradient at the previous
average, which the previous pass computed anyway. Plain averaging of local
SGD runs stalls at a distance from the optimum set by the SGD noise and by
each chunk's pull towards its own optimum; the corrected runs have the exact
optimum as their fixed point and converge linearly with a constant step.
``variance_reduction=False`` is classical averaging, with FedNova's
normalisation of unequal local step counts (see :mod:`daskfit.kernels.sgd`).

Passes: the same pass that runs the local SGD also evaluates the loss and the
gradient at its *start* point, which is the previous round's average, so the
objective of every average is known one round later at no extra pass. A fit
that stops on its own criterion costs ``n_iter + 1`` passes (the first,
validating pass plus one per round); one stopped by ``max_iter`` costs one
more, to evaluate the last average.
"""

from __future__ import annotations

import numpy as np

from ..model.penalties import l1_subgradient
from ..kernels.sgd import SCHEDULES, LocalSGDSpec, standardisation
from ._result import FitResult, record
from ._steps import objective_stalled

__all__ = ["solve_averaging", "subgradient_norm"]

def subgradient_norm(objective, theta, grad):
    """Max-abs of the minimum-norm subgradient of smooth part + L1 part.

    ``grad`` is the smooth part's gradient. For a smooth objective this is
    ``max|grad|``; with an L1 part, a coefficient at zero contributes only
    the part of its gradient that the L1 term cannot absorb.
    """
    l1 = objective.penalty.l1
    if l1 == 0:
        return float(np.abs(grad).max(initial=0.0))
    g = np.array(grad, dtype=np.float64, copy=True)
    mask = objective.penalised
    b, gb = theta[mask], g[mask]
    g[mask] = l1_subgradient(gb, b, l1)
    return float(np.abs(g).max(initial=0.0))


def check_sgd_options(*, learning_rate, schedule, batch_size, random_state):
    if learning_rate is not None and not (np.isscalar(learning_rate)
                                          and np.isfinite(learning_rate)
                                          and learning_rate > 0):
        raise ValueError(f"learning_rate must be None or a positive float, got {learning_rate!r}.")
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}; choose from {sorted(SCHEDULES)}.")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be None or a positive integer, got {batch_size!r}.")
    if not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state must be a non-negative integer, got {random_state!r}.")


def sgd_spec(objective, theta, **fields):
    """A :class:`LocalSGDSpec` for ``objective`` at ``theta``."""
    return LocalSGDSpec(
        loss=objective.loss, theta=np.asarray(theta, dtype=np.float64),
        n_features=objective.n_features, n_outputs=objective.n_outputs,
        fit_intercept=objective.fit_intercept, classes=objective.classes,
        l1=float(objective.penalty.l1), l2=float(objective.penalty.l2),
        total_weight=float(objective.sum_weights), **fields)


def evaluate_partial(objective, theta, result):
    """Objective and smooth gradient at ``theta`` from a pass's loss/grad sums."""
    mask = objective.penalised
    sw = objective.sum_weights
    f = result["loss"] / sw + objective.penalty.value(theta, mask)
    g = result["grad"] / sw + objective.penalty.smooth_gradient(theta, mask)
    return float(f), g


def diverged(name, detail, learning_rate):
    chosen = "the default learning rate" if learning_rate is None \
        else f"learning_rate={learning_rate}"
    return FloatingPointError(
        f"Solver {name!r} diverged ({detail}) with {chosen}; nothing was fitted. "
        "Pass a smaller learning_rate, a decaying schedule ('inverse-sqrt'), a larger "
        "batch_size, or standardise the features; solver='newton' or 'lbfgs' need no "
        "step size."
    )


def solve_averaging(objective, coef0, *, tol=1e-4, max_iter=100, local_epochs=1,
                    learning_rate=None, schedule="constant", batch_size=None,
                    polyak=False, variance_reduction=True, random_state=0):
    """Parameter averaging: local SGD on every chunk, weighted average per round.

    Parameters
    ----------
    objective : Objective
        Started (first pass done) objective; any loss and penalty (the
        penalty by its proximal step after every SGD step; the average of
        sparse local solutions is not exactly sparse until they agree).
    coef0 : ndarray of shape (n_params,)
    tol : float, default=1e-4
        Stop when the relative change of the objective between consecutive
        averages, ``|f_k - f_{k-1}| / |f_k|``, or the max-abs (minimum-norm
        sub)gradient falls below ``tol``.
    max_iter : int, default=100
        Maximum number of rounds (= passes). ``max_iter=1`` with many
        ``local_epochs`` is one-shot averaging.
    local_epochs : int, default=1
        Epochs of local SGD over each chunk's rows per round.
    learning_rate : float or None, default=None
        Base step of local SGD on standardised features. ``None`` derives it
        from the data in every chunk and round: ``1 / (c L_b)`` with ``c`` the
        loss's curvature bound and ``L_b`` the mini-batch smoothness of the
        standardised rows (the penalty is applied by its proximal step), halved for
        variance-reduced runs (see :mod:`daskfit.kernels.sgd`), so no tuning is
        needed.
    schedule : {"constant", "inverse-sqrt", "inverse"}, default="constant"
        Decay of the step with the number of global epochs done ``t``:
        1, ``1/sqrt(1+t)`` or ``1/(1+t)``. Useful for classical averaging;
        variance-reduced runs need no decay.
    batch_size : int or None, default=None
        Rows per local step (fewer when a chunk is smaller). ``None``: about
        128 steps per local epoch, 32 to 256 rows each.
    polyak : bool, default=False
        Return the average of the iterates over the second half of each local
        run (tail averaging) instead of the last one.
    variance_reduction : bool, default=True
        Local runs follow the global objective (SVRG + drift correction,
        module docstring) and the end points are averaged as they are.
        ``False``: classical averaging of plain local SGD; it hovers around the
        optimum at a distance set by the step (use a decaying ``schedule``
        and ``polyak``), and unequal chunks are handled by normalising each
        chunk's displacement by its step count (FedNova).
    random_state : int, default=0
        Seeds the shuffling of every (round, chunk) pair: results are the
        same on every scheduler and cluster.

    Returns
    -------
    FitResult
        ``solver="averaging"``; ``n_iter`` is the number of rounds run,
        ``coef`` the evaluated average with the lowest objective, ``history``
        one entry per average (``iter`` k is the average after k rounds; its
        objective, gradient norm, and the passes and bytes spent when it
        became known).

    Raises
    ------
    FloatingPointError
        If local SGD or the average overflows (with advice on the step size).

    Examples
    --------
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
    >>> result = solve_averaging(objective, np.zeros(4), tol=1e-8)
    >>> np.round(result.theta, 2), result.passes == result.n_iter + 1
    (array([ 1. , -2. ,  0.5,  1. ]), True)
    """
    check_sgd_options(learning_rate=learning_rate, schedule=schedule, batch_size=batch_size,
                      random_state=random_state)
    if not isinstance(local_epochs, (int, np.integer)) or local_epochs < 1:
        raise ValueError(f"local_epochs must be a positive integer, got {local_epochs!r}.")
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}.")
    theta = np.array(coef0, dtype=np.float64, copy=True)
    history = []
    mean = scale = anchor = anchor_grad = None
    best = None  # (f, theta, grad_norm)
    previous_f = None
    if variance_reduction:
        # The first pass usually evaluated the gradient at coef0 already.
        start = objective.cached_gradient(theta)
        if start is not None:
            anchor, anchor_grad = theta, start
    converged, message = False, f"max_iter={max_iter} rounds reached"
    n_rounds = 0

    def keep(f, th, gnorm):
        nonlocal best
        if best is None or f <= best[0]:
            best = (f, th, gnorm)

    while n_rounds < max_iter:
        spec = sgd_spec(objective, theta, epochs=int(local_epochs), steps=None,
                        batch_size=batch_size, learning_rate=learning_rate,
                        schedule=schedule, epochs_done=float(n_rounds * local_epochs),
                        polyak=bool(polyak), seed=(int(random_state), n_rounds),
                        mean=mean, scale=scale, anchor=anchor, anchor_grad=anchor_grad,
                        normalise=not variance_reduction,
                        variance_reduction=bool(variance_reduction))
        try:
            result = objective.local_sgd_pass(spec)
        except FloatingPointError as error:
            raise diverged("averaging", "local SGD overflowed", learning_rate) from error
        n_rounds += 1
        f, g = evaluate_partial(objective, theta, result)
        gnorm = subgradient_norm(objective, theta, g)
        record(history, n_rounds - 1, f, gnorm, objective)
        keep(f, theta, gnorm)
        if gnorm <= tol:
            converged, message = True, "gradient norm below tol"
            break
        if objective_stalled(previous_f, f, tol):
            converged, message = True, "relative objective change below tol"
            break
        previous_f = f
        if mean is None:
            mean, scale = standardisation(result["sw"], result["xsum"], result["x2sum"],
                                          objective.fit_intercept)
        if variance_reduction:
            anchor = theta
            anchor_grad = result["grad"] / objective.sum_weights
        if spec.normalise:
            step = result["step"] / result["sw"]
            theta = theta - step * (result["delta"] / result["sw"])
        else:
            theta = result["coef_sum"] / result["sw"]
        if not np.all(np.isfinite(theta)):
            raise diverged("averaging", "the average is not finite", learning_rate)
    else:
        # max_iter reached: the last average has not been evaluated yet.
        try:
            f_smooth, g = objective.smooth_value_and_grad(theta)
        except FloatingPointError as error:
            raise diverged("averaging", "the last average overflowed", learning_rate) from error
        f = f_smooth + objective.l1_value(theta)
        gnorm = subgradient_norm(objective, theta, g)
        record(history, n_rounds, f, gnorm, objective)
        keep(f, theta, gnorm)
    f, theta, gnorm = best
    return FitResult(theta=theta, loss=float(f), grad_norm=float(gnorm), n_iter=n_rounds,
                     passes=objective.passes, converged=converged, message=message,
                     history=history, solver="averaging")
