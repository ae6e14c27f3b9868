"""The shared anatomy of every daskfit estimator.

``__init__`` only stores keyword-only parameters; ``fit`` validates them and
the input, picks a solver, runs it through the engine and turns the
:class:`~daskfit.solvers.FitResult` into scikit-learn's fitted attributes.
Subclasses say which loss they use and how scikit-learn's parameters map
onto the mean-loss penalty.
"""

from __future__ import annotations

import numbers
import warnings

import dask.array as da
from dask.base import tokenize
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from ..kernels.alignment import aligned_blocks, rows_per_block
from .._checkpoint import CheckpointMismatch, Checkpointer, fingerprint
from .._data import as_chunked, is_dask_collection
from ..engine.rows import Engine, compute, current_client
from ..kernels.holdout import SCORE_OF_LOSS, EarlyStopping, Holdout, offset_runs
from ..planner import plan_for, replan_for_classes
from ..model.losses import LOSSES
from ..objective import Objective
from ..solvers import SOLVERS, STANDARDISED, fit_sharded, hessian_stride, solve, warm_start

__all__ = ["LinearModelBase", "check_param"]


def check_param(name, value, *, kind, low=None, high=None, low_open=False, high_open=False,
                options=None, allow_none=False):
    """Raise a ``ValueError`` naming the parameter, the expectation and the value."""
    if value is None and allow_none:
        return
    if options is not None:
        if value not in options:
            raise ValueError(
                f"The {name!r} parameter must be one of {sorted(options, key=str)}; got {value!r}.")
        return
    ok_type = {
        "int": isinstance(value, numbers.Integral) and not isinstance(value, bool),
        "real": isinstance(value, numbers.Real) and not isinstance(value, bool),
        "bool": isinstance(value, (bool, np.bool_)),
    }[kind]
    if not ok_type:
        raise ValueError(f"The {name!r} parameter must be of type {kind}; got {value!r}.")
    if kind in ("int", "real"):
        if not np.isfinite(value) and not (high is None and value == np.inf and name == "C"):
            raise ValueError(f"The {name!r} parameter must be finite; got {value!r}.")
        if low is not None and (value < low or (low_open and value == low)):
            bound = ">" if low_open else ">="
            raise ValueError(f"The {name!r} parameter must be {bound} {low}; got {value!r}.")
        if high is not None and (value > high or (high_open and value == high)):
            bound = "<" if high_open else "<="
            raise ValueError(f"The {name!r} parameter must be {bound} {high}; got {value!r}.")


def check_random_state_param(value):
    """``random_state``: None, an int in [0, 2**32 - 1] or a ``RandomState``."""
    ok = (value is None or isinstance(value, np.random.RandomState)
          or (isinstance(value, numbers.Integral) and not isinstance(value, bool)
              and 0 <= value < 2**32))
    if not ok:
        raise ValueError("The 'random_state' parameter must be None, an int in "
                         f"[0, 2**32 - 1] or a numpy.random.RandomState; got {value!r}.")


