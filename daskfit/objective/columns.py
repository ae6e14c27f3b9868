"""The objective of the model-parallel solvers, on column blocks of ``X``.

The same objective as :mod:`daskfit.objective.rows` (weighted mean loss plus
penalty), evaluated where ``X``'s column blocks live: coefficient block
``b_j`` stays with column block ``j`` and only scalars reach the client
(:mod:`daskfit.engine.columns`). The model-parallel solvers
(``"sharded-gd"``, ``"bcd"``) build their rounds through it; it implements
:class:`~daskfit.objective.contract.ColumnSolverObjective`, and
``daskfit.solvers.solve`` is the front door for them as for every solver.
"""

from __future__ import annotations

import uuid

import numpy as np

from .._data import ShardedData
from ..engine.columns import DEFAULT_SPLIT_EVERY, ShardedEngine, validating_pass
from ._costs import EngineCosts

__all__ = ["ColumnObjective", "MODEL_PARALLEL_LOSSES"]

#: The losses the column engine evaluates (binary logistic only).
MODEL_PARALLEL_LOSSES = ("squared", "logistic", "poisson")


class ColumnObjective(EngineCosts):
    """Weighted-mean loss plus penalty over the column blocks held by a column engine.

    Build it with :meth:`from_arrays` (or from a
    :class:`~daskfit.engine.columns.ShardedEngine`), then :meth:`start`,
    which runs the first (validating) pass.

    Parameters
    ----------
    engine : ShardedEngine
    loss : loss object from ``daskfit.model.losses``
        ``squared``, ``logistic`` (binary) or ``poisson``.
    penalty_rule : callable
        ``sum_of_weights -> Penalty`` (on the mean-loss scale).
    fit_intercept : bool
    """

    #: Solvers check that the objective's layout is theirs (``solve``).
    layout = "columns"

    def __init__(self, engine, loss, penalty_rule, fit_intercept=True):
        _check_loss(loss)
        self.engine = engine
        self.loss = loss
        self.penalty_rule = penalty_rule
        self.fit_intercept = bool(fit_intercept)
        self.first_pass = None

    @classmethod
    def from_arrays(cls, X, y, sample_weight=None, *, loss, penalty_rule, fit_intercept=True,
                    split_every=DEFAULT_SPLIT_EVERY, persist="auto", client=None):
        """The objective on Dask arrays chunked along rows and columns (known chunk sizes).

        ``loss`` is a loss object or its name; ``y`` (and ``sample_weight``)
        are aligned with ``X``'s row chunks. ``persist`` and ``client`` as
        for the row engine: ``X`` is read into cluster memory once when it fits.
        """
        from ..model.losses import LOSSES

        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"Unknown loss {loss!r}; choose from {sorted(LOSSES)}.")
            loss = LOSSES[loss]
        _check_loss(loss)
        data = ShardedData.from_arrays(X, y, sample_weight)
        engine = ShardedEngine(data, split_every=split_every, persist=persist, client=client)
        return cls(engine, loss, penalty_rule, fit_intercept)

    def start(self, needs="blocks"):
        """Run the first pass: validate the data, keep the per-block sums.

        Parameters
        ----------
        needs : {"blocks", "gram"}
            ``"gram"`` (``"bcd"``'s exact block solves of the squared loss)
            also keeps each block's Gram matrix; anything else the block sums.
        """
        gram = needs == "gram" and self.loss.is_quadratic
        self.first_pass = validating_pass(self.engine, self.loss, self.penalty_rule,
                                          self.fit_intercept, gram=gram)
        return self

    # -------------------------------------------------- facts of the first pass
    @property
    def data(self):
        return self.engine.data

    @property
    def n_features(self):
        return self.engine.data.n_features

    @property
    def n_params(self):
        return self.n_features + int(self.fit_intercept)

    classes = property(lambda self: self._first("classes"),
                       doc="The two class labels (binary logistic) or ``None``.")
    penalty = property(lambda self: self._first("penalty"),
                       doc="The penalty on the mean-loss scale (after the first pass).")
    sum_weights = property(lambda self: self._first("sum_weights"),
                           doc="Total sample weight (after the first pass).")
    n_samples = property(lambda self: self._first("n_samples"),
                         doc="Number of rows (after the first pass).")

    def _first(self, name):
        return None if self.first_pass is None else getattr(self.first_pass, name)

    # ------------------------------------------------------------- rounds
    def round(self, label):
        """A new round of block tasks (``Round``); its ``run`` counts the reads of ``X``."""
        return self.engine.round(label)

    def gather_blocks(self, vec):
        """The coefficient blocks concatenated on the client (after a fit only)."""
        return self.engine.gather_blocks(vec)

    def blocks_as_array(self, vec):
        """The blocks as one Dask array chunked like ``X``'s columns (empty ones too)."""
        import dask.array as da
        from dask.highlevelgraph import HighLevelGraph

        name = f"daskfit-coef-{uuid.uuid4().hex}"
        layer = {(name, j): key for j, key in enumerate(vec.keys)}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=vec.handles)
        return da.Array(graph, name, chunks=(self.data.col_chunks,), dtype=np.float64)

    # -------------------------------------------------------------- costs
    @property
    def rounds(self):
        """Rounds (graphs) run so far, the first one included."""
        return self.engine.rounds


def _check_loss(loss):
    if not loss.model_parallel:  # the loss says whether it has the closed forms needed
        raise ValueError(
            f"The model-parallel solvers support the squared, logistic (binary) and poisson "
            f"losses, not {loss.name!r}. Merge the column chunks (X.rechunk({{1: -1}})) and "
            "use solver='lbfgs' or 'newton'.")
