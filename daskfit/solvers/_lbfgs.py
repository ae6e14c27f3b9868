"""L-BFGS through ``scipy.optimize.minimize``: one pass per function call.

SciPy asks for ``(loss, grad)`` together (``jac=True``), which is exactly one
reduction; the objective's cache makes a repeated point free.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from ._result import FitResult, record
from ._standardise import ACCURACY_MARGIN, in_standardised_coordinates
from ._steps import StopHook

__all__ = ["solve_lbfgs"]

#: Relative objective decrease below which L-BFGS-B stops; scikit-learn's
#: choice for its own lbfgs solver (64 machine epsilons).
FTOL = 64 * np.finfo(np.float64).eps


def solve_lbfgs(objective, coef0, *, tol=1e-4, max_iter=100, memory=10, stop=None,
                standardise=True):
    """Minimise a smooth objective with L-BFGS.

    With ``standardise`` (the default) it runs in standardised coordinates
    (centred, unit-scale features; see ``daskfit.solvers._standardise``)
    and stops when the max-abs gradient there is ``<= tol`` times its scale
    at zero, with a safety factor (``ACCURACY_MARGIN``, a tenth) so that the
    coefficients end at least as close to the optimum as scikit-learn's
    default lbfgs. Without, the max-abs gradient of the raw objective is compared
    with ``tol`` (SciPy's ``gtol``). Either way it also stops when the
    relative objective change is below ``FTOL`` (machine precision, which
    counts as converged, as in scikit-learn), or when
    ``stop(iteration, theta)`` (called at the start and after every
    iteration, e.g. early stopping) returns a reason: the callback then
    raises ``StopIteration``, which SciPy (>= 1.11) takes as "stop here".
    """
    if standardise:
        return in_standardised_coordinates(_lbfgs, objective, coef0, tol=tol, stop=stop,
                                           margin=ACCURACY_MARGIN, max_iter=max_iter,
                                           memory=memory)
    return _lbfgs(objective, coef0, tol=tol, max_iter=max_iter, memory=memory, stop=stop)


def _lbfgs(objective, coef0, *, tol, max_iter, memory, stop):
    history = []
    hook = StopHook(stop)

    def fun(theta):
        return objective.value_and_grad(theta)

    def callback(intermediate_result):
        theta = intermediate_result.x
        f, g = objective.value_and_grad(theta)  # cached: the point was just evaluated
        record(history, len(history), f, np.abs(g).max(), objective)
        if hook(len(history) - 1, theta) is not None:
            raise StopIteration

    theta0 = np.array(coef0, dtype=np.float64, copy=True)
    f0, g0 = objective.value_and_grad(theta0)
    record(history, 0, f0, np.abs(g0).max(), objective)
    if hook(0, theta0) is not None:
        # Stopped before the first step (e.g. a checkpoint's budget): no
        # iteration runs, the start point is the result.
        gmax = float(np.abs(g0).max())
        return FitResult(theta=theta0, loss=float(f0), grad_norm=gmax, n_iter=0,
                         passes=objective.passes, converged=gmax <= tol,
                         message=hook.reason, history=history, solver="lbfgs")
    res = scipy.optimize.minimize(
        fun, theta0, jac=True, method="L-BFGS-B",
        callback=callback,
        options={"maxiter": max_iter, "gtol": tol, "ftol": FTOL, "maxcor": memory},
    )
    f, g = objective.value_and_grad(res.x)
    gmax = float(np.abs(g).max())
    # An objective change below FTOL (64 ulps) is machine precision: SciPy
    # and scikit-learn call it converged, and so does this; running out of
    # iterations or a failed line search is not.
    converged = bool(res.success) and res.nit < max_iter or gmax <= tol
    n_iter, message = int(res.nit), str(res.message)
    if hook.stopped:
        n_iter, message = len(history) - 1, hook.reason
    return FitResult(theta=res.x, loss=float(f), grad_norm=gmax, n_iter=n_iter,
                     passes=objective.passes, converged=converged,
                     message=message, history=history, solver="lbfgs")
