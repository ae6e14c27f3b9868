"""RidgeCV, LassoCV and ElasticNetCV: every fold at every alpha from ONE pass.

The pass (:func:`._fold_kernels.fold_moments_chunk`) returns the weighted
centred moments ``(sw, mean_x, mean_y, Sxx, Sxy, Syy)`` of every fold. On the
client, with no further pass over the data:

- the moments of a training set are the merge of the other folds' moments
  (Chan's formula, exact), and those of all rows the merge of every fold's;
- ridge: the training Gram matrix scaled to unit diagonal, one Cholesky
  factorisation per alpha (microseconds for tens of features); lasso /
  elastic net: cyclic
  coordinate descent on the training Gram matrix along the decreasing alpha
  path, warm-started from the previous alpha;
- validation scores are exact functions of the validation fold's moments:
  with residuals ``r = y - b0 - x.b`` and ``d = mean_y - b0 - mean_x.b``,
  ``sum w r^2 = Syy - 2 b.Sxy + b' Sxx b + sw d^2``; the weighted R^2 divides
  it by ``Syy`` (the fold's own weighted mean, as ``r2_score``);
- the final model is refitted on all rows from the total moments.

Semantics follow scikit-learn's ``GridSearchCV`` over ``Ridge`` / ``Lasso`` /
``ElasticNet`` with the same folds and alphas, and ``LassoCV`` /
``ElasticNetCV`` (alpha grid, ``mse_path_``, the choice of ``alpha_``).
glum's per-feature penalty weights ``P1`` / ``P2`` apply at every alpha (the
same weights as :class:`daskfit.Lasso` / :class:`daskfit.Ridge` take). With
``sample_weight`` the weights enter both the fits and the validation scores
(scikit-learn's ``LassoCV``, and ``GridSearchCV`` / ``RidgeCV`` with metadata
routing of ``sample_weight`` to the scorer enabled; scikit-learn's
``RidgeCV(cv=k)`` without routing ignores the weights when scoring).

With an ``offset`` every fit is of ``y - offset`` (least squares with a
fixed term in the linear predictor) and every validation score is of ``y``
against ``X b + b0 + offset``, as :meth:`daskfit.Ridge.score` with
``offset=`` scores it: the squared errors are those of ``y - offset``, but
R^2 and the explained variance divide by the spread of ``y`` itself (the
pass returns the moments of ``y`` next to those of ``y - offset``). So the
mean squared errors, the coefficients and the choice by MSE equal those of
the same estimator fitted on ``y - offset``; R^2 values differ from that
fit's by their denominators.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.linalg
from scipy.stats import rankdata
from sklearn.exceptions import ConvergenceWarning

from .._data import as_chunked
from ..engine.rows import Engine
from ..estimators._params import (Boolean, CountOr, FeatureWeights, FiniteArray, Integer,
                                  Options, Real, cv_splits)
from ..estimators._regression import LinearRegressorBase
from ..solvers._normal import gram_coordinate_descent
from ..model.penalties import Penalty, check_feature_weights
from ._fold_kernels import FoldSpec, fold_moments_chunk
from ._split import fold_pass_data
from ..engine.placement import placed
from .._progress import reported
from ..estimators._params import verbosity

__all__ = ["RidgeCV", "LassoCV", "ElasticNetCV", "MOMENT_SCORERS"]


# ------------------------------------------------------------------ scoring


def _residual_sums(moments, B, b0):
    """Weighted residual sums of one validation fold for each column of ``B``.

    Returns ``(sse, sw, d)``: ``sum w r^2``, ``sum w`` and the weighted mean
    residual ``d``, for coefficients ``B`` of shape (p, n_models) and
    intercepts ``b0`` of shape (n_models,).
    """
    sw, mx, my, Sxx, Sxy, Syy = moments
    d = my - b0 - mx @ B
    quad = np.einsum("ia,ij,ja->a", B, Sxx, B)
    sse = Syy - 2.0 * (Sxy @ B) + quad + sw * d**2
    return np.maximum(sse, 0.0), sw, d


def _ratio_score(numerator, denominator):
    """``1 - num / den`` with scikit-learn's ``force_finite`` rule for den == 0."""
    if denominator == 0:
        return np.where(numerator == 0, 1.0, 0.0)
    return 1.0 - numerator / denominator


