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
  with Chan's rule (the merge table's ``ymoments``), and ``inf_ysums``, the
  loss's sums of functions of ``y`` alone: with them the null deviance and
  the log-likelihood follow on the client without a second pass.

The facts of the model -- mean, ``dmu/deta``, variance function, unit
deviance, the sums of ``y`` and what follows from them -- are asked of the
loss (``daskfit.model.losses``, the inference rows of its contract), never
looked up by its name. For a non-canonical link (Gamma and Tweedie with the
log link) the chunk also sums the observed information ``inf_observed``,
``sum w_i (W_i - (y_i - mu_i) s_i) x~_i x~_i'`` with ``s_i`` the loss's
``score_factor_slope``: the bread of the HC0 sandwich, as statsmodels'
(its model-based covariance uses the expected information, ``inf_fisher``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .alignment import aligned_blocks
from .chunks import chunk_input_errors, chunk_kernel, diagnose_chunk, unpack, weighted_gram

__all__ = ["InferenceSpec", "OFFSET_SUMS", "inference_chunk"]

#: The sums of a fit's offset ``o`` the inference pass returns as ``inf_offset``
#: (the null model with the offset: ``Loss.null_deviance_with_offset``).
OFFSET_SUMS = ("sum w o", "sum w o^2", "sum w y o", "sum w exp(o)")


@dataclass(frozen=True)
class InferenceSpec:
    """What the inference pass needs; embedded in every task (a few KB)."""

    loss: object
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
    loss = spec.loss
    coef, intercept = unpack(spec.theta, spec.n_features, 1, spec.fit_intercept)
    coef = coef.astype(X.dtype)
    yenc = loss.encode(y, spec.classes)
    width = spec.n_features + int(spec.fit_intercept)
    fisher, meat = np.zeros((width, width)), np.zeros((width, width))
    observed = None if loss.canonical_link else np.zeros((width, width))
    deviance = pearson = 0.0
    for _, block, Xb in aligned_blocks(X):
        yb = yenc[block]
        wb = np.ones(len(yb)) if w is None else w[block]
        raw = (Xb @ coef).astype(np.float64) + intercept
        if offset is not None:
            raw += offset[block]
        mu = loss.inverse_link(raw)
        v, dmu = loss.variance(mu), loss.dmu_deta(raw, mu)
        resid = yb - mu
        expected = dmu**2 / v
        fisher += weighted_gram(Xb, wb * expected, spec.fit_intercept, nonnegative=True)
        meat += weighted_gram(Xb, wb * (resid * dmu / v) ** 2, spec.fit_intercept,
                              nonnegative=True)
        if observed is not None:  # may be negative away from the optimum: no shortcut
            observed += weighted_gram(
                Xb, wb * (expected - resid * loss.score_factor_slope(raw, mu)),
                spec.fit_intercept, nonnegative=False)
        deviance += float(wb @ loss.unit_deviance(yb, raw, mu))
        pearson += float(wb @ (resid**2 / v))
    out["inf_fisher"], out["inf_meat"] = fisher, meat
    if observed is not None:
        out["inf_observed"] = observed
    out["inf_deviance"], out["inf_pearson"] = deviance, pearson
    out["inf_ysums"] = loss.inference_y_sums(yenc, w)
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
              and (observed is None or np.isfinite(observed).all())
              and np.isfinite([deviance, pearson]).all() and np.isfinite(out["inf_ysums"]).all())
    if not finite:
        out["errors"] = [diagnose_chunk(index, X, y, w, offset)]
    return out
