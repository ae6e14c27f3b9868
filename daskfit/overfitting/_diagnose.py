"""``diagnose``: is this estimator overfitting, underfitting, or fine?"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import clone, is_classifier

from .._data import co_partition
from ..model_selection._validation import check_takes_offset
from ._folds import (client_vectors, known_lengths, learning_curve_splits, make_splits,
                     offset_values, translate_train_sizes)
from ._params import resolve_regularisation
from ._report import DiagnosisReport
from ._scores import baseline_scores, one_pass_scores, score_grid, scoring_info
from ._verdict import judge
from ..engine.placement import placed
from .._progress import reporting, say, step

__all__ = ["diagnose"]


@placed
def diagnose(estimator, X, y, *, cv=5, scoring=None, sample_weight=None, groups=None,
             param_name=None, param_range=None, train_sizes=(0.1, 0.325, 0.55, 0.775, 1.0),
             random_state=0, offset=None, verbose=0):
    """Diagnose over- or underfitting by cross-validation, and recommend a strength.

    Runs, on the same folds: the estimator's per-fold train and validation
    scores; a learning curve (scores against training rows); a validation
    curve (scores against the regularisation parameter); and the constant
    model (training mean, or class prior) as the baseline. Data stay where
    they are: folds are cut chunk by chunk and fitted on the cluster; only
    ``y``, the weights and the groups (``n`` values each) reach the client.

    The verdict (``report.rule`` states it with the numbers of the run;
    ``T``/``V`` mean train/validation score, ``B`` the constant model's
    validation score, ``P`` the best possible score: 1 for R^2, D^2,
    accuracy; 0 for ``neg_*`` losses; range ``S = P - B``):

    - **overfitting** if ``T - V > 0.10 S``, or if stronger regularisation
      raises the mean validation score by more than ``0.01 S`` and one
      standard error of the paired per-fold differences;
    - **underfitting** (otherwise) if ``T - B < 0.10 S``, or if weaker
      regularisation raises it by that much;
    - **fine** otherwise.

    The recommended value is the one with the best mean validation score on
    the validation curve (ties: the stronger one).

    Parameters
    ----------
    estimator : estimator
        Unfitted (it is cloned). daskfit's or scikit-learn's.
    X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
    y : array-like or Dask collection of shape (n_samples,)
    cv : int, cross-validation splitter or iterable, default=5
        ``int``: shuffled ``KFold`` (``StratifiedKFold`` for classifiers)
        seeded by ``random_state``; any scikit-learn splitter; or an
        iterable of ``(train, test)`` row numbers.
    scoring : str, callable or None, default=None
        One score, greater is better. ``None`` is the estimator's ``score``
        (R^2, accuracy, D^2 for Poisson).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the fits and of every score (the baseline's too).
    groups : array-like of shape (n_samples,), default=None
        For group splitters.
    param_name : str, default=None
        Parameter of the validation curve. Default ``alpha``, else ``C``;
        for ``LinearRegression``, ``alpha`` of a ``Ridge`` with the same
        options (the report says so).
    param_range : array-like of shape (n_values,), default=None
        Values of the curve; default 13 values from 1/1000 to 1000 times the
        current value (1 when it is 0 or missing), log-spaced.
    train_sizes : array-like, default=(0.1, 0.325, 0.55, 0.775, 1.0)
        Fractions (floats in (0, 1]) of the first training fold, or row counts.
    random_state : int, RandomState or None, default=0
        Seeds the folds of an int ``cv`` and the order in which the learning
        curve takes training rows.
    offset : array-like or Dask collection of shape (n_samples,), default=None
        A fixed term of the linear predictor (``log(exposure)``), for
        estimators whose ``fit`` takes ``offset`` (daskfit's GLMs). It goes
        to every fit and every score, as in
        :func:`daskfit.model_selection.cross_validate`: scores are of the
        model with its offset, as ``estimator.score(X, y, offset=...)``.
        The constant model becomes the offset model's null model (an
        intercept plus the offset, R's ``glm`` null model), fitted by the
        estimator on the client (``n`` values: ``y``, weights, offset).
    verbose : int, default=0
        1: a line per stage (per-fold scores, learning curve, validation
        curve, baseline) with its seconds and fits, on stdout; 2: also every
        pass of every fit (see ``daskfit._progress``).

    Returns
    -------
    report : DiagnosisReport
        ``verdict``, ``rule``, ``recommended``, ``folds``, ``learning_curve``,
        ``validation_curve``; ``plot()``, ``to_dict()``, ``to_html(path)``.

    Examples
    --------
    >>> import numpy as np
    >>> import daskfit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 40))              # few rows, many features
    >>> y = X[:, 0] + rng.normal(size=60)          # one of them matters
    >>> report = daskfit.overfitting.diagnose(daskfit.LinearRegression(), X, y)
    >>> report.verdict
    'overfitting'
    >>> report.recommended["param_name"], report.recommended["value"] > 1
    ('alpha', True)
    """
    if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise TypeError(f"diagnose needs a scikit-learn style estimator (with fit and "
                        f"get_params); got {type(estimator).__name__}.")
    with reporting(verbose, "diagnose"):
        return _diagnose(estimator, X, y, cv, scoring, sample_weight, groups, param_name,
                         param_range, train_sizes, random_state, offset)


def _diagnose(estimator, X, y, cv, scoring, sample_weight, groups, param_name, param_range,
              train_sizes, random_state, offset):
    classifier = is_classifier(estimator)
    score_name, best_possible, explicit_scorer = scoring_info(estimator, scoring)
    reg = resolve_regularisation(estimator, param_name, param_range)
    # Columns of one multi-file Dask DataFrame: one partitioning for all of them.
    check_takes_offset(estimator, offset, "diagnose")
    X, y, sample_weight, groups, offset = co_partition(X, y, sample_weight, groups, offset)
    with step("diagnose: folds cut (y, weights and groups on the client)"):
        n, y_values, w_values, group_values, lengths = client_vectors(X, y, sample_weight,
                                                                      groups)
    o_values = offset_values(offset, n)
    X, y, sample_weight, offset = known_lengths(lengths, X, y, sample_weight, offset)
    splits = make_splits(cv, n, y_values, group_values, classifier, random_state)
    sizes = translate_train_sizes(train_sizes, len(splits[0][0]))

    started = time.perf_counter()
    merged = one_pass_scores(estimator, reg, X, y, sample_weight, splits, sizes, random_state,
                             scoring, n, offset)
    if merged is not None:   # the moments estimators: everything from one pass
        say(f"diagnose: per-fold scores, learning curve and validation curve of "
            f"{reg.param_name} from the folds' moments (one pass): "
            f"{time.perf_counter() - started:.2f} s")
        fold_train, fold_test, lc_train, lc_test, vc_train, vc_test = merged
    else:
        fold_train, fold_test, lc_train, lc_test, vc_train, vc_test = _three_grids(
            estimator, reg, X, y, sample_weight, splits, sizes, random_state, scoring, offset)
    with step("diagnose: constant-model baseline"):
        baseline = baseline_scores(classifier, explicit_scorer, y_values, w_values, splits,
                                   o_values, estimator)

    best = _best_index(vc_test.mean(axis=1), reg.direction)
    best_value = float(reg.param_range[best])
    verdict = judge(score_name=score_name, train=fold_train, validation=fold_test,
                    baseline=baseline, best_possible=best_possible,
                    curve_train_best=float(np.nanmax(np.concatenate(
                        [vc_train.mean(axis=1), lc_train.mean(axis=1)]))),
                    param_name=reg.param_name, direction=reg.direction, current=reg.current,
                    best_value=best_value, best_folds=vc_test[best],
                    learning_curve=(sizes, lc_test.mean(axis=1)))
    notes = [reg.note] if reg.note else []
    if best in (0, len(reg.param_range) - 1):
        notes.append(f"The best {reg.param_name} is at the edge of param_range "
                     f"({reg.param_range[0]:.4g} .. {reg.param_range[-1]:.4g}): widen the "
                     "range to see whether it improves further.")
    return DiagnosisReport(
        estimator=repr(estimator),
        score_name=score_name,
        verdict=verdict.verdict,
        rule=verdict.rule,
        recommended={"param_name": reg.param_name, "value": best_value,
                     "validation_score": float(vc_test[best].mean())},
        recommended_estimator=clone(reg.estimator).set_params(**{reg.param_name: best_value}),
        folds={"train": fold_train, "validation": fold_test, "gap": fold_train - fold_test,
               "train_size": np.array([len(tr) for tr, _ in splits]),
               "validation_size": np.array([len(te) for _, te in splits])},
        baseline={"strategy": ("intercept + offset" if offset is not None else
                               "prior" if classifier else "mean"),
                  "validation_scores": baseline, "validation_score": float(baseline.mean())},
        learning_curve={"train_sizes": sizes, "train_scores": lc_train,
                        "validation_scores": lc_test},
        validation_curve={"estimator": type(reg.estimator).__name__,
                          "param_name": reg.param_name, "param_range": reg.param_range,
                          "direction": reg.direction, "current": reg.current,
                          "train_scores": vc_train, "validation_scores": vc_test},
        numbers=verdict.numbers,
        n_samples=n,
        notes=notes,
    )


def _three_grids(estimator, reg, X, y, sample_weight, splits, sizes, random_state, scoring,
                 offset=None):
    """Per-fold scores, learning curve and validation curve as three score grids."""
    k = len(splits)
    # The estimator as given: per-fold scores.
    with step(f"diagnose: per-fold scores ({k} fits)"):
        fold_train, fold_test = (a[0] for a in score_grid(estimator, None, None, X, y,
                                                          sample_weight, splits, scoring,
                                                          offset))
    # Learning curve: one (subset, test) split per size and fold.
    lc_splits = learning_curve_splits(splits, sizes, random_state)
    with step(f"diagnose: learning curve ({len(lc_splits)} fits)"):
        lc_train, lc_test = (a[0].reshape(len(sizes), k) for a in score_grid(
            estimator, None, None, X, y, sample_weight, lc_splits, scoring, offset))
    with step(f"diagnose: validation curve of {reg.param_name} "
              f"({len(reg.param_range) * k} fits)"):
        vc_train, vc_test = score_grid(reg.estimator, reg.param_name, reg.param_range, X, y,
                                       sample_weight, splits, scoring, offset)
    return fold_train, fold_test, lc_train, lc_test, vc_train, vc_test


def _best_index(mean_scores, direction):
    """Index of the best mean score; ties (within round-off) go to the stronger value."""
    scores = np.where(np.isnan(mean_scores), -np.inf, mean_scores)
    top = scores.max()
    tied = np.flatnonzero(scores >= top - 1e-12 * max(1.0, abs(top)))
    return int(tied[0] if direction < 0 else tied[-1])  # range is ascending