def _spread(moments, target):
    """``Syy`` of the scored ``y``: the target's own moments when fitted with an offset."""
    return (moments if target is None else target)[5]


def _r2(moments, B, b0, target=None):
    sse, _, _ = _residual_sums(moments, B, b0)
    return _ratio_score(sse, _spread(moments, target))


def _neg_mse(moments, B, b0, target=None):
    sse, sw, _ = _residual_sums(moments, B, b0)
    return -sse / sw


def _neg_rmse(moments, B, b0, target=None):
    return -np.sqrt(-_neg_mse(moments, B, b0))


def _explained_variance(moments, B, b0, target=None):
    sse, sw, d = _residual_sums(moments, B, b0)
    return _ratio_score(np.maximum(sse - sw * d**2, 0.0), _spread(moments, target))


#: Scorers that are exact functions of a validation fold's moments (weighted
#: when sample_weight is given). Others need per-row predictions: use
#: GridSearchCV with the daskfit estimator instead. Each is ``score(moments,
#: B, b0, target=None)``: ``moments`` those of the fitted target (``y -
#: offset`` with an offset), ``target`` the moments of ``y`` itself when they
#: differ (the residuals are the same; R^2's spread is of ``y``).
MOMENT_SCORERS = {
    "r2": _r2,
    "neg_mean_squared_error": _neg_mse,
    "neg_root_mean_squared_error": _neg_rmse,
    "explained_variance": _explained_variance,
}


# ------------------------------------------------------------------ solvers


def _uncentred(moments, fit_intercept):
    """Moments for the solve: centred with an intercept, about 0 without."""
    sw, mx, my, Sxx, Sxy, Syy = moments
    if fit_intercept:
        return moments
    return (sw, np.zeros_like(mx), 0.0, Sxx + sw * np.outer(mx, mx), Sxy + sw * mx * my,
            Syy + sw * my * my)


def _intercepts(moments, B, fit_intercept):
    _, mx, my, _, _, _ = moments
    return my - mx @ B if fit_intercept else np.zeros(B.shape[1])


def ridge_path(moments, alphas, fit_intercept, P2=None):
    """Ridge coefficients (p, n_alphas) and intercepts for every alpha.

    ``min sum w (y - b0 - Xb)^2 + alpha sum_j P2_j b_j^2`` (``P2`` all ones
    by default). The Gram matrix is scaled to
    unit diagonal once; each alpha adds ``alpha / d_j^2`` to the diagonal and
    is solved by Cholesky (``p^3 / 3`` flops on the client: microseconds for
    tens of features), as :class:`daskfit.Ridge` solves it. A Cholesky
    factorisation, unlike an eigendecomposition shared by all alphas, keeps
    its accuracy when features have very different scales (its error depends
    on the condition number of the *scaled* matrix). A singular system
    (``alpha = 0`` with collinear features) gets the minimum-norm solution.
    """
    sw, mx, my, Sxx, Sxy, _ = _uncentred(moments, fit_intercept)
    A, c = Sxx / sw, Sxy / sw
    d = np.sqrt(np.diag(A))
    d[d == 0] = 1.0  # a constant column: left unscaled
    As, cs = A / np.outer(d, d), c / d
    weights = Penalty(l2=1.0, P2=P2).l2_weights(len(c))
    B = np.empty((len(c), len(alphas)))
    for k, alpha in enumerate(alphas):
        M = As.copy()
        M[np.diag_indices_from(M)] += alpha * weights / sw / d**2
        try:
            B[:, k] = scipy.linalg.cho_solve(scipy.linalg.cho_factor(M, check_finite=False),
                                             cs, check_finite=False) / d
        except np.linalg.LinAlgError:
            cutoff = np.finfo(np.float64).eps * len(c)
            B[:, k] = scipy.linalg.lstsq(M, cs, cond=cutoff, check_finite=False)[0] / d
    return B, _intercepts(moments, B, fit_intercept)


