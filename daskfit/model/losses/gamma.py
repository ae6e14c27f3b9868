"""Half Gamma deviance with the log link (positive, right-skewed targets: claim sizes)."""

from __future__ import annotations

import numpy as np

from .base import DevianceScore, Loss

__all__ = ["GammaLoss"]


class GammaLoss(DevianceScore, Loss):
    """Half Gamma deviance up to a term in ``y`` only: ``raw + y * exp(-raw)``.

    scikit-learn's ``HalfGammaLoss``: the constant ``-log(y) - 1`` is dropped
    (it moves neither the minimiser nor the gradient). The second derivative
    ``y exp(-raw)`` is positive for ``y > 0`` (the loss is convex in ``raw``)
    but unbounded. Scored by D^2 (Gamma deviance explained).
    """

    name = "gamma"
    score = "d2_gamma"

    def value(self, y, raw):
        return raw + y * np.exp(-raw)

    def derivatives(self, y, raw, *, hessian):
        y_over_mu = y * np.exp(-raw)
        return raw + y_over_mu, 1.0 - y_over_mu, (y_over_mu if hessian else None)

    def inverse_link(self, raw):
        return np.exp(raw)

    def validate_target(self, y_min, y_max):
        if not y_min > 0:
            return (
                "Some value(s) of y are out of the valid range of the loss "
                "'HalfGammaLoss': y must be positive for a Gamma regression, but its "
                f"smallest value is {y_min!r}."
            )
        return None

    # ------------------------------------------------------------ D^2
    def deviance_sums(self, y, raw, w):
        # Half deviance log(mu / y) + y / mu - 1, with -log(y) - 1 summed apart.
        a = -np.log(y) - 1.0
        return w @ y, w @ a, w @ (a + raw + y * np.exp(-raw))

    def null_deviance(self, sw, swy, swa):
        ybar = swy / sw
        return swa + sw * np.log(ybar) + swy / ybar
