"""Binomial log-loss on the logit (binary classification)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, xlogy

from .base import AccuracyScore, Loss
from .multinomial import MultinomialLoss

__all__ = ["LogisticLoss"]


class LogisticLoss(AccuracyScore, Loss):
    """Binomial log-loss on the logit; ``y`` encoded as 0/1 from ``classes``.

    With more than two classes the fit switches to the multinomial loss
    (:meth:`for_classes`), as scikit-learn's ``LogisticRegression``.
    """

    name = "logistic"
    is_classification = True
    curvature_bound = 0.25
    model_parallel = True

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

    def inverse_link(self, raw):
        return expit(raw)

    def for_classes(self, n_classes):
        if n_classes > 2:
            return MultinomialLoss()
        return self

    def path_terms(self, raw, y):
        """Loss, d/draw, d2/draw2 and correctness of many models at once.

        ``raw`` is ``(n, M)`` (one column per model), ``y`` the 0/1 target of
        the ``n`` rows; for the cross-validated path's one pass.
        """
        yy = y[:, None]
        log_p = log_expit(raw)  # transcendental functions dominate: one log, one exp
        p = np.exp(log_p)
        loss = (1.0 - yy) * raw - log_p
        correct = (raw > 0) == (yy == 1)
        return loss, p - yy, p * (1.0 - p), correct

    # ------------------------------------------------ model-parallel closed forms
    def constant_model(self, sw, swy, ymoments, fit_intercept):
        ybar = swy / sw
        c0 = float(np.log(ybar) - np.log1p(-ybar)) if fit_intercept else 0.0
        return c0, float(expit(c0)), float(sw * np.logaddexp(0.0, c0) - c0 * swy)

    def constant_curvature(self, mu0):
        return mu0 * (1.0 - mu0)

    def loss_difference(self, y, z, delta):
        out = np.log1p(expit(z) * np.expm1(delta)) - y * delta
        bad = ~np.isfinite(out)
        if bad.any():  # huge steps: the plain difference is accurate enough there
            zb, db, yb = z[bad], delta[bad], y[bad]
            plain = (-log_expit(zb + db) + (1 - yb) * (zb + db)) - (-log_expit(zb) + (1 - yb) * zb)
            out[bad] = plain
        return out

    # ------------------------------------------------ statistical inference
    # Bernoulli 0/1 target, canonical logit link, dispersion 1.
    dispersion = "one"

    def variance(self, mu):
        return mu * (1.0 - mu)

    def dmu_deta(self, raw, mu):
        return mu * (1.0 - mu)

    def unit_deviance(self, y, raw, mu):
        # -2 log p(y | raw), written with log_expit so that |raw| >> 1 stays finite.
        return -2.0 * (y * log_expit(raw) + (1.0 - y) * log_expit(-raw))

    def null_deviance_of_mean(self, sw, ybar, m2, ysums):
        swy = sw * ybar
        return -2.0 * (xlogy(swy, ybar) + xlogy(sw - swy, 1.0 - ybar))

    def log_likelihood(self, deviance, sw, ybar, ysums, scale):
        return -0.5 * deviance  # the saturated model of 0/1 data has likelihood 1
