"""Half Tweedie deviance of any power, with the log or identity link.

Power 0 is the normal distribution, 1 Poisson, between 1 and 2 compound
Poisson-Gamma (pure premiums: many exact zeros, positive amounts), 2 Gamma,
3 inverse Gaussian. One parametrised class: an instance per ``(power, link)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy

from .base import DevianceScore, Loss, weighted_sums
from .gamma import gamma_log_likelihood
from .poisson import poisson_log_likelihood

__all__ = ["TweedieLoss"]


class TweedieLoss(DevianceScore, Loss):
    """scikit-learn's ``HalfTweedieLoss`` (log link) / ``HalfTweedieLossIdentity``.

    With the log link and ``mu = exp(raw)``, up to a term in ``y`` only::

        loss = mu**(2-p) / (2-p) - y mu**(1-p) / (1-p)   (p not 1, 2)
        p = 1: mu - y raw        p = 2: raw + y / mu

    ``d loss / d raw = mu**(2-p) - y mu**(1-p)``. The observed second
    derivative ``(2-p) mu**(2-p) - (1-p) y mu**(1-p)`` is positive for
    ``1 <= p <= 2`` and ``y >= 0``; for other powers it can be negative away
    from the optimum, so there :meth:`derivatives` returns the expected one,
    ``mu**(2-p)`` (Fisher scoring: Newton's steps stay descent steps and reach
    the same optimum, since the gradient is exact).

    The identity link is taken for power 0: ``raw**2 / 2 - y raw``, the half
    squared error less ``y**2 / 2``. scikit-learn
    also allows it for other powers, where predictions must stay positive
    during the whole fit -- not supported here (a clear error at ``fit``).

    Parameters
    ----------
    power : float, default=0.0
    link : {"log", "identity"}, default="log"
    """

    name = "tweedie"

    def __init__(self, power=0.0, link="log"):
        power = float(power)
        if not np.isfinite(power):
            raise ValueError(f"power must be a finite real number, got {power!r}.")
        if link not in ("log", "identity"):
            raise ValueError(f"link must be 'log' or 'identity', got {link!r}.")
        if link == "identity" and power != 0:
            raise ValueError(
                f"link='identity' with power={power!r} is not supported: the identity link "
                "needs positive predictions throughout the fit for power != 0. Use "
                "link='log' (the default for power > 0), or power=0.")
        self.power, self.link = power, link
        # Power 0 with the identity link is least squares: its curvature is 1.
        self.curvature_bound = 1.0 if link == "identity" else None

    score = "d2_tweedie"

    def __repr__(self):
        return f"TweedieLoss(power={self.power!r}, link={self.link!r})"

    def __eq__(self, other):
        return (type(other) is type(self) and other.power == self.power
                and other.link == self.link)

    def __hash__(self):
        return hash((type(self), self.power, self.link))

    # ------------------------------------------------------------ the maths
    def _mu_terms(self, raw):
        """``(mu**(2-p), mu**(1-p))`` from the raw prediction (log link)."""
        p = self.power
        return np.exp((2.0 - p) * raw), np.exp((1.0 - p) * raw)

    def value(self, y, raw):
        if self.link == "identity":
            return 0.5 * raw * raw - y * raw
        p = self.power
        if p == 1:
            return np.exp(raw) - y * raw
        if p == 2:
            return raw + y * np.exp(-raw)
        m2, m1 = self._mu_terms(raw)
        return m2 / (2.0 - p) - y * m1 / (1.0 - p)

    def derivatives(self, y, raw, *, hessian):
        if self.link == "identity":
            return self.value(y, raw), raw - y, (np.ones_like(raw) if hessian else None)
        p = self.power
        m2, m1 = self._mu_terms(raw)
        grad = m2 - y * m1
        hess = None
        if hessian:
            hess = ((2.0 - p) * m2 - (1.0 - p) * y * m1) if 1.0 <= p <= 2.0 else m2
        return self.value(y, raw), grad, hess

    def inverse_link(self, raw):
        return raw if self.link == "identity" else np.exp(raw)

    def validate_target(self, y_min, y_max):
        p = self.power
        if p <= 0:
            return None
        if p < 2 and y_min < 0:
            return ("Some value(s) of y are out of the valid range of the loss "
                    f"'HalfTweedieLoss': y must be non-negative for power={p!r} "
                    f"(0 < power < 2), but its smallest value is {y_min!r}.")
        if p >= 2 and not y_min > 0:
            return ("Some value(s) of y are out of the valid range of the loss "
                    f"'HalfTweedieLoss': y must be positive for power={p!r} (power >= 2), "
                    f"but its smallest value is {y_min!r}.")
        if y_max <= 0:
            return (f"Tweedie regression with power={p!r} and the log link needs a target "
                    "with a positive sum; every value of y is 0, so the intercept would "
                    "diverge to -inf.")
        return None

    # ------------------------------------------------------------ D^2
    def _y_term(self, y):
        """The term in ``y`` alone of the unit half deviance (left out of :meth:`value`)."""
        p = self.power
        if p == 0:
            return 0.5 * y * y
        if p == 1:
            return xlogy(y, y) - y
        if p == 2:
            return -np.log(y) - 1.0
        return np.maximum(y, 0.0) ** (2.0 - p) / ((1.0 - p) * (2.0 - p))

    def deviance_sums(self, y, raw, w):
        a = self._y_term(y)
        return w @ y, w @ a, w @ (a + self.value(y, raw))

    def null_deviance(self, sw, swy, swa):
        ybar = swy / sw
        raw = np.array([ybar if self.link == "identity" else np.log(ybar)])
        # sum_i w_i loss(y_i, ybar) is linear in y for every power: w y and w.
        value_at = self.value(np.array([0.0]), raw)[0]
        slope = self.value(np.array([1.0]), raw)[0] - value_at
        return swa + sw * value_at + swy * slope

    # ------------------------------------------------ statistical inference
    # V(mu) = mu^p, the dispersion estimated as statsmodels' GLM(Tweedie) with
    # scale="X2" (for every power, also 0 and 1: Tweedie is not statsmodels'
    # Gaussian or Poisson family there).
    dispersion = "pearson"

    @property
    def canonical_link(self):
        # The canonical link of V = mu^p is mu^(1-p): log at p = 1, identity at p = 0.
        return (self.link == "log" and self.power == 1) or \
            (self.link == "identity" and self.power == 0)

    def variance(self, mu):
        return np.power(mu, self.power)

    def dmu_deta(self, raw, mu):
        return np.ones_like(raw) if self.link == "identity" else mu

    def score_factor_slope(self, raw, mu):
        p = self.power
        if self.link == "identity":  # d/d mu mu^-p
            return -p * np.power(mu, -p - 1.0)
        return (1.0 - p) * np.exp((1.0 - p) * raw)  # d/d raw mu^(1-p)

    def unit_deviance(self, y, raw, mu):
        return 2.0 * (self._y_term(y) + self.value(y, raw))

    def inference_y_sums(self, y, w):
        if self.power == 1:  # the Poisson likelihood's log y!
            return weighted_sums(w, self._y_term(y), gammaln(y + 1.0))
        return weighted_sums(w, self._y_term(y))

    def null_deviance_of_mean(self, sw, ybar, m2, ysums):
        return 2.0 * self.null_deviance(sw, sw * ybar, ysums[0])

    def log_likelihood(self, deviance, sw, ybar, ysums, scale):
        """statsmodels' Tweedie likelihood where it needs no second pass: power 1 and 2.

        Power 1 is the Poisson likelihood over ``scale``, power 2 the Gamma
        one at ``scale``. For ``1 < p < 2`` statsmodels sums the Dunn-Smyth
        series ``log W(-alpha, 0, x(y_i, scale))`` row by row, a function of
        the dispersion, known only after the pass: it would cost a second
        pass, so daskfit reports None there (as for the other powers, which
        have no likelihood in statsmodels either).
        """
        swy = sw * ybar
        if self.power == 1:  # _y_term = y log y - y
            return poisson_log_likelihood(deviance, swy, ysums[0] + swy, ysums[1], scale)
        if self.power == 2:  # _y_term = -log y - 1
            return gamma_log_likelihood(deviance, sw, -ysums[0] - sw, scale)
        return None
