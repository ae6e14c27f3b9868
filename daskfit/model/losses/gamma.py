"""Half Gamma deviance with the log link (positive, right-skewed targets: claim sizes)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .base import DevianceScore, Loss, weighted_sums

__all__ = ["GammaLoss", "gamma_log_likelihood"]


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

    # ------------------------------------------------ statistical inference
    # V(mu) = mu^2 with the (non-canonical) log link; the dispersion is
    # estimated, as statsmodels' GLM(Gamma) with scale="X2".
    dispersion = "pearson"
    canonical_link = False

    def variance(self, mu):
        return mu * mu

    def dmu_deta(self, raw, mu):
        return mu

    def score_factor_slope(self, raw, mu):
        return -np.exp(-raw)  # d/d raw (mu / mu^2); observed weight y / mu

    def unit_deviance(self, y, raw, mu):
        return 2.0 * (-np.log(y) - 1.0 + raw + y * np.exp(-raw))

    def inference_y_sums(self, y, w):
        return weighted_sums(w, np.log(y))

    def null_deviance_of_mean(self, sw, ybar, m2, ysums):
        return 2.0 * self.null_deviance(sw, sw * ybar, -ysums[0] - sw)

    def log_likelihood(self, deviance, sw, ybar, ysums, scale):
        return gamma_log_likelihood(deviance, sw, ysums[0], scale)


def gamma_log_likelihood(deviance, sw, swlogy, scale):
    """statsmodels' Gamma log-likelihood at dispersion ``scale``, from sums.

    With shape ``a = 1 / scale`` a row contributes ``a log(a y / mu) - a y / mu
    - log Gamma(a) - log y``; since ``sum w (log mu + y / mu) = deviance / 2 +
    sum w log y + sum w``, the sum is
    ``sw (a log a - a - log Gamma(a)) - a deviance / 2 - sum w log y``.
    """
    a = 1.0 / scale
    return sw * (a * np.log(a) - a - gammaln(a)) - 0.5 * a * deviance - swlogy
