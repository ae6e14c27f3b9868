"""Overfitting diagnosis: train/validation gaps, learning and validation curves.

:func:`diagnose` cross-validates an estimator on chunked data and returns a
:class:`DiagnosisReport` with per-fold train and validation scores, a
learning curve, a validation curve over the regularisation strength, a
verdict (``"overfitting"``, ``"underfitting"`` or ``"fine"``) with the rule
that produced it, and a recommended strength.

Modules: ``_folds`` (splits, learning-curve subsets), ``_params`` (which
parameter regularises, default grid), ``_scores`` (the score grid, fast paths
per estimator type, the constant baseline), ``_verdict`` (the rule),
``_report`` / ``_plot`` (output).
"""

from ._diagnose import diagnose
from ._report import DiagnosisReport
from ._scores import FAST_PATHS
from ._verdict import GAP_LIMIT, MIN_CHANGE, POOR_LIMIT, RULE

__all__ = ["DiagnosisReport", "FAST_PATHS", "GAP_LIMIT", "MIN_CHANGE", "POOR_LIMIT", "RULE",
           "diagnose"]
