"""Half Poisson deviance with the log link (counts and rates)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy

from .base import DevianceScore, Loss, weighted_sums

__all__ = ["PoissonLoss", "poisson_log_likelihood"]


class PoissonLoss(DevianceScore, Loss):
    """Half Poisson deviance up to a term in ``y`` only: ``exp(raw) - y * raw``.

    The constant ``y*log(y) - y`` is dropped: it moves neither the minimiser
    nor the gradient, and scikit-learn's ``HalfPoissonLoss`` drops it too.
    Scored by D^2 (Poisson deviance explained).
    """

    name = "poisson"
    model_parallel = True
    score = "d2_poisson"

    def value(self, y, raw):
        return np.exp(raw) - y * raw

    def derivatives(self, y, raw, *, hessian):
        mu = np.exp(raw)
        return mu - y * raw, mu - y, (mu if hessian else None)

    def inverse_link(self, raw):
        return np.exp(raw)

    def validate_target(self, y_min, y_max):
        if y_min < 0:
            return (
                "Some value(s) of y are out of the valid range of the loss "
                "'HalfPoissonLoss': y must be non-negative for a Poisson "
                f"regression, but its smallest value is {y_min!r}."
            )
        if y_max <= 0:
            return ("Poisson regression needs a target with a positive sum; every value "
                    "of y is 0, so the intercept would diverge to -inf.")
        return None

    def local_curvature_bound(self, raw):
        # exp(raw) is unbounded; bound it where the run starts.
        return float(np.exp(np.max(raw))) if raw.size else 1.0

    # ------------------------------------------------------------ D^2
    def deviance_sums(self, y, raw, w):
        ylogy = xlogy(y, y)
        return w @ y, w @ ylogy, w @ (ylogy - y * raw - y + np.exp(raw))

    def null_deviance(self, sw, swy, swylogy):
        ybar = swy / sw
        return swylogy - xlogy(swy, ybar) - swy + ybar * sw

    # ------------------------------------------------ model-parallel closed forms
    def constant_model(self, sw, swy, ymoments, fit_intercept):
        c0 = float(np.log(swy / sw)) if fit_intercept else 0.0
        return c0, float(np.exp(c0)), float(sw * np.exp(c0) - c0 * swy)

    def constant_curvature(self, mu0):
        return mu0

    def loss_difference(self, y, z, delta):
        return np.exp(z) * np.expm1(delta) - y * delta

    # ------------------------------------------------ statistical inference
    # Canonical log link, dispersion 1.
    dispersion = "one"

    def variance(self, mu):
        return mu

    def dmu_deta(self, raw, mu):
        return mu

    def unit_deviance(self, y, raw, mu):
        return 2.0 * (xlogy(y, y) - y * raw - y + mu)

    def inference_y_sums(self, y, w):
        return weighted_sums(w, xlogy(y, y), gammaln(y + 1.0))

    def null_deviance_of_mean(self, sw, ybar, m2, ysums):
        return 2.0 * self.null_deviance(sw, sw * ybar, ysums[0])

    def null_deviance_with_offset(self, sw, ybar, m2, ysums, offset_sums):
        # mu_i = exp(c + o_i), c = log(sum w y / sum w e^o), so sum w mu = sum w y and
        # 2 sum w (y log y - y (c + o) - y + mu) = 2 (sum w y log y - c sum w y - sum w y o).
        _, _, swyo, swexp = offset_sums
        swy = sw * ybar
        c = np.log(swy / swexp) if swy > 0 else 0.0
        return float(2.0 * (ysums[0] - c * swy - swyo))

    def log_likelihood(self, deviance, sw, ybar, ysums, scale):
        # sum w (y log mu - mu - log y!) = -deviance / 2 + sum w (y log y - y - log y!)
        return poisson_log_likelihood(deviance, sw * ybar, ysums[0], ysums[1])


def poisson_log_likelihood(deviance, swy, swylogy, swlgamma, scale=1.0):
    """``sum w (y log mu - mu - log y!) / scale`` from the deviance and sums of ``y``.

    ``scale`` other than 1 is statsmodels' Tweedie(var_power=1) likelihood.
    """
    return (-0.5 * deviance + swylogy - swy - swlgamma) / scale