def enet_path(moments, alphas, l1_ratio, fit_intercept, tol, max_iter, P1=None, P2=None):
    """Elastic-net path along ``alphas`` (in the given, decreasing, order).

    ``min sum w (y - b0 - Xb)^2 / (2 sum w) + alpha l1_ratio sum_j P1_j |b_j| +
    alpha (1 - l1_ratio) / 2 sum_j P2_j b_j^2`` (``P1``, ``P2`` all ones by
    default) by coordinate descent on the Gram matrix,
    each alpha warm-started from the previous one. Returns ``(B, b0, n_iter,
    all_converged)``.
    """
    sw, mx, my, Sxx, Sxy, _ = _uncentred(moments, fit_intercept)
    A, c = Sxx / sw, Sxy / sw
    weights = Penalty(l1=l1_ratio, l2=1.0 - l1_ratio, P1=P1, P2=P2)
    w1, w2 = weights.l1_weights(len(c)), weights.l2_weights(len(c))
    b = np.zeros(len(c))
    B = np.empty((len(c), len(alphas)))
    n_iter = np.empty(len(alphas), dtype=int)
    converged = True
    for k, alpha in enumerate(alphas):
        b, n_iter[k], ok, _ = gram_coordinate_descent(A, c, alpha * w1, alpha * w2, b, tol,
                                                  max_iter)
        converged &= bool(ok)
        B[:, k] = b
    return B, _intercepts(moments, B, fit_intercept), n_iter, converged


def alpha_grid(total, l1_ratio, fit_intercept, eps, n_alphas, P1=None):
    """scikit-learn's automatic alpha grid, from the total moments.

    ``alpha_max = max |X_c' W y_c| / (sum w * l1_ratio)`` (the smallest alpha
    with all coefficients zero), then ``n_alphas`` values geometrically down
    to ``eps * alpha_max``. With per-feature weights ``P1`` (glmnet's rule):
    ``max_j |X_j' W r| / P1_j`` over the L1-penalised features, ``r`` the
    residual of the least-squares fit on the features with ``P1_j = 0``
    (those stay in the model at every alpha; their L2 part is ignored here).
    The grid then equals the one of the same data with feature ``j``
    divided by ``P1_j``.
    """
    if l1_ratio == 0:
        raise ValueError(
            "Automatic alpha grid generation is not supported for l1_ratio=0. Please "
            "supply a grid by providing your estimator with the appropriate `alphas=` "
            "argument.")
    sw, _, _, Sxx, Sxy, _ = _uncentred(total, fit_intercept)
    alpha_max = _largest_correlation(Sxx, Sxy, P1) / (sw * l1_ratio)
    resolution = np.finfo(np.float64).resolution
    if alpha_max <= resolution:
        return np.full(n_alphas, resolution)
    return np.geomspace(alpha_max, alpha_max * eps, num=n_alphas)


def _largest_correlation(Sxx, Sxy, P1):
    """``max_j |X_j' W r| / P1_j`` over features with ``P1_j > 0`` (see :func:`alpha_grid`)."""
    if P1 is None:
        return float(np.abs(Sxy).max()) if len(Sxy) else 0.0
    P1 = np.asarray(P1, dtype=np.float64)
    free, penalised = P1 == 0, P1 > 0
    if not penalised.any():
        return 0.0
    corr = Sxy
    if free.any():  # the residual of the unpenalised features' least-squares fit
        cutoff = np.finfo(np.float64).eps * int(free.sum())
        b_free = scipy.linalg.lstsq(Sxx[np.ix_(free, free)], Sxy[free], cond=cutoff,
                                    check_finite=False)[0]
        corr = Sxy - Sxx[:, free] @ b_free
    return float(np.max(np.abs(corr[penalised]) / P1[penalised]))


def _check_weights_for(estimator, n_features):
    """The CV estimators' ``P1`` / ``P2`` against the data's number of features."""
    for name in ("P1", "P2"):
        check_feature_weights(name, getattr(estimator, name, None), n_features)


# ------------------------------------------------------------------ estimators


