"""One fit, for rows or columns: plan -> engine -> objective -> hooks -> solve.

The estimators are the scikit-learn facade: they check their parameters,
turn ``X, y, sample_weight`` into :class:`~daskfit._data.ChunkedData` and
describe the model in a :class:`FitRequest`. Everything after that happens
here, in one function, :func:`fit_model`:

1. **plan** -- :func:`daskfit.planner.plan_for` chooses the strategy and the
   solver from metadata (no pass);
2. **engine** -- the row engine persists once or streams
   (:func:`daskfit.engine.rows.persisted_once`), or, for a model-parallel
   solver, the column engine takes over (:func:`_fit_columns`);
3. **objective** -- loss + penalty through the engine; its first pass
   validates the data and computes what the solver needs; the solver is
   chosen again only when that pass reveals more than two classes;
4. **hooks** -- early stopping and checkpoints, as ``stop(iteration,
   theta)`` callbacks the iterative solvers call after every step;
5. **solve** -- :func:`daskfit.solvers.solve`, one :class:`FitResult`.

The answer is a :class:`FitOutcome`: the final (or best) ``theta``, its
layout, and what the estimator reports about how it was obtained.

Examples
--------
>>> import numpy as np
>>> from daskfit._data import as_chunked
>>> from daskfit.fit import FitRequest, fit_model
>>> from daskfit.estimators import LinearRegression
>>> from daskfit.model.penalties import Penalty
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3)); y = X @ [1.0, -2.0, 0.5] + 3.0
>>> data = as_chunked(LinearRegression(), X, y, None, reset=True, y_numeric=True)
>>> from daskfit.model.losses import LOSSES
>>> outcome = fit_model(data, FitRequest(loss=LOSSES["squared"],
...                                      penalty_rule=lambda total_weight: Penalty()))
>>> outcome.solver, np.round(outcome.theta, 6).tolist()
('normal', [1.0, -2.0, 0.5, 3.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._checkpoint import CheckpointMismatch, Checkpointer, fingerprint
from .engine.rows import Engine, current_client
from .errors import ParameterError
from .kernels.alignment import rows_per_block
from .kernels.holdout import EarlyStopping, Holdout, offset_runs
from .objective import ColumnObjective, Objective
from .planner import NO_PENALTY_WEIGHTS, plan_for, replan_for_classes
from .solvers import SOLVERS, STANDARDISED, hessian_stride, solve, warm_start

__all__ = ["CheckpointRequest", "EarlyStoppingRequest", "FitOutcome", "FitRequest",
           "fit_model"]


@dataclass(frozen=True)
class EarlyStoppingRequest:
    """Hold out ``fraction`` of the rows (seeded) and stop when their score stalls."""

    fraction: float
    n_iter_no_change: int
    seed: int


@dataclass(frozen=True)
class CheckpointRequest:
    """Save the iterate every ``every`` iterations under ``directory``.

    ``identity`` (the estimator's parameters and class name) goes into the
    checkpoint's fingerprint with the data's, so a checkpoint is only ever
    resumed by the same model on the same data.
    """

    directory: object
    every: int
    identity: tuple


@dataclass(frozen=True)
class FitRequest:
    """What the estimator asks for: the model and how hard to try.

    ``loss`` is a loss object (:mod:`daskfit.model.losses`; a parametrised
    one such as Tweedie's is built by the estimator). ``penalty_rule(total_weight)
    -> Penalty`` maps scikit-learn's penalty parameters onto the mean-loss
    objective once the first pass knows the total sample weight.
    """

    loss: object
    penalty_rule: Callable
    fit_intercept: bool = True
    solver: str = "auto"
    tol: float = 1e-4
    max_iter: int = 100
    persist: object = "auto"
    split_every: int = 8
    solver_options: dict = field(default_factory=dict)
    early_stopping: EarlyStoppingRequest | None = None
    checkpoint: CheckpointRequest | None = None
    #: scikit-learn's ``class_weight`` (None, "balanced" or a dict), classifiers only.
    class_weight: object = None


@dataclass
class FitOutcome:
    """A finished fit: ``theta`` and how it was obtained.

    ``theta`` is the packed vector (``n_outputs`` blocks of ``n_features``
    coefficients, then the intercept when ``fit_intercept``); with early
    stopping it is the best-scoring iterate, not necessarily the last.
    """

    theta: np.ndarray
    n_features: int
    n_outputs: int
    fit_intercept: bool
    result: object
    plan: object
    solver: str
    reason: str
    persist_reason: str
    pass_log: list
    #: Whether the data was read into cluster memory once (else streamed).
    persisted: bool = False
    classes: np.ndarray | None = None
    chunk_rows: object = None
    resumed_from: int = 0
    early_stopped: bool = False
    validation_scores: np.ndarray | None = None
    best_validation_score: float | None = None
    validation_split: dict | None = None
    #: The normal equations' centred moments of ``[X, y]`` (their one pass),
    #: from which statistical inference needs no pass of its own.
    moments: tuple | None = None


def fit_model(data, request):
    """Fit ``request``'s model to ``data`` (a ``ChunkedData``); see the module docstring."""
    loss = request.loss
    penalty_at_one = request.penalty_rule(1.0)
    penalty_kind = penalty_at_one.kind
    penalty_at_one.check_n_features(data.n_features)
    solver = request.solver
    if not penalty_at_one.uniform and solver in NO_PENALTY_WEIGHTS:
        raise ValueError(
            f"solver={solver!r} cannot weigh the penalty per feature (P1/P2 given): its "
            "penalty is one scalar per part. Use solver='auto' or one of "
            f"{sorted(s for s in SOLVERS if s not in NO_PENALTY_WEIGHTS)}.")
    if solver != "auto" and not SOLVERS[solver].supports(loss.name, penalty_kind):
        raise ParameterError(
            f"solver={solver!r} does not support the {loss.name} loss with a "
            f"{penalty_kind} penalty; use one of "
            f"{sorted(s for s, i in SOLVERS.items() if i.supports(loss.name, penalty_kind))}.",
            parameter="solver", value=solver)
    _check_offset_solver(data, solver)
    X = data.X
    plan = plan_for(
        n_rows=X.shape[0], n_features=data.n_features, row_chunks=X.numblocks[0],
        # The model-parallel solvers take no offset: with one, X's column
        # blocks are merged for a row solver (in the first pass, as always).
        col_chunks=X.numblocks[1] if data.offset is None else 1,
        itemsize=X.dtype.itemsize, is_lazy=data.is_lazy,
        loss_name=loss.name, penalty_kind=penalty_kind, n_outputs=1,
        fit_intercept=request.fit_intercept, solver=solver, persist=request.persist,
        client=current_client(), max_block_columns=max(X.chunks[1]),
        early_stopping=request.early_stopping is not None,
        class_weight=request.class_weight is not None,
        penalty_weights=not penalty_at_one.uniform, sparse=data.sparse,
        nbytes=data.nbytes if data.sparse else None)
    if SOLVERS[plan.solver].model_parallel:
        return _fit_columns(data, request, loss, plan)
    return _fit_rows(data, request, loss, plan, penalty_kind)


def _check_offset_solver(data, solver):
    """Refuse an offset for the model-parallel solvers, naming those that take one."""
    if data.offset is None or solver == "auto" or not SOLVERS[solver].model_parallel:
        return
    row = sorted(n for n, i in SOLVERS.items() if not i.model_parallel)
    raise ParameterError(
        f"offset= is not supported by the model-parallel solver {solver!r} (its closed-form "
        f"constant model and line searches assume no per-row offset). Use solver='auto' or "
        f"one of {row}, or fit without offset.", parameter="offset")


def _fit_rows(data, request, loss, plan, penalty_kind):
    """Row-parallel and parameter-averaging fits, on the row engine."""
    name, reason = plan.solver, plan.reasons[0]
    if data.X.numblocks[1] > 1:
        # Row-parallel solvers need whole rows per task; merging column
        # blocks is cheap and is fused into the first pass (or the persist).
        data.X = data.X.rechunk({1: -1})
    engine = Engine(data, split_every=request.split_every, persist=request.persist)
    engine.prepare(expected_passes=1 if name == "normal" else 2)
    holdout = _holdout(request.early_stopping, loss, data)
    objective = Objective(engine, loss, request.penalty_rule, request.fit_intercept,
                          holdout=holdout, class_weight=request.class_weight)
    if SOLVERS[name].needs == "hess":
        objective.hessian_stride = hessian_stride(
            data.X.shape[0], data.n_features + int(request.fit_intercept),
            rows_per_block(data.X.shape[1], data.X.dtype.itemsize))
        if objective.hessian_stride > 1:
            reason += (f"; Hessian from 1 row block in {objective.hessian_stride} "
                       "(sub-sampled Newton: the gradient still uses every row)")
    options = dict(request.solver_options)
    # Newton starts from a fit to a sample of rows (no pass; see solvers._warm_start).
    warm = (warm_start(engine, loss, request.penalty_rule, request.fit_intercept)
            if _warm_startable(name, request, data, holdout) else None)
    objective.start(SOLVERS[name].needs,
                    column_moments=name in STANDARDISED and options.get("standardise", True),
                    warm=warm)
    if request.solver == "auto" and objective.n_outputs > 1:
        # Only the first pass reveals the number of classes.
        name, reason = replan_for_classes(
            plan, loss_name=objective.loss.name, penalty_kind=penalty_kind,
            n_features=data.n_features, n_params=objective.n_params,
            n_outputs=objective.n_outputs, early_stopping=holdout is not None)
        options = dict(request.solver_options)
    saver, resumed = _open_checkpoint(request.checkpoint, data, name, objective)
    theta0 = objective.start_theta if resumed is None else resumed.theta
    monitor = None
    if holdout is not None:
        monitor = EarlyStopping(objective, n_iter_no_change=request.early_stopping.n_iter_no_change,
                                tol=float(request.tol))
        options["stop"] = monitor
        reason += (f"; early stopping on {holdout.score} of "
                   f"{objective.holdout_counts['validation_samples']} held-out rows "
                   f"(keyed by {holdout.keyed_by})")
    offset = 0 if resumed is None else resumed.iteration
    if saver is not None:
        earlier = 0 if resumed is None else resumed.passes
        hook = saver.callback(lambda: earlier + engine.passes, offset)
        options["stop"] = _chain_stops(hook, options.get("stop"))
    result = solve(name, objective, theta0, tol=request.tol,
                   max_iter=request.max_iter - offset, **options)
    if offset:
        result.n_iter += offset
    if saver is not None:
        saver.clear()  # finished: nothing left to resume
    early_stopped = monitor is not None and monitor.stopped
    _check_result(name, result, request.tol)
    outcome = FitOutcome(
        # MLP's choice, not SGD's: the best-scoring iterate is the model (it
        # is on the client already, so restoring it costs nothing).
        theta=result.theta if monitor is None else monitor.best_theta,
        n_features=objective.n_features, n_outputs=objective.n_outputs,
        fit_intercept=objective.fit_intercept, result=result, plan=plan, solver=name,
        # What the solver did when it differs from the plan (an extra QR pass).
        reason=f"{reason}; but {result.fallback}" if result.fallback else reason,
        persist_reason=engine.persist_reason, pass_log=list(engine.pass_log),
        persisted=bool(engine.persisted),
        classes=getattr(objective, "classes", None), chunk_rows=engine.chunk_rows,
        resumed_from=offset, early_stopped=early_stopped,
        # The normal equations' first pass computed them: no pass here.
        moments=objective.moments() if name == "normal" and holdout is None else None)
    if monitor is not None:
        outcome.validation_scores = np.asarray(monitor.scores, dtype=np.float64)
        outcome.best_validation_score = float(monitor.best_score)
        outcome.validation_split = dict(objective.holdout_counts,
                                        keyed_by=objective.holdout.keyed_by,
                                        seed=objective.holdout.seed,
                                        best_iteration=monitor.best_iteration)
    return outcome


def _fit_columns(data, request, loss, plan):
    """Model-parallel fits: coefficients sharded with X's column chunks."""
    name = plan.solver
    if not data.chunks_known:
        raise ValueError(
            f"solver={name!r} needs known row chunk sizes to pair X's blocks with y; got "
            f"row chunks {data.X.chunks[0]}. Call to_dask_array(lengths=True) first.")
    objective = ColumnObjective.from_arrays(
        data.X, data.y, data.sample_weight, loss=loss, penalty_rule=request.penalty_rule,
        fit_intercept=request.fit_intercept, split_every=request.split_every,
        persist=request.persist, client=current_client()).start(SOLVERS[name].needs)
    result = solve(name, objective, np.zeros(objective.n_params), tol=request.tol,
                   max_iter=request.max_iter, **request.solver_options)
    _check_result(name, result, request.tol)
    return FitOutcome(
        theta=result.theta, n_features=objective.n_features, n_outputs=1,
        fit_intercept=request.fit_intercept, result=result, plan=plan, solver=name,
        reason=plan.reasons[0], persist_reason=result.persist_reason,
        persisted=result.persisted,
        # (label, seconds) like the row engine's log; the column engine also
        # records the fraction of X each round read.
        pass_log=[(entry[0], entry[-1]) for entry in result.pass_log],
        classes=None if result.classes is None else np.asarray(result.classes))


def _warm_startable(solver, request, data, holdout):
    """Newton from a sample's fit: a plain start at zero is all it replaces.

    Not with early stopping or a checkpoint (their iterations count from
    zero), nor with class weights, an offset or sparse chunks (the sample's
    fit weighs none of them; the full fit would still be right, from a
    worse start).
    """
    return (solver == "newton" and holdout is None and request.checkpoint is None
            and request.class_weight is None and data.offset is None and not data.sparse)


def _holdout(early_stopping, loss, data):
    if early_stopping is None:
        return None
    return Holdout(seed=early_stopping.seed, fraction=float(early_stopping.fraction),
                   loss=loss, runs=offset_runs(data.X.chunks[0]))


def _open_checkpoint(checkpoint, data, solver, objective):
    """``(Checkpointer or None, Checkpoint to resume from or None)``."""
    if checkpoint is None:
        return None, None
    if not SOLVERS[solver].early_stopping:  # the solvers that take a stop hook
        raise ParameterError(
            f"checkpoint= needs an iterative solver that reports its iterations; "
            f"solver={solver!r} does not (one-pass and asynchronous solvers have no "
            f"iterate to resume). Use one of "
            f"{sorted(n for n, i in SOLVERS.items() if i.early_stopping)}.",
            parameter="checkpoint", value=checkpoint.directory)
    digest = fingerprint(data.token(), *checkpoint.identity, solver, objective.n_params)
    saver = Checkpointer(checkpoint.directory, digest, every=checkpoint.every)
    resumed = saver.load()
    if resumed is not None and resumed.theta.shape != (objective.n_params,):
        raise CheckpointMismatch(f"The checkpoint {resumed.path} holds {resumed.theta.size} "
                                 f"coefficients; this fit has {objective.n_params}.")
    return saver, resumed


def _check_result(name, result, tol):
    """Refuse non-finite coefficients; mark a stalled "convergence" as not converged.

    A solver's stopping rule can be met without progress: when the
    features' scale puts the Hessian out of floating-point range (``X *
    1e300``) the Newton step and decrement are zero while the gradient
    is astronomically large. A "converged" result whose gradient did not
    shrink is therefore marked not converged (``result.converged`` is
    False), and the estimator warns about it like any other
    non-convergence.
    """
    if not np.all(np.isfinite(result.theta)):
        raise FloatingPointError(
            f"Solver {name!r} produced non-finite coefficients ({result.message}); "
            "nothing was fitted. Standardise the features or increase the regularisation.")
    if result.converged and _gradient_stalled(result, tol):
        start = result.history[0]["grad_norm"]
        result.converged = False
        result.message = (
            f"its stopping rule ({result.message}) was met but the gradient norm did not "
            f"shrink ({start:.3g} at the start): the features' scale is probably beyond "
            "floating-point range for this loss")


#: A result counts as converged only if its final gradient norm is below this
#: share of the starting one (or below ``tol``). Converging solvers shrink it
#: by orders of magnitude; a stopping rule met with the gradient barely
#: moved is an artefact of overflow or underflow, not an optimum.
STALLED_GRADIENT_FRACTION = 0.5


def _gradient_stalled(result, tol):
    """True when a solver stopped with the gradient about where it started."""
    if result.n_iter < 1 or not result.history:
        return False
    start, end = result.history[0].get("grad_norm", np.nan), result.grad_norm
    if not (np.isfinite(start) and np.isfinite(end)):
        return False
    return end > tol and end > STALLED_GRADIENT_FRACTION * start


def _chain_stops(first, second):
    """One ``stop(iteration, theta)`` hook running both; the first reason wins."""
    if second is None:
        return first

    def stop(iteration, theta):
        reason = first(iteration, theta)
        return reason if reason is not None else second(iteration, theta)

    return stop
