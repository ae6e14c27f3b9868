"""Solvers: plain NumPy on the client, one contract for all.

``solve(name, objective, coef0, **options) -> FitResult`` is the one front
door for every solver: row-parallel ones take a row objective, the
model-parallel ones (``"sharded-gd"``, ``"bcd"``) a column objective
(``daskfit.objective.columns.ColumnObjective``). Each solver is one
entry in :data:`SOLVERS`; an entry says what the first pass must compute
(``needs``) and which losses and penalties it handles, so ``"auto"`` and the
common tests pick new solvers up without further wiring. An entry also
carries the solver's parallel ``strategy`` and what its ``tol`` means.

What ``tol`` means (``SolverInfo.tol``; default ``1e-4``, and every default
rule reaches at least scikit-learn's default accuracy, see
``tests/test_accuracy.py``), by family:

* direct -- ``normal``: direct solve, exact; with an L1 part, coordinate
  descent until the largest relative coefficient change and the optimality
  violation are <= tol.
* Newton -- ``newton``: max-abs gradient <= tol or Newton decrement <= tol**2,
  then one final Newton step.
* relative gradient -- ``lbfgs``, ``gd``: max-abs gradient in standardised
  coordinates <= tol / 10 times its value at zero (standardise=False: absolute
  max-abs gradient <= tol); ``proximal``: squared loss + L1: duality gap <=
  tol var(y); otherwise gradient mapping in standardised coordinates <= tol
  times its value at zero.
* objective change -- ``averaging``: relative objective change between
  averages, or max-abs (sub)gradient, <= tol; ``async-sgd``: relative
  objective change between evaluations, or max-abs (sub)gradient, <= tol.
* absolute gradient -- ``sharded-gd``: max-abs (proximal) gradient <= tol /
  10, absolute; ``bcd``: max-abs (sub)gradient of every block over a cycle <=
  tol / 10, absolute.

Where a rule stops at ``tol / 10`` it refines: a run cut short by
``max_iter`` with ``tol`` itself met counts as converged
(:func:`~daskfit.solvers._steps.met_tol_while_refining`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..model.losses import LOSSES
from ._async import solve_async_sgd
from ._averaging import solve_averaging
from ._first_order import solve_gd, solve_proximal
from ._lbfgs import solve_lbfgs
from ._newton import hessian_stride, solve_newton
from ._normal import solve_normal
from ._result import FitResult, check_options
from ._sharded import solve_bcd, solve_sharded_gd
from ._warm_start import warm_start

__all__ = ["GRAM_MAX_FEATURES", "NEWTON_MAX_PARAMS", "SOLVERS", "STANDARDISED", "STRATEGIES", "FitResult", "SolverInfo",
           "choose_solver", "hessian_stride", "solve", "warm_start"]


#: The parallel strategies a solver can run (see ``daskfit.planner``).
STRATEGIES = ("synchronous", "parameter averaging", "parameter averaging (asynchronous)",
              "model parallel")


@dataclass(frozen=True)
class SolverInfo:
    name: str
    function: object
    #: What the first pass computes: "moments", "grad" or "hess" (row
    #: objectives), "blocks" or "gram" (column objectives).
    needs: str
    #: ``losses(loss) -> bool``: which losses the solver fits, asked of the
    #: loss's own facts, so a newly registered loss needs no edit here.
    losses: object
    smooth_only: bool
    expected_passes: str
    #: The parallel strategy the solver runs (``STRATEGIES``): what the
    #: planner reports in ``fit_plan_.strategy``.
    strategy: str
    #: What ``tol`` means for this solver, in one line (the docs' table).
    tol: str
    #: Model-parallel solvers take a column objective
    #: (``daskfit.objective.columns.ColumnObjective``) instead of a row one.
    model_parallel: bool = False
    #: Iterative row-chunk solvers that take a ``stop(iteration, theta)``
    #: callback, so the estimators' early stopping can end them.
    early_stopping: bool = False

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Solver {self.name!r}: unknown strategy {self.strategy!r}; "
                             f"choose from {STRATEGIES}.")

    def supports(self, loss_name, penalty_kind):
        loss = LOSSES.get(loss_name)
        if loss is None or not self.losses(loss):
            return False
        return not (self.smooth_only and penalty_kind in ("l1", "elasticnet"))

    def loss_names(self):
        """The registered losses this solver fits."""
        return tuple(name for name, loss in LOSSES.items() if self.losses(loss))


_SYNC, _MODEL_PARALLEL = "synchronous", "model parallel"
_STANDARDISED_TOL = ("max-abs gradient in standardised coordinates <= tol / 10 times its value "
                     "at zero (standardise=False: absolute max-abs gradient <= tol)")


def _ROWS(loss):
    """The exact row solvers need only the loss's value and derivatives."""
    return True


