"""Scores of one estimator over given splits and parameter values.

:func:`score_grid` is the single primitive of the diagnosis: train and
validation scores of ``estimator`` with ``param_name`` set to each value, on
each ``(train, test)`` split. Per-fold scores (one value), the learning curve
(one value, nested training subsets as splits) and the validation curve (many
values) all call it.

The generic path is :func:`daskfit.model_selection.cross_validate` per value
(data stay where they are; daskfit estimators fit and score on the cluster):
a fit and two scores per split and value. :data:`FAST_PATHS` maps an
estimator type to a faster implementation that scores every split at every
value, train and validation, from ONE pass over the data (the fold moments
of ``daskfit.model_selection``): Ridge and LinearRegression (Ridge with
alpha=0) through :class:`~daskfit.model_selection.RidgeCV`, Lasso and
ElasticNet through coordinate-descent paths on each split's moments;
LogisticRegression (L2) along ``C`` through
:class:`~daskfit.model_selection.LogisticRegressionCV`, every split's model
advancing together (the passes of one path fit). A fast path returns
``None`` when it does not apply (another scorer, another parameter), and the
generic path runs instead. To add one, register a function with the
signature of :func:`_ridge_fast_path`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import check_scoring, make_scorer

from ..model_selection import cross_validate
from ..model_selection._validation import BoundPredictions

__all__ = ["FAST_PATHS", "baseline_scores", "one_pass_scores", "score_grid", "scoring_info"]


def _generic(estimator, param_name, values, X, y, sample_weight, splits, scoring,
             offset=None):
    train = np.empty((len(values), len(splits)))
    test = np.empty_like(train)
    for i, value in enumerate(values):
        est = clone(estimator)
        if param_name is not None:
            est.set_params(**{param_name: value})
        out = cross_validate(est, X, y, cv=splits, scoring=scoring, return_train_score=True,
                             sample_weight=sample_weight, offset=offset)
        train[i], test[i] = out["train_score"], out["test_score"]
    return train, test


def _ridge_fast_path(estimator, param_name, values, X, y, sample_weight, splits, scoring,
                     offset=None):
    """Every split at every alpha from one pass over the data (fold moments)."""
    from ..model_selection._cv_estimators import MOMENT_SCORERS, RidgeCV

    if scoring is not None and scoring not in MOMENT_SCORERS:
        return None
    if param_name is None:  # the estimator as it is
        alphas = [float(estimator.get_params().get("alpha", 0.0))]
    elif param_name == "alpha":
        alphas = [float(v) for v in values]
    else:
        return None
    params = estimator.get_params()
    cv = RidgeCV(alphas=alphas, fit_intercept=params["fit_intercept"], cv=splits,
                 scoring=scoring, split_every=params["split_every"], return_train_score=True,
                 P2=params.get("P2"))  # Ridge's per-feature weights (LinearRegression: none)
    cv.fit(X, y, sample_weight=sample_weight, offset=offset)
    res = cv.cv_results_
    train = np.column_stack([res[f"split{s}_train_score"] for s in range(len(splits))])
    test = np.column_stack([res[f"split{s}_test_score"] for s in range(len(splits))])
    return train, test


def _enet_fast_path(estimator, param_name, values, X, y, sample_weight, splits, scoring,
                    offset=None):
    """Lasso / ElasticNet: every split at every alpha from one pass (paths on the client)."""
    from ..model_selection._cv_estimators import MOMENT_SCORERS, ElasticNetFoldScores

    if scoring is not None and scoring not in MOMENT_SCORERS:
        return None
    params = estimator.get_params()
    if param_name is None:
        alphas = [float(params["alpha"])]
    elif param_name == "alpha":
        alphas = [float(v) for v in values]
    else:
        return None
    scores = ElasticNetFoldScores(
        alphas, l1_ratio=float(estimator.l1_ratio), fit_intercept=params["fit_intercept"],
        cv=splits, scoring=scoring, tol=params["tol"], max_iter=params["max_iter"],
        split_every=params["split_every"], P1=params.get("P1"), P2=params.get("P2"))
    scores.fit(X, y, sample_weight=sample_weight, offset=offset)
    return scores.train_scores_, scores.test_scores_


def _logistic_fast_path(estimator, param_name, values, X, y, sample_weight, splits, scoring,
                        offset=None):
    """LogisticRegression (L2): every split along C in the passes of one path fit."""
    from ..model_selection._logistic_cv import PATH_SCORERS, LogisticRegressionCV

    params = estimator.get_params()
    if (scoring is not None and scoring not in PATH_SCORERS) or params["l1_ratio"] != 0 \
            or params.get("early_stopping"):
        return None
    if param_name is None:
        Cs = [float(params["C"])]
    elif param_name == "C":
        Cs = [float(v) for v in values]
    else:
        return None
    if not all(np.isfinite(Cs)):
        return None  # C=inf (no penalty) is not on a regularisation path
    cv = LogisticRegressionCV(Cs=Cs, cv=splits, scoring=scoring, refit=False,
                              fit_intercept=params["fit_intercept"], tol=params["tol"],
                              max_iter=params["max_iter"], split_every=params["split_every"],
                              P2=params.get("P2"))
    cv.fit(X, y, sample_weight=sample_weight, offset=offset)
    return cv.train_scores_[:, 0, :].T, cv.scores_[:, 0, :].T


def _fast_paths():
    from ..estimators import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    return {Ridge: _ridge_fast_path, LinearRegression: _ridge_fast_path,
            Lasso: _enet_fast_path, ElasticNet: _enet_fast_path,
            LogisticRegression: _logistic_fast_path}


#: Estimator type (exact, not subclasses) -> fast implementation of score_grid.
FAST_PATHS = _fast_paths()


def score_grid(estimator, param_name, values, X, y, sample_weight, splits, scoring,
               offset=None):
    """Train and validation scores, each of shape (n_values, n_splits).

    ``param_name=None`` scores the estimator as it is (``values`` of length 1
    is then only a placeholder). An ``offset`` goes to every fit and score
    (see :func:`daskfit.model_selection.cross_validate`).
    """
    values = [None] if param_name is None else list(values)
    fast = FAST_PATHS.get(type(estimator))
    if fast is not None:
        out = fast(estimator, param_name, values, X, y, sample_weight, splits, scoring, offset)
        if out is not None:
            return out
    return _generic(estimator, param_name, values, X, y, sample_weight, splits, scoring, offset)


def one_pass_scores(estimator, reg, X, y, sample_weight, splits, sizes, random_state,
                    scoring, n_samples, offset=None):
    """Per-fold scores, learning curve and validation curve from ONE fold pass.

    For the moments estimators (Ridge, LinearRegression, Lasso, ElasticNet)
    along ``alpha``: the pass reads each row once and codes it, per fold, by
    the learning-curve subset it enters (see
    :func:`daskfit.model_selection._split.nested_codes`); the client then
    solves every fold and every subset at every value of the curve (and the
    current value) from the moments. Returns ``(fold_train, fold_test,
    lc_train, lc_test, vc_train, vc_test)``, or None where this does not
    apply (other estimators, parameters or scorers: three score_grid calls).
    """
    from ..model_selection._cv_estimators import MOMENT_SCORERS
    from ..model_selection._split import DiagnosisSplits

    fast = FAST_PATHS.get(type(estimator))
    if fast not in (_ridge_fast_path, _enet_fast_path) or FAST_PATHS.get(
            type(reg.estimator)) is not fast or reg.param_name != "alpha" \
            or reg.current is None or (scoring is not None and scoring not in MOMENT_SCORERS):
        return None
    k, m = len(splits), len(sizes)
    values = [float(v) for v in reg.param_range] + [float(reg.current)]
    planned = DiagnosisSplits(splits, sizes, random_state, n_samples)
    train, test = fast(reg.estimator, "alpha", values, X, y, sample_weight, planned, scoring,
                       offset)
    v = len(values) - 1   # the current value's row
    return (train[v, :k], test[v, :k], train[v, k:].reshape(m, k), test[v, k:].reshape(m, k),
            train[:v, :k], test[:v, :k])


# ------------------------------------------------------------------ scorers

#: Scorers whose best possible value is 0 (losses reported negated) or 1.
_BEST_ONE_PREFIXES = ("r2", "explained_variance", "accuracy", "balanced_accuracy", "roc_auc",
                      "average_precision", "f1", "precision", "recall", "jaccard",
                      "top_k_accuracy", "d2_", "matthews_corrcoef")


def _loss_d2(y_true, y_pred, sample_weight=None, *, loss):
    """D^2 of predicted means, from the loss's own deviance sums (its ``score``).

    The same sums as the estimators' ``score`` (``score_value`` of
    ``deviance_sums``), so a Tweedie power in (0, 1), which scikit-learn's
    ``d2_tweedie_score`` refuses, is scored as the estimator scores it.
    """
    y = np.asarray(y_true, dtype=np.float64)
    mu = np.broadcast_to(np.asarray(y_pred, dtype=np.float64), y.shape)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64)
    # Every deviance loss but Tweedie's power 0 has the log link.
    raw = mu if getattr(loss, "link", "log") == "identity" else np.log(mu)
    sums = np.array([0.0, w.sum(), *loss.deviance_sums(y, raw, w)], dtype=np.float64)
    return float(loss.score_value(sums))


def _own_score(estimator):
    """``(name, scorer)`` of the estimator's own ``score``: the loss's ``score`` fact."""
    if is_classifier(estimator):
        return "accuracy", check_scoring(estimator, "accuracy")
    make_loss = getattr(estimator, "_make_loss", None)
    loss = make_loss() if make_loss is not None else None
    name = getattr(loss, "score", None)
    if name is not None and name.startswith("d2_"):
        return name, make_scorer(_loss_d2, loss=loss)
    return "r2", check_scoring(estimator, "r2")


def scoring_info(estimator, scoring):
    """``(name, best possible value or None, explicit scorer)`` of the score used.

    ``scoring=None`` is the estimator's own ``score``, as its loss names it:
    R^2 for least squares, accuracy for classifiers, D^2 (the deviance
    explained) for Poisson, Gamma and Tweedie regression; the explicit scorer
    is its equivalent, used for the baseline.
    """
    if scoring is None:
        name, scorer = _own_score(estimator)
    elif isinstance(scoring, str):
        name, scorer = scoring, check_scoring(estimator, scoring)
    elif callable(scoring):
        func = getattr(scoring, "_score_func", scoring)
        name, scorer = getattr(func, "__name__", repr(scoring)), scoring
    else:
        raise ValueError(
            f"diagnose needs one score: scoring must be None, a scorer name such as 'r2' "
            f"or a callable scorer(estimator, X, y); got {scoring!r}. For several metrics, "
            "call diagnose once per metric.")
    if name.startswith("neg_"):
        best = 0.0
    elif name.startswith(_BEST_ONE_PREFIXES):
        best = 1.0
    else:
        best = None
    return name, best, scorer


def baseline_scores(classifier, scorer, y, sample_weight, splits, offset=None,
                    estimator=None):
    """Validation scores of the constant model on each split.

    The constant is the weighted training mean (regression) or the class
    prior (classification): scikit-learn's ``DummyRegressor(strategy="mean")``
    and ``DummyClassifier(strategy="prior")``. It needs ``y`` (and the weights)
    only, never ``X``: a zero-width stand-in of the right length is scored.

    With an ``offset`` (NumPy, ``n`` values) the constant model is the
    offset model's null model, as R's ``glm`` defines its null deviance:
    an intercept plus the offset, fitted by ``estimator`` itself (a clone,
    on one all-zero column, so the loss, link and weights are the
    estimator's) and scored with the offset, as the folds are.
    """
    scores = np.empty(len(splits))
    for s, (train, test) in enumerate(splits):
        w_train = None if sample_weight is None else sample_weight[train]
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight[test]}
        if offset is None:
            model = DummyClassifier(strategy="prior") if classifier else DummyRegressor()
            model.fit(np.zeros((len(train), 1)), y[train], sample_weight=w_train)
        else:
            model = BoundPredictions(
                _intercept_only(estimator).fit(np.zeros((len(train), 1)), y[train],
                                               sample_weight=w_train, offset=offset[train]),
                offset[test], numpy=False)
        scores[s] = scorer(model, np.zeros((len(test), 1)), y[test], **kwargs)
    return scores


def _intercept_only(estimator):
    """A clone of ``estimator`` for the one-zero-column null model.

    Per-feature penalty weights are of the real features: dropped (the zero
    column's coefficient stays 0 with or without a penalty).
    """
    model = clone(estimator)
    params = model.get_params()
    return model.set_params(**{name: None for name in ("P1", "P2") if name in params})
