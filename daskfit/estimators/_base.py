"""The shared anatomy of every daskfit estimator.

``__init__`` only stores keyword-only parameters; ``fit`` validates them and
the input, picks a solver, runs it through the engine and turns the
:class:`~daskfit.solvers.FitResult` into scikit-learn's fitted attributes.
Subclasses say which loss they use and how scikit-learn's parameters map
onto the mean-loss penalty.
"""

from __future__ import annotations

import warnings

import dask.array as da
from dask.base import tokenize
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from ..kernels.alignment import aligned_blocks, as_csr, rows_per_block
from .._data import as_chunked, is_dask_collection, is_sparse, scipy_sparse
from ..engine.rows import compute
from ..errors import DataError, ParameterError
from ..model import layout
from ._params import (Boolean, Integer, Options, RandomState, Real, Satisfies,
                      validate_parameters, verbosity)
from .._progress import reporting, say
from ..model.losses import LOSSES
from ..fit import CheckpointRequest, EarlyStoppingRequest, FitRequest, fit_model
from ..solvers import SOLVERS

__all__ = ["LinearModelBase"]


def draw_seed(random_state):
    """One seed for a fit's validation split, as scikit-learn draws its seeds."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class LinearModelBase(BaseEstimator):
    """Fit machinery shared by all estimators (not for direct use)."""

    _loss_name = "squared"
    _default_solver_options = {}

    #: What each ``__init__`` parameter accepts (see ``_params.py``); subclasses
    #: extend it with their own (``{**LinearModelBase._parameter_constraints, ...}``).
    _parameter_constraints = {
        "fit_intercept": Boolean(),
        "solver": Options(set(SOLVERS) | {"auto"}),
        "max_iter": Integer(low=0),
        "tol": Real(low=0),
        "persist": Options({"auto", True, False}),
        "split_every": Integer(low=2),
        "solver_options": Satisfies(lambda v: v is None or isinstance(v, dict),
                                    "a dict of options for the solver or None"),
        "early_stopping": Boolean(),
        "validation_fraction": Real(low=0, high=1, low_open=True, high_open=True),
        "n_iter_no_change": Integer(low=1),
        "random_state": RandomState(),
        "verbose": verbosity(),
    }

    # ------------------------------------------------------------ subclass API
    def _penalty_rule(self):
        """Return ``sum_weights -> Penalty`` for the current parameters."""
        raise NotImplementedError

    def _make_loss(self):
        """The loss this estimator fits (a parametrised loss is built from the parameters)."""
        return LOSSES[self._loss_name]

    def _check_parameter_combinations(self):
        """Checks across parameters, after each parameter passed its own (the table)."""
        if self.early_stopping and self.solver != "auto" and \
                not SOLVERS[self.solver].early_stopping:
            raise ParameterError(
                f"early_stopping=True needs an iterative solver that scores the validation "
                f"set at every iteration, but solver={self.solver!r} "
                + ("solves in one pass" if self.solver == "normal" else "does not support it")
                + f". Use solver='auto' or one of "
                f"{sorted(n for n, i in SOLVERS.items() if i.early_stopping)}, or "
                "early_stopping=False.", parameter="early_stopping", value=self.early_stopping)

    # --------------------------------------------------------------- fit
    def _validate_common_params(self):
        """Every parameter against the class's table, then the cross-parameter checks.

        Raises
        ------
        daskfit.errors.ParameterError
            Naming the first invalid parameter (a ``ValueError``).
        """
        validate_parameters(self)
        self._check_parameter_combinations()

    def _fit(self, X, y, sample_weight, *, classifier, checkpoint=None, offset=None):
        self._validate_common_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None.")
        # Every pass and iteration of the fit reports to this (``verbose``; see _progress).
        # A ``with`` block, not a helper: the ConvergenceWarning's stacklevel counts frames.
        with reporting(self.verbose, type(self).__name__):
            data = as_chunked(self, X, y, sample_weight, reset=True, y_numeric=not classifier,
                              offset=offset)
            outcome = fit_model(data, self._fit_request(checkpoint))
            self.fit_plan_ = outcome.plan
            self._warn_unless_converged(outcome)
            self._set_fitted(outcome)
            self._set_outcome(outcome)
            say(f"{type(self).__name__}: solver {outcome.solver} ({outcome.reason}); "
                f"{self.n_passes_:g} passes, {outcome.result.n_iter} iterations, "
                f"{'converged' if outcome.result.converged else 'not converged'} "
                f"({outcome.result.message})", detail=True)
        return self

    def _set_outcome(self, outcome):
        """The fitted attributes that describe how the fit went."""
        self.resumed_from_ = outcome.resumed_from
        self.validation_scores_ = outcome.validation_scores
        self.best_validation_score_ = outcome.best_validation_score
        self.validation_split_ = outcome.validation_split
        self.solver_, self.solver_reason_ = outcome.solver, outcome.reason
        self.persist_reason_ = outcome.persist_reason
        self.persisted_ = outcome.persisted
        self.fit_result_ = outcome.result
        self.n_passes_ = outcome.result.passes
        self.pass_log_ = outcome.pass_log
        if outcome.chunk_rows is not None:
            self.chunk_rows_ = outcome.chunk_rows

    def _fit_request(self, checkpoint):
        """This estimator's model and settings as a :class:`~daskfit.fit.FitRequest`."""
        early_stopping = None
        if self.early_stopping:
            early_stopping = EarlyStoppingRequest(
                fraction=float(self.validation_fraction),
                n_iter_no_change=self.n_iter_no_change, seed=draw_seed(self.random_state))
        return FitRequest(
            loss=self._make_loss(), penalty_rule=self._penalty_rule(),
            fit_intercept=self.fit_intercept, solver=self.solver, tol=self.tol,
            max_iter=self.max_iter, persist=self.persist, split_every=self.split_every,
            solver_options=self._solver_options(self.solver), early_stopping=early_stopping,
            checkpoint=self._checkpoint_request(checkpoint))

    def _checkpoint_request(self, checkpoint):
        """``checkpoint=`` (a directory, or a dict with 'directory' and 'every')."""
        if checkpoint is None:
            return None
        if isinstance(checkpoint, dict):
            unknown = sorted(set(checkpoint) - {"directory", "every"})
            if unknown or "directory" not in checkpoint:
                raise ParameterError("checkpoint must be a directory or a dict with "
                                     "'directory' and optionally 'every'; got keys "
                                     f"{sorted(checkpoint)}.", parameter="checkpoint",
                                     value=checkpoint)
            directory, every = checkpoint["directory"], checkpoint.get("every", 10)
        else:
            directory, every = checkpoint, 10
        identity = (self.get_params(deep=False), type(self).__name__)
        return CheckpointRequest(directory=directory, every=every, identity=identity)

    def _warn_unless_converged(self, outcome):
        result = outcome.result
        if not result.converged and not outcome.early_stopped:
            warnings.warn(
                f"{type(self).__name__} with solver={outcome.solver!r} did not converge in "
                f"{result.n_iter} iterations ({result.message}; gradient norm "
                f"{result.grad_norm:.3g} > tol={self.tol}). Increase max_iter"
                + (", or standardise the features." if outcome.solver == "newton" else
                   ", standardise the features, or try solver='newton'."),
                ConvergenceWarning,
                stacklevel=5,  # past fit() and the @placed wrapper: the caller
            )

    def _solver_options(self, name):
        """Extra keyword options for the solver (unknown ones raise in ``solve``)."""
        return dict(self.solver_options or {})

    def _set_fitted(self, outcome):
        """Fitted attributes from a :class:`~daskfit.fit.FitOutcome`."""
        K, fi = outcome.n_outputs, outcome.fit_intercept
        coef, intercept = layout.unpack(outcome.theta, outcome.n_features, K, fi)
        if K > 1 and fi:
            # Softmax is invariant to a common shift; report the centred one.
            intercept -= intercept.mean()
        self._store_coef(coef, intercept)
        self._set_fitted_n_iter(int(outcome.result.n_iter))

    def _set_fitted_n_iter(self, n_iter):
        self.n_iter_ = n_iter

    def _store_coef(self, coef, intercept):
        self.coef_ = coef[0]
        self.intercept_ = float(intercept[0])

    # ------------------------------------------------------------ predict
    def _raw_prediction(self, X, offset=None):
        """Linear predictor (plus ``offset``); NumPy in, NumPy out; Dask in, lazy Dask out."""
        check_is_fitted(self)
        coef = np.atleast_2d(self.coef_)  # (K, p)
        intercept = np.atleast_1d(self.intercept_)
        if is_dask_collection(X):
            data = as_chunked(self, X, reset=False, offset=offset)
            if data.X.numblocks[1] > 1:  # whole rows per block, as the row fits merge them
                data.X = data.X.rechunk({1: -1})
            raw = data.X.map_blocks(
                _checked_linear, coef.T, intercept,
                chunks=(data.X.chunks[0], (coef.shape[0],)), dtype=np.float64,
                name=f"daskfit-predict-{tokenize(data.X, coef, intercept)}",
            )
            return raw if data.offset is None else raw + data.offset[:, None]
        # Sparse input stays sparse (CSR); its stored values are checked for finiteness.
        Xn = validate_data(self, scipy_sparse(X), reset=False, dtype=[np.float64, np.float32],
                           accept_sparse="csr", accept_large_sparse=True)
        raw = np.asarray(Xn @ coef.T.astype(Xn.dtype)) + intercept
        return raw if offset is None else raw + in_memory_offset(offset, Xn.shape[0])[:, None]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True  # scipy.sparse X, never densified (kernels/chunks.py)
        return tags