class _FoldMomentsCV(LinearRegressorBase):
    """One pass for the fold moments, then a client-side search (not public)."""

    @placed
    @reported  # verbose: a line per pass (see daskfit._progress)
    def fit(self, X, y, sample_weight=None, groups=None, offset=None):
        """Choose the regularisation by cross-validation and refit, in one pass.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the fits and of the validation scores.
        groups : array-like of shape (n_samples,), default=None
            Group labels for group splitters (``GroupKFold``, ...).
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            A fixed term of the linear predictor (as :meth:`daskfit.Ridge.fit`'s):
            every fold and the refit fit ``y - offset``, and every fold is
            scored on ``y`` against ``X b + b0 + offset`` (see the module's
            docstring). Pass the same offset to :meth:`predict` and
            :meth:`score`. It travels with the weights: still one pass.

        Returns
        -------
        self : object
        """
        self._validate_common_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None.")
        data = as_chunked(self, X, y, sample_weight, reset=True, offset=offset)
        _check_weights_for(self, data.n_features)
        if data.X.numblocks[1] > 1:
            data.X = data.X.rechunk({1: -1})
        fold_data, layout, _, target_passes = fold_pass_data(data, self.cv, groups)
        engine = Engine(fold_data, split_every=self.split_every, persist=False)
        engine.prepare(expected_passes=1)
        result = engine.reduce(fold_moments_chunk, FoldSpec(layout.n_codes), "cv-moments")
        train, test, total = layout.assemble(result["fold_moments"].parts)
        targets = None
        if "target_moments" in result:  # fitted with an offset: the scores' y spread
            targets = layout.assemble(result["target_moments"].parts)[:2]
        self._search(train, test, total, targets)
        self.n_passes_ = engine.passes
        self.target_passes_ = target_passes
        self.pass_log_ = list(engine.pass_log)
        if engine.chunk_rows is not None:
            self.chunk_rows_ = engine.chunk_rows
        return self

    #: The parameters every fold-moments estimator has; each class adds its own.
    _parameter_constraints = {"fit_intercept": Boolean(), "split_every": Integer(low=2),
                              "cv": cv_splits(), "verbose": verbosity()}

    def _check_parameter_combinations(self):
        """None: each parameter is checked on its own (the table)."""

    def _set_coef(self, coef, intercept):
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = float(intercept)


#: A grid of penalty strengths on scikit-learn's scale.
ALPHAS = FiniteArray(low=0)


def _alphas(alphas):
    """The (validated) ``alphas`` grid as a 1-D float array."""
    return np.atleast_1d(np.asarray(alphas, dtype=np.float64))


