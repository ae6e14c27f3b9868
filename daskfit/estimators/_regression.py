"""Regressors: LinearRegression, Ridge, Lasso, ElasticNet, Poisson, Gamma and Tweedie GLMs.

Each maps scikit-learn's objective onto daskfit's mean-loss objective
``sum_i w_i loss_i / sum_i w_i + l1 |b|_1 + l2 / 2 |b|^2``, where the
penalised estimators take glum's per-feature weights ``P1`` (L1 part) and
``P2`` (L2 part): ``l1 sum_j P1_j |b_j|`` and ``l2 / 2 sum_j P2_j b_j^2``,
0 leaving a coefficient unpenalised:

=================  ======================================  ====================
estimator          scikit-learn minimises                  daskfit penalty
=================  ======================================  ====================
LinearRegression   sum w (y - Xb)^2                        none
Ridge(alpha)       sum w (y - Xb)^2 + alpha |b|^2          l2 = alpha / sum w
Lasso(alpha)       sum w (y-Xb)^2 / (2 sum w) + alpha|b|_1  l1 = alpha
ElasticNet         ... + alpha l1_ratio |b|_1              l1 = alpha l1_ratio,
                   + alpha (1 - l1_ratio) / 2 |b|^2        l2 = alpha (1 - l1_ratio)
PoissonRegressor   half deviance mean + alpha / 2 |b|^2    l2 = alpha
GammaRegressor     (the same, Gamma deviance)              l2 = alpha
TweedieRegressor   (the same, Tweedie deviance of power)   l2 = alpha
=================  ======================================  ====================
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from sklearn.base import RegressorMixin

from .._data import as_chunked, is_dask_collection
from ..engine.rows import compute
from ..model.losses import TweedieLoss
from ..model.penalties import Penalty
from ._base import LinearModelBase, ravel_output
from ._inference import InferenceMixin
from ._params import FeatureWeights, Options, Real
from ..engine.placement import placed

__all__ = ["LinearRegression", "Ridge", "Lasso", "ElasticNet", "PoissonRegressor",
           "GammaRegressor", "TweedieRegressor"]


class LinearRegressorBase(RegressorMixin, InferenceMixin, LinearModelBase):
    @placed
    def fit(self, X, y, sample_weight=None, offset=None, *, checkpoint=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            A fixed term added to the linear predictor (its coefficient is 1),
            as glum's and statsmodels' ``offset``: ``np.log(exposure)`` makes
            a log-link model one of rates. For the squared loss the model of
            ``y`` is that of ``y - offset``. Pass the same kind of offset to
            :meth:`predict`.
        checkpoint : str, Path or dict, default=None
            A directory to checkpoint the iterative solvers into (every 10
            iterations; ``{"directory": ..., "every": N}`` to choose). A
            matching checkpoint found there is resumed from; one written for
            other data or parameters is refused. See ``daskfit._checkpoint``.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, classifier=False, checkpoint=checkpoint,
                         offset=offset)

    def predict(self, X, offset=None):
        """Predict targets; NumPy for in-memory input, a lazy Dask array for Dask input.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        y_pred : ndarray or dask Array of shape (n_samples,)
        """
        return ravel_output(self._raw_prediction(X, offset))

    @placed
    def score(self, X, y, sample_weight=None, offset=None):
        """Coefficient of determination R^2, as a float (computed for Dask input).

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like or dask collection of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        float
        """
        if not is_dask_collection(X):
            if offset is None:
                return super().score(X, y, sample_weight=sample_weight)
            from sklearn.metrics import r2_score

            return float(r2_score(y, self.predict(X, offset), sample_weight=sample_weight))
        data = as_chunked(self, X, y, sample_weight, reset=False, offset=offset)
        y_pred = self.predict(data.X, data.offset)
        return r2_from_sums(data.y, y_pred, data.sample_weight)


def r2_from_sums(y, y_pred, sample_weight):
    """Weighted R^2 of Dask vectors in one pass over the data."""
    w = da.ones_like(y, dtype=np.float64) if sample_weight is None else sample_weight
    sums = compute(w.sum(), (w * y).sum(), (w * y * y).sum(), (w * (y - y_pred) ** 2).sum())
    sw, swy, swyy, sse = (float(s) for s in sums)
    sst = swyy - swy**2 / sw
    if sst == 0:
        return 1.0 if sse == 0 else 0.0
    return 1.0 - sse / sst


class LinearRegression(LinearRegressorBase):
    """Ordinary least squares on Dask data (one pass with the default solver).

    Parameters
    ----------
    fit_intercept : bool, default=True
    solver : {"auto", "normal", "newton", "lbfgs", "gd", "proximal"}, default="auto"
        ``"auto"`` picks the one-pass normal equations for up to a few
        thousand features.
    max_iter : int, default=1000
    tol : float, default=1e-4
        Max-abs gradient at which iterative solvers stop.
    persist : {"auto", True, False}, default="auto"
        Read lazy data into cluster memory once before the first pass.
    split_every : int, default=8
        Fan-in of the reduction tree.
    solver_options : dict, default=None
        Extra options for the solver, e.g. ``{"accelerated": True}`` for
        ``"gd"`` or ``{"local_epochs": 5}`` for ``"averaging"``; an option the
        solver does not know raises ``TypeError``.
    early_stopping : bool, default=False
        As scikit-learn's SGD estimators: set aside ``validation_fraction`` of
        the rows and stop when the validation score (this estimator's
        ``score``: R^2, or D^2 for :class:`PoissonRegressor`) has not improved
        by at least ``tol`` for ``n_iter_no_change`` consecutive iterations.
        ``tol`` is shared with the gradient rule, as SGD and MLP share it:
        both are small numbers on a unit scale (a mean-loss gradient, a score
        of at most 1), and a user swapping an SGD import keeps its meaning.
        The held-out rows are chosen in place: row ``i`` takes draw ``i`` of a
        random stream seeded by ``random_state`` (per chunk when chunk sizes
        are unknown, so the split does not depend on the chunking of arrays
        but does on the partitions of a Dask DataFrame), and are scored in
        the same pass as the training gradient: no extra pass and no data
        movement. The coefficients returned are the best-scoring
        iterate's (as MLP, not SGD: they are on the client, so this is free;
        ``fit_result_`` still describes the last iterate); ``n_iter_`` counts
        the iterations run. Needs an iterative solver:
        ``"auto"`` then picks ``"lbfgs"`` (``"proximal"`` with an L1 part),
        and ``solver="normal"`` (one pass, nothing to stop) is an error.
    validation_fraction : float in (0, 1), default=0.1
        Expected share of the rows held out (each row independently). Only
        used with ``early_stopping=True``, as are the next two.
    n_iter_no_change : int >= 1, default=5
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split; an int gives the same split every fit.
    verbose : int, default=0
        0 prints nothing; 1 prints a line per pass over the data (its label,
        seconds, and the objective and gradient norm of the iteration it
        completed) on stdout, and in a Jupyter notebook also shows a bar
        counting passes; 2 adds a summary of the fit. The lines also go to
        the ``"daskfit.progress"`` logger at INFO. Never changes the result.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    validation_scores_ : ndarray of shape (n_iter,) or None
        Validation score after each iteration (``None`` without early
        stopping).
    best_validation_score_ : float or None
        The best of them: the score of the returned coefficients.
    validation_split_ : dict or None
        ``train_samples``, ``validation_samples``, ``train_weight``,
        ``validation_weight``, ``keyed_by``, ``seed``, ``best_iteration``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Only when X has string column names.
    solver_ : str
        The solver that ran; ``solver_reason_`` says why.
    fit_result_ : FitResult
        Loss, gradient norm, passes over the data, convergence and history.
    n_passes_ : int
        Passes over the data the fit made.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import LinearRegression
    >>> X = np.array([[1.0, 1], [1, 2], [2, 2], [2, 3]])
    >>> y = X @ [1.0, 2] + 3
    >>> reg = LinearRegression().fit(X, y)
    >>> np.round(reg.coef_, 6), round(reg.intercept_, 6), reg.n_passes_
    (array([1., 2.]), 3.0, 1)

    With early stopping, the validation score comes out of the training passes:

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 30))
    >>> y = X[:, 0] + rng.normal(size=400)
    >>> reg = LinearRegression(early_stopping=True, random_state=0).fit(X, y)
    >>> reg.solver_, len(reg.validation_scores_) == reg.n_iter_
    ('lbfgs', True)
    >>> reg.n_passes_ == reg.fit_result_.history[-1]["passes"]
    True
    """

    def __init__(self, *, fit_intercept=True, solver="auto", max_iter=1000, tol=1e-4,
                 persist="auto", split_every=8, solver_options=None,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 random_state=None, verbose=0):
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    def _penalty_rule(self):
        return lambda sum_weights: Penalty()


class Ridge(LinearRegressorBase):
    """Least squares with an L2 penalty, scikit-learn's ``Ridge(alpha)``.

    Minimises ``sum w (y - Xb)^2 + alpha |b|^2`` (the intercept is not
    penalised). Parameters and attributes as :class:`LinearRegression`, plus:

    Parameters
    ----------
    alpha : float, default=1.0
        L2 strength on scikit-learn's (sum-of-squares) scale; must be >= 0.
    P2 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L2 part: coefficient ``j`` is
        penalised by ``alpha * P2[j]`` (0: unpenalised). None means all ones.
        A vector only (glum's matrix ``P2`` is refused).
    fit_intercept, solver, max_iter, tol, persist, split_every, solver_options
        As :class:`LinearRegression`.
    early_stopping, validation_fraction, n_iter_no_change, random_state, verbose
        As :class:`LinearRegression`.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import Ridge
    >>> X = np.array([[0.0, 0], [0, 1], [1, 1]])
    >>> Ridge(alpha=1.0).fit(X, [0.0, 1, 2]).coef_.round(6)
    array([0.5, 0.5])
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, solver="auto", max_iter=1000,
                 tol=1e-4, persist="auto", split_every=8, solver_options=None,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 random_state=None, P2=None, verbose=0):
        self.alpha = alpha
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints = {**LinearModelBase._parameter_constraints, "alpha": Real(low=0),
                              "P2": FeatureWeights()}

    def _penalty_rule(self):
        alpha, P2 = float(self.alpha), self.P2
        return lambda sum_weights: Penalty(l2=alpha / sum_weights, P2=P2)


