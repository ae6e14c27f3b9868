"""LogisticRegressionCV: k fold models and the refit advance together.

See :mod:`._logistic_path` for the algorithm: one pass per Newton step
serves every fold model (each on its own training rows, scoring its own
validation rows) and the model on all rows, along the whole path of ``C``
values, warm-started. The cost is the passes of one path fit.
"""

from __future__ import annotations

import numbers
import warnings

import dask

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._data import as_chunked, split_row_vectors
from ..engine.rows import Engine, compute
from ..errors import DataError, ParameterError
from ..kernels.alignment import rows_per_block
from ..kernels.chunks import label_problem
from ..objective import checked_classes, penalty_mask
from ..objective.rows import class_weight_vector
from ..estimators._params import (Boolean, CountOr, FiniteArray, Integer, Options, Real,
                                  Satisfies, cv_splits)
from ..estimators._params import FeatureWeights
from ..estimators._classification import CLASS_WEIGHT, LogisticRegression, check_class_weight
from ..model.penalties import Penalty, check_feature_weights
from ..solvers import hessian_stride
from ._logistic_path import PathModel, run_path
from ._path_kernel import TRAIN, VALIDATE
from ._split import fold_pass_data
from ..engine.placement import placed
from .._progress import reported
from ..estimators._params import verbosity

__all__ = ["LogisticRegressionCV", "PATH_SCORERS"]

#: Scores that are sums over the validation rows, so the pass computes them.
PATH_SCORERS = {
    "accuracy": lambda s: s["val_correct"] / s["val_sw"],
    "neg_log_loss": lambda s: -s["val_loss"] / s["val_sw"],
}
#: The same on the training rows (for train/validation gaps).
#: By ``sample_weight`` alone, as the validation scores (with class_weight,
#: the fit's own sums ``loss`` and ``train_sw`` are class weighted).
_TRAIN_SCORERS = {
    "accuracy": lambda s: s["train_correct"] / s["train_score_sw"],
    "neg_log_loss": lambda s: -s["train_loss"] / s["train_score_sw"],
}


def _only_l2(l1_ratios):
    """True for ``(0.0,)``-like ``l1_ratios``: the only penalty the Newton path supports."""
    try:
        ratios = np.atleast_1d(np.asarray(l1_ratios, dtype=np.float64))
    except (TypeError, ValueError):
        return False
    return ratios.ndim == 1 and ratios.size > 0 and not np.any(ratios != 0)