def _ALL(loss):
    """Local SGD needs a step size: a curvature bound, global or near the start.

    Gamma and Tweedie give none (their curvature is unbounded with no
    closed-form bound), so only the exact row solvers fit them.
    """
    return loss.supports_local_sgd


def _SHARDED(loss):
    """The column-sharded solvers need the loss's closed forms."""
    return loss.model_parallel


def _QUADRATIC(loss):
    return loss.is_quadratic

SOLVERS = {
    s.name: s
    for s in (
        SolverInfo("normal", solve_normal, "moments", _QUADRATIC, False,
                   "1 (2 if ill-conditioned)", _SYNC,
                   "direct solve, exact; with an L1 part, coordinate descent until the largest "
                   "relative coefficient change and the optimality violation are <= tol"),
        SolverInfo("newton", solve_newton, "hess", _ROWS, True, "n_iter + 1", _SYNC,
                   "max-abs gradient <= tol or Newton decrement <= tol**2, then one final "
                   "Newton step", early_stopping=True),
        SolverInfo("lbfgs", solve_lbfgs, "grad", _ROWS, True, "function evaluations", _SYNC,
                   _STANDARDISED_TOL, early_stopping=True),
        SolverInfo("gd", solve_gd, "grad", _ROWS, True,
                   "n_iter + 1 + rejected trials (x2 accelerated)", _SYNC,
                   _STANDARDISED_TOL, early_stopping=True),
        SolverInfo("proximal", solve_proximal, "grad", _ROWS, False,
                   "2 n_iter + 2 (squared loss: 2 per working set + 1, about 10)", _SYNC,
                   "squared loss + L1: duality gap <= tol var(y); otherwise gradient mapping "
                   "in standardised coordinates <= tol times its value at zero",
                   early_stopping=True),
        SolverInfo("averaging", solve_averaging, "grad", _ALL, False,
                   "n_iter + 1 (+1 when stopped by max_iter)", "parameter averaging",
                   "relative objective change between averages, or max-abs (sub)gradient, "
                   "<= tol"),
        SolverInfo("async-sgd", solve_async_sgd, "grad", _ALL, False,
                   "n_iter + objective checks + 1 (one per epoch of chunk tasks)",
                   "parameter averaging (asynchronous)",
                   "relative objective change between evaluations, or max-abs (sub)gradient, "
                   "<= tol"),
        SolverInfo("sharded-gd", solve_sharded_gd, "blocks", _SHARDED, False,
                   "2 per iteration (gradient blocks, then X d)", _MODEL_PARALLEL,
                   "max-abs (proximal) gradient <= tol / 10, absolute", model_parallel=True),
        SolverInfo("bcd", solve_bcd, "gram", _SHARDED, False,
                   "about 2 per cycle over the column blocks", _MODEL_PARALLEL,
                   "max-abs (sub)gradient of every block over a cycle <= tol / 10, absolute",
                   model_parallel=True),
    )
}

#: Solvers that iterate in standardised coordinates unless
#: ``solver_options={"standardise": False}``: the fit's first pass then also
#: computes the feature means and scales (see ``_standardise``).
STANDARDISED = frozenset({"lbfgs", "gd", "proximal"})

#: Above this many parameters the per-pass Hessian (n p^2 flops, p^2 bytes
#: per task) costs more than the handful of extra passes L-BFGS needs.
NEWTON_MAX_PARAMS = 400
#: The Gram matrix for lasso coordinate descent is p^2 floats per task.
GRAM_MAX_FEATURES = 4000


