"""Full-batch (proximal) gradient descent, plain or accelerated.

One loop serves ``"gd"`` (smooth objectives) and ``"proximal"`` (FISTA, for
an L1 part): the update rules are the small pure functions below, with their
state passed explicitly, in the style of optax.

* Step size: backtracking on the quadratic upper bound
  ``F(x+) <= F(y) + g'(x+ - y) + |x+ - y|^2 / (2 t)``; for a smooth objective
  this is Armijo's condition with constant 1/2.
* Acceleration: Nesterov / FISTA momentum ``(k - 1) / (k + 2)``-style via
  the ``t_k`` sequence, with O'Donoghue & Candes' gradient restart, which
  keeps the fast rate and removes the oscillations on strongly convex
  problems.
* Stopping: the max-abs gradient mapping ``(y - x+) / t`` falls below
  ``tol`` (for a smooth objective that is the gradient itself); for the
  squared loss with an L1 part, the duality gap instead (``certify``, see
  :func:`solve_proximal`), since a small mapping there left the lasso far
  from its optimum.

Passes: plain gradient descent costs one pass per line-search trial (the
gradient at an accepted trial is the next iteration's), so about one per
step plus one per rejected trial (8 steps took 12 passes, 100 took 126).
The accelerated variant costs about two per step: gradient at the
extrapolated point and at the trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._result import FitResult, evaluate_trial, record
from ._standardise import ACCURACY_MARGIN, in_standardised_coordinates
from ._steps import StopHook, roundoff_slack
from ._working_set import GapRule, applies, solve_working_set

__all__ = ["solve_gd", "solve_proximal"]

#: Step shrink factor on a rejected trial.
BACKTRACK = 0.5
#: Each accepted step lets the next one be longer, so the step follows the
#: local curvature instead of only ever shrinking (a step cut by round-off
#: noise would otherwise stay cut). Milder with momentum, where a rejected
#: trial costs a pass and the extrapolation already lengthens the move.
STEP_GROWTH = 1.25
STEP_GROWTH_ACCELERATED = 1.1
#: A step this small means the line search cannot make progress.
MIN_STEP = 1e-20
#: FISTA's duality-gap threshold, as a fraction of scikit-learn's (``tol``
#: times the variance of y): its gap shrinks smoothly and stops right at the
#: threshold, where scikit-learn's last sweep lands well below its own.
FISTA_GAP_FRACTION = 0.1


@dataclass(frozen=True)
class MomentumState:
    """Nesterov momentum: the FISTA sequence ``t`` and the previous iterate."""

    t: float
    previous: np.ndarray


def momentum_init(theta):
    return MomentumState(t=1.0, previous=np.array(theta, copy=True))


def fista_sequence(t):
    """The FISTA momentum sequence: ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``.

    Shared by the row-parallel proximal gradient and ``"sharded-gd"``; the
    momentum weight of a step is ``(t_k - 1) / t_{k+1}``.
    """
    return (1.0 + np.sqrt(1.0 + 4.0 * t**2)) / 2.0


def momentum_extrapolate(state, theta):
    """Next FISTA extrapolation point and the new state."""
    t_next = fista_sequence(state.t)
    beta = (state.t - 1.0) / t_next
    y = theta + beta * (theta - state.previous)
    return y, MomentumState(t=t_next, previous=np.array(theta, copy=True))


def momentum_restart(theta):
    """Forget the momentum (gradient restart)."""
    return momentum_init(theta)


def prox_step(objective, y, g, step):
    """``prox_{step * penalty_l1}(y - step * g)``."""
    return objective.prox(y - step * g, step)


def _l1(objective, theta):
    return objective.l1_value(theta)


def _sufficient_decrease(f_y, g_y, trial, diff, step):
    """The quadratic upper bound ``F(x+) <= F(y) + g'd + |d|^2 / (2 step)``.

    The test compares the remainder ``F(x+) - F(y) - g'd`` with
    ``|d|^2 / (2 step)``; once that margin is below the round-off of the
    objective values, comparing them says nothing, and the bound is checked
    through the curvature along the step, ``(g(x+) - g(y))'d <= |d|^2 / step``,
    which is exact for quadratics and stays accurate where function values
    no longer are.
    """
    f_new, g_new = trial
    dd = diff @ diff
    roundoff = roundoff_slack(f_y)  # objective changes this small are not progress
    if dd / (2 * step) > roundoff:
        return f_new <= f_y + g_y @ diff + dd / (2 * step)
    return (g_new - g_y) @ diff <= dd / step


def _run(objective, coef0, *, tol, max_iter, accelerated, step_size, name, stop=None,
         certify=None):
    x = np.array(coef0, dtype=np.float64, copy=True)
    f_x, g_x = objective.smooth_value_and_grad(x)
    history = []
    record(history, 0, f_x + _l1(objective, x), np.abs(g_x).max(), objective)
    step = float(step_size)
    state = momentum_init(x)
    converged, message, gmap_norm = False, "max_iter reached", np.inf
    n_iter = 0
    hook = StopHook(stop)
    if (reason := hook(0, x)) is not None:
        message = reason  # stopped before the first step
    # With a certificate (the duality gap) the gradient mapping only ends the
    # run at an exact fixed point: a small mapping is no accuracy guarantee.
    gmap_tol = 0.0 if certify is not None else tol
    while n_iter < max_iter and reason is None:
        if accelerated:
            y, new_state = momentum_extrapolate(state, x)
            f_y, g_y = objective.smooth_value_and_grad(y)
        else:
            y, f_y, g_y, new_state = x, f_x, g_x, state
        # Backtracking on the quadratic upper bound.
        while True:
            x_new = prox_step(objective, y, g_y, step)
            diff = x_new - y
            gmap_norm = np.abs(diff).max() / step
            if gmap_norm <= gmap_tol:
                break
            out = evaluate_trial(objective.smooth_value_and_grad, x_new)
            if out is not None and _sufficient_decrease(f_y, g_y, out, diff, step):
                f_new = out[0]
                break
            step *= BACKTRACK
            if step < MIN_STEP:
                message = "line search failed: step size underflow"
                break
        if gmap_norm <= gmap_tol:
            converged, message = True, "gradient mapping norm below tol"
            if accelerated or not objective.penalty.smooth:
                # The prox point is the answer (exact zeros for L1); its value
                # costs one more pass, paid once at the end.
                x, f_x = x_new, objective.smooth_value(x_new)
            break
        if step < MIN_STEP:
            break
        n_iter += 1
        if accelerated:
            # Gradient restart: momentum pointing uphill is dropped.
            state = momentum_restart(x_new) if (y - x_new) @ (x_new - x) > 0 else new_state
            x, f_x = x_new, f_new
            step *= STEP_GROWTH_ACCELERATED
        else:
            x, f_x, g_x = x_new, out[0], out[1]
            step *= STEP_GROWTH
        record(history, n_iter, f_x + _l1(objective, x), gmap_norm, objective,
               step=step)
        if certify is not None and (done := certify(x)) is not None:
            converged, message = True, done
            break
        if (reason := hook(n_iter, x)) is not None:
            message = reason
    F = f_x + _l1(objective, x)
    return FitResult(theta=x, loss=float(F), grad_norm=float(gmap_norm), n_iter=n_iter,
                     passes=objective.passes, converged=converged, message=message,
                     history=history, solver=name)


def solve_gd(objective, coef0, *, tol=1e-4, max_iter=1000, accelerated=False, step_size=1.0,
             stop=None, standardise=True):
    """Distributed full-batch gradient descent with backtracking line search.

    Parameters
    ----------
    accelerated : bool, default=False
        Nesterov momentum with gradient restart.
    step_size : float, default=1.0
        Initial step; the line search adapts it.
    stop : callable, optional
        ``stop(iteration, theta) -> reason or None``, called at the start and
        after every accepted step (early stopping); a reason ends the run.
    standardise : bool, default=True
        Iterate in standardised coordinates (centred, unit-scale features;
        ``daskfit.solvers._standardise``), where ``tol`` is relative to the
        gradient's scale at zero (with the safety factor ``ACCURACY_MARGIN``,
        so that the coefficients end at least as close to the optimum as
        scikit-learn's default lbfgs); otherwise on the raw objective with an
        absolute ``tol``.
    """
    objective.require_smooth()
    return _dispatch(objective, coef0, tol=tol, max_iter=max_iter, accelerated=accelerated,
                     step_size=step_size, name="gd", stop=stop, standardise=standardise,
                     margin=ACCURACY_MARGIN)


def _dispatch(objective, coef0, *, standardise, margin=1.0, **options):
    if standardise:
        return in_standardised_coordinates(_run, objective, coef0, margin=margin, **options)
    return _run(objective, coef0, **options)


def solve_proximal(objective, coef0, *, tol=1e-4, max_iter=1000, accelerated=True,
                   step_size=1.0, stop=None, standardise=True, working_set=True):
    """Accelerated proximal gradient (FISTA) for L1 and elastic-net penalties.

    ``stop`` and ``standardise`` as in :func:`solve_gd` (in standardised
    coordinates the L1 part becomes a weighted one, ``l1 |beta_j| / d_j``,
    with the same solution).

    With the squared loss (one output, no early stopping) the stopping rule
    is scikit-learn's Lasso rule: the duality gap is at most ``tol`` times
    the variance of y (:class:`~daskfit.solvers._working_set.GapRule`, free
    at every evaluated point); and with ``working_set`` (the default) the
    problem is first solved by working sets (a Gram pass over a few hundred
    columns and coordinate descent on the client, see
    :mod:`~daskfit.solvers._working_set`), which needs about ten passes where
    FISTA needs hundreds. FISTA continues from there only when the working
    set would grow beyond ``MAX_SIZE`` features.
    """
    certify = None
    if stop is None and applies(objective):
        if working_set:
            result, done = solve_working_set(objective, coef0, tol=tol, max_iter=max_iter)
            if done:
                return result
            coef0, max_iter = result.theta, max_iter - result.n_iter
        rule = GapRule(objective, coef0, tol, fraction=FISTA_GAP_FRACTION)

        def certify(theta):
            gap, target = rule(theta)
            return (f"duality gap {gap:.3g} <= {FISTA_GAP_FRACTION} tol var(y) = {target:.3g}"
                    if gap <= target else None)

    return _dispatch(objective, coef0, tol=tol, max_iter=max_iter, accelerated=accelerated,
                     step_size=step_size, name="proximal", stop=stop, standardise=standardise,
                     certify=certify)
