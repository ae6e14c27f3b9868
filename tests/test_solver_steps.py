"""The shared step and stopping rules of the iterative solvers (``solvers/_steps.py``)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from daskfit._data import ChunkedData
from daskfit.engine.rows import Engine
from daskfit.model.losses import LOSSES
from daskfit.model.penalties import Penalty
from daskfit.objective import Objective
from daskfit.solvers import SOLVERS, FitResult, solve
from daskfit.solvers._steps import StopHook, met_tol_while_refining, objective_stalled


def _objective(l1=0.0):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 4)) + 0.5
    y = (X @ [1.0, -1.0, 0.5, 0.0] + rng.normal(size=80) > 0.5).astype(float)
    data = ChunkedData(da.from_array(X, chunks=(40, 4)), da.from_array(y, chunks=40), None,
                       is_lazy=True)
    objective = Objective(Engine(data), LOSSES["logistic"],
                          lambda sw: Penalty(l1=l1, l2=0.01), fit_intercept=True)
    return objective.start("hess", column_moments=True)


@pytest.mark.parametrize("name,options", [
    ("lbfgs", {}), ("lbfgs", {"standardise": False}), ("gd", {}), ("newton", {}),
    ("proximal", {}),
])
def test_a_reason_at_iteration_zero_ends_every_solver_before_its_first_step(name, options):
    """Regression: lbfgs computed the iteration-0 reason and then ran anyway."""
    assert SOLVERS[name].early_stopping  # the solvers that take a stop hook
    objective = _objective(l1=0.01 if name == "proximal" else 0.0)
    calls = []

    def stop(iteration, theta):
        calls.append(iteration)
        return "budget spent"

    theta0 = np.zeros(objective.n_params)
    passes = objective.passes
    result = solve(name, objective, theta0, stop=stop, **options)
    assert calls == [0]
    assert result.n_iter == 0 and result.message.startswith("budget spent")
    np.testing.assert_array_equal(result.theta, theta0)
    assert objective.passes == passes  # the start point was evaluated by the first pass


def test_stop_hook_sees_raw_coefficients_and_keeps_the_first_reason():
    seen = []
    hook = StopHook(lambda i, theta: seen.append((i, theta.copy())) or ("stop" if i else None),
                    transform=lambda phi: 2 * phi)
    assert hook.active and not hook.stopped
    assert hook(0, np.ones(2)) is None and not hook.stopped
    assert hook(1, np.ones(2)) == "stop" and hook.stopped and hook.reason == "stop"
    np.testing.assert_array_equal(seen[1][1], [2.0, 2.0])
    silent = StopHook(None)
    assert not silent.active and silent(0, np.ones(2)) is None and not silent.stopped


def test_objective_stalled_is_relative_with_a_roundoff_floor():
    assert not objective_stalled(None, 1.0, 1e-4)
    assert objective_stalled(1.0 + 5e-5, 1.0, 1e-4)
    assert not objective_stalled(1.0 + 5e-4, 1.0, 1e-4)
    assert objective_stalled(1.0 + 1e-16, 1.0, 0.0)  # tol 0: round-off decides
    assert not objective_stalled(1.0 + 1e-12, 1.0, 0.0)


def test_met_tol_while_refining_only_when_tol_holds_and_no_hook_stopped():
    def result(grad_norm):
        return FitResult(theta=np.zeros(1), loss=0.0, grad_norm=grad_norm, n_iter=5, passes=6,
                         converged=False, message="max_iter reached")

    assert met_tol_while_refining(result(0.5e-4), 1e-4, 0.1).converged
    assert not met_tol_while_refining(result(2e-4), 1e-4, 0.1).converged
    assert not met_tol_while_refining(result(0.5e-4), 1e-4, 0.1, stopped=True).converged


def test_every_solver_says_what_tol_means_in_the_docs():
    """One line per solver in the registry, the same line in both docs."""
    from pathlib import Path

    import daskfit.solvers

    guide_page = Path(__file__).parents[1] / "docs" / "guide" / "solvers.md"
    guide = " ".join(guide_page.read_text().split())
    package_doc = " ".join(daskfit.solvers.__doc__.split())
    for name, info in SOLVERS.items():
        line = " ".join(info.tol.split())
        assert line and "tol" in line, name
        assert line in package_doc, f"{name}'s tol meaning is not in the solvers docstring"
        assert line in guide, f"{name}'s tol meaning is not in docs/guide/solvers.md's tol table"


def test_armijo_and_roundoff_slack():
    from daskfit.solvers._steps import ARMIJO, armijo_holds, roundoff_slack

    eps = np.finfo(np.float64).eps
    assert roundoff_slack(0.0) == 16 * eps and roundoff_slack(-1e6) == 16 * eps * 1e6
    # Descent direction with slope -1: a decrease of c * step is just enough.
    assert armijo_holds(-ARMIJO * 0.5, 0.5, -1.0)
    assert not armijo_holds(-ARMIJO * 0.25, 0.5, -1.0)
    assert armijo_holds(1e-20, 0.5, -1.0, allow=1.0)  # within round-off: accepted
    assert not armijo_holds(1e-3, 1.0, -1.0)  # an increase is rejected