class LogisticRegressionCV(LogisticRegression):
    """Logistic regression with C chosen by cross-validation, folds fitted together.

    scikit-learn's ``LogisticRegressionCV`` (L2 penalty, its newer attribute
    layout, ``use_legacy_attributes=False``) on Dask data. Each pass over
    the data serves all k fold models and the final model on all rows: each
    row block is multiplied by every model's coefficients at once, each
    model weighs only its own training rows, and each fold model scores its
    validation rows in the same pass. Every model runs damped Newton along
    ``Cs`` (in the given order), warm-started, and moves to the next ``C``
    as soon as it converges, so cross-validation costs the passes of one
    path fit. The refit is the all-rows model at the chosen ``C``.

    Parameters
    ----------
    Cs : int or array-like of float, default=10
        Inverse regularisation strengths; an int ``n`` gives
        ``np.logspace(-4, 4, n)`` as scikit-learn does.
    l1_ratios : array-like, default=(0.0,)
        Only ``0`` (the L2 penalty) is supported: the path solver is Newton,
        which needs a smooth objective. For L1 or elastic net, search
        ``daskfit.LogisticRegression(l1_ratio=...)`` with ``GridSearchCV``.
    fit_intercept : bool, default=True
    cv : int, splitter or iterable, default=None
        ``None`` or an int: stratified k-fold (5 folds for ``None``), as
        scikit-learn's ``check_cv`` for classifiers.
    scoring : {None, "accuracy", "neg_log_loss"}, default=None
        ``None`` is accuracy (scikit-learn's default). Both are sums over
        the validation rows, computed in the path's passes; weighted by
        ``sample_weight`` when given.
    tol : float, default=1e-4
        Max-abs gradient of each model's mean-loss objective at which it
        stops (or Newton decrement below ``tol**2``).
    max_iter : int, default=100
        Newton iterations per model and per ``C``.
    refit : bool, default=True
        Refit on all rows at the best mean score's ``C`` (from the same
        passes); otherwise average the fold models at their own best ``C``.
    persist : {"auto", True, False}, default="auto"
    split_every : int, default=8
    class_weight : dict, "balanced" or None, default=None
        As scikit-learn's: ``"balanced"`` is computed once on the whole
        ``y`` (weighted by ``sample_weight``) and, like a dict, multiplies
        the training weights of every fold model and of the refit; the
        validation scores are weighted by ``sample_weight`` alone, as
        scikit-learn scores them. The training scores likewise.
    P2 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L2 penalty, the same at every
        ``C`` (as :class:`daskfit.LogisticRegression`'s ``P2``; 0 leaves a
        coefficient unpenalised). No ``P1``: the path is L2 only.
    verbose : int, default=0
        0 prints nothing; 1 a line per pass over the data (a bar in a
        notebook), as :class:`~daskfit.LinearRegression`'s ``verbose``.

    Attributes
    ----------
    C_ : float
    l1_ratio_ : float
    Cs_ : ndarray of shape (n_cs,)
    l1_ratios_ : ndarray of shape (1,)
    scores_ : ndarray of shape (n_folds, 1, n_cs)
        Validation score of each fold model at each ``C``.
    train_scores_ : ndarray of shape (n_folds, 1, n_cs)
        The same score on each fold model's training rows.
    coefs_paths_ : ndarray of shape (n_folds, 1, n_cs, n_outputs, n_features + fit_intercept)
        ``n_outputs`` is 1 for two classes, ``n_classes`` beyond.
    n_iter_ : ndarray of shape (n_folds, 1, n_cs)
    classes_, coef_, intercept_, n_features_in_, feature_names_in_
        As :class:`daskfit.LogisticRegression`.
    n_passes_ : int
        Passes over X (the first, validating one included).
    target_passes_ : int
        Extra passes over ``y`` only (class labels and, for stratified
        folds, the labels the splitter needs; 0 for in-memory input).

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit.model_selection import LogisticRegressionCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> clf = LogisticRegressionCV(Cs=[0.01, 1.0, 100.0], cv=4).fit(X, y)
    >>> clf.scores_.shape, clf.C_ in clf.Cs_
    ((4, 1, 3), True)
    """

    def __init__(self, *, Cs=10, l1_ratios=(0.0,), fit_intercept=True, cv=None, scoring=None,
                 tol=1e-4, max_iter=100, refit=True, persist="auto", split_every=8,
                 class_weight=None, P2=None, verbose=0):
        self.Cs = Cs
        self.P2 = P2
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.refit = refit
        self.persist = persist
        self.split_every = split_every
        self.class_weight = class_weight
        self.verbose = verbose

    # ------------------------------------------------------------ params
    _parameter_constraints = {
        "Cs": CountOr(FiniteArray(low=0, low_open=True)),
        "l1_ratios": Satisfies(
            _only_l2, "(0.0,) (an L2 penalty: the path solver is Newton)",
            hint="For L1 or elastic net, use GridSearchCV over "
                 "daskfit.LogisticRegression(l1_ratio=..., solver='proximal')."),
        "fit_intercept": Boolean(),
        "cv": cv_splits(),
        "scoring": Options(PATH_SCORERS, allow_none=True),
        "tol": Real(low=0),
        "max_iter": Integer(low=0),
        "refit": Boolean(),
        "persist": Options({"auto", True, False}),
        "split_every": Integer(low=2),
        "class_weight": CLASS_WEIGHT,
        "P2": FeatureWeights(),
        "verbose": verbosity(),
    }

    def _check_parameter_combinations(self):
        """``class_weight`` (its checks need the estimator's name)."""
        check_class_weight(self.class_weight, type(self).__name__)

    def _Cs_grid(self):
        """The ``C`` values: ``np.logspace(-4, 4, Cs)`` for an int, else ``Cs`` as given."""
        if isinstance(self.Cs, numbers.Integral) and not isinstance(self.Cs, bool):
            return np.logspace(-4, 4, self.Cs)
        return np.atleast_1d(np.asarray(self.Cs, dtype=np.float64))

    # --------------------------------------------------------------- fit
    @placed
    @reported  # verbose: a line per pass (see daskfit._progress)
    def fit(self, X, y, sample_weight=None, groups=None, offset=None):
        """Choose C by cross-validation and refit, with the folds fitted together.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (two: binary; more: multinomial).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the fits and of the validation scores.
        groups : array-like of shape (n_samples,), default=None
            Group labels for group splitters.
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            A fixed term added to the log-odds (binary labels only, as
            :meth:`daskfit.LogisticRegression.fit`'s), for every fold model
            and the refit, and to the predictions their validation (and
            training) scores are computed from, as
            :meth:`~daskfit.LogisticRegression.score` with ``offset=``
            scores. It travels with the weights: no extra pass. Pass the
            same offset to :meth:`predict`.

        Returns
        -------
        self : object
        """
        self._validate_common_params()
        Cs = self._Cs_grid()
        if y is None:
            raise ValueError("LogisticRegressionCV requires y to be passed, but the target "
                             "y is None.")
        data = as_chunked(self, X, y, sample_weight, reset=True, y_numeric=False,
                          offset=offset)
        if data.X.numblocks[1] > 1:
            data.X = data.X.rechunk({1: -1})
        balanced = isinstance(self.class_weight, str)
        classes, totals, label_passes = _classes(
            data.y, data.is_lazy, data.sample_weight if balanced else None, counts=balanced)
        class_weight = _class_weights(self.class_weight, classes, totals)
        data.y = data.y.map_blocks(_encode, classes, dtype=np.float64)
        fold_data, layout, splits, target_passes = fold_pass_data(
            data, _cv_or_default(self.cv), groups, classifier=True)
        S = layout.n_splits
        K = 1 if len(classes) == 2 else len(classes)
        if K > 1 and offset is not None:
            raise ParameterError(
                f"offset= applies to binary logistic regression, but y has {len(classes)} "
                "classes: an offset added to every class's linear predictor does not change "
                "a multinomial model. Fit without offset.", parameter="offset")
        p = data.n_features
        n_params = K * (p + int(self.fit_intercept))
        check_feature_weights("P2", self.P2, p)
        l2_weights, null_basis = _layout(p, K, self.fit_intercept, self.P2)
        numbers_ = list(range(S)) + ([S] if self.refit else [])
        models = [PathModel(m, n_params, l2_weights, null_basis) for m in numbers_]
        engine = Engine(fold_data, split_every=self.split_every, persist=self.persist)
        engine.prepare(expected_passes=2)
        stride = hessian_stride(data.X.shape[0], n_params,
                                rows_per_block(data.X.shape[1], data.X.dtype.itemsize))
        run_path(engine, models, _split_tables(layout), Cs, n_features=p, n_outputs=K,
                 fit_intercept=self.fit_intercept, tol=self.tol, max_iter=self.max_iter,
                 hessian_stride=stride, class_weight=class_weight)
        self.classes_ = classes
        self._set_results(models[:S], models[S] if self.refit else None, Cs, K, p)
        self.n_passes_ = engine.passes
        # Reading labels held in memory is not a pass over the data.
        self.target_passes_ = (label_passes + target_passes) if data.is_lazy else 0
        self.pass_log_ = list(engine.pass_log)
        self.persist_reason_ = engine.persist_reason
        if engine.chunk_rows is not None:
            self.chunk_rows_ = engine.chunk_rows
        return self

    def _set_results(self, folds, full, Cs, K, p):
        scorer = self.scoring or "accuracy"
        width = p + int(self.fit_intercept)
        self.Cs_ = Cs
        self.l1_ratios_ = np.array([0.0])
        self.scores_ = np.array([[PATH_SCORERS[scorer](r.stats) for r in m.records]
                                 for m in folds])[:, None, :]
        self.train_scores_ = np.array([[_TRAIN_SCORERS[scorer](r.stats) for r in m.records]
                                       for m in folds])[:, None, :]
        self.coefs_paths_ = np.array([[r.theta.reshape(K, width) for r in m.records]
                                      for m in folds])[:, None]
        self.n_iter_ = np.array([[r.n_iter for r in m.records] for m in folds])[:, None, :]
        self.l1_ratio_ = 0.0
        scores = self.scores_[:, 0, :]
        if full is not None:
            best = int(np.argmax(scores.sum(axis=0)))  # first best, as scikit-learn
            self.C_ = float(Cs[best])
            record = full.records[best]
            block = record.theta.reshape(K, width)
            unconverged = [(m.number, r) for m in (*folds, full)
                           for r in m.records if not r.converged]
        else:
            best_per_fold = np.argmax(scores, axis=1)
            self.C_ = float(np.mean(Cs[best_per_fold]))
            block = np.mean([m.records[b].theta.reshape(K, width)
                             for m, b in zip(folds, best_per_fold)], axis=0)
            unconverged = [(m.number, r) for m in folds for r in m.records if not r.converged]
        if unconverged:
            number, record = unconverged[0]
            warnings.warn(
                f"LogisticRegressionCV: {len(unconverged)} of the path's fits did not "
                f"converge (first: model {number}, {record.message} after {record.n_iter} "
                f"iterations). Increase max_iter or standardise the features.",
                ConvergenceWarning, stacklevel=3)
        coef = block[:, :p].copy()
        intercept = block[:, p].copy() if self.fit_intercept else np.zeros(K)
        if K > 1 and self.fit_intercept:
            intercept -= intercept.mean()  # softmax is shift invariant: report centred
        if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
            raise FloatingPointError("LogisticRegressionCV produced non-finite coefficients; "
                                     "nothing was fitted. Standardise the features.")
        self.coef_, self.intercept_ = coef, intercept

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


