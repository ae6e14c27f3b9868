"""cross_validate on Dask data: the splitter runs on row numbers, rows stay put."""

from __future__ import annotations

import functools
import time

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring

from .._data import co_partition, is_dask_collection
from ..engine.rows import compute
from ..estimators._base import refuse_offset
from ._split import needs_target, resolve_splits, row_lengths, take_rows
from ..engine.placement import placed
from .._progress import reporting, say

__all__ = ["cross_validate"]


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
    offset : None
        Not supported: an error naming the estimators whose ``fit`` takes one.
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
    refuse_offset(offset, "cross_validate")
    with reporting(verbose, "cross_validate"):
        return _cross_validate(estimator, X, y, groups, cv, scoring, return_train_score,
                               return_estimator, return_indices, sample_weight, verbose)


def _cross_validate(estimator, X, y, groups, cv, scoring, return_train_score,
                    return_estimator, return_indices, sample_weight, verbose):
    X, y, sample_weight, groups = co_partition(X, y, sample_weight, groups)
    lazy = any(is_dask_collection(v) for v in (X, y, sample_weight, groups))
    if not lazy and sample_weight is None:
        from sklearn.model_selection import cross_validate as sk_cross_validate

        return sk_cross_validate(estimator, X, y, groups=groups, cv=cv, scoring=scoring,
                                 return_train_score=return_train_score,
                                 return_estimator=return_estimator,
                                 return_indices=return_indices, verbose=verbose)
    if not is_dask_collection(X):
        # In-memory X: the vectors that came as Dask are n values each.
        y, sample_weight, groups = (_numpy(v) for v in (y, sample_weight, groups))
    classifier = is_classifier(estimator)
    lengths, y_values, _ = row_lengths(X, y, needs_target(cv, classifier))
    n = int(sum(lengths)) if lengths is not None else _n_rows(X)
    groups = _numpy(groups)
    splits = resolve_splits(cv, n, y_values, groups, classifier=classifier)
    scorer = check_scoring(estimator, scoring=scoring)
    multimetric = not (scoring is None or isinstance(scoring, str) or callable(scoring))
    passthrough = scoring is None
    fit_times, score_times, tests, trains, estimators = [], [], [], [], []
    for fold, (train, test) in enumerate(splits):
        train, test = np.sort(train), np.sort(test)
        est = clone(estimator)
        Xtr, ytr, wtr = (take_rows(v, train, lengths) for v in (X, y, sample_weight))
        started = time.perf_counter()
        if wtr is None:
            est.fit(Xtr, ytr)
        else:
            est.fit(Xtr, ytr, sample_weight=wtr)
        fit_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        tests.append(_score(scorer, est, *(take_rows(v, test, lengths)
                                           for v in (X, y, sample_weight)), passthrough))
        score_times.append(time.perf_counter() - started)
        if return_train_score:
            trains.append(_score(scorer, est, Xtr, ytr, wtr, passthrough))
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


def _score(scorer, estimator, X, y, sample_weight, passthrough):
    """One score (or dict of scores).

    ``estimator.score`` (``scoring=None``) gets the Dask pieces: daskfit
    estimators compute it on the cluster. Other scorers get ``y``, the
    weights and the predictions as NumPy (``n`` values each; never ``X``),
    since scikit-learn's metrics need lengths that Dask may not know.
    """
    lazy = any(is_dask_collection(v) for v in (X, y, sample_weight))
    if lazy and not passthrough:
        estimator = _NumpyPredictions(estimator)
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


class _NumpyPredictions:
    """A fitted estimator whose predictions on Dask input come back as NumPy."""

    _METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")

    def __init__(self, estimator):
        self._estimator = estimator

    def __getattr__(self, name):
        attr = getattr(self._estimator, name)
        if name not in self._METHODS:
            return attr

        @functools.wraps(attr)
        def computed(X):
            return _numpy(attr(X))

        return computed
