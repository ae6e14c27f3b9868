"""cross_validate on Dask data: the splitter runs on row numbers, rows stay put."""

from __future__ import annotations

import functools
import inspect
import time

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring

from .._data import co_partition, is_dask_collection
from ..engine.rows import compute
from ..errors import ParameterError
from ._split import needs_target, resolve_splits, row_lengths, take_rows
from ..engine.placement import placed
from .._progress import reporting, say

__all__ = ["BoundPredictions", "check_takes_offset", "cross_validate"]


@placed
def cross_validate(estimator, X, y=None, *, groups=None, cv=5, scoring=None,
                   return_train_score=False, return_estimator=False, return_indices=False,
                   sample_weight=None, offset=None, verbose=0):
    """Evaluate metrics by cross-validation, with the training data left in place.

    scikit-learn's ``cross_validate`` for Dask input. The splitter runs on
    the client over row numbers (``n_samples`` from the chunk sizes; ``y``
    and ``groups``, ``n`` values each, are computed when the splitter needs
    them, and chunk sizes that Dask does not know cost one pass over ``y``).
    Each fold's training and test sets are cut chunk by chunk where the data
    lives (a task per chunk, holding only that chunk's row numbers), so ``X``
    never travels to the client; fitting and scoring run on the cluster when
    the estimator is a daskfit one. Rows keep their storage order within a
    fold. For in-memory input without weights this is scikit-learn's own
    ``cross_validate``.

    Parameters
    ----------
    estimator : estimator
        Fitted on each training set (a clone).
    X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
    y : array-like or Dask collection of shape (n_samples,), default=None
    groups : array-like of shape (n_samples,), default=None
        Group labels for group splitters.
    cv : int, cross-validation splitter or iterable, default=5
        As scikit-learn's (``int``: ``StratifiedKFold`` for classifiers,
        ``KFold`` otherwise).
    scoring : str, callable, list, tuple or dict, default=None
        As scikit-learn's; ``None`` uses ``estimator.score`` (for daskfit
        estimators on Dask input, computed on the cluster).
    return_train_score, return_estimator, return_indices : bool, default=False
    sample_weight : array-like or Dask collection of shape (n_samples,), default=None
        Passed, cut per fold, to ``fit`` and to the scorer (weighted scores):
        scikit-learn's ``cross_validate`` with metadata routing of
        ``sample_weight`` to both.
    offset : array-like or Dask collection of shape (n_samples,), default=None
        A fixed term of the linear predictor (``log(exposure)``), cut per
        fold like the weights. It goes to ``fit`` and to every prediction a
        score is made from: ``scoring=None`` calls ``estimator.score(X, y,
        offset=...)``, and a named or callable scorer sees ``predict``,
        ``predict_proba``, ``decision_function`` with the fold's offset
        bound. So each score is of the model with its offset, as the
        estimator's own ``score(X, y, offset=...)`` computes it.
        (scikit-learn's ``cross_validate(..., params={"offset": o})`` routes
        it to ``fit`` only, and would score predictions without the offset.)
        The estimator's ``fit`` must take ``offset`` (daskfit's GLMs do).
    verbose : int, default=0
        1: a line per fold (fit and score seconds, passes, scores) on stdout;
        2: also every pass of each fold's fit (see ``daskfit._progress``).
        In-memory input without weights is scikit-learn's ``cross_validate``,
        which gets ``verbose`` and prints as scikit-learn does.

    Returns
    -------
    scores : dict
        ``fit_time``, ``score_time``, ``test_score`` (or ``test_<name>`` per
        metric), and on request ``train_score``, ``estimator``, ``indices``.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> import daskfit
    >>> from daskfit.model_selection import cross_validate
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(rng.normal(size=(400, 3)), chunks=(100, 3))
    >>> y = X @ np.array([1.0, 2.0, 3.0]) + 0.5
    >>> out = cross_validate(daskfit.LinearRegression(), X, y, cv=4)
    >>> np.round(out["test_score"], 6)
    array([1., 1., 1., 1.])
    """
    check_takes_offset(estimator, offset)
    with reporting(verbose, "cross_validate"):
        return _cross_validate(estimator, X, y, groups, cv, scoring, return_train_score,
                               return_estimator, return_indices, sample_weight, offset,
                               verbose)