# ------------------------------------------------------------------ helpers


def _cv_or_default(cv):
    return 5 if cv is None else cv


def _classes(y, lazy, sample_weight=None, counts=False):
    """Sorted class labels of a Dask vector, checked; their totals; passes over y.

    One task per chunk returns its distinct labels (a NaN label, if any, in
    their place), so only labels travel to the client. With ``counts`` the
    same tasks also return each label's total ``sample_weight`` (its row
    count without weights), for ``class_weight="balanced"``: the totals are
    then an array in class order, else None.
    """
    blocks = y.to_delayed().ravel()
    weights = ([None] * len(blocks) if sample_weight is None
               else sample_weight.to_delayed().ravel())
    parts = compute(*[dask.delayed(_unique_or_nan)(b, w, counts)
                      for b, w in zip(blocks, weights)])
    values = np.concatenate([np.asarray(p[0]) for p in parts]) if parts else np.array([])
    problem = label_problem(values)
    if problem:
        raise DataError(problem)
    classes = checked_classes(values.tolist())
    totals = None
    if counts:
        by_label = {}
        for labels, sums in parts:
            for label, total in zip(np.asarray(labels).tolist(), sums):
                by_label[label] = by_label.get(label, 0.0) + total
        totals = np.array([by_label[c] for c in classes.tolist()])
    return classes, totals, int(lazy)