class RidgeCV(_FoldMomentsCV):
    """Ridge regression with the alpha chosen by K-fold cross-validation in ONE pass.

    Equals scikit-learn's ``GridSearchCV(Ridge(), {"alpha": alphas}, cv=cv,
    scoring=scoring)`` (and ``sklearn.linear_model.RidgeCV(alphas, cv=cv)``):
    the same folds, alphas, validation scores and choice, but one read of
    the data for all folds, all alphas and the final refit.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default=(0.1, 1.0, 10.0)
        L2 strengths on scikit-learn's scale (``sum w (y - Xb)^2 + alpha |b|^2``).
    fit_intercept : bool, default=True
    cv : int, cross-validation splitter or iterable, default=5
        ``int``/``None``: ``KFold`` (5 folds for ``None``); any scikit-learn
        splitter, or an iterable of ``(train, test)`` row numbers. Unlike
        scikit-learn's ``RidgeCV``, ``None`` is 5-fold, not leave-one-out.
    scoring : {None, "r2", "neg_mean_squared_error", "neg_root_mean_squared_error", \
"explained_variance"}, default=None
        ``None`` is R^2. Other scorers need per-row predictions: use
        ``GridSearchCV(daskfit.Ridge(), ...)``.
    split_every : int, default=8
        Fan-in of the reduction tree.
    return_train_score : bool, default=False
        Also score every training set (``GridSearchCV``'s option). Free: the
        training sets' moments are formed anyway, so no extra pass.
    P2 : array-like of shape (n_features,), default=None
        Per-feature weights of the L2 penalty at every alpha, as
        :class:`daskfit.Ridge`'s ``P2``.
    verbose : int, default=0
        0 prints nothing; 1 a line per pass over the data (a bar in a
        notebook), as :class:`~daskfit.LinearRegression`'s ``verbose``.

    Attributes
    ----------
    alpha_ : float
        The chosen alpha (the first best, in the order of ``alphas``).
    best_score_ : float
        Mean validation score of ``alpha_`` over the folds.
    cv_results_ : dict
        ``GridSearchCV``'s keys: ``params``, ``param_alpha``,
        ``split{k}_test_score``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score``, and with ``return_train_score=True``
        ``split{k}_train_score``, ``mean_train_score``, ``std_train_score``.
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
    n_passes_ : int
        Passes over ``X``: 1.
    target_passes_ : int
        Extra passes over ``y`` alone (0, or 1 when chunk sizes were unknown
        or the splitter stratifies).

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit.model_selection import RidgeCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + rng.normal(size=200)
    >>> reg = RidgeCV(alphas=[0.1, 1.0, 100.0]).fit(X, y)
    >>> reg.alpha_, reg.n_passes_
    (1.0, 1)
    """

    def __init__(self, alphas=(0.1, 1.0, 10.0), *, fit_intercept=True, cv=5, scoring=None,
                 split_every=8, return_train_score=False, P2=None, verbose=0):
        self.alphas = alphas
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.split_every = split_every
        self.return_train_score = return_train_score
        self.verbose = verbose

    _parameter_constraints = {
        **_FoldMomentsCV._parameter_constraints,
        "alphas": ALPHAS,
        "scoring": Options(MOMENT_SCORERS, allow_none=True, hint=(
            "RidgeCV scores folds from their moments (None is 'r2'); other scorers need "
            "per-row predictions: use GridSearchCV(daskfit.Ridge(), ...) for them.")),
        "return_train_score": Boolean(),
        "P2": FeatureWeights(),
    }

    def _search(self, train, test, total, targets=None):
        alphas = _alphas(self.alphas)
        score = MOMENT_SCORERS[self.scoring or "r2"]
        scores = np.empty((len(train), len(alphas)))
        train_scores = np.empty_like(scores)
        for s, (tr, te) in enumerate(zip(train, test)):
            B, b0 = ridge_path(tr, alphas, self.fit_intercept, self.P2)
            scores[s] = score(te, B, b0, _target(targets, 1, s))
            train_scores[s] = score(tr, B, b0, _target(targets, 0, s))  # its own moments
        mean = scores.mean(axis=0)
        results = {"params": [{"alpha": a} for a in np.asarray(self.alphas).ravel().tolist()],
                   "param_alpha": alphas.copy()}
        for s in range(len(train)):
            results[f"split{s}_test_score"] = scores[s]
        results["mean_test_score"] = mean
        results["std_test_score"] = scores.std(axis=0)
        results["rank_test_score"] = _rank(mean)
        if self.return_train_score:
            for s in range(len(train)):
                results[f"split{s}_train_score"] = train_scores[s]
            results["mean_train_score"] = train_scores.mean(axis=0)
            results["std_train_score"] = train_scores.std(axis=0)
        best = int(results["rank_test_score"].argmin())
        self.cv_results_ = results
        self.alpha_ = float(alphas[best])
        self.best_score_ = float(mean[best])
        B, b0 = ridge_path(total, np.array([self.alpha_]), self.fit_intercept, self.P2)
        self._set_coef(B[:, 0], b0[0])
        self.n_iter_ = 1


def _target(targets, which, split):
    """Moments of ``y`` itself for split ``split``'s training (0) or validation (1) rows.

    None without an offset (the fitted moments are of ``y`` then).
    """
    return None if targets is None else targets[which][split]


def _rank(mean):
    """``GridSearchCV``'s ``rank_test_score`` (ties share the smallest rank)."""
    if np.isnan(mean).all():
        return np.ones_like(mean, dtype=np.int32)
    filled = np.nan_to_num(mean, nan=np.nanmin(mean) - 1)
    return rankdata(-filled, method="min").astype(np.int32)