def in_memory_offset(offset, n_rows):
    """``offset`` for ``n_rows`` in-memory rows: a finite float64 vector, or a clear error."""
    if is_dask_collection(offset):
        raise DataError("offset is a Dask collection but X is in memory: pass both in memory "
                         "or both as Dask collections with the same row chunks.")
    try:
        arr = np.asarray(offset, dtype=np.float64) if not np.isscalar(offset) else \
            np.full(n_rows, offset, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"offset must be numeric: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"offset should be a 1d array, got an array of shape {arr.shape} "
                         "instead.")
    if arr.shape[0] != n_rows:
        raise DataError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{n_rows}, {arr.shape[0]}] (X and offset).")
    if not np.isfinite(arr).all():
        kind = "NaN" if np.isnan(arr).any() else "infinity or a value too large"
        raise DataError(f"Input offset contains {kind}.")
    return arr


def _rows_per_block(X):
    return rows_per_block(X.shape[1], X.dtype.itemsize)


def _checked_linear(block, coef, intercept):
    if is_sparse(block):
        block = as_csr(block)  # never densified: products over the nonzeros
    if not np.isfinite(block.data if is_sparse(block) else block).all():
        raise ValueError("Input X contains NaN or infinity; predictions need finite features.")
    coef = coef.astype(block.dtype)
    out = np.empty((block.shape[0], coef.shape[1]), dtype=np.result_type(block, intercept))
    # Row blocks realigned when the chunk arrived misaligned (see daskfit.kernels.alignment).
    for _, rows, Xb in aligned_blocks(block):
        out[rows] = Xb @ coef
    return out + intercept


def ravel_output(raw):
    """(n, 1) -> (n,), for NumPy and Dask alike."""
    return raw[:, 0] if raw.shape[1] == 1 else raw


def weighted_mean(values, sample_weight):
    """Weighted mean of a NumPy or Dask vector; always a Python float."""
    if sample_weight is None:
        total, count = values.sum(), (values * 0 + 1).sum()
    else:
        total, count = (values * sample_weight).sum(), sample_weight.sum()
    if isinstance(total, da.Array):
        total, count = compute(total, count)
    return float(total / count)
