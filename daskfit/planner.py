"""The planner: which parallel strategy and solver a fit should use, and why.

Three strategies, one choice per fit:

* **synchronous** (row-parallel): every iteration is one exact pass over the
  row chunks (normal equations, Newton, L-BFGS, gradient descent, FISTA).
  The default: exact, and on a cluster whose workers talk over a fast network
  a pass costs little more than reading the data.
* **parameter averaging** (data-parallel): each chunk runs local SGD and the
  client averages; far fewer communication rounds, an approximate optimum.
  Chosen when rounds are what is expensive: many workers.
* **model parallel** (feature-sharded): when X is chunked along columns and
  too wide for a whole row (or a p x p Gram matrix) per task, coefficients
  live with their column blocks.

``plan`` reads only metadata (shapes, chunks, cluster memory); it never
touches the data. ``solver="auto"`` in every estimator follows it, and the
fitted estimator keeps it as ``fit_plan_``. The planner is the one place that
chooses a solver (:func:`plan_for`, and :func:`replan_for_classes` once the
first pass has counted the classes); it reads estimators by their attributes
and imports none, so the estimators can import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .engine.rows import cluster_workers, current_client, memory_available, persist_decision
from .model.losses import LOSSES
from .solvers import GRAM_MAX_FEATURES, SOLVERS, choose_solver

__all__ = ["Plan", "plan", "plan_for", "replan_for_classes"]

#: Parameter averaging pays off when a round trip to every worker is what
#: dominates: from this many workers on, the planner prefers it for
#: iterative losses (least squares needs one pass anyway).
AVERAGING_MIN_WORKERS = 16

#: bcd moves a (block columns)^2 Gram or Hessian per task and block visit;
#: past this block width that costs as much as the data, and sharded-gd wins.
BCD_MAX_BLOCK_COLUMNS = 1000

#: Above this many features, a row of X (and a p x p Gram) no longer fits
#: comfortably in one task: column-chunked data goes model-parallel.
MODEL_PARALLEL_MIN_FEATURES = GRAM_MAX_FEATURES

#: Solvers whose kernels read dense chunks only (local SGD, column blocks):
#: sparse X is fitted by the row solvers, whose kernels never densify a chunk.
DENSE_ONLY = frozenset({"averaging", "async-sgd", "sharded-gd", "bcd"})

#: Solvers whose passes do not go through the row objective's kernels, so
#: they cannot weigh rows by class: ``class_weight`` excludes them.
NO_CLASS_WEIGHT = frozenset({"averaging", "async-sgd", "sharded-gd", "bcd"})
#: Solvers whose penalty is one scalar strength per part (local SGD, the
#: column engine's blocks): per-feature weights ``P1``/``P2`` exclude them.
NO_PENALTY_WEIGHTS = frozenset({"averaging", "async-sgd", "sharded-gd", "bcd"})

# A result: read, not built by users; its fields are its documented Attributes
# (numpydoc's PR01 would want them as constructor Parameters).
@dataclass
class Plan:  # numpydoc ignore=PR01
    """A strategy and solver for one fit, with the facts and reasons behind it.

    Attributes
    ----------
    strategy : str
        ``"synchronous"``, ``"parameter averaging"`` or ``"model parallel"``.
    solver : str
    expected_passes : str
        Passes over the data the solver is expected to make.
    persist : bool
        Whether the data is read into memory once before the first pass.
    memory_per_worker : float
        Estimated bytes per worker: its share of the persisted data plus the
        largest per-task working set.
    task_memory : float
        Estimated bytes one task works on: a row chunk (a block for the model
        parallel strategy) plus the partial sums it returns.
    reasons : list of str
        Why, in words.
    facts : dict
        What the plan was made from (shapes, chunks, memory, loss, penalty).
    """

    strategy: str
    solver: str
    expected_passes: str
    persist: bool
    memory_per_worker: float
    task_memory: float = math.nan
    reasons: list = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    def __str__(self):
        lines = [
            f"daskfit plan: {self.strategy} strategy, solver={self.solver!r}",
            f"  expected passes over the data: {self.expected_passes}",
            f"  data: {'persist once' if self.persist else 'stream every pass'}",
            f"  memory per worker: ~{_mib(self.memory_per_worker)} "
            f"(per task ~{_mib(self.task_memory)})",
            "  because:",
        ]
        lines += [f"    - {r}" for r in self.reasons]
        lines.append("  facts: " + ", ".join(f"{k}={v}" for k, v in self.facts.items()))
        return "\n".join(lines)

    def _repr_html_(self):
        import html

        rows = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        facts = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                        for k, v in self.facts.items())
        return (
            f"<div><b>daskfit plan</b>: {html.escape(self.strategy)} strategy, solver "
            f"<code>{html.escape(self.solver)}</code><br>expected passes: "
            f"{html.escape(self.expected_passes)}; data: "
            f"{'persist once' if self.persist else 'stream every pass'}; memory per worker "
            f"~{_mib(self.memory_per_worker)}<ul>{rows}</ul>"
            f"<details><summary>facts</summary><table>{facts}</table></details></div>"
        )


def _mib(nbytes):
    return "unknown" if not np.isfinite(nbytes) else f"{nbytes / 2**20:,.0f} MiB"


def plan_for(*, n_rows, n_features, row_chunks, col_chunks, itemsize, is_lazy, loss_name,
             penalty_kind, n_outputs, fit_intercept, solver="auto", persist="auto",
             client=None, max_block_columns=None, early_stopping=False, class_weight=False,
             penalty_weights=False, sparse=False, nbytes=None):
    """The plan from metadata alone (the estimators' entry point).

    With ``sparse`` (X's chunks are sparse matrices) the automatic choice is
    a row solver: never one in :data:`DENSE_ONLY` (column chunks are merged
    into whole sparse rows instead), and, as for dense data, Newton and the
    normal equations only while their dense ``p x p`` Hessian or Gram is
    small (``NEWTON_MAX_PARAMS``, ``GRAM_MAX_FEATURES``): wide sparse data
    (a one-hot column of 100,000 levels) gets L-BFGS. Asking for a solver
    in :data:`DENSE_ONLY` on sparse data is an error naming the fix.
    ``nbytes``, when given, is the size of the stored data (a sparse
    matrix's nonzeros) instead of ``n_rows * n_features * itemsize``.

    With ``early_stopping`` the automatic choice is a synchronous iterative
    solver (the validation score comes out of its passes): never the
    one-pass normal equations, parameter averaging or the model-parallel
    solvers, which have no per-iteration validation score. With
    ``class_weight`` it is a row-parallel solver (never one in
    :data:`NO_CLASS_WEIGHT`); with ``penalty_weights`` (``P1``/``P2``) one
    not in :data:`NO_PENALTY_WEIGHTS`.
    """
    row_only = class_weight or penalty_weights
    n_params = n_outputs * (n_features + int(fit_intercept))
    dense = n_rows * n_features * itemsize if np.isfinite(n_rows) else math.nan
    # A sparse matrix stores its nonzeros: ``nbytes`` when known, else unknown
    # (NaN) for the memory estimates, and the dense size, an upper bound, for
    # the persist decision (as the engine's, which cannot count them either).
    stored = (math.nan if nbytes is None else nbytes) if sparse else dense
    nbytes = dense if nbytes is None else nbytes
    if sparse and solver in DENSE_ONLY:
        raise ValueError(
            f"solver={solver!r} reads dense chunks only, but X's chunks are sparse. Use "
            "solver='auto' (or one of 'normal', 'newton', 'lbfgs', 'gd', 'proximal'): their "
            "kernels fit sparse chunks without densifying them. Model-parallel column "
            "sharding of sparse data is not supported.")
    n_workers = len(cluster_workers(client)) if client else 1
    reasons = []
    wide = n_features > MODEL_PARALLEL_MIN_FEATURES
    if solver != "auto":
        chosen = solver
        reasons.append(f"solver={solver!r} chosen by the user")
    elif early_stopping:
        chosen, why = choose_solver(loss_name, penalty_kind, n_features, n_params,
                                    early_stopping=True)
        reasons.append(why)
        if col_chunks > 1:
            reasons.append(f"X has {col_chunks} column chunks: they are merged into whole "
                           "rows, since early stopping needs a row-parallel solver")
    elif (col_chunks > 1 and wide and LOSSES[loss_name].model_parallel and not row_only
          and not sparse):
        block = max_block_columns or math.ceil(n_features / col_chunks)
        chosen = ("bcd" if LOSSES[loss_name].is_quadratic and block <= BCD_MAX_BLOCK_COLUMNS
                  else "sharded-gd")
        reasons.append(
            f"X has {col_chunks} column chunks and {n_features} features "
            f"(> {MODEL_PARALLEL_MIN_FEATURES}): whole rows and a p x p Gram matrix are "
            "too large per task, so coefficients stay with their column blocks")
        reasons.append(f"bcd for squared loss with column blocks of at most "
                       f"{BCD_MAX_BLOCK_COLUMNS} (exact block solves against the shared "
                       "residual); feature-sharded gradient descent otherwise")
    elif (n_workers >= AVERAGING_MIN_WORKERS and loss_name != "squared"
          and SOLVERS["averaging"].supports(loss_name, penalty_kind)
          and penalty_kind in ("none", "l2") and not row_only and not sparse):
        chosen = "averaging"
        reasons.append(
            f"{n_workers} workers (>= {AVERAGING_MIN_WORKERS}): a synchronous round trip to "
            "every worker dominates, and local SGD with weighted averaging needs far "
            "fewer rounds (its optimum is approximate, within about 1e-3)")
    else:
        chosen, why = choose_solver(loss_name, penalty_kind, n_features, n_params)
        reasons.append(why)
        if col_chunks > 1 and sparse:
            reasons.append(f"X has {col_chunks} column chunks of sparse matrices: they are "
                           "merged into whole sparse rows (cheap: a row holds its nonzeros "
                           "only), so the row-parallel solvers apply")
        elif col_chunks > 1:
            reasons.append(f"X has {col_chunks} column chunks but only {n_features} features: "
                           "they are merged into whole rows (cheap), so the row-parallel "
                           "solvers apply")
        if (n_workers < AVERAGING_MIN_WORKERS and loss_name != "squared"
                and SOLVERS["averaging"].supports(loss_name, penalty_kind)):
            reasons.append(f"{n_workers} worker(s): exact synchronous passes are cheap here; "
                           "parameter averaging would trade accuracy for rounds that "
                           "cost little")
    if sparse:
        reasons.append("sparse X: every pass reads each chunk's nonzeros (CSR) and never "
                       "densifies it; a dense p x p Hessian or Gram only for small p")
        if not np.isfinite(stored):
            reasons.append("sparse chunks do not say how many nonzeros they hold before a "
                           "pass: the persist decision uses the dense size, an upper bound "
                           "(pass persist=True if the nonzeros fit in memory)")
    if early_stopping:
        reasons.append("early stopping: a validation_fraction of the rows, drawn from a "
                       "random stream seeded by random_state at each row's index, is left "
                       "out of the objective and scored in the same passes (no extra pass)")
    # The strategy is a property of the solver: its registry entry says it.
    info = SOLVERS[chosen]
    strategy, expected = info.strategy, info.expected_passes
    passes_hint = 1 if chosen == "normal" else 2
    do_persist, persist_reason = persist_decision(persist, nbytes, is_lazy, client,
                                                  passes_hint)
    reasons.append(persist_reason)
    rows_per_chunk = (n_rows / row_chunks) if np.isfinite(n_rows) else math.nan
    if strategy == "model parallel":
        task_bytes = rows_per_chunk * math.ceil(n_features / col_chunks) * itemsize
    elif sparse:
        # A chunk's nonzeros, and a partial of p^2 floats only for a solver that
        # needs a Hessian or Gram (p floats for the gradient solvers).
        square = info is not None and info.needs in ("hess", "moments")
        task_bytes = stored / row_chunks + 8 * (n_params**2 if square else n_params)
    else:
        task_bytes = rows_per_chunk * n_features * itemsize + 8 * n_params**2
    share = ((stored if sparse else nbytes) / n_workers) if do_persist else 0.0
    facts = {
        "rows": "unknown" if not np.isfinite(n_rows) else int(n_rows),
        "features": n_features, "row_chunks": row_chunks, "column_chunks": col_chunks,
        "data": _mib(stored if sparse else nbytes), "workers": n_workers,
        "cluster_memory": _mib(memory_available(client)) if client else "local",
        "loss": loss_name, "penalty": penalty_kind, "parameters": n_params,
    }
    if sparse:
        facts["sparse"] = True
    return Plan(strategy=strategy, solver=chosen, expected_passes=expected,
                persist=do_persist, memory_per_worker=share + task_bytes,
                task_memory=task_bytes,
                reasons=reasons, facts=facts)


def replan_for_classes(plan, *, loss_name, penalty_kind, n_features, n_params, n_outputs,
                       early_stopping):
    """The solver for a fit whose first pass found ``n_outputs > 1`` classes.

    A classifier's plan assumes two classes (only the first pass counts
    them); with more, the multinomial model has ``n_params`` parameters and
    the choice is made again. ``plan`` is updated in place (its solver and a
    reason); returns ``(solver, reason)``.
    """
    chosen, why = choose_solver(loss_name, penalty_kind, n_features, n_params,
                                early_stopping=early_stopping)
    plan.solver, plan.strategy = chosen, SOLVERS[chosen].strategy
    plan.reasons.append(f"{n_outputs} classes found in the first pass: {why}")
    return chosen, why


#: What ``plan`` assumes when no estimator is given: ``LinearRegression()``'s
#: defaults (a test checks they agree), without importing the estimators.
_DEFAULT_ESTIMATOR = {"loss": "squared", "penalty_kind": "none", "fit_intercept": True,
                      "solver": "auto", "persist": "auto", "early_stopping": False,
                      "class_weight": False, "penalty_weights": False}


def _estimator_facts(estimator):
    """What the plan needs of an estimator, read from its attributes."""
    if estimator is None:
        return dict(_DEFAULT_ESTIMATOR)
    return {"loss": LOSSES[estimator._loss_name].name,
            "penalty_kind": estimator._penalty_rule()(1.0).kind,
            "fit_intercept": estimator.fit_intercept, "solver": estimator.solver,
            "persist": estimator.persist,
            "early_stopping": bool(getattr(estimator, "early_stopping", False)),
            "class_weight": getattr(estimator, "class_weight", None) is not None,
            "penalty_weights": not estimator._penalty_rule()(1.0).uniform}


def plan(X, y=None, estimator=None, client=None):
    """Say how daskfit would fit ``estimator`` on ``X``, without reading the data.

    Parameters
    ----------
    X : array-like, DataFrame, Dask array or Dask DataFrame
    y : ignored for the plan's shape; a classifier's class count is only
        known after the first pass, so the plan assumes two classes.
    estimator : daskfit estimator, default=LinearRegression()
    client : distributed.Client, optional
        Defaults to the current client.

    Returns
    -------
    Plan
        Prints as text and renders in Jupyter.

    Examples
    --------
    >>> import numpy as np, daskfit
    >>> p = daskfit.plan(np.zeros((1000, 20)), estimator=daskfit.LogisticRegression())
    >>> p.strategy, p.solver
    ('synchronous', 'newton')
    """
    import dask.array as da

    from ._data import is_dask_collection, is_sparse, stored_nbytes

    facts = _estimator_facts(estimator)
    sparse, nbytes = False, None
    client = client if client is not None else current_client()
    if is_dask_collection(X) and not isinstance(X, da.Array):
        n_rows, n_features = math.nan, len(X.columns)
        row_chunks, col_chunks, itemsize, lazy = X.npartitions, 1, 8, True
        block = n_features
    elif isinstance(X, da.Array):
        n_rows, n_features = X.shape
        row_chunks, col_chunks = X.numblocks
        itemsize, lazy = max(X.dtype.itemsize, 4), True
        block = max(X.chunks[1])
        sparse = is_sparse(X._meta)
    elif is_sparse(X):
        n_rows, n_features = X.shape
        row_chunks, col_chunks, itemsize, lazy = 1, 1, 8, False
        block = n_features
        sparse, nbytes = True, float(stored_nbytes(X))
    else:
        shape = np.shape(X)
        n_rows, n_features = shape[0], shape[1]
        row_chunks, col_chunks, itemsize, lazy = 1, 1, 8, False
        block = n_features
    return plan_for(n_rows=n_rows, n_features=n_features, row_chunks=row_chunks,
                    col_chunks=col_chunks, itemsize=itemsize, is_lazy=lazy,
                    loss_name=facts["loss"], penalty_kind=facts["penalty_kind"], n_outputs=1,
                    fit_intercept=facts["fit_intercept"], solver=facts["solver"],
                    persist=facts["persist"], client=client, max_block_columns=block,
                    early_stopping=facts["early_stopping"], class_weight=facts["class_weight"],
                    penalty_weights=facts["penalty_weights"],
                    sparse=sparse, nbytes=nbytes)
