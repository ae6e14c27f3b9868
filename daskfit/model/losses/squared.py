"""Half squared error ``(y - raw)**2 / 2`` with the identity link (least squares)."""

from __future__ import annotations

import numpy as np

from .base import Loss, R2Score

__all__ = ["SquaredLoss"]


class SquaredLoss(R2Score, Loss):
    """Half squared error ``(y - raw)**2 / 2`` (identity link); scored by R^2."""

    name = "squared"
    curvature_bound = 1.0
    is_quadratic = True
    model_parallel = True

    def value(self, y, raw):
        return 0.5 * (y - raw) ** 2

    def derivatives(self, y, raw, *, hessian):
        grad = raw - y
        hess = np.ones_like(raw) if hessian else None
        return 0.5 * grad**2, grad, hess

    def inverse_link(self, raw):
        return raw

    def constant_model(self, sw, swy, ymoments, fit_intercept):
        ybar = swy / sw
        c0 = ybar if fit_intercept else 0.0
        _, _, ss = ymoments
        return c0, c0, 0.5 * (ss + sw * (ybar - c0) ** 2)

    def constant_curvature(self, mu0):
        return 1.0

    def loss_difference(self, y, z, delta):
        return delta * (z - y) + 0.5 * delta * delta

    # ------------------------------------------------ statistical inference
    # Normal errors with estimated variance: t statistics, as statsmodels' OLS.
    dispersion = "pearson"
    t_statistics = True

    def variance(self, mu):
        return np.ones_like(mu)

    def dmu_deta(self, raw, mu):
        return np.ones_like(raw)

    def unit_deviance(self, y, raw, mu):
        return (y - mu) ** 2

    def null_deviance_of_mean(self, sw, ybar, m2, ysums):
        return m2

    def null_deviance_with_offset(self, sw, ybar, m2, ysums, offset_sums):
        # sum w (y - o - c)^2 at c = the weighted mean of y - o: S(y) - 2 S(y, o) + S(o).
        swo, swoo, swyo, _ = offset_sums
        return float(m2 - 2.0 * (swyo - ybar * swo) + (swoo - swo * swo / sw))

    def log_likelihood(self, deviance, sw, ybar, ysums, scale):
        # Concentrated (profile) likelihood, the variance at its MLE deviance / n,
        # not ``scale``: statsmodels' OLS llf and GLM(Gaussian).llf. A perfect
        # fit has llf = +inf.
        with np.errstate(divide="ignore"):
            return -0.5 * sw * (np.log(2 * np.pi * deviance / sw) + 1.0)
