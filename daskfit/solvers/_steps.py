"""Step and stopping rules shared by the iterative solvers.

* :class:`StopHook` -- the ``stop(iteration, theta) -> reason or None``
  protocol (early stopping, checkpoints): called at iteration 0, before any
  step, and after every accepted step; the first reason ends the run and is
  its message. Every iterative solver that takes ``stop`` calls it through
  this class, so a reason at iteration 0 ends every solver alike.
* :func:`objective_stalled` -- the relative-objective-change rule of the
  stochastic solvers (parameter averaging, asynchronous SGD).
* :func:`roundoff_slack` and :func:`armijo_holds` -- the line searches'
  acceptance tests: an objective change within the round-off of ``f`` is
  no evidence either way, and Armijo's sufficient decrease
  ``f(x + t d) - f(x) <= c t slope`` (block coordinate descent; Newton's
  line search states the same rule).
* :func:`met_tol_while_refining` -- solvers that refine to ``margin * tol``
  (standardised first-order solvers, the model-parallel solvers) count a run
  cut short by ``max_iter`` as converged when ``tol`` itself holds.

The momentum sequence (:func:`~daskfit.solvers._first_order.fista_sequence`)
and the lasso coordinate sweep (:func:`~daskfit.solvers._coordinate.sweep`)
are shared the same way from their own modules.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ARMIJO", "ROUNDOFF_ULPS", "StopHook", "armijo_holds", "met_tol_while_refining",
           "objective_stalled", "roundoff_slack"]

#: Relative objective changes below this many ulps are round-off.
ROUNDOFF_ULPS = 16
#: Armijo's sufficient-decrease constant.
ARMIJO = 1e-4


def roundoff_slack(f, ulps=ROUNDOFF_ULPS):
    """``ulps`` machine epsilons of ``max(|f|, 1)``: changes of ``f`` this small are round-off."""
    return ulps * np.finfo(np.float64).eps * max(abs(f), 1.0)


def armijo_holds(change, step, slope, allow=0.0, c=ARMIJO):
    """Armijo's sufficient decrease: ``change <= c * step * slope + allow``.

    ``change`` is ``F(x + step d) - F(x)``, ``slope`` the directional
    derivative (or its model, negative for a descent direction) and
    ``allow`` the round-off tolerance of the comparison.
    """
    return change <= c * step * slope + allow


class StopHook:
    """A caller's ``stop(iteration, theta)`` callback, or none, called the one way.

    Parameters
    ----------
    stop : callable or None
        ``stop(iteration, theta) -> reason or None``.
    transform : callable, optional
        Maps the solver's iterate to the caller's ``theta`` (standardised
        coordinates back to raw ones) before ``stop`` sees it.

    Attributes
    ----------
    reason : str or None
        The first reason ``stop`` gave; the run ends with it.
    """

    def __init__(self, stop=None, *, transform=None):
        self._stop, self._transform = stop, transform
        self.reason = None

    @property
    def active(self):
        """Whether there is a callback at all."""
        return self._stop is not None

    @property
    def stopped(self):
        """Whether the callback has ended the run."""
        return self.reason is not None

    def __call__(self, iteration, theta):
        """Call the hook at ``iteration`` (0: the start); its reason, or ``None``."""
        if self._stop is None:
            return None
        theta = np.asarray(theta, dtype=np.float64)
        reason = self._stop(iteration, theta if self._transform is None
                            else self._transform(theta))
        if reason is not None and self.reason is None:
            self.reason = reason
        return reason


def objective_stalled(previous_f, f, tol):
    """``|f_prev - f| <= max(tol |f|, round-off)``: the objective has stopped moving.

    ``previous_f`` may be ``None`` (the first evaluation): not stalled.
    """
    if previous_f is None:
        return False
    roundoff = ROUNDOFF_ULPS * np.finfo(np.float64).eps * abs(f)
    return abs(previous_f - f) <= max(tol * abs(f), roundoff)


def met_tol_while_refining(result, tol, margin, stopped=False):
    """Mark ``result`` converged when it ran out refining to ``margin * tol`` with ``tol`` met.

    The margin is a refinement, not the rule: ``tol`` itself holds, only the
    extra accuracy ran out of iterations (no warning where there was none).
    A run ended by a stop hook (``stopped``) is left as it is.
    """
    if not result.converged and not stopped and result.grad_norm <= tol:
        result.converged = True
        result.message = (f"gradient below tol ({result.message} while refining to "
                          f"{margin} tol)")
    return result