def choose_solver(loss_name, penalty_kind, n_features, n_params, early_stopping=False):
    """Pick a solver from loss, penalty and shape; return ``(name, reason)``.

    With ``early_stopping`` the solver must be iterative, and one whose
    iterates approach the training optimum gradually, so that the validation
    score has something to stop: L-BFGS (FISTA with an L1 part). The normal
    equations reach the optimum in one pass and Newton in a handful of
    steps, which would leave early stopping nothing to do.
    """
    if early_stopping:
        if penalty_kind in ("l1", "elasticnet"):
            return "proximal", ("early_stopping=True with an L1 part: accelerated proximal "
                                "gradient, one validation score per iteration")
        return "lbfgs", ("early_stopping=True: L-BFGS approaches the training optimum "
                         "gradually, so the validation score (from the same passes) can stop "
                         "it; the normal equations and Newton jump to it in one or a few steps")
    if loss_name == "squared":
        if n_features <= GRAM_MAX_FEATURES:
            why = ("squared loss: one pass for X'X and X'y, then a client-side "
                   + ("Cholesky solve" if penalty_kind in ("none", "l2")
                      else "coordinate descent on the Gram matrix"))
            return "normal", why
        centred = ("in standardised coordinates (features centred and scaled implicitly, "
                   "no extra pass), stopping relative to the problem's scale")
        if penalty_kind in ("l1", "elasticnet"):
            return "proximal", (f"{n_features} features: Gram too large for all of them; "
                                "working sets (Gram of a few hundred columns, coordinate "
                                "descent on the client) until the duality gap is "
                                "scikit-learn's")
        return "lbfgs", f"{n_features} features: Gram too large, L-BFGS {centred}"
    if penalty_kind in ("l1", "elasticnet"):
        return "proximal", f"{loss_name} loss with an L1 part: accelerated proximal gradient"
    if n_params <= NEWTON_MAX_PARAMS:
        return "newton", (f"{loss_name} loss, {n_params} parameters: Newton converges in a "
                          "handful of passes with the Hessian from the same pass")
    return "lbfgs", (f"{loss_name} loss, {n_params} parameters > {NEWTON_MAX_PARAMS}: the "
                     "Hessian is too costly per pass, L-BFGS instead")


def solve(name, objective, coef0, **options):
    """Run solver ``name`` on a started objective: the one front door for every solver.

    Parameters
    ----------
    name : str
        A key of :data:`SOLVERS`.
    objective : SolverObjective or ColumnSolverObjective
        Started with ``SOLVERS[name].needs``: a row objective
        (``daskfit.objective.Objective``), or a column objective
        (``daskfit.objective.columns.ColumnObjective``) for the
        model-parallel solvers.
    coef0 : ndarray of shape (n_params,)
    **options
        The solver's keyword options (``tol``, ``max_iter``, ...); unknown
        ones raise ``TypeError`` naming them.

    Returns
    -------
    FitResult
        With the objective's ``classes``, ``persist_reason``, ``persisted`` and ``pass_log``.
    """
    if name not in SOLVERS:
        raise ValueError(f"Unknown solver {name!r}; choose from {sorted(SOLVERS)}.")
    info = SOLVERS[name]
    allowed = [p for p in inspect.signature(info.function).parameters
               if p not in ("objective", "coef0")]
    check_options(name, options, allowed)
    layout = "columns" if info.model_parallel else "rows"
    if objective.layout != layout:
        fitting = sorted(n for n, i in SOLVERS.items()
                         if i.model_parallel == (objective.layout == "columns"))
        raise ValueError(
            f"Solver {name!r} runs on a {layout} objective, but this objective holds X by "
            f"{objective.layout}; choose from {fitting}, or build the objective that "
            f"{name!r} needs.")
    result = info.function(objective, coef0, **options)
    result.classes = objective.classes
    result.persist_reason = objective.persist_reason
    result.persisted = objective.persisted
    result.pass_log = list(objective.pass_log)
    return result
