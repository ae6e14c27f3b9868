"""Pointwise losses on ``(y, raw_prediction)``.

Contract
--------
Every loss maps a target chunk ``y`` and a raw prediction ``raw`` (the linear
predictor ``X @ coef + intercept``) to per-row values, first derivatives and
second derivatives with respect to ``raw``. Single-output losses use ``raw`` of
shape ``(n,)``; the multinomial loss uses ``(n, n_classes)``. Weights, sums and
the mean are applied by the engine, never here, so a loss is a pure function
of two arrays and is trivially picklable.

Losses follow scikit-learn's ``Half*Loss`` conventions so that objectives
match scikit-learn's estimators exactly: half squared error, binomial
log-loss, multinomial log-loss, half Poisson deviance (up to a constant in
``y``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, logsumexp, softmax

__all__ = ["LOSSES", "SquaredLoss", "LogisticLoss", "MultinomialLoss", "PoissonLoss"]


class SquaredLoss:
    """Half squared error ``(y - raw)**2 / 2`` (identity link)."""

    name = "squared"
    is_classification = False
    n_outputs = 1

    def encode(self, y, classes):
        return np.asarray(y, dtype=np.float64)

    def value(self, y, raw):
        return 0.5 * (y - raw) ** 2

    def derivatives(self, y, raw, *, hessian):
        grad = raw - y
        hess = np.ones_like(raw) if hessian else None
        return 0.5 * grad**2, grad, hess

    def validate_target(self, y_min, y_max):
        return None

    def inverse_link(self, raw):
        return raw


class PoissonLoss:
    """Half Poisson deviance up to a term in ``y`` only: ``exp(raw) - y * raw``.

    The constant ``y*log(y) - y`` is dropped: it moves neither the minimiser
    nor the gradient, and scikit-learn's ``HalfPoissonLoss`` drops it too.
    """

    name = "poisson"
    is_classification = False
    n_outputs = 1

    def encode(self, y, classes):
        return np.asarray(y, dtype=np.float64)

    def value(self, y, raw):
        return np.exp(raw) - y * raw

    def derivatives(self, y, raw, *, hessian):
        mu = np.exp(raw)
        return mu - y * raw, mu - y, (mu if hessian else None)

    def validate_target(self, y_min, y_max):
        if y_min < 0:
            return (
                "Some value(s) of y are out of the valid range of the loss "
                "'HalfPoissonLoss': y must be non-negative for a Poisson "
                f"regression, but its smallest value is {y_min!r}."
            )
        return None

    def inverse_link(self, raw):
        return np.exp(raw)


class LogisticLoss:
    """Binomial log-loss on the logit; ``y`` encoded as 0/1 from ``classes``."""

    name = "logistic"
    is_classification = True
    n_outputs = 1

    def encode(self, y, classes):
        # classes[1] is the positive class, as in scikit-learn.
        return (np.asarray(y) == classes[1]).astype(np.float64)

    def value(self, y, raw):
        # log(1 + exp(raw)) - y*raw, written to avoid overflow for large |raw|.
        return -log_expit(raw) + (1.0 - y) * raw

    def derivatives(self, y, raw, *, hessian):
        # From one exp(-|raw|) (never overflows): log(1 + exp(raw)) is
        # log1p(e) + max(raw, 0), expit(raw) is 1/(1+e) or e/(1+e), and
        # p (1 - p) = e / (1+e)^2 without cancellation. NumPy's exp/log1p are
        # vectorised; SciPy's expit and log_expit cost 5-10x more per row,
        # which was a third of a 250,000 x 50 chunk's gradient pass.
        e = np.exp(-np.abs(raw))
        one_plus_e = 1.0 + e
        value = np.log1p(e)
        value += np.maximum(raw, 0.0) - y * raw  # exact for y in {0, 1}
        p = np.where(raw >= 0, 1.0, e)
        p /= one_plus_e
        hess = e / (one_plus_e * one_plus_e) if hessian else None
        return value, p - y, hess

    def validate_target(self, y_min, y_max):
        return None

    def inverse_link(self, raw):
        return expit(raw)


class MultinomialLoss:
    """Multinomial log-loss with the symmetric (over-complete) softmax.

    ``y`` is encoded as integer class codes; ``raw`` has shape
    ``(n, n_classes)``. The Hessian per row is ``diag(p) - p p^T``.
    """

    name = "multinomial"
    is_classification = True
    n_outputs = None  # one per class

    def encode(self, y, classes):
        return np.searchsorted(classes, np.asarray(y))

    def value(self, y, raw):
        return logsumexp(raw, axis=1) - np.take_along_axis(raw, y[:, None], axis=1)[:, 0]

    def derivatives(self, y, raw, *, hessian):
        p = softmax(raw, axis=1)
        grad = p.copy()
        grad[np.arange(len(y)), y] -= 1.0
        # The per-row Hessian is built by the engine from p; return p itself.
        return self.value(y, raw), grad, (p if hessian else None)

    def validate_target(self, y_min, y_max):
        return None

    def inverse_link(self, raw):
        return softmax(raw, axis=1)


LOSSES = {
    loss.name: loss
    for loss in (SquaredLoss(), LogisticLoss(), MultinomialLoss(), PoissonLoss())
}
