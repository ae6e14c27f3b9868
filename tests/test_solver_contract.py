"""The solver contract: solvers use only what ``SolverObjective`` lists.

Read from the solvers' source (an AST scan), so a new member a solver
starts to use fails here until it is written down in the protocol, with
what it returns and what it costs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

import daskfit.solvers
from daskfit._data import ChunkedData
from daskfit.engine.rows import Engine
from daskfit.model.losses import LOSSES
from daskfit.model.penalties import Penalty
from daskfit.objective import Objective, SolverObjective
from daskfit.objective.contract import members

SOLVERS_DIR = Path(daskfit.solvers.__file__).parent
ROW_SOLVER_FILES = sorted(p for p in SOLVERS_DIR.glob("*.py") if p.name != "_sharded.py")


def _objective_members(tree):
    """Attribute names read or written on ``objective`` / ``self.objective``."""
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_objective(node.value):
            used.add(node.attr)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr") and node.args
                and _is_objective(node.args[0]) and isinstance(node.args[1], ast.Constant)):
            used.add(node.args[1].value)
    return used


def _is_objective(node):
    if isinstance(node, ast.Name):
        return node.id == "objective"
    return (isinstance(node, ast.Attribute) and node.attr == "objective"
            and isinstance(node.value, ast.Name) and node.value.id == "self")


@pytest.mark.parametrize("path", ROW_SOLVER_FILES, ids=lambda p: p.name)
def test_row_solvers_use_only_the_contract(path):
    used = _objective_members(ast.parse(path.read_text()))
    outside = sorted(used - set(members(SolverObjective)))
    assert not outside, f"{path.name} uses {outside}, which SolverObjective does not list"


def test_no_solver_reaches_past_the_objective_to_its_engine():
    for path in SOLVERS_DIR.glob("*.py"):
        assert "objective.engine" not in path.read_text(), path.name


def test_the_contract_documents_every_member():
    for name in members(SolverObjective):
        doc = getattr(SolverObjective, name).__doc__
        assert doc and doc.strip(), f"SolverObjective.{name} has no docstring"


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_the_row_objective_implements_the_contract(loss):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -1.0, 0.5] if loss == "squared" else (X[:, 0] > 0).astype(float)
    data = ChunkedData(da.from_array(X, chunks=(20, 3)), da.from_array(y, chunks=20), None,
                       is_lazy=True)
    objective = Objective(Engine(data), LOSSES[loss], lambda sw: Penalty(l2=0.1),
                          fit_intercept=True).start("grad")
    missing = [name for name in members(SolverObjective) if not hasattr(objective, name)]
    assert not missing
    assert isinstance(objective, SolverObjective)
    theta = np.zeros(objective.n_params)
    # The first pass's gradient at zero is free; elsewhere there is none yet.
    assert objective.cached_gradient(theta) is not None
    assert objective.cached_gradient(theta + 1.0) is None
    start_gradient = objective.cached_gradient(theta)
    passes = objective.passes
    assert objective.n_chunks == 3
    spec = daskfit.solvers._averaging.sgd_spec(
        objective, theta, epochs=1, steps=None, batch_size=None, learning_rate=None,
        schedule="constant", epochs_done=0.0, polyak=False, seed=(0, 0), mean=None,
        scale=None, anchor=None, anchor_grad=None, normalise=False,
        variance_reduction=False)
    result = objective.local_sgd_pass(spec)
    assert objective.passes == passes + 1
    # The local-SGD pass also returns the gradient at its start point.
    np.testing.assert_allclose(result["grad"] / objective.sum_weights, start_gradient)


def test_model_parallel_solvers_use_only_the_column_contract():
    from daskfit.objective import ColumnSolverObjective

    used = _objective_members(ast.parse((SOLVERS_DIR / "_sharded.py").read_text()))
    outside = sorted(used - set(members(ColumnSolverObjective)))
    assert not outside, f"_sharded.py uses {outside}, which ColumnSolverObjective does not list"
    for name in members(ColumnSolverObjective):
        assert getattr(ColumnSolverObjective, name).__doc__, name


def test_solve_is_the_front_door_for_every_registered_solver():
    """Every registered solver runs through ``solve``, model-parallel ones included."""
    from daskfit.objective import ColumnObjective, ColumnSolverObjective
    from daskfit.solvers import SOLVERS, FitResult, solve

    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + 1.0
    Xd, yd = da.from_array(X, chunks=(20, 2)), da.from_array(y, chunks=20)
    expected = np.linalg.lstsq(np.c_[X, np.ones(60)], y, rcond=None)[0]
    for name, info in SOLVERS.items():
        if info.model_parallel:
            objective = ColumnObjective.from_arrays(
                Xd, yd, loss="squared", penalty_rule=lambda sw: Penalty())
            objective.start(info.needs)
            assert isinstance(objective, ColumnSolverObjective)
            assert not [m for m in members(ColumnSolverObjective) if not hasattr(objective, m)]
        else:
            data = ChunkedData(Xd.rechunk({1: -1}), yd, None, is_lazy=True)
            objective = Objective(Engine(data), LOSSES["squared"], lambda sw: Penalty(),
                                  fit_intercept=True).start(info.needs)
        result = solve(name, objective, np.zeros(objective.n_params), tol=1e-8,
                       max_iter=2000)
        assert isinstance(result, FitResult) and result.persist_reason, name
        np.testing.assert_allclose(result.theta, expected, atol=1e-3, err_msg=name)
    with pytest.raises(ValueError, match="'lbfgs' runs on a rows objective"):
        solve("lbfgs", objective, np.zeros(objective.n_params))