class ElasticNetCV(_FoldMomentsCV):
    """Elastic net with alpha (and l1_ratio) chosen by cross-validation in ONE pass.

    scikit-learn's ``ElasticNetCV``: for each ``l1_ratio`` an alpha grid
    (``alphas`` values from ``alpha_max`` down to ``eps * alpha_max``, or the
    given alphas sorted decreasingly), a coordinate-descent path per fold
    warm-started along it, the weighted validation MSE of every fold, and the
    (l1_ratio, alpha) of the smallest mean MSE. All paths run on the client
    from the fold moments of one pass; the final refit uses the total moments
    of the same pass.

    Parameters
    ----------
    l1_ratio : float or array-like of float in [0, 1], default=0.5
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    alphas : int or array-like, default=100
        Number of alphas of the automatic grid, or the alphas themselves.
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Coordinate-descent sweeps per alpha.
    tol : float, default=1e-4
        Coordinate descent stops when the largest coefficient change in a
        sweep, relative to the largest coefficient, and the optimality
        violation of the mean-loss objective are both below ``tol``.
    cv : int, cross-validation splitter or iterable, default=5
    split_every : int, default=8
    P1, P2 : array-like of shape (n_features,), default=None
        Per-feature weights of the L1 and L2 parts at every alpha, as
        :class:`daskfit.ElasticNet`'s; the automatic grid's ``alpha_max``
        is the weighted one (see :func:`alpha_grid`).
    verbose : int, default=0
        0 prints nothing; 1 a line per pass over the data (a bar in a
        notebook), as :class:`~daskfit.LinearRegression`'s ``verbose``.

    Attributes
    ----------
    alpha_ : float
    l1_ratio_ : float
    alphas_ : ndarray of shape (n_alphas,) or (n_l1_ratio, n_alphas)
    mse_path_ : ndarray of shape (n_alphas, n_folds) or (n_l1_ratio, n_alphas, n_folds)
        Weighted mean squared error of each validation fold.
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
        Coordinate-descent sweeps of the final refit.
    n_features_in_, feature_names_in_, n_passes_, target_passes_
        As :class:`RidgeCV`.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit.model_selection import ElasticNetCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> y = X @ [2.0, 0.0, -1.0, 0.0, 0.0] + rng.normal(size=300)
    >>> reg = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=30).fit(X, y)
    >>> reg.mse_path_.shape, reg.n_passes_
    ((2, 30, 5), 1)
    """

    def __init__(self, *, l1_ratio=0.5, eps=1e-3, alphas=100, fit_intercept=True,
                 max_iter=1000, tol=1e-4, cv=5, split_every=8, P1=None, P2=None, verbose=0):
        self.l1_ratio = l1_ratio
        self.P1 = P1
        self.P2 = P2
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.split_every = split_every
        self.verbose = verbose

    def _l1_ratios(self):
        return np.atleast_1d(np.asarray(self.l1_ratio, dtype=np.float64))

    _parameter_constraints = {
        **_FoldMomentsCV._parameter_constraints,
        "l1_ratio": FiniteArray(low=0, high=1),
        "eps": Real(low=0, low_open=True),
        "max_iter": Integer(low=1),
        "tol": Real(low=0),
        # The size of the automatic grid, or the grid itself.
        "alphas": CountOr(ALPHAS),
        "P1": FeatureWeights(),
        "P2": FeatureWeights(),
    }

    def _weights(self):
        """``(P1, P2)``; LassoCV has no L2 part, hence no ``P2``."""
        return self.P1, getattr(self, "P2", None)

    def _search(self, train, test, total, targets=None):
        ratios = self._l1_ratios()
        auto = isinstance(self.alphas, numbers.Integral)
        if auto:
            grids = np.array([alpha_grid(total, r, self.fit_intercept, self.eps, self.alphas,
                                         self.P1) for r in ratios])
        else:
            grids = np.tile(np.sort(_alphas(self.alphas))[::-1], (len(ratios), 1))
        mse = np.empty((len(ratios), grids.shape[1], len(train)))
        converged = True
        for i, ratio in enumerate(ratios):
            for s, (tr, te) in enumerate(zip(train, test)):
                B, b0, _, ok = enet_path(tr, grids[i], ratio, self.fit_intercept, self.tol,
                                         self.max_iter, *self._weights())
                converged &= ok
                mse[i, :, s] = -_neg_mse(te, B, b0)
        if not converged:
            warnings.warn(
                f"{type(self).__name__}: coordinate descent did not converge for some "
                f"folds and alphas in max_iter={self.max_iter} sweeps. Increase max_iter "
                "or tol, or standardise the features.", ConvergenceWarning, stacklevel=3)
        mean = mse.mean(axis=2)
        best_mse, best = np.inf, (0, 0)
        for i in range(len(ratios)):  # scikit-learn's rule: first strict improvement
            j = int(np.argmin(mean[i]))
            if mean[i, j] < best_mse:
                best_mse, best = mean[i, j], (i, j)
        self.l1_ratio_ = float(ratios[best[0]])
        self.alpha_ = float(grids[best])
        self.mse_path_ = np.squeeze(mse)
        self.alphas_ = (grids if len(ratios) > 1 else grids[0]) if auto else grids[0]
        B, b0, n_iter, ok = enet_path(total, np.array([self.alpha_]), self.l1_ratio_,
                                      self.fit_intercept, self.tol, self.max_iter,
                                      *self._weights())
        if not ok:
            warnings.warn(
                f"{type(self).__name__}: the final refit did not converge in "
                f"max_iter={self.max_iter} sweeps.", ConvergenceWarning, stacklevel=3)
        self._set_coef(B[:, 0], b0[0])
        self.n_iter_ = int(n_iter[0])


