"""Solvers: plain NumPy on the client, one contract for all.

``solve(name, objective, coef0, **options) -> FitResult``. Each solver is one
entry in :data:`SOLVERS`; an entry says what the first pass must compute
(``needs``) and which losses and penalties it handles, so ``"auto"`` and the
common tests pick new solvers up without further wiring.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ._async import solve_async_sgd
from ._averaging import solve_averaging
from ._first_order import solve_gd, solve_proximal
from ._lbfgs import solve_lbfgs
from ._newton import hessian_stride, solve_newton
from ._normal import solve_normal
from ._result import FitResult
from ._sharded import fit_sharded
from ._warm_start import warm_start

__all__ = ["GRAM_MAX_FEATURES", "NEWTON_MAX_PARAMS", "SOLVERS", "STANDARDISED", "FitResult", "SolverInfo",
           "choose_solver", "fit_sharded", "hessian_stride", "solve", "warm_start"]


@dataclass(frozen=True)
class SolverInfo:
    name: str
    function: object
    needs: str  # what the first pass computes: "moments", "grad" or "hess"
    losses: tuple
    smooth_only: bool
    expected_passes: str
    #: Model-parallel solvers fit column-sharded data through
    #: ``fit_sharded`` instead of a row-chunk Objective.
    model_parallel: bool = False
    #: Iterative row-chunk solvers that take a ``stop(iteration, theta)``
    #: callback, so the estimators' early stopping can end them.
    early_stopping: bool = False

    def supports(self, loss_name, penalty_kind):
        if loss_name not in self.losses:
            return False
        return not (self.smooth_only and penalty_kind in ("l1", "elasticnet"))


_ALL = ("squared", "logistic", "multinomial", "poisson")
_SHARDED = ("squared", "logistic", "poisson")
SOLVERS = {
    s.name: s
    for s in (
        SolverInfo("normal", solve_normal, "moments", ("squared",), False,
                   "1 (2 if ill-conditioned)"),
        SolverInfo("newton", solve_newton, "hess", _ALL, True, "n_iter + 1",
                   early_stopping=True),
        SolverInfo("lbfgs", solve_lbfgs, "grad", _ALL, True, "function evaluations",
                   early_stopping=True),
        SolverInfo("gd", solve_gd, "grad", _ALL, True, "n_iter + 1 (x2 accelerated)",
                   early_stopping=True),
        SolverInfo("proximal", solve_proximal, "grad", _ALL, False,
                   "2 n_iter + 2 (squared loss: 2 per working set + 1, about 10)",
                   early_stopping=True),
        SolverInfo("averaging", solve_averaging, "grad", _ALL, False,
                   "n_iter + 1 (+1 when stopped by max_iter)"),
        SolverInfo("async-sgd", solve_async_sgd, "grad", _ALL, False,
                   "n_iter + objective checks + 1 (one per epoch of chunk tasks)"),
        SolverInfo("sharded-gd", fit_sharded, "", _SHARDED, False,
                   "2 per iteration (gradient blocks, then X d)", model_parallel=True),
        SolverInfo("bcd", fit_sharded, "", _SHARDED, False,
                   "about 2 per cycle over the column blocks", model_parallel=True),
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
    """Run solver ``name``; unknown options raise ``TypeError`` naming them."""
    if name not in SOLVERS or SOLVERS[name].model_parallel:
        row_parallel = sorted(n for n, i in SOLVERS.items() if not i.model_parallel)
        raise ValueError(f"Unknown solver {name!r} for a row-chunk objective; choose from "
                         f"{row_parallel} (model-parallel solvers run through fit_sharded).")
    function = SOLVERS[name].function
    allowed = [p for p in inspect.signature(function).parameters if p not in ("objective", "coef0")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"Solver {name!r} got unknown option(s) {unknown}; it accepts {sorted(allowed)}.")
    return function(objective, coef0, **options)
