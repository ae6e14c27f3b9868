"""Newton along a path of C values for many models at once, one pass per step.

Every model (the ``S`` fold models and, to refit, the model on all rows)
keeps its own Newton state on the client: coefficients, the last
evaluation, a pending trial step. Each pass evaluates every unfinished model
at its pending point (:func:`._path_kernel.path_chunk`); then each model,
independently, accepts or backtracks its step, or — once converged at the
current ``C`` — records the coefficients and the validation statistics of
that very pass and moves on to the next ``C`` warm-started, reusing the same
evaluation (only the penalty changes, and it lives on the client). So the k
fold models advance together and a path costs the passes of its slowest
member: the passes of one path fit, not k of them.

The per-model objective is scikit-learn's ``C sum w loss + |b|^2 / 2``
divided by ``C sum w`` (the mean-loss form of :mod:`daskfit.objective`),
with ``sum w`` the weight of the model's own training rows. The Newton rules
(Armijo backtracking, gradient / decrement / round-off stopping, and a final
full Newton step once the rule holds) are those of
:func:`daskfit.solvers._newton.solve_newton`. The final step costs no pass
of its own: its point rides along in the pass that starts the next C (one
more row of coefficients, no Hessian), and replaces the recorded stage if it
descends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..solvers._newton import (
    ARMIJO_C,
    BACKTRACK,
    MAX_BACKTRACKS,
    ROUNDOFF_ULPS,
    newton_direction,
)
from ._path_kernel import PathSpec, path_chunk

__all__ = ["PathModel", "run_path"]


@dataclass
class StageRecord:
    """A model's result at one C: coefficients and what the pass measured there."""

    theta: np.ndarray
    n_iter: int
    converged: bool
    message: str
    stats: dict


@dataclass
class FinalStep:
    """A converged stage's full Newton step, waiting for the next pass to evaluate it."""

    record: StageRecord  # the stage as recorded before the step
    stage: int
    point: np.ndarray
    armijo: float  # the objective the point must not exceed


@dataclass
class PathModel:
    """Newton state of one model along the path of C values."""

    number: int  # fold s, or n_splits for the model on all rows
    n_params: int
    #: The L2 weight of every entry of theta: 0 at the intercepts, ``P2``
    #: (all ones by default) at the coefficients; times ``1 / (C sw)``.
    l2_weights: np.ndarray
    null_basis: np.ndarray | None
    sum_weights: float = 0.0
    theta: np.ndarray = None
    data: dict = None  # sums of the evaluation at theta
    stage: int = 0
    n_iter: int = 0
    direction: np.ndarray = None
    step: float = 1.0
    backtracks: int = 0
    gradient_improved: bool = True
    f: float = 0.0
    g: np.ndarray = None
    records: list = field(default_factory=list)
    finals: list = field(default_factory=list)

    def __post_init__(self):
        self.theta = np.zeros(self.n_params)

    @property
    def pending(self):
        """The point the next pass must evaluate for this model."""
        if self.direction is None:
            return self.theta
        return self.theta + self.step * self.direction

    def objective(self, data, theta, C):
        """Mean-loss objective, gradient and Hessian at ``theta`` for this C."""
        l2 = self.l2_weights / (C * self.sum_weights)
        f = data["loss"] / self.sum_weights + 0.5 * theta @ (l2 * theta)
        g = data["grad"] / self.sum_weights + l2 * theta
        H = None
        if data.get("hess") is not None:
            H = data["hess"] / data["hess_sw"]
            H[np.diag_indices_from(H)] += l2
        return f, g, H


def _slack(f):
    return ROUNDOFF_ULPS * np.finfo(np.float64).eps * max(abs(f), 1.0)


def _step_model(model, data, Cs, tol, max_iter):
    """Digest one pass for one model; leave it with its next pending point."""
    if model.direction is not None:  # a trial step was evaluated
        C = Cs[model.stage]
        f_trial, _, _ = model.objective(data, model.pending, C)
        armijo = model.f + ARMIJO_C * model.step * (model.g @ model.direction) + _slack(model.f)
        if np.isfinite(f_trial) and f_trial <= armijo:
            theta = model.pending
            old_gmax = np.abs(model.g).max()
            model.theta, model.data, model.direction = theta, data, None
            model.n_iter += 1
            _, g_new, _ = model.objective(data, theta, C)
            model.gradient_improved = np.abs(g_new).max() <= 0.5 * old_gmax
        else:
            model.step *= BACKTRACK
            model.backtracks += 1
            if model.backtracks < MAX_BACKTRACKS:
                return
            model.direction = None
            _record(model, converged=False,
                    message="line search failed to decrease the objective")
    else:
        model.data = data
    _advance(model, Cs, tol, max_iter)