def draw_seed(random_state):
    """One seed for a fit's validation split, as scikit-learn draws its seeds."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class LinearModelBase(BaseEstimator):
    """Fit machinery shared by all estimators (not for direct use)."""

    _loss_name = "squared"
    _default_solver_options = {}

    # ------------------------------------------------------------ subclass API
    def _penalty_rule(self):
        """Return ``sum_weights -> Penalty`` for the current parameters."""
        raise NotImplementedError

    def _validate_own_params(self):
        """Check the subclass's own hyper-parameters."""

    # --------------------------------------------------------------- fit
    def _validate_common_params(self):
        check_param("fit_intercept", self.fit_intercept, kind="bool")
        check_param("solver", self.solver, kind="str", options=set(SOLVERS) | {"auto"})
        check_param("max_iter", self.max_iter, kind="int", low=0)
        check_param("tol", self.tol, kind="real", low=0)
        check_param("persist", self.persist, kind="str", options={"auto", True, False})
        check_param("split_every", self.split_every, kind="int", low=2)
        if self.solver_options is not None and not isinstance(self.solver_options, dict):
            raise ValueError("The 'solver_options' parameter must be a dict of options for "
                             f"the solver or None; got {self.solver_options!r}.")
        check_param("early_stopping", self.early_stopping, kind="bool")
        check_param("validation_fraction", self.validation_fraction, kind="real", low=0,
                    low_open=True, high=1, high_open=True)
        check_param("n_iter_no_change", self.n_iter_no_change, kind="int", low=1)
        check_random_state_param(self.random_state)
        if self.early_stopping and self.solver != "auto" and \
                not SOLVERS[self.solver].early_stopping:
            raise ValueError(
                f"early_stopping=True needs an iterative solver that scores the validation "
                f"set at every iteration, but solver={self.solver!r} "
                + ("solves in one pass" if self.solver == "normal" else "does not support it")
                + f". Use solver='auto' or one of "
                f"{sorted(n for n, i in SOLVERS.items() if i.early_stopping)}, or "
                "early_stopping=False.")
        self._validate_own_params()

    def _fit(self, X, y, sample_weight, *, classifier, checkpoint=None):
        self._validate_common_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None.")
        data = as_chunked(self, X, y, sample_weight, reset=True, y_numeric=not classifier)
        penalty_rule = self._penalty_rule()
        penalty_kind = penalty_rule(1.0).kind
        loss = LOSSES[self._loss_name]
        p = data.n_features
        guess_params = p + int(self.fit_intercept)
        if self.solver != "auto" and not SOLVERS[self.solver].supports(loss.name, penalty_kind):
            raise ValueError(
                f"solver={self.solver!r} does not support the {loss.name} loss with a "
                f"{penalty_kind} penalty; use one of "
                f"{sorted(s for s, i in SOLVERS.items() if i.supports(loss.name, penalty_kind))}."
            )
        plan = plan_for(
            n_rows=data.X.shape[0], n_features=p, row_chunks=data.X.numblocks[0],
            col_chunks=data.X.numblocks[1], itemsize=data.X.dtype.itemsize,
            is_lazy=data.is_lazy, loss_name=loss.name, penalty_kind=penalty_kind,
            n_outputs=1, fit_intercept=self.fit_intercept, solver=self.solver,
            persist=self.persist, client=current_client(),
            max_block_columns=max(data.X.chunks[1]), early_stopping=self.early_stopping)
        self.fit_plan_ = plan
        name, reason = plan.solver, plan.reasons[0]
        if SOLVERS[name].model_parallel:
            return self._fit_model_parallel(data, loss, penalty_rule, name, reason)
        if data.X.numblocks[1] > 1:
            # Row-parallel solvers need whole rows per task; merging column
            # blocks is cheap and is fused into the first pass (or the persist).
            data.X = data.X.rechunk({1: -1})
        engine = Engine(data, split_every=self.split_every, persist=self.persist)
        engine.prepare(expected_passes=1 if name == "normal" else 2)
        holdout = None
        if self.early_stopping:
            holdout = Holdout(seed=draw_seed(self.random_state),
                              fraction=float(self.validation_fraction),
                              score=SCORE_OF_LOSS[loss.name],
                              runs=offset_runs(data.X.chunks[0]))
        objective = Objective(engine, loss, penalty_rule, self.fit_intercept, holdout=holdout)
        if SOLVERS[name].needs == "hess":
            objective.hessian_stride = hessian_stride(
                data.X.shape[0], guess_params, _rows_per_block(data.X))
            if objective.hessian_stride > 1:
                reason += (f"; Hessian from 1 row block in {objective.hessian_stride} "
                           "(sub-sampled Newton: the gradient still uses every row)")
        # Newton starts from a fit to a sample of rows (no pass; see _warm_start).
        warm = (warm_start(engine, loss, penalty_rule, self.fit_intercept)
                if name == "newton" and holdout is None and checkpoint is None else None)
        objective.start(SOLVERS[name].needs,
                        column_moments=name in STANDARDISED and
                        (self.solver_options or {}).get("standardise", True), warm=warm)
        if self.solver == "auto" and objective.n_outputs > 1:
            # Only the first pass reveals the number of classes.
            name, reason = replan_for_classes(
                plan, loss_name=objective.loss.name, penalty_kind=penalty_kind, n_features=p,
                n_params=objective.n_params, n_outputs=objective.n_outputs,
                early_stopping=self.early_stopping)
        theta0 = objective.start_theta
        options = self._solver_options(name)
        saver, resumed = self._open_checkpoint(checkpoint, data, name, objective)
        if resumed is not None:
            theta0 = resumed.theta
        monitor = None
        if holdout is not None:
            monitor = EarlyStopping(objective, n_iter_no_change=self.n_iter_no_change,
                                    tol=float(self.tol))
            options["stop"] = monitor
            reason += (f"; early stopping on {SCORE_OF_LOSS[objective.loss.name]} of "
                       f"{objective.holdout_counts['validation_samples']} held-out rows "
                       f"(keyed by {holdout.keyed_by})")
        offset = 0 if resumed is None else resumed.iteration
        if saver is not None:
            earlier = 0 if resumed is None else resumed.passes
            hook = saver.callback(lambda: earlier + engine.passes, offset)
            options["stop"] = _chain_stops(hook, options.get("stop"))
        result = solve(name, objective, theta0, tol=self.tol,
                       max_iter=self.max_iter - offset, **options)
        if offset:
            result.n_iter += offset
        if saver is not None:
            saver.clear()  # finished: nothing left to resume
        self.resumed_from_ = offset
        self._check_result(name, result, early_stopped=monitor is not None and monitor.stopped)
        # MLP's choice, not SGD's: the best-scoring iterate is the model (it is
        # on the client already, so restoring it costs nothing).
        self._set_fitted(objective, result,
                         theta=None if monitor is None else monitor.best_theta)
        self._set_validation(monitor, objective)
        self.solver_ = name
        # What the solver did when it differs from the plan (an extra QR pass).
        self.solver_reason_ = f"{reason}; but {result.fallback}" if result.fallback else reason
        self.persist_reason_ = engine.persist_reason
        self.fit_result_ = result
        self.n_passes_ = result.passes
        self.pass_log_ = list(engine.pass_log)
        if engine.chunk_rows is not None:
            self.chunk_rows_ = engine.chunk_rows
        return self

    def _open_checkpoint(self, checkpoint, data, solver, objective):
        """``(Checkpointer or None, Checkpoint to resume from or None)``."""
        if checkpoint is None:
            return None, None
        if not SOLVERS[solver].early_stopping:  # the solvers that take a stop hook
            raise ValueError(
                f"checkpoint= needs an iterative solver that reports its iterations; "
                f"solver={solver!r} does not (one-pass and asynchronous solvers have no "
                f"iterate to resume). Use one of "
                f"{sorted(n for n, i in SOLVERS.items() if i.early_stopping)}.")
        if isinstance(checkpoint, dict):
            unknown = sorted(set(checkpoint) - {"directory", "every"})
            if unknown or "directory" not in checkpoint:
                raise ValueError("checkpoint must be a directory or a dict with 'directory' "
                                 f"and optionally 'every'; got keys {sorted(checkpoint)}.")
            directory, every = checkpoint["directory"], checkpoint.get("every", 10)
        else:
            directory, every = checkpoint, 10
        params = self.get_params(deep=False)
        digest = fingerprint(data.token(), params,
                             type(self).__name__, solver, objective.n_params)
        saver = Checkpointer(directory, digest, every=every)
        resumed = saver.load()
        if resumed is not None and resumed.theta.shape != (objective.n_params,):
            raise CheckpointMismatch(f"The checkpoint {resumed.path} holds {resumed.theta.size} "
                                     f"coefficients; this fit has {objective.n_params}.")
        return saver, resumed

    def _fit_model_parallel(self, data, loss, penalty_rule, name, reason):
        """Coefficients sharded with X's column chunks (see ``solvers._sharded``)."""
        if not data.chunks_known:
            raise ValueError(
                f"solver={name!r} needs known row chunk sizes to pair X's blocks with y; got "
                f"row chunks {data.X.chunks[0]}. Call to_dask_array(lengths=True) first.")
        result, coef, intercept, info = fit_sharded(
            data.X, data.y, data.sample_weight, loss=loss, penalty_rule=penalty_rule,
            fit_intercept=self.fit_intercept, solver=name, tol=self.tol,
            max_iter=self.max_iter, split_every=self.split_every, persist=self.persist,
            client=current_client(), options=self._solver_options(name) or None)
        self._check_result(name, result)
        if info.get("classes") is not None:
            self.classes_ = np.asarray(info["classes"])
        self._store_coef(coef[None, :], np.array([intercept]))
        self._set_fitted_n_iter(int(result.n_iter))
        self._set_validation(None, None)
        self.solver_, self.solver_reason_ = name, reason
        self.persist_reason_ = info.get("persist_reason", "")
        self.fit_result_ = result
        self.n_passes_ = result.passes
        # (label, seconds) like the row engine's log; the sharded engine also
        # records the fraction of X each round read.
        self.pass_log_ = [(entry[0], entry[-1]) for entry in info.get("pass_log", [])]
        return self

    def _check_result(self, name, result, early_stopped=False):
        """Refuse non-finite coefficients; warn (and say so in ``result``) when not converged.

        A solver's stopping rule can be met without progress: when the
        features' scale puts the Hessian out of floating-point range (``X *
        1e300``) the Newton step and decrement are zero while the gradient
        is astronomically large. A "converged" result whose gradient did not
        shrink is therefore marked not converged (``fit_result_.converged``
        is False) and warned about like any other non-convergence.
        """
        if not np.all(np.isfinite(result.coef)):
            raise FloatingPointError(
                f"Solver {name!r} produced non-finite coefficients ({result.message}); "
                "nothing was fitted. Standardise the features or increase the regularisation."
            )
        if result.converged and _gradient_stalled(result, self.tol):
            start = result.history[0]["grad_norm"]
            result.converged = False
            result.message = (
                f"its stopping rule ({result.message}) was met but the gradient norm did not "
                f"shrink ({start:.3g} at the start): the features' scale is probably beyond "
                "floating-point range for this loss")
        if not result.converged and not early_stopped:
            warnings.warn(
                f"{type(self).__name__} with solver={name!r} did not converge in "
                f"{result.n_iter} iterations ({result.message}; gradient norm "
                f"{result.grad_norm:.3g} > tol={self.tol}). Increase max_iter, "
                "standardise the features, or try solver='newton'.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _solver_options(self, name):
        """Extra keyword options for the solver (unknown ones raise in ``solve``)."""
        return dict(self.solver_options or {})

    def _set_validation(self, monitor, objective):
        """``validation_scores_``, ``best_validation_score_``, ``validation_split_``.

        ``None`` without early stopping (as scikit-learn's MLP estimators).
        """
        if monitor is None:
            self.validation_scores_ = self.best_validation_score_ = None
            self.validation_split_ = None
            return
        self.validation_scores_ = np.asarray(monitor.scores, dtype=np.float64)
        self.best_validation_score_ = float(monitor.best_score)
        self.validation_split_ = dict(objective.holdout_counts,
                                      keyed_by=objective.holdout.keyed_by,
                                      seed=objective.holdout.seed,
                                      best_iteration=monitor.best_iteration)

    def _set_fitted(self, objective, result, theta=None):
        """Fitted attributes from ``theta`` (default: the solver's final point)."""
        p, K, fi = objective.n_features, objective.n_outputs, objective.fit_intercept
        theta = result.coef if theta is None else theta
        block = theta.reshape(K, p + int(fi))
        coef = block[:, :p].copy()
        intercept = block[:, p].copy() if fi else np.zeros(K)
        if K > 1 and fi:
            # Softmax is invariant to a common shift; report the centred one.
            intercept -= intercept.mean()
        self._store_coef(coef, intercept)
        self._set_fitted_n_iter(int(result.n_iter))

    def _set_fitted_n_iter(self, n_iter):
        self.n_iter_ = n_iter

    def _store_coef(self, coef, intercept):
        self.coef_ = coef[0]
        self.intercept_ = float(intercept[0])

    # ------------------------------------------------------------ predict
    def _raw_prediction(self, X):
        """Linear predictor; NumPy in, NumPy out; Dask in, lazy Dask out."""
        check_is_fitted(self)
        coef = np.atleast_2d(self.coef_)  # (K, p)
        intercept = np.atleast_1d(self.intercept_)
        if is_dask_collection(X):
            data = as_chunked(self, X, reset=False)
            return data.X.map_blocks(
                _checked_linear, coef.T, intercept,
                chunks=(data.X.chunks[0], (coef.shape[0],)), dtype=np.float64,
                name=f"daskfit-predict-{tokenize(data.X, coef, intercept)}",
            )
        Xn = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return Xn @ coef.T.astype(Xn.dtype) + intercept

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


#: A result counts as converged only if its final gradient norm is below this
#: share of the starting one (or below ``tol``). Converging solvers shrink it
#: by orders of magnitude; a stopping rule met with the gradient barely
#: moved is an artefact of overflow or underflow, not an optimum.
STALLED_GRADIENT_FRACTION = 0.5


def _gradient_stalled(result, tol):
    """True when a solver stopped with the gradient about where it started."""
    if result.n_iter < 1 or not result.history:
        return False
    start, end = result.history[0].get("grad_norm", np.nan), result.grad_norm
    if not (np.isfinite(start) and np.isfinite(end)):
        return False
    return end > tol and end > STALLED_GRADIENT_FRACTION * start


def _chain_stops(first, second):
    """One ``stop(iteration, theta)`` hook running both; the first reason wins."""
    if second is None:
        return first

    def stop(iteration, theta):
        reason = first(iteration, theta)
        return reason if reason is not None else second(iteration, theta)

    return stop


def _rows_per_block(X):
    return rows_per_block(X.shape[1], X.dtype.itemsize)


def _checked_linear(block, coef, intercept):
    if not np.isfinite(block).all():
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
