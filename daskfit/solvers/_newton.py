"""Damped Newton (IRLS for GLMs) with the Hessian from the same pass.

Each evaluation returns loss, gradient and Hessian from one reduction. A full
Newton step is tried first and accepted under the Armijo condition; the
evaluation at the accepted point is reused as the next iteration's, so a fit
whose steps are all accepted costs exactly ``n_iter + 1`` passes (the ``+1``
is the first, validating pass at the starting point: zero, or for binary
logistic and Poisson fits on many rows a fit to a sample of rows, see
``_warm_start``; there a label outside the sample adds one pass).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import scipy.linalg

from ._result import FitResult, evaluate_trial, record
from ._steps import StopHook

__all__ = ["solve_newton", "hessian_stride"]

#: A Hessian estimated from m rows has relative error about sqrt(p / m);
#: 1000 rows per parameter keeps it near 3%, which costs Newton at most an
#: iteration or two while the gradient (always from every row) fixes the
#: optimum exactly.
HESSIAN_ROWS_PER_PARAM = 1000
#: Never sample fewer row blocks than this, so every part of the data counts.
MIN_HESSIAN_BLOCKS = 16


def hessian_stride(n_rows, n_params, rows_per_block):
    """Use one row block in ``stride`` for the Hessian (1: every block).

    Sub-sampling the Hessian (Byrd et al., 2011) only pays when the rows far
    outnumber the parameters; for unknown row counts it is not used.
    """
    if not np.isfinite(n_rows) or n_rows <= 0:
        return 1
    stride = int(n_rows // (HESSIAN_ROWS_PER_PARAM * n_params))
    blocks = n_rows / rows_per_block
    stride = min(stride, int(blocks // MIN_HESSIAN_BLOCKS))
    return max(stride, 1)

#: Armijo sufficient-decrease constant (Nocedal & Wright's usual 1e-4).
ARMIJO_C = 1e-4
#: Step shrink factor on a rejected trial.
BACKTRACK = 0.5
#: Give up on a direction after this many halvings (step ~ 1e-6).
MAX_BACKTRACKS = 20
#: Objective changes below this many ulps of |f| are round-off, not progress:
#: near the optimum the Armijo test would otherwise reject exact steps.
ROUNDOFF_ULPS = 16


def newton_direction(H, g, null_basis=None):
    """Solve ``H d = -g``; least squares when ``H`` is singular.

    The multinomial Hessian is singular along "shift every intercept by the
    same amount" (and, without a penalty, "shift a feature's coefficients in
    every class by the same amount"). Those directions are known
    (``null_basis``, orthonormal columns); the gradient is orthogonal to
    them, so solving ``(H + V V^T) d = -g`` gives the exact Newton step with
    no component along them.
    """
    if null_basis is not None:
        H = H + null_basis @ null_basis.T
    try:
        factor = scipy.linalg.cho_factor(H, check_finite=False)
        d = -scipy.linalg.cho_solve(factor, g, check_finite=False)
        if np.all(np.isfinite(d)):
            return d
    except np.linalg.LinAlgError:
        pass  # not positive definite: fall through to least squares
    return -scipy.linalg.lstsq(H, g, check_finite=False)[0]


def solve_newton(objective, coef0, *, tol=1e-4, max_iter=100, stop=None):
    """Minimise a smooth objective with damped Newton steps.

    The stopping rule is met when the max-abs gradient is ``<= tol`` or the
    Newton decrement ``g' H^-1 g / 2`` falls below ``tol**2``. Either says
    the iterate is close, not that it is as accurate as scikit-learn's
    default: the decrement bounds the *objective* gap, so the coefficients
    may still be ``sqrt(tol**2 / curvature)`` away (2.8e-4 relative on a
    2,000,000 x 50 logistic problem, where scikit-learn's lbfgs stops at
    2.2e-5). Near the optimum Newton converges quadratically, so once the
    rule is met the Newton step already computed is taken as a final step
    (:func:`_final_step`, one pass) unless it is negligible: the error then
    drops to about its square. With a sub-sampled Hessian the final step
    is never taken with the sparsest one: when the rule is met on such a
    Hessian, one more step is taken first, its pass computing the Hessian
    from ``DENSER_HESSIAN`` times the rows (see :data:`NEAR_THE_END`).
    ``stop(iteration, theta)`` (called at the
    start and after every accepted step, e.g. early stopping) ends the run
    early with its reason.
    """
    theta = np.array(coef0, dtype=np.float64, copy=True)
    f, g, H = objective.value_grad_hess(theta)
    history = []
    record(history, 0, f, np.abs(g).max(), objective)
    converged, message = False, "max_iter reached"
    n_iter = 0
    gradient_improved = True
    # Whether H is the densest this fit uses: every row block, or a warm
    # start's first pass (``Objective.start_hessian_stride``).
    stride = getattr(objective, "hessian_stride", 1)
    first_stride = getattr(objective, "start_hessian_stride", None) or stride
    dense = stride <= 1 or first_stride < stride
    hook = StopHook(stop)
    if (reason := hook(0, theta)) is not None:
        message = reason  # stopped before the first step
    while reason is None:
        d = newton_direction(H, g, objective.hessian_null_basis())
        decrement = -(g @ d) / 2
        rule = ("gradient norm below tol" if np.abs(g).max() <= tol
                else "Newton decrement below tol**2" if decrement <= tol**2 else None)
        if rule is not None and not dense and n_iter < max_iter:
            # The final step's error is the Hessian's relative error times the
            # step: never take it with the sparsest Hessian. One more step
            # first, whose pass computes the Hessian from more rows.
            rule, force_dense = None, True
        else:
            force_dense = False
        if rule is not None:
            converged, message = True, rule
            step = _final_step(objective, theta, f, g, d, tol)
            if step is not None:
                theta, f, g = step
                n_iter += 1
                record(history, n_iter, f, np.abs(g).max(), objective, step=1.0)
                message += ", then one final Newton step"
                if (reason := hook(n_iter, theta)) is not None:
                    message = reason  # e.g. early stopping scores every iterate
            break
        if n_iter >= max_iter:
            break
        slack = ROUNDOFF_ULPS * np.finfo(np.float64).eps * max(abs(f), 1.0)
        if decrement <= slack and not gradient_improved:
            # The objective cannot tell the points apart and the last step no
            # longer shrank the gradient: this is machine precision.
            converged, message = True, "gradient stalled at machine precision"
            break
        step = 1.0
        with _denser_hessian_near_the_end(objective, g, tol, force_dense, dense) as dense:
            for _ in range(MAX_BACKTRACKS):
                trial = theta + step * d
                out = evaluate_trial(objective.value_grad_hess, trial)
                if out is not None and out[0] <= f + ARMIJO_C * step * (g @ d) + slack:
                    f_new, g_new, H_new = out
                    break
                step *= BACKTRACK
            else:
                message = "line search failed to decrease the objective"
                break
        gradient_improved = np.abs(g_new).max() <= 0.5 * np.abs(g).max()
        theta, f, g, H = trial, f_new, g_new, H_new
        n_iter += 1
        record(history, n_iter, f, np.abs(g).max(), objective, step=step)
        if (reason := hook(n_iter, theta)) is not None:
            message = reason
    return FitResult(theta=theta, loss=float(f), grad_norm=float(np.abs(g).max()),
                     n_iter=n_iter, passes=objective.passes, converged=converged,
                     message=message, history=history, solver="newton")


#: With a sub-sampled Hessian (relative error about
#: ``1 / sqrt(HESSIAN_ROWS_PER_PARAM)``, 3%), a Newton step shrinks the
#: gradient by about that factor: the pass after an iterate whose gradient is
#: within its inverse (about 32) of ``tol`` most likely meets the stopping
#: rule. That pass computes the Hessian from ``DENSER_HESSIAN`` times as many
#: rows, so the final step (:func:`_final_step`) cuts the error by about that
#: factor's square root more than a sampled step does. Every row (an exact
#: Hessian) cost a 2M x 50 logistic fit 35% more time for an error already
#: far below scikit-learn's. (A factor of 10 here let a warm-started fit meet
#: the rule one pass early with a sampled Hessian: 5.7e-5 relative error
#: after its final step, worse than scikit-learn's 2.2e-5.)
NEAR_THE_END = HESSIAN_ROWS_PER_PARAM ** 0.5
DENSER_HESSIAN = 8


@contextmanager
def _denser_hessian_near_the_end(objective, g, tol, force=False, dense_now=False):
    """Compute the trial's Hessian from more rows near the end; yields whether
    that Hessian is the densest this fit uses.

    A step made with the denser Hessian (``dense_now``) shrinks the gradient
    by that Hessian's smaller error, ``sqrt(DENSER_HESSIAN)`` times more
    (a warm start's first pass): the end is that much further away.
    """
    stride = getattr(objective, "hessian_stride", 1)
    if stride <= 1:
        yield True
        return
    near = NEAR_THE_END * (DENSER_HESSIAN ** 0.5 if dense_now else 1.0)
    if not force and np.abs(g).max() > near * tol:
        yield False
        return
    objective.hessian_stride = max(1, stride // DENSER_HESSIAN)
    try:
        yield True
    finally:
        objective.hessian_stride = stride


def _final_step(objective, theta, f, g, d, tol):
    """Take the full Newton step ``d`` once the stopping rule is met.

    Returns ``(theta, f, g)`` at ``theta + d``, or ``None`` when the step is
    negligible (at most ``tol**2`` relative to the coefficients: quadratic
    convergence has already left less error than that; or a decrement
    within the round-off of the objective: a quadratic solved exactly) or
    does not decrease the objective. One gradient pass: no Hessian, as
    nothing uses one after the last step.
    """
    scale = max(float(np.abs(theta).max()), 1.0)
    slack = ROUNDOFF_ULPS * np.finfo(np.float64).eps * max(abs(f), 1.0)
    if float(np.abs(d).max()) <= tol**2 * scale or -(g @ d) / 2 <= slack:
        return None
    trial = theta + d
    out = evaluate_trial(objective.value_and_grad, trial)
    if out is None:
        return None
    f_new, g_new = out
    if f_new > f + ARMIJO_C * (g @ d) + slack:
        return None
    return trial, f_new, g_new