def _unique_or_nan(block, w=None, counts=False):
    """``(distinct labels, their total weights or None)`` of one chunk."""
    arr = np.asarray(block)
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        return arr[np.isnan(arr)][:1], None
    try:
        labels, codes = np.unique(arr, return_inverse=True)
    except TypeError:  # mixed types
        return arr, None
    if not counts:
        return labels, None
    # With an offset the slot holds (weight, offset) records: the weights alone.
    w = None if w is None else split_row_vectors(np.asarray(w))[0]
    weights = None if w is None else np.asarray(w, dtype=np.float64)
    return labels, np.bincount(codes.ravel(), weights=weights, minlength=len(labels))


def _class_weights(class_weight, classes, totals):
    """scikit-learn's ``class_weight`` as one weight per class, or None.

    A dict's keys must be class labels (scikit-learn's check and words);
    ``"balanced"`` comes from the totals over the whole ``y``, once.
    """
    if isinstance(class_weight, dict) and not set(class_weight) <= set(classes.tolist()):
        raise ValueError(
            "The given class_weight dict must have the class labels as keys; "
            f"classes={classes} but key={class_weight.keys()}")
    return class_weight_vector(class_weight, classes, totals)


def _encode(block, classes):
    """Labels -> class index as float (the kernel's ``y``)."""
    return np.searchsorted(classes, block).astype(np.float64)


def _layout(p, K, fit_intercept, P2=None):
    """L2 weights over theta (intercepts unpenalised) and the softmax's flat directions.

    The softmax is flat along a common shift of every class's intercept,
    and of every class's coefficient of a feature the L2 part leaves out
    (``P2_j = 0``).
    """
    width = p + int(fit_intercept)
    weights = Penalty(l2=1.0, P2=P2).l2_on(penalty_mask(p, K, fit_intercept))
    columns = ([width - 1] if fit_intercept else []) + np.flatnonzero(
        weights[:p] == 0).tolist()
    null_basis = None
    if K > 1 and columns:
        null_basis = np.zeros((K * width, len(columns)))
        for j, col in enumerate(columns):
            null_basis[col::width, j] = 1.0 / np.sqrt(K)
    return weights, null_basis


def _split_tables(layout):
    """``(grouping, roles by code)`` per split, from the fold layout."""
    tables = []
    for s in range(layout.n_splits):
        groupings = {g for g, _ in layout.train[s] + layout.test[s]}
        if len(groupings) != 1:
            raise AssertionError(f"split {s} spans groupings {sorted(groupings)}")
        (g,) = groupings
        roles = np.zeros(layout.n_codes[g], dtype=np.int8)
        for _, c in layout.train[s]:
            roles[c] = TRAIN
        for _, c in layout.test[s]:
            roles[c] = VALIDATE
        tables.append((g, roles))
    return tuple(tables)