def _final_step_negligible(model, f, g, d, tol):
    """As :func:`daskfit.solvers._newton._final_step`: too small to be worth evaluating."""
    scale = max(float(np.abs(model.theta).max()), 1.0)
    return float(np.abs(d).max()) <= tol**2 * scale or -(g @ d) / 2 <= _slack(f)


def _resolve_final(model, final, data, Cs):
    """Keep a stage's final Newton step when it descends (with its pass's statistics)."""
    f_trial, _, _ = model.objective(data, final.point, Cs[final.stage])
    if np.isfinite(f_trial) and f_trial <= final.armijo:
        final.record.theta = final.point
        final.record.stats = data["stats"]
        final.record.n_iter += 1
        final.record.message += ", then one final Newton step"


def _record(model, *, converged, message):
    model.records.append(StageRecord(model.theta.copy(), model.n_iter, converged, message,
                                     model.data["stats"]))
    model.stage += 1
    model.n_iter = 0
    model.gradient_improved = True


def _advance(model, Cs, tol, max_iter):
    """At an evaluated point: record converged stages, then propose a step."""
    while model.stage < len(Cs):
        f, g, H = model.objective(model.data, model.theta, Cs[model.stage])
        if np.abs(g).max() <= tol:
            _record(model, converged=True, message="gradient norm below tol")
            _plan_final_step(model, f, g, newton_direction(H, g, model.null_basis), tol)
            continue
        d = newton_direction(H, g, model.null_basis)
        decrement = -(g @ d) / 2
        if decrement <= tol**2:
            _record(model, converged=True, message="Newton decrement below tol**2")
            _plan_final_step(model, f, g, d, tol)
            continue
        if decrement <= _slack(f) and not model.gradient_improved:
            _record(model, converged=True, message="gradient stalled at machine precision")
            continue
        if model.n_iter >= max_iter:
            _record(model, converged=False, message="max_iter reached")
            continue
        model.f, model.g, model.direction = f, g, d
        model.step, model.backtracks = 1.0, 0
        return


def _plan_final_step(model, f, g, d, tol):
    """After a stage was recorded as converged: its final Newton step, if worth one.

    The rules bound the objective gap, not the coefficients (2.8e-4 relative
    on the benchmark's logistic problem); near the optimum one more Newton
    step leaves about the square of the error.
    """
    if _final_step_negligible(model, f, g, d, tol):
        return
    slack = _slack(f)
    model.finals.append(FinalStep(record=model.records[-1], stage=model.stage - 1,
                                  point=model.theta + d,
                                  armijo=f + ARMIJO_C * (g @ d) + slack))


def _model_data(result, j):
    """One model's share of a pass result."""
    hess = result.get(f"hess{j}")
    stats = {key: float(result[key][j]) for key in
             ("loss", "train_sw", "train_correct", "train_loss", "train_score_sw",
              "val_loss", "val_sw", "val_correct")}
    return {"loss": float(result["loss"][j]), "grad": result["grad"][j].copy(),
            "hess": None if hess is None else np.array(hess, dtype=np.float64),
            "hess_sw": float(result["hess_sw"][j]), "stats": stats}


def run_path(engine, models, splits, Cs, *, n_features, n_outputs, fit_intercept, tol,
             max_iter, hessian_stride=1, class_weight=None):
    """Fit every model along ``Cs``; returns the models with their records.

    The first pass (at zero, with the data checks on) also gives each
    model's training weight, which sets its penalty scale: with
    ``class_weight`` (one weight per class code) the class-weighted one,
    as scikit-learn's ``sw_sum``.
    """
    first = True
    while True:
        active = [m for m in models if m.stage < len(Cs)]
        finals = [(m, final) for m in models for final in m.finals]
        if not active and not finals:
            return models
        # Final Newton steps ride along: more coefficient rows, no Hessian.
        spec = PathSpec(
            thetas=np.array([m.pending for m in active] + [f.point for _, f in finals]),
            models=tuple(m.number for m in active) + tuple(m.number for m, _ in finals),
            splits=splits, n_features=n_features, n_outputs=n_outputs,
            fit_intercept=fit_intercept, hessian=tuple(range(len(active))), checks=first,
            hessian_stride=hessian_stride, class_weight=class_weight)
        result = engine.reduce(path_chunk, spec, "cv-path" if not first else "cv-path-labels")
        for j, (model, final) in enumerate(finals, start=len(active)):
            model.finals.remove(final)
            _resolve_final(model, final, _model_data(result, j), Cs)
        for j, model in enumerate(active):
            data = _model_data(result, j)
            if first:
                model.sum_weights = data["stats"]["train_sw"]
                if not model.sum_weights > 0:
                    what = ("all rows" if model.number == len(splits)
                            else f"the training set of split {model.number}")
                    raise ValueError(f"The sample weights of {what} sum to zero; use other "
                                     "folds or positive weights.")
            _step_model(model, data, Cs, tol, max_iter)
        first = False
