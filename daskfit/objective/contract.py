"""The solver contract: every member of an objective a solver may use.

A solver (``daskfit.solvers``) sees the data only through an objective.
:class:`SolverObjective` lists what a row-chunk objective offers -- the
row :class:`~daskfit.objective.rows.Objective` implements all of it -- and
:class:`ColumnSolverObjective` what the column-block objective of the
model-parallel solvers offers (:class:`~daskfit.objective.columns.ColumnObjective`).
``tests/test_solver_contract.py`` checks, by reading the solvers' source,
that they use no other member, and that both objectives implement their
protocol; ``daskfit.solvers.solve`` hands each solver the layout it needs
(the ``layout`` member). Adding a member a solver needs means adding it here first.

Costs are in *passes* over the data (one task per row chunk, merged by a
tree reduction). "No pass" means the client answers from what earlier passes
returned.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ColumnSolverObjective", "SolverObjective", "members"]


@runtime_checkable
class SolverObjective(Protocol):
    """``f(theta) = mean_w loss(y, X theta) + penalty(theta)`` over row chunks.

    ``theta`` is the packed parameter vector: per output (class) block the
    coefficients, then the intercept when ``fit_intercept``. The objective is
    *started* (its first, validating pass done) before a solver sees it.
    """

    # ---------------------------------------------------------- facts (no pass)
    @property
    def layout(self):
        """``"rows"``: ``solve`` gives this objective to the row-parallel solvers only."""

    @property
    def loss(self):
        """The loss object (``daskfit.model.losses``); its ``name`` says which."""

    @property
    def penalty(self):
        """The :class:`~daskfit.model.penalties.Penalty` on the mean-loss scale (``l1``, ``l2``)."""

    @property
    def fit_intercept(self):
        """Whether ``theta`` ends every output block with an (unpenalised) intercept."""

    @property
    def n_features(self):
        """Columns of ``X``."""

    @property
    def n_outputs(self):
        """Output blocks of ``theta``: 1, or the number of classes (multinomial)."""

    @property
    def n_params(self):
        """``len(theta)``: ``n_outputs * (n_features + fit_intercept)``."""

    @property
    def penalised(self):
        """Boolean mask over ``theta``: True for coefficients, False for intercepts."""

    @property
    def classes(self):
        """Sorted class labels (classification) or ``None``."""

    @property
    def sum_weights(self):
        """Total sample weight of the (training) rows."""

    @property
    def n_samples(self):
        """Number of (training and validation) rows."""

    @property
    def n_chunks(self):
        """Number of row chunks (tasks per pass)."""

    @property
    def holdout(self):
        """Early stopping's held-out rows, or ``None`` (then every row is in ``f``)."""

    @property
    def hessian_stride(self):
        """Rows of one block in this many feed the Hessian (1: all). Settable."""

    @property
    def start_hessian_stride(self):
        """The first pass's Hessian stride when it differs (a warm start's denser one), else None."""

    # ---------------------------------------------------------------- costs
    @property
    def passes(self):
        """Passes over the data so far, the first (validating) one included."""

    @property
    def bytes_communicated(self):
        """Estimated bytes sent between client and workers so far."""

    @property
    def persist_reason(self):
        """Why the data was (or was not) read into cluster memory once."""

    @property
    def persisted(self):
        """Whether the data was read into cluster memory once (else streamed every pass)."""

    @property
    def pass_log(self):
        """``(label, seconds)`` per pass so far."""

    # ------------------------------------------------ evaluations (one pass)
    def smooth_value(self, theta):
        """Mean loss + L2 part at ``theta``. One pass, none if ``theta`` was the last point."""

    def smooth_value_and_grad(self, theta):
        """``(f, g)`` of the smooth part (mean loss + L2). One pass, or cached."""

    def value_and_grad(self, theta):
        """``(f, g)`` of the whole objective; raises unless the penalty is smooth. One pass."""

    def value_grad_hess(self, theta):
        """``(f, g, H)``, the Hessian from the same pass; smooth penalty only. One pass."""

    def value(self, theta):
        """The whole objective, L1 part included. One pass, or cached."""

    def l1_value(self, theta):
        """The L1 part of the penalty at ``theta``. No pass."""

    def prox(self, v, step):
        """``prox_{step * L1 part}(v)``: soft-thresholding, intercepts untouched. No pass."""

    def require_smooth(self):
        """Raise ``ValueError`` (naming ``solver='proximal'``) if the penalty has an L1 part."""

    def hessian_null_basis(self):
        """Orthonormal directions the multinomial objective is flat along, or ``None``. No pass."""

    def cached_gradient(self, theta):
        """Mean-loss gradient (no penalty) at ``theta`` if the last pass computed it, else ``None``.

        No pass: lets a solver reuse the first pass's gradient at its start.
        """

    # -------------------------------------------------------- least squares
    def moments(self):
        """Centred weighted ``(sw, mean_x, mean_y, Sxx, Sxy, Syy)``. From the first pass, else one."""

    def qr_factor(self):
        """``(sw, mean, R)`` of the centred weighted ``[X, y]`` (tall-skinny QR). One pass."""

    def column_moments(self):
        """Weighted means and scales of the features. From the first pass when asked, else one."""

    def gram_columns(self, columns):
        """Centred moments of ``X[:, columns]`` (as :meth:`moments`). One pass."""

    # ------------------------------------------------- local SGD (one pass)
    def local_sgd_pass(self, spec):
        """Local SGD on every row chunk from ``spec.theta``, merged sums. One pass.

        ``spec`` is a :class:`~daskfit.kernels.sgd.LocalSGDSpec`; the merged
        dict holds the loss and gradient at ``spec.theta`` and the chunks'
        end points (see :func:`~daskfit.kernels.sgd.local_sgd_chunk`).
        """

    def local_sgd_as_completed(self, next_spec):
        """Local SGD per chunk task, yielded as each completes: ``(index, spec, result)``.

        ``next_spec(index)`` gives the chunk's next spec, or ``None`` to
        retire it; about one pass per ``n_chunks`` completed tasks. Close
        the iterator to cancel what is in flight.
        """