class LassoCV(ElasticNetCV):
    """Lasso with alpha chosen by cross-validation in ONE pass.

    scikit-learn's ``LassoCV``: :class:`ElasticNetCV` with ``l1_ratio=1``
    (``mse_path_`` of shape (n_alphas, n_folds), ``alphas_`` of shape
    (n_alphas,); no ``l1_ratio_``).

    Parameters
    ----------
    eps, alphas, fit_intercept, max_iter, tol, cv, split_every, P1, verbose
        As :class:`ElasticNetCV` (no ``P2``: the lasso has no L2 part).

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit.model_selection import LassoCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> y = X @ [2.0, 0.0, -1.0, 0.0, 0.0] + rng.normal(size=300)
    >>> reg = LassoCV(cv=3).fit(X, y)
    >>> reg.mse_path_.shape, reg.alphas_.shape, reg.n_passes_
    ((100, 3), (100,), 1)
    """

    # l1_ratio is fixed at 1 (not a parameter).
    _parameter_constraints = {name: constraint for name, constraint
                              in ElasticNetCV._parameter_constraints.items()
                              if name not in ("l1_ratio", "P2")}

    def __init__(self, *, eps=1e-3, alphas=100, fit_intercept=True, max_iter=1000, tol=1e-4,
                 cv=5, split_every=8, P1=None, verbose=0):
        self.eps = eps
        self.P1 = P1
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.split_every = split_every
        self.verbose = verbose

    def _l1_ratios(self):
        return np.array([1.0])

    def _search(self, train, test, total, targets=None):
        super()._search(train, test, total, targets)
        del self.l1_ratio_


class ElasticNetFoldScores(_FoldMomentsCV):
    """Train and validation scores of every split at every alpha, from one pass (private).

    The fast path of :func:`daskfit.overfitting.diagnose` for ``Lasso`` and
    ``ElasticNet``: the fold moments of one pass, then per split an
    elastic-net path along ``alphas`` (sorted decreasingly for warm starts,
    as :class:`ElasticNetCV`) and both scores from the moments. Nothing is
    refitted on all rows.

    Attributes
    ----------
    train_scores_, test_scores_ : ndarray of shape (n_alphas, n_splits)
        In the order of ``alphas``.
    n_passes_ : int
    """

    def __init__(self, alphas, *, l1_ratio=1.0, fit_intercept=True, cv=5, scoring=None,
                 tol=1e-4, max_iter=1000, split_every=8, P1=None, P2=None, verbose=0):
        self.alphas = alphas
        self.l1_ratio = l1_ratio
        self.P1 = P1
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.split_every = split_every
        self.verbose = verbose

    _parameter_constraints = {
        **_FoldMomentsCV._parameter_constraints,
        "alphas": ALPHAS,
        "l1_ratio": Real(low=0, high=1),
        "tol": Real(low=0),
        "max_iter": Integer(low=1),
        "scoring": Options(MOMENT_SCORERS, allow_none=True),
    }

    def _search(self, train, test, total, targets=None):
        alphas = _alphas(self.alphas)
        order = np.argsort(-alphas, kind="stable")
        score = MOMENT_SCORERS[self.scoring or "r2"]
        train_scores = np.empty((len(alphas), len(train)))
        test_scores = np.empty_like(train_scores)
        converged = True
        for s, (tr, te) in enumerate(zip(train, test)):
            B, b0, _, ok = enet_path(tr, alphas[order], float(self.l1_ratio),
                                     self.fit_intercept, self.tol, self.max_iter, self.P1,
                                     self.P2)
            converged &= ok
            train_scores[order, s] = score(tr, B, b0, _target(targets, 0, s))
            test_scores[order, s] = score(te, B, b0, _target(targets, 1, s))
        if not converged:
            warnings.warn(
                f"Coordinate descent did not converge for some folds and alphas in "
                f"max_iter={self.max_iter} sweeps. Increase max_iter or tol, or standardise "
                "the features.", ConvergenceWarning, stacklevel=3)
        self.train_scores_, self.test_scores_ = train_scores, test_scores
