"""The verdict: overfitting, underfitting or fine, and the rule that gave it.

Scores are "greater is better" (scikit-learn's scorers). The rule, with
``T`` / ``V`` the mean train / validation score of the estimator as given,
``B`` the mean validation score of the constant model (training mean, or
class prior), and ``P`` the best possible score (1 for R^2, D^2, accuracy
...; 0 for the ``neg_*`` losses):

- the **score range** ``S = P - B`` is what a perfect model gains over the
  constant one (for a scorer with no known best value, ``S`` is the best
  mean train score on the curves minus ``B``);
- a change in validation score **matters** when it exceeds
  ``MIN_CHANGE * S`` and one standard error of the per-fold differences
  (the folds are paired: same splits);
- **overfitting** if the gap ``T - V`` exceeds ``GAP_LIMIT * S``, or if
  stronger regularisation (the best value on the validation curve) raises
  the validation score by an amount that matters;
- else **underfitting** if the train score learns less than
  ``POOR_LIMIT * S`` over the constant model (``T - B``: poor even on the
  data it was fitted to), or if weaker regularisation raises the
  validation score by an amount that matters;
- else **fine**.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAP_LIMIT", "MIN_CHANGE", "POOR_LIMIT", "RULE", "Verdict", "judge"]

#: Gap between mean train and validation score, as a share of the score
#: range, above which the model is overfitting. A well-posed linear model on
#: a few hundred rows shows a gap of a few percent of the range.
GAP_LIMIT = 0.10
#: Share of the score range that train scores must gain over the constant
#: model for the fit not to be called poor.
POOR_LIMIT = 0.10
#: Smallest change in validation score (share of the range) worth acting on.
MIN_CHANGE = 0.01

#: The verdict's rule in words, with the thresholds above filled in
#: (``DiagnosisReport.rule`` states it with the numbers of a run).
RULE = (
    f"overfitting if mean train minus mean validation score exceeds {GAP_LIMIT:.0%} of the "
    "score range (best possible score minus the constant model's validation score), or if "
    "stronger regularisation raises the validation score by more than "
    f"{MIN_CHANGE:.0%} of the range and one standard error; underfitting if the train score "
    f"gains less than {POOR_LIMIT:.0%} of the range over the constant model, or if weaker "
    "regularisation raises the validation score by that much; fine otherwise")


class Verdict:
    """Result of :func:`judge`: ``verdict``, ``rule`` (numbers plugged in), ``numbers``."""

    def __init__(self, verdict, rule, numbers):
        self.verdict, self.rule, self.numbers = verdict, rule, numbers


def _fmt(x):
    return f"{x:.4g}"


def judge(*, score_name, train, validation, baseline, best_possible, curve_train_best,
          param_name, direction, current, best_value, best_folds, learning_curve=None):
    """Apply the rule.

    Parameters
    ----------
    train, validation : ndarray of shape (n_splits,)
        Per-fold scores of the estimator as given.
    baseline : ndarray of shape (n_splits,)
        Per-fold validation scores of the constant model.
    best_possible : float or None
    curve_train_best : float
        Best mean train score on the curves (the range when ``best_possible`` is None).
    direction : {+1, -1, 0}
        +1 when a larger ``param_name`` regularises more.
    current, best_value : float or None
        The estimator's value and the validation curve's best.
    best_folds : ndarray of shape (n_splits,)
        Per-fold validation scores at ``best_value``.
    learning_curve : tuple (train_sizes, mean validation scores), optional
        Only for the wording: whether more rows still raise the validation score.
    """
    T, V, B = float(np.mean(train)), float(np.mean(validation)), float(np.mean(baseline))
    top = best_possible if best_possible is not None else max(curve_train_best, T)
    S = top - B
    if not S > 0:  # constant model already perfect, or a scorer with no headroom
        S = max(abs(B), 1.0)
    gap = T - V
    diff = np.asarray(best_folds) - np.asarray(validation)
    change = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    needed = max(MIN_CHANGE * S, se)
    side = _side(direction, current, best_value)
    helps = change > needed
    range_text = (f"score range {_fmt(S)} = best possible {_fmt(top)} minus the constant "
                  f"model's validation {score_name} {_fmt(B)}")
    gap_text = (f"mean train {score_name} {_fmt(T)} - mean validation {_fmt(V)} = gap "
                f"{_fmt(gap)}, {gap / S:.1%} of the {range_text} (limit {GAP_LIMIT:.0%})")
    if side == "same":
        move_text = (f"the current {param_name}={_fmt(current)} is the best on the "
                     "validation curve")
    else:
        move_text = (f"{param_name}={_fmt(best_value)} instead of "
                     f"{'the current value' if current is None else _fmt(current)} changes "
                     f"the mean validation {score_name} by {change:+.4g} (it matters above "
                     f"{_fmt(needed)}, the larger of {MIN_CHANGE:.0%} of the range, "
                     f"{_fmt(MIN_CHANGE * S)}, and one standard error, {_fmt(se)})")
    numbers = {"mean_train_score": T, "mean_validation_score": V,
               "baseline_validation_score": B, "best_possible_score": best_possible,
               "score_range": S, "gap": gap, "relative_gap": gap / S,
               "train_gain": (T - B) / S, "change_at_best": change,
               "change_needed": needed, "change_standard_error": se,
               "best_is": side}
    if gap > GAP_LIMIT * S:
        if side == "stronger" and helps:
            remedy = f"Stronger regularisation helps: {move_text}."
        else:
            remedy = (f"Regularisation does not narrow it usefully: {move_text}"
                      f"{_more_rows_text(learning_curve, score_name, needed)}.")
        return Verdict("overfitting", f"overfitting: {gap_text}. {remedy}", numbers)
    if side == "stronger" and helps:
        return Verdict("overfitting", f"overfitting: stronger regularisation helps: "
                       f"{move_text}; the gap is within limits ({gap_text}).", numbers)
    if (T - B) < POOR_LIMIT * S:
        return Verdict("underfitting",
                       f"underfitting: mean train {score_name} {_fmt(T)} gains only "
                       f"{(T - B) / S:.1%} of the {range_text} (limit {POOR_LIMIT:.0%}): the "
                       "model explains little even on the rows it was fitted to (too strong "
                       "regularisation, missing features or interactions, or a target the "
                       "features barely predict).", numbers)
    if side == "weaker" and helps:
        return Verdict("underfitting", f"underfitting: weaker regularisation helps: "
                       f"{move_text}.", numbers)
    why = (f"{gap_text}; train gains {(T - B) / S:.1%} of the range (at least "
           f"{POOR_LIMIT:.0%}); {move_text}")
    return Verdict("fine", f"fine: {why}.", numbers)


def _more_rows_text(learning_curve, score_name, needed):
    """Whether the last step of the learning curve still raised the validation score."""
    if learning_curve is None or len(learning_curve[0]) < 2:
        return ""
    sizes, means = learning_curve
    rise = float(means[-1] - means[-2])
    if rise > needed:
        return (f"; more rows would: the validation {score_name} still rose by {rise:.4g} "
                f"from {int(sizes[-2])} to {int(sizes[-1])} training rows")
    return (f"; the validation {score_name} has levelled off with more rows (it changed by "
            f"{rise:+.4g} from {int(sizes[-2])} to {int(sizes[-1])} training rows)")


def _side(direction, current, best_value):
    """Whether the best value regularises more ("stronger") or less than the current."""
    if direction == 0 or current is None or best_value is None or best_value == current:
        return "same" if best_value == current else "unknown"
    return "stronger" if (best_value - current) * direction > 0 else "weaker"