@runtime_checkable
class ColumnSolverObjective(Protocol):
    """The objective of the model-parallel solvers, on column blocks of ``X``.

    Coefficient blocks live on the cluster next to ``X``'s column blocks;
    a solver builds each pass as a :class:`~daskfit.engine.columns.Round`
    of block tasks and fetches scalars only. Started (validated) first.
    """

    @property
    def layout(self):
        """``"columns"``: ``solve`` gives this objective to the model-parallel solvers only."""

    @property
    def classes(self):
        """The two class labels (binary logistic) or ``None``. No pass."""

    @property
    def first_pass(self):
        """The validating pass's facts (:class:`~daskfit.engine.columns.Start`): loss,
        classes, penalty, sum of weights, constant model, per-block sums. No pass."""

    @property
    def data(self):
        """The :class:`~daskfit._data.ShardedData` (``n_blocks``, chunk sizes)."""

    def round(self, label):
        """A new :class:`~daskfit.engine.columns.Round`; each ``run`` of it reads
        the blocks it touches (counted in :attr:`passes`)."""

    def gather_blocks(self, vec):
        """The coefficient blocks of ``vec`` as one NumPy vector (after the fit). No pass."""

    def blocks_as_array(self, vec):
        """The coefficient blocks of ``vec`` as a Dask array chunked like ``X``'s columns."""

    @property
    def passes(self):
        """Reads of ``X`` so far (fractional for block reads), the first one included."""

    @property
    def bytes_communicated(self):
        """Estimated bytes sent between client and workers so far."""

    @property
    def rounds(self):
        """Rounds (graphs) run so far, the first one included."""

    @property
    def persist_reason(self):
        """Why ``X`` was (or was not) read into cluster memory once."""

    @property
    def persisted(self):
        """Whether ``X`` was read into cluster memory once (else streamed every pass)."""

    @property
    def pass_log(self):
        """``(label, ..., seconds)`` per pass, as the row engine's log."""


def members(protocol):
    """The names a protocol lists (its properties and methods), sorted."""
    return sorted(name for name in vars(protocol)
                  if not name.startswith("_") and name not in ("members",))