def _cross_validate(estimator, X, y, groups, cv, scoring, return_train_score,
                    return_estimator, return_indices, sample_weight, offset, verbose):
    X, y, sample_weight, groups, offset = co_partition(X, y, sample_weight, groups, offset)
    lazy = any(is_dask_collection(v) for v in (X, y, sample_weight, groups, offset))
    if not lazy and sample_weight is None and offset is None:
        from sklearn.model_selection import cross_validate as sk_cross_validate

        return sk_cross_validate(estimator, X, y, groups=groups, cv=cv, scoring=scoring,
                                 return_train_score=return_train_score,
                                 return_estimator=return_estimator,
                                 return_indices=return_indices, verbose=verbose)
    if not is_dask_collection(X):
        # In-memory X: the vectors that came as Dask are n values each.
        y, sample_weight, groups, offset = (_numpy(v) for v in (y, sample_weight, groups,
                                                                 offset))
    classifier = is_classifier(estimator)
    lengths, y_values, _ = row_lengths(X, y, needs_target(cv, classifier))
    n = int(sum(lengths)) if lengths is not None else _n_rows(X)
    groups = _numpy(groups)
    splits = resolve_splits(cv, n, y_values, groups, classifier=classifier)
    if offset is not None and np.ndim(offset) == 0:  # one offset for every row
        offset = np.full(n, float(offset))
    scorer = check_scoring(estimator, scoring=scoring)
    multimetric = not (scoring is None or isinstance(scoring, str) or callable(scoring))
    passthrough = scoring is None
    fit_times, score_times, tests, trains, estimators = [], [], [], [], []
    for fold, (train, test) in enumerate(splits):
        train, test = np.sort(train), np.sort(test)
        est = clone(estimator)
        Xtr, ytr, wtr, otr = (take_rows(v, train, lengths)
                              for v in (X, y, sample_weight, offset))
        started = time.perf_counter()
        est.fit(Xtr, ytr, **_present(sample_weight=wtr, offset=otr))
        fit_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        tests.append(_score(scorer, est, *(take_rows(v, test, lengths)
                                           for v in (X, y, sample_weight, offset)),
                            passthrough))
        score_times.append(time.perf_counter() - started)
        if return_train_score:
            trains.append(_score(scorer, est, Xtr, ytr, wtr, otr, passthrough))
        say(_fold_line(fold, len(splits), est, fit_times[-1], score_times[-1], tests[-1],
                       trains[-1] if return_train_score else None))
        if return_estimator:
            estimators.append(est)
    out = {"fit_time": np.array(fit_times), "score_time": np.array(score_times)}
    if return_estimator:
        out["estimator"] = estimators
    if return_indices:
        out["indices"] = {"train": [tr for tr, _ in splits], "test": [te for _, te in splits]}
    for prefix, values in (("test", tests), ("train", trains)):
        if prefix == "train" and not return_train_score:
            continue
        if multimetric:
            for name in values[0]:
                out[f"{prefix}_{name}"] = np.array([v[name] for v in values])
        else:
            out[f"{prefix}_score"] = np.array(values)
    return out


def check_takes_offset(estimator, offset, owner="cross_validate"):
    """A clear error, before any fit, for an offset the estimator's ``fit`` cannot take."""
    if offset is None:
        return
    fit = getattr(estimator, "fit", None)
    try:
        takes = fit is not None and "offset" in inspect.signature(fit).parameters
    except (TypeError, ValueError):  # no signature to read: let fit decide
        return
    if not takes:
        raise ParameterError(
            f"{owner} got offset= but {type(estimator).__name__}.fit does not take "
            "an offset. Use an estimator whose fit and predict take offset= (daskfit's "
            "GLMs), or cross-validate without it.", parameter="offset")


def _present(**kwargs):
    """The keyword arguments that are not None (fit without them otherwise)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _fold_line(fold, n_folds, estimator, fit_time, score_time, test, train):
    """``fold 2/5: fit 1.20 s (6 passes), score 0.10 s, test_score 0.913``."""
    passes = getattr(estimator, "n_passes_", None)
    cost = f" ({passes:g} passes)" if passes is not None else ""
    scores = [("test", test)] + ([("train", train)] if train is not None else [])
    shown = ", ".join(f"{prefix}_{name} {value:.4g}" for prefix, values in scores
                      for name, value in (values.items() if isinstance(values, dict)
                                          else [("score", values)]))
    return (f"cross_validate fold {fold + 1}/{n_folds}: fit {fit_time:.2f} s{cost}, "
            f"score {score_time:.2f} s, {shown}")


def _n_rows(X):
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _score(scorer, estimator, X, y, sample_weight, offset, passthrough):
    """One score (or dict of scores).

    ``estimator.score`` (``scoring=None``) gets the Dask pieces: daskfit
    estimators compute it on the cluster; an offset goes to it as
    ``offset=``. Other scorers get ``y``, the weights and the predictions
    as NumPy (``n`` values each; never ``X``), since scikit-learn's metrics
    need lengths that Dask may not know; an offset is bound to every
    prediction method they call.
    """
    lazy = any(is_dask_collection(v) for v in (X, y, sample_weight, offset))
    if passthrough:
        return float(estimator.score(X, y, **_present(sample_weight=sample_weight,
                                                       offset=offset)))
    if lazy or offset is not None:
        estimator = BoundPredictions(estimator, offset, numpy=lazy)
        y, sample_weight = _numpy(y), _numpy(sample_weight)
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    result = scorer(estimator, X, y, **kwargs)
    if isinstance(result, dict):
        return {k: float(v) for k, v in result.items()}
    return float(result)


def _numpy(v):
    if v is None or not is_dask_collection(v):
        return v
    (v,) = compute(v)
    return np.asarray(v)


class BoundPredictions:
    """A fitted estimator seen by a scorer: the fold's offset bound to its predictions.

    With ``numpy`` (Dask input) the predictions come back as NumPy.
    """

    _METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")

    def __init__(self, estimator, offset=None, numpy=True):
        self._estimator = estimator
        self._offset = offset
        self._as_numpy = numpy

    def __getattr__(self, name):
        attr = getattr(self._estimator, name)
        if name not in self._METHODS:
            return attr
        kwargs = _present(offset=self._offset)
        finish = _numpy if self._as_numpy else (lambda v: v)

        @functools.wraps(attr)
        def computed(X):
            return finish(attr(X, **kwargs))

        return computed
