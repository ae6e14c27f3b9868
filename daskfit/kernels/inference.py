"""The one pass of statistical inference: per-chunk sums at the fitted coefficients.

At the fitted ``theta`` a chunk contributes, for its rows ``i`` with weight
``w_i``, linear predictor ``eta_i``, mean ``mu_i = g^{-1}(eta_i)`` and
``x~_i = [x_i, 1]``:

* ``inf_fisher``: ``sum w_i W_i x~_i x~_i'`` with ``W_i = (dmu/deta)^2 / V(mu_i)``,
  the (expected = observed, for canonical links) information matrix of the
  log-likelihood times the dispersion;
* ``inf_meat``: ``sum w_i r_i^2 x~_i x~_i'`` with the score factor
  ``r_i = (y_i - mu_i) (dmu/deta) / V(mu_i)``: the middle of the HC0
  sandwich. ``w_i`` enters once, not squared: sample weights are
  frequency weights (a row of weight 2 is the row twice), as in
  scikit-learn and statsmodels' ``freq_weights``;
* ``inf_deviance`` and ``inf_pearson``: ``sum w_i d(y_i, mu_i)`` and
  ``sum w_i (y_i - mu_i)^2 / V(mu_i)``;
* ``ymoments``: ``(sum w, weighted mean of y, sum w (y - mean)^2)`` merged
  with Chan's rule (the merge table's ``ymoments``), and ``inf_ysums``, a
  family's sums of functions of ``y`` alone: with them the null deviance and
  the log-likelihood follow on the client without a second pass.

The family facts (variance function, link derivative, unit deviance, null
deviance and log-likelihood from sums) live in :data:`FAMILIES`, keyed by
the loss name of ``daskfit.model.losses``; a new GLM family plugs in by
adding one :class:`Family` here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, log_expit, xlogy

from .alignment import aligned_blocks
from .chunks import chunk_input_errors, chunk_kernel, diagnose_chunk, unpack, weighted_gram

__all__ = ["FAMILIES", "Family", "InferenceSpec", "OFFSET_SUMS", "inference_chunk"]

#: The sums of a fit's offset ``o`` the inference pass returns as ``inf_offset``.
OFFSET_SUMS = ("sum w o", "sum w o^2", "sum w y o", "sum w exp(o)")


class Family:
    """What inference needs to know of a GLM family and its link.

    Subclasses give the mean, ``dmu/deta``, the variance function, the unit
    deviance, and the null deviance and log-likelihood from sums over the
    data. ``fixed_scale`` is True where the dispersion is 1 by definition
    (binomial, Poisson); otherwise it is estimated as Pearson chi2 / df_resid.
    ``t_test`` says whether statistics follow Student's t (the Gaussian model
    with estimated dispersion, as statsmodels' OLS) or the normal law.
    """

    name = ""
    fixed_scale = True
    t_test = False

    def mean(self, raw):
        raise NotImplementedError

    def dmu_deta(self, raw, mu):
        raise NotImplementedError

    def variance(self, mu):
        raise NotImplementedError

    def unit_deviance(self, y, raw, mu):
        raise NotImplementedError

    def y_sums(self, y, w):
        """Weighted sums of functions of ``y`` alone (for the null deviance, the likelihood)."""
        return np.zeros(0)

    def null_deviance(self, sw, ybar, m2, ysums, mu0):
        """Deviance of the constant mean ``mu0`` from ``sum w``, the mean, ``sum w (y - ybar)^2``."""
        raise NotImplementedError

    def loglik(self, deviance, sw, swy, ysums):
        """Log-likelihood at the fit (at the dispersion's MLE for the Gaussian), or None."""
        return None

    def null_deviance_with_offset(self, sw, ybar, m2, ysums, offset_sums):
        """Deviance of the intercept-only model *with* the fit's offset, or NaN.

        ``offset_sums`` is ``[sum w o, sum w o^2, sum w y o, sum w e^o]``
        (:data:`OFFSET_SUMS`). NaN where that model has no closed form (it
        would need a fit of its own: statsmodels refits it).
        """
        return float("nan")


class Gaussian(Family):
    """Normal errors, identity link (``LinearRegression``, ``Ridge``)."""

    name = "gaussian"
    fixed_scale = False
    t_test = True

    def mean(self, raw):
        return raw

    def dmu_deta(self, raw, mu):
        return np.ones_like(raw)

    def variance(self, mu):
        return np.ones_like(mu)

    def unit_deviance(self, y, raw, mu):
        return (y - mu) ** 2

    def null_deviance(self, sw, ybar, m2, ysums, mu0):
        return m2 + sw * (ybar - mu0) ** 2

    def null_deviance_with_offset(self, sw, ybar, m2, ysums, offset_sums):
        # sum w (y - o - c)^2 at c = the weighted mean of y - o: S(y) - 2 S(y, o) + S(o).
        swo, swoo, swyo, _ = offset_sums
        return float(m2 - 2.0 * (swyo - ybar * swo) + (swoo - swo * swo / sw))

    def loglik(self, deviance, sw, swy, ysums):
        # Concentrated (profile) likelihood, the dispersion at its MLE deviance / n:
        # statsmodels' OLS llf and GLM(Gaussian).llf. A perfect fit has llf = +inf.
        with np.errstate(divide="ignore"):
            return -0.5 * sw * (np.log(2 * np.pi * deviance / sw) + 1.0)


class Binomial(Family):
    """Bernoulli target coded 0/1, logit link (binary ``LogisticRegression``)."""

    name = "binomial"

    def mean(self, raw):
        return expit(raw)

    def dmu_deta(self, raw, mu):
        return mu * (1.0 - mu)

    def variance(self, mu):
        return mu * (1.0 - mu)

    def unit_deviance(self, y, raw, mu):
        # -2 log p(y | raw), written with log_expit so that |raw| >> 1 stays finite.
        return -2.0 * (y * log_expit(raw) + (1.0 - y) * log_expit(-raw))

    def null_deviance(self, sw, ybar, m2, ysums, mu0):
        swy = sw * ybar
        return -2.0 * (xlogy(swy, mu0) + xlogy(sw - swy, 1.0 - mu0))

    def loglik(self, deviance, sw, swy, ysums):
        return -0.5 * deviance  # the saturated model of 0/1 data has likelihood 1


class Poisson(Family):
    """Poisson counts, log link (``PoissonRegressor``)."""

    name = "poisson"

    def mean(self, raw):
        return np.exp(raw)

    def dmu_deta(self, raw, mu):
        return mu

    def variance(self, mu):
        return mu

    def unit_deviance(self, y, raw, mu):
        return 2.0 * (xlogy(y, y) - y * raw - y + mu)

    def y_sums(self, y, w):
        ylogy, lgam = xlogy(y, y), gammaln(y + 1.0)
        if w is None:
            return np.array([ylogy.sum(), lgam.sum()])
        return np.array([w @ ylogy, w @ lgam])

    def null_deviance(self, sw, ybar, m2, ysums, mu0):
        swy = sw * ybar
        return 2.0 * (ysums[0] - xlogy(swy, mu0) - swy + sw * mu0)

    def null_deviance_with_offset(self, sw, ybar, m2, ysums, offset_sums):
        # mu_i = exp(c + o_i) with c = log(sum w y / sum w e^o), so sum w mu = sum w y:
        # 2 sum w (y log y - y (c + o) - y + mu) = 2 (sum w y log y - c sum w y - sum w y o).
        _, _, swyo, swexp = offset_sums
        swy = sw * ybar
        c = np.log(swy / swexp) if swy > 0 else 0.0
        return float(2.0 * (ysums[0] - c * swy - swyo))

    def loglik(self, deviance, sw, swy, ysums):
        # sum w (y log mu - mu - log y!) = -deviance / 2 + sum w (y log y - y - log y!)
        return -0.5 * deviance + ysums[0] - swy - ysums[1]


#: Loss name (``daskfit.model.losses``) -> family facts. The multinomial loss
#: is absent: its symmetric softmax is over-parameterised (singular Fisher
#: information without a penalty).
FAMILIES = {"squared": Gaussian(), "logistic": Binomial(), "poisson": Poisson()}


@dataclass(frozen=True)
class InferenceSpec:
    """What the inference pass needs; embedded in every task (a few KB)."""

    loss: object
    family: Family
    theta: np.ndarray
    n_features: int
    fit_intercept: bool
    classes: np.ndarray | None


@chunk_kernel
def inference_chunk(index, X, y, w, spec: InferenceSpec, offset=None):
    """The sums of the module doc for one row chunk (errors reported, never raised).

    ``offset`` (or None) is added to the linear predictor; with one the chunk
    also returns ``inf_offset``, the sums of :data:`OFFSET_SUMS` (the null
    model with the offset, where it has a closed form).
    """
    n = X.shape[0]
    out = {"n": n, "chunk_rows": {index: n}}
    errors = chunk_input_errors(index, n, y, w)
    if spec.classes is not None and not errors and n:
        unknown = ~np.isin(y, spec.classes)
        if unknown.any():
            label = np.asarray(y)[unknown][:1].tolist()[0]
            errors = [(index, f"y contains the label {label!r}, not one of the classes "
                              f"seen in fit {np.asarray(spec.classes).tolist()}: inference "
                              "needs the training data.")]
    if errors:
        out["errors"] = errors
        return out
    family = spec.family
    coef, intercept = unpack(spec.theta, spec.n_features, 1, spec.fit_intercept)
    coef = coef.astype(X.dtype)
    yenc = spec.loss.encode(y, spec.classes)
    width = spec.n_features + int(spec.fit_intercept)
    fisher, meat = np.zeros((width, width)), np.zeros((width, width))
    deviance = pearson = 0.0
    for _, block, Xb in aligned_blocks(X):
        yb = yenc[block]
        wb = np.ones(len(yb)) if w is None else w[block]
        raw = (Xb @ coef).astype(np.float64) + intercept
        if offset is not None:
            raw += offset[block]
        mu = family.mean(raw)
        v, dmu = family.variance(mu), family.dmu_deta(raw, mu)
        resid = yb - mu
        fisher += weighted_gram(Xb, wb * dmu**2 / v, spec.fit_intercept, nonnegative=True)
        meat += weighted_gram(Xb, wb * (resid * dmu / v) ** 2, spec.fit_intercept,
                              nonnegative=True)
        deviance += float(wb @ family.unit_deviance(yb, raw, mu))
        pearson += float(wb @ (resid**2 / v))
    out["inf_fisher"], out["inf_meat"] = fisher, meat
    out["inf_deviance"], out["inf_pearson"] = deviance, pearson
    out["inf_ysums"] = family.y_sums(yenc, w)
    if offset is not None:
        wo = offset if w is None else w * offset
        out["inf_offset"] = np.array([wo.sum(), wo @ offset, wo @ yenc,
                                      np.exp(offset).sum() if w is None else w @ np.exp(offset)])
    sw = float(n if w is None else w.sum())
    if sw > 0:
        ww = np.ones(n) if w is None else w
        mean = float(ww @ yenc) / sw
        out["ymoments"] = (sw, mean, float(ww @ (yenc - mean) ** 2))
    finite = (np.isfinite(fisher).all() and np.isfinite(meat).all()
              and np.isfinite([deviance, pearson]).all() and np.isfinite(out["inf_ysums"]).all())
    if not finite:
        out["errors"] = [diagnose_chunk(index, X, y, w, offset)]
    return out