class ElasticNet(LinearRegressorBase):
    """Least squares with an elastic-net penalty, scikit-learn's ``ElasticNet``.

    Minimises ``sum w (y - Xb)^2 / (2 sum w) + alpha l1_ratio |b|_1
    + alpha (1 - l1_ratio) / 2 |b|^2``. With the default solver the data is
    read once: coordinate descent runs on the client on the Gram matrix.

    Parameters
    ----------
    alpha : float, default=1.0
    l1_ratio : float in [0, 1], default=0.5
    P1 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L1 part: coefficient ``j`` is
        penalised by ``alpha * l1_ratio * P1[j]`` (0: unpenalised). None means
        all ones.
    P2 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L2 part: coefficient ``j`` is
        penalised by ``alpha * (1 - l1_ratio) * P2[j]`` (0: unpenalised). None means all ones.
        A vector only (glum's matrix ``P2`` is refused).
    fit_intercept, solver, max_iter, tol, persist, split_every, solver_options
        As :class:`LinearRegression`.
    early_stopping, validation_fraction, n_iter_no_change, random_state, verbose
        As :class:`LinearRegression`.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import ElasticNet
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ [2.0, 0.0, -1.0]
    >>> ElasticNet(alpha=0.1, l1_ratio=0.5).fit(X, y).coef_.round(2)
    array([ 1.87,  0.  , -0.91])
    """

    def __init__(self, alpha=1.0, *, l1_ratio=0.5, fit_intercept=True, solver="auto",
                 max_iter=1000, tol=1e-4, persist="auto", split_every=8, solver_options=None,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 random_state=None, P1=None, P2=None, verbose=0):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.P1 = P1
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints = {**LinearModelBase._parameter_constraints, "alpha": Real(low=0),
                              "l1_ratio": Real(low=0, high=1),
                              "P1": FeatureWeights(), "P2": FeatureWeights()}

    def _penalty_rule(self):
        alpha, ratio = float(self.alpha), float(self.l1_ratio)
        P1, P2 = self.P1, getattr(self, "P2", None)  # Lasso has no L2 part, so no P2
        return lambda sum_weights: Penalty(l1=alpha * ratio, l2=alpha * (1 - ratio), P1=P1,
                                           P2=P2)


class Lasso(ElasticNet):
    """Least squares with an L1 penalty, scikit-learn's ``Lasso(alpha)``.

    Minimises ``sum w (y - Xb)^2 / (2 sum w) + alpha |b|_1``. Parameters and
    attributes as :class:`ElasticNet` with ``l1_ratio=1`` (``P1`` weighs the
    L1 part per feature; there is no ``P2``).

    Parameters
    ----------
    alpha : float, default=1.0
        L1 strength; must be >= 0.
    P1 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L1 part: coefficient ``j`` is
        penalised by ``alpha * P1[j]`` (0: unpenalised). None means all ones.
    fit_intercept, solver, max_iter, tol, persist, split_every, solver_options
        As :class:`LinearRegression`.
    early_stopping, validation_fraction, n_iter_no_change, random_state, verbose
        As :class:`LinearRegression`.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import Lasso
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> Lasso(alpha=0.1).fit(X, X @ [2.0, 0.0, -1.0]).coef_.round(2)
    array([ 1.91,  0.  , -0.9 ])
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, solver="auto", max_iter=1000,
                 tol=1e-4, persist="auto", split_every=8, solver_options=None,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 random_state=None, P1=None, verbose=0):
        self.alpha = alpha
        self.P1 = P1
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    # l1_ratio is fixed at 1 (a property, not a parameter).
    _parameter_constraints = {**LinearModelBase._parameter_constraints, "alpha": Real(low=0),
                              "P1": FeatureWeights()}

    @property
    def l1_ratio(self):
        """Always 1: the whole penalty is L1 (read-only, not a parameter)."""
        return 1.0


class PoissonRegressor(LinearRegressorBase):
    """Poisson regression with a log link, scikit-learn's ``PoissonRegressor``.

    Minimises the mean half Poisson deviance plus ``alpha / 2 |b|^2``.

    Parameters
    ----------
    alpha : float, default=1.0
    P2 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L2 part: coefficient ``j`` is
        penalised by ``alpha * P2[j]`` (0: unpenalised). None means all ones.
        A vector only (glum's matrix ``P2`` is refused).
    fit_intercept, solver, max_iter, tol, persist, split_every, solver_options
        As :class:`LinearRegression` (``max_iter`` defaults to 100).
    early_stopping, validation_fraction, n_iter_no_change, random_state, verbose
        As :class:`LinearRegression`; the validation score is D^2.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import PoissonRegressor
    >>> X = np.array([[1.0, 2], [2, 3], [3, 4], [4, 3]])
    >>> y = np.array([12.0, 17, 22, 21])
    >>> reg = PoissonRegressor(alpha=1e-3, tol=1e-10).fit(X, y)
    >>> reg.predict([[1.0, 1], [3, 4]]).round(2)
    array([10.25, 22.25])
    """

    def __init__(self, *, alpha=1.0, fit_intercept=True, solver="auto", max_iter=100,
                 tol=1e-4, persist="auto", split_every=8, solver_options=None,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 random_state=None, P2=None, verbose=0):
        self.alpha = alpha
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    _loss_name = "poisson"
    _parameter_constraints = {**LinearModelBase._parameter_constraints, "alpha": Real(low=0),
                              "P2": FeatureWeights()}

    def _penalty_rule(self):
        alpha, P2 = float(self.alpha), self.P2
        return lambda sum_weights: Penalty(l2=alpha, P2=P2)

    def predict(self, X, offset=None):
        """Predicted mean ``exp(X @ coef_ + intercept_ + offset)``.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        ndarray or dask Array of shape (n_samples,)
        """
        # The loss's inverse link; NumPy's ufunc on a Dask array stays lazy.
        return self._make_loss().inverse_link(ravel_output(self._raw_prediction(X, offset)))

    @placed
    def score(self, X, y, sample_weight=None, offset=None):
        """D^2, the fraction of Poisson deviance explained (as scikit-learn's).

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like or dask collection of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        float
        """
        if not is_dask_collection(X):
            from sklearn.metrics import d2_tweedie_score

            return float(d2_tweedie_score(y, self.predict(X, offset),
                                          sample_weight=sample_weight, power=1))
        data = as_chunked(self, X, y, sample_weight, reset=False, offset=offset)
        y_, mu = data.y, self.predict(data.X, data.offset)
        w = da.ones_like(y_, dtype=np.float64) if data.sample_weight is None else data.sample_weight
        ylogy = da.where(y_ > 0, y_ * da.log(da.where(y_ > 0, y_, 1.0)), 0.0)
        sums = compute(w.sum(), (w * y_).sum(), (w * ylogy).sum(),
                          (w * (ylogy - y_ * da.log(mu) - y_ + mu)).sum())
        sw, swy, swylogy, dev = (float(s) for s in sums)
        ybar = swy / sw
        dev_null = swylogy - swy * np.log(ybar) - swy + ybar * sw
        return 1.0 - dev / dev_null

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


class _DevianceRegressor(LinearRegressorBase):
    """A GLM regressor: L2 penalty ``alpha``, the loss's inverse link, D^2 score."""

    _parameter_constraints = {**LinearModelBase._parameter_constraints, "alpha": Real(low=0),
                              "P2": FeatureWeights()}

    def _penalty_rule(self):
        alpha, P2 = float(self.alpha), self.P2
        return lambda sum_weights: Penalty(l2=alpha, P2=P2)

    def predict(self, X, offset=None):
        """Predicted mean: the loss's inverse link of ``X @ coef_ + intercept_ + offset``.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        ndarray or dask Array of shape (n_samples,)
        """
        # NumPy's ufuncs on a Dask array stay lazy.
        return self._make_loss().inverse_link(ravel_output(self._raw_prediction(X, offset)))

    @placed
    def score(self, X, y, sample_weight=None, offset=None):
        """D^2, the fraction of the loss's deviance explained (as scikit-learn's ``score``).

        ``1 - sum w dev(y, mu) / sum w dev(y, ybar)`` with ``ybar`` the
        weighted mean of ``y``; one pass for Dask input.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like or dask collection of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        float
        """
        loss = self._make_loss()
        if is_dask_collection(X):
            data = as_chunked(self, X, y, sample_weight, reset=False, offset=offset)
            y_, w = data.y.astype(np.float64), data.sample_weight
            raw = ravel_output(self._raw_prediction(data.X, data.offset))
        else:
            y_ = np.asarray(y, dtype=np.float64)
            w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            raw = ravel_output(self._raw_prediction(X, offset))
        if w is None:
            w = da.ones_like(y_) if isinstance(y_, da.Array) else np.ones_like(y_)
        sums = compute(w.sum(), y_.min(), *loss.deviance_sums(y_, raw, w))
        sw, y_min, *rest = (float(s) for s in sums)
        # The range rule of the target (not the positive-sum rule, which is a fitting one).
        problem = loss.validate_target(y_min, np.inf)
        if problem:
            raise ValueError(problem)
        return loss.score_value(np.array([0.0, sw, *rest]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            # As scikit-learn: positive-only when the loss refuses y = -1.
            tags.target_tags.positive_only = \
                self._make_loss().validate_target(-1.0, np.inf) is not None
        except ValueError:  # parameters not valid yet: the fit will say why
            pass
        return tags


class GammaRegressor(_DevianceRegressor):
    """Gamma regression with a log link, scikit-learn's ``GammaRegressor``.

    Minimises the mean half Gamma deviance plus ``alpha / 2 |b|^2``, for a
    positive target (claim sizes, durations, costs).

    Parameters
    ----------
    alpha : float, default=1.0
    P2 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L2 part: coefficient ``j`` is
        penalised by ``alpha * P2[j]`` (0: unpenalised). None means all ones.
        A vector only (glum's matrix ``P2`` is refused).
    fit_intercept, solver, max_iter, tol, persist, split_every, solver_options
        As :class:`LinearRegression` (``max_iter`` defaults to 100); the
        solvers are the exact row-parallel ones (``"newton"``, ``"lbfgs"``,
        ``"gd"``, ``"proximal"``).
    early_stopping, validation_fraction, n_iter_no_change, random_state, verbose
        As :class:`LinearRegression`; the validation score is D^2.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import GammaRegressor
    >>> X = np.array([[1.0, 2], [2, 3], [3, 4], [4, 3]])
    >>> y = np.array([19.0, 26, 33, 30])
    >>> reg = GammaRegressor(alpha=1e-3, tol=1e-10).fit(X, y)
    >>> reg.predict([[1.0, 0], [3, 4]]).round(2)
    array([13.12, 33.41])
    """

    def __init__(self, *, alpha=1.0, fit_intercept=True, solver="auto", max_iter=100,
                 tol=1e-4, persist="auto", split_every=8, solver_options=None,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 random_state=None, P2=None, verbose=0):
        self.alpha = alpha
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    _loss_name = "gamma"


class TweedieRegressor(_DevianceRegressor):
    """Tweedie regression, scikit-learn's ``TweedieRegressor``.

    Minimises the mean half Tweedie deviance of power ``power`` plus
    ``alpha / 2 |b|^2``. ``power=0``: normal, 1: Poisson, in (1, 2): compound
    Poisson-Gamma (a pure premium: many exact zeros and positive amounts),
    2: Gamma, 3: inverse Gaussian.

    Parameters
    ----------
    power : float, default=0.0
        Any real number, as scikit-learn (no distribution exists for
        ``0 < power < 1``, but the deviance is still a consistent loss). The
        target must be ``>= 0`` for ``0 < power < 2`` and ``> 0`` for
        ``power >= 2``.
    alpha : float, default=1.0
    P2 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L2 part: coefficient ``j`` is
        penalised by ``alpha * P2[j]`` (0: unpenalised). None means all ones.
        A vector only (glum's matrix ``P2`` is refused).
    fit_intercept : bool, default=True
    link : {"auto", "identity", "log"}, default="auto"
        ``"auto"``: identity for ``power <= 0``, log otherwise. The identity
        link is supported for ``power=0`` (scikit-learn also allows it for
        other powers; daskfit raises a ``ValueError`` naming ``link``).
    solver, max_iter, tol, persist, split_every, solver_options
        As :class:`GammaRegressor`.
    early_stopping, validation_fraction, n_iter_no_change, random_state, verbose
        As :class:`LinearRegression`; the validation score is D^2.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import TweedieRegressor
    >>> X = np.array([[1.0, 2], [2, 3], [3, 4], [4, 3]])
    >>> y = np.array([2.0, 0, 1, 3])
    >>> reg = TweedieRegressor(power=1.5, alpha=1e-3, tol=1e-10).fit(X, y)
    >>> reg.predict([[1.0, 0], [3, 4]]).round(2)
    array([10.37,  0.62])
    """

    def __init__(self, *, power=0.0, alpha=1.0, fit_intercept=True, link="auto",
                 solver="auto", max_iter=100, tol=1e-4, persist="auto", split_every=8,
                 solver_options=None, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, random_state=None, P2=None, verbose=0):
        self.power = power
        self.alpha = alpha
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.link = link
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    _loss_name = "tweedie"

    _parameter_constraints = {**_DevianceRegressor._parameter_constraints,
                              "power": Real(),
                              "link": Options({"auto", "identity", "log"})}

    def _check_parameter_combinations(self):
        super()._check_parameter_combinations()
        self._make_loss()  # an unsupported (power, link) pair raises here, naming link

    def _make_loss(self):
        link = self.link
        if link == "auto":
            link = "identity" if self.power <= 0 else "log"
        return TweedieLoss(power=self.power, link=link)
