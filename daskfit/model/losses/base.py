"""The contract every loss fulfils, and the held-out scores losses share.

A loss maps a target chunk ``y`` and a raw prediction ``raw`` (the linear
predictor ``X @ coef + intercept``) to per-row values, first and second
derivatives with respect to ``raw``. Single-output losses use ``raw`` of
shape ``(n,)``; the multinomial loss uses ``(n, n_classes)``. Weights, sums
and the mean are applied by the engine, never here, so a loss is a pure
function of arrays and is trivially picklable.

Besides its derivatives, a loss owns every fact the layers above ask about
it, so adding a loss is one module plus its line in ``LOSSES``:

==========================  ====================================================
``encode``                  the target as the loss reads it (0/1, class codes)
``validate_target``         the target rule (``y >= 0`` for Poisson ...)
``inverse_link``            the mean (or class probabilities) from ``raw``
``curvature_bound``         a bound on ``d2 loss / d raw2`` (local SGD's step),
                            ``None`` when unbounded: ``local_curvature_bound``
``score`` / ``score_sums``  the estimator's ``score`` on held-out rows, from
/ ``score_value``           sums that merge by addition (early stopping)
``for_classes``             the loss to fit once the number of classes is known
``is_quadratic``            the loss is a quadratic in ``raw`` (exact block
                            solves, the normal equations)
``model_parallel``          the column-sharded solvers' closed forms exist:
                            ``constant_model``, ``constant_curvature``,
                            ``loss_difference``
``dispersion``              statistical inference: ``None`` when the loss states
                            no inference facts (``summary()`` refuses), ``"one"``
                            (fixed at 1) or ``"pearson"`` (chi2 / df_resid)
``t_statistics``            model-based statistics follow Student's t
``variance`` / ``dmu_deta`` the variance function ``V(mu)`` and ``dmu / d raw``
``canonical_link`` /        observed = expected information, else the slope
``score_factor_slope``      ``d/d raw [(dmu/d raw) / V(mu)]`` that separates them
``unit_deviance``           per-row deviance ``d(y, mu)`` (twice the half deviance)
``inference_y_sums`` /      sums of functions of ``y`` alone, and from them the
``null_deviance_of_mean`` / constant model's deviance and the log-likelihood
``log_likelihood``          (``None`` where undefined) -- no second pass
==========================  ====================================================

Losses follow scikit-learn's ``Half*Loss`` conventions so that objectives
match scikit-learn's estimators exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Loss", "R2Score", "AccuracyScore", "DevianceScore", "SCORE_SUMS", "explained",
           "weighted_sums"]

#: Length of the statistics vector of a held-out score (the same for every
#: score, so partial results merge with a plain sum): count, weight, then
#: three score-specific sums (``Loss.score_sums``).
SCORE_SUMS = 5


class Loss:
    """Base of the pointwise losses: the defaults of a single-output regression loss.

    Subclasses set :attr:`name` and implement :meth:`value` and
    :meth:`derivatives`, and override whichever facts differ from the
    defaults here (see the module docstring for the list).
    """

    name = None
    is_classification = False
    n_outputs = 1
    #: Supremum of the second derivative over ``raw``; ``None``: unbounded.
    curvature_bound = None
    is_quadratic = False
    model_parallel = False
    #: Name of the estimator's ``score`` (shown in plans and messages).
    score = None

    # ------------------------------------------------------------ the maths
    def encode(self, y, classes):
        """The target as this loss reads it (float64 for regression losses)."""
        return np.asarray(y, dtype=np.float64)

    def value(self, y, raw):
        """Per-row loss."""
        raise NotImplementedError

    def derivatives(self, y, raw, *, hessian):
        """Per-row ``(loss, d loss / d raw, d2 loss / d raw2 or None)``."""
        raise NotImplementedError

    def inverse_link(self, raw):
        """The prediction (mean, or class probabilities) from the raw prediction."""
        raise NotImplementedError

    def validate_target(self, y_min, y_max):
        """``None`` when a target in ``[y_min, y_max]`` is valid, else the problem."""
        return None

    def for_classes(self, n_classes):
        """The loss to fit on ``n_classes`` classes (classifiers; else ``self``)."""
        return self

    @property
    def supports_local_sgd(self):
        """Local SGD can step on this loss: it gives a curvature bound.

        A constant one (:attr:`curvature_bound`) or one near the start (a
        subclass's own :meth:`local_curvature_bound`).
        """
        return (self.curvature_bound is not None
                or type(self).local_curvature_bound is not Loss.local_curvature_bound)

    def local_curvature_bound(self, raw):
        """A bound on the second derivative near the raw predictions ``raw``.

        Used for local SGD's step size when :attr:`curvature_bound` is
        ``None``; ``raw`` is the raw prediction of a chunk at the start point.
        """
        if self.curvature_bound is not None:
            return self.curvature_bound
        raise NotImplementedError(f"The {self.name} loss has no curvature bound for SGD.")

    # ---------------------------------------------- model-parallel closed forms
    def constant_model(self, sw, swy, ymoments, fit_intercept):
        """``(c0, mu0, sum w loss)`` of the best constant model (or of 0 without intercept).

        ``mu0`` is ``d loss / d raw + y`` at ``c0`` (the same for every row), so
        the raw gradient of a column block there is ``mu0 X^T w - X^T (w y)``.
        ``ymoments`` is ``(sw, mean, sum w (y - mean)^2)`` of the target.
        """
        raise ValueError(f"Unsupported loss {self.name!r}.")

    def constant_curvature(self, mu0):
        """``d2 loss / d raw2`` at the constant model (the same for every row)."""
        raise ValueError(f"Unsupported loss {self.name!r}.")

    def loss_difference(self, y, z, delta):
        """``loss(y, z + delta) - loss(y, z)`` per row, accurate when ``delta`` is small.

        A difference of sums loses every digit below the round-off of the
        loss itself; closed forms keep the digits of the change, so line
        searches stay decisive next to the optimum.
        """
        raise ValueError(f"No loss difference for the {self.name!r} loss.")

    # ------------------------------------------------ statistical inference
    #: How inference estimates the dispersion ``phi``: ``None`` (this loss
    #: states no inference facts), ``"one"`` (``phi = 1``: binomial, Poisson)
    #: or ``"pearson"`` (Pearson chi2 / df_resid, statsmodels' ``scale="X2"``).
    dispersion = None
    #: Model-based statistics follow Student's t with df_resid (least squares,
    #: as statsmodels' OLS), else the normal law (statsmodels' GLM).
    t_statistics = False
    #: The link is the family's canonical one: the observed information equals
    #: the expected, and :meth:`score_factor_slope` is never asked.
    canonical_link = True

    def variance(self, mu):
        """The variance function ``V(mu)`` (the variance is ``phi V(mu)``)."""
        raise NotImplementedError(f"The {self.name} loss states no variance function.")

    def dmu_deta(self, raw, mu):
        """``d mu / d raw`` at the raw prediction ``raw`` (mean ``mu``)."""
        raise NotImplementedError(f"The {self.name} loss states no link derivative.")

    def score_factor_slope(self, raw, mu):
        """``d/d raw [(d mu / d raw) / V(mu)]``: zero for a canonical link.

        The observed information weight of a row is the expected one,
        ``(dmu/draw)^2 / V``, less ``(y - mu)`` times this slope.
        """
        raise NotImplementedError(f"The {self.name} loss states no observed information.")

    def unit_deviance(self, y, raw, mu):
        """Per-row deviance ``d(y, mu)``: ``-2 log`` likelihood ratio to the saturated model."""
        raise NotImplementedError(f"The {self.name} loss states no deviance.")

    def inference_y_sums(self, y, w):
        """Weighted sums of functions of ``y`` alone (``w`` may be None: unit weights).

        They merge by addition; with them :meth:`null_deviance_of_mean` and
        :meth:`log_likelihood` need no second pass over the data.
        """
        return np.zeros(0)

    def null_deviance_of_mean(self, sw, ybar, m2, ysums):
        """Deviance of the constant mean ``ybar``, from ``sum w``, ``ybar``,
        ``sum w (y - ybar)^2`` and :meth:`inference_y_sums`."""
        raise NotImplementedError(f"The {self.name} loss states no null deviance.")

    def log_likelihood(self, deviance, sw, ybar, ysums, scale):
        """The log-likelihood at the fit (dispersion ``scale``), or None where undefined."""
        return None

    def null_deviance_with_offset(self, sw, ybar, m2, ysums, offset_sums):
        """Deviance of the intercept-only model *with* a fit's offset ``o``, or NaN.

        ``offset_sums`` is ``[sum w o, sum w o^2, sum w y o, sum w e^o]``.
        NaN where that model has no closed form (statsmodels fits it anew).
        """
        return float("nan")

    def __repr__(self):
        return f"{type(self).__name__}()"


def weighted_sums(w, *columns):
    """``[sum w c for c in columns]`` as an array; ``w=None`` for unit weights."""
    if w is None:
        return np.array([np.sum(c) for c in columns], dtype=np.float64)
    return np.array([w @ c for c in columns], dtype=np.float64)


def explained(residual, total):
    """``1 - residual / total``; a constant target (``total <= 0``) as scikit-learn's
    ``force_finite`` rule: 1 for a perfect fit, else 0."""
    if total <= 0:
        return 1.0 if residual == 0 else 0.0
    return float(1.0 - residual / total)


class R2Score:
    """Mixin: the held-out score is R^2 (``RegressorMixin.score``).

    ``score_sums(y, raw, w, shift)`` returns the three score-specific sums of
    some validation rows (``y`` as :meth:`Loss.encode` gives it);
    ``score_value(sums)`` the score from the merged statistics vector
    ``(count, weight, *three sums)``.

    ``shift`` is subtracted from ``y`` before its moments are summed, so the
    total sum of squares does not cancel when ``|mean(y)| >> std(y)``.
    """

    score = "r2"

    def score_sums(self, y, raw, w, shift):
        yc = y - shift
        return w @ yc, w @ (yc * yc), w @ (y - raw) ** 2

    def score_value(self, sums):
        return explained(sums[4], sums[3] - sums[2] ** 2 / sums[1])


class AccuracyScore:
    """Mixin: the held-out score is accuracy (``ClassifierMixin.score``).

    Works for a binary margin ``raw`` of shape ``(n,)`` and for per-class
    raw predictions of shape ``(n, K)`` alike, so a binary loss that turns
    multinomial after the first pass keeps its score.
    """

    score = "accuracy"

    def score_sums(self, y, raw, w, shift):
        predicted = (raw > 0).astype(np.float64) if raw.ndim == 1 else raw.argmax(axis=1)
        # Float, not bool: a float @ bool product takes NumPy's slow generic loop.
        return w @ (predicted == y).astype(np.float64), 0.0, 0.0

    def score_value(self, sums):
        return float(sums[2] / sums[1])


class DevianceScore:
    """Mixin: the held-out score is D^2, the fraction of deviance explained.

    A subclass defines :meth:`deviance_sums` (``sum w y``, a sum of a function
    of ``y`` alone, and the model's summed unit deviance up to that same
    function) and :meth:`null_deviance` (the constant model's, from the first
    two sums and the weight). Both deviances may leave out the same multiple
    of ``sum w``-free terms: only their ratio is used.
    """

    def score_sums(self, y, raw, w, shift):
        return self.deviance_sums(y, raw, w)

    def score_value(self, sums):
        return explained(sums[4], self.null_deviance(sums[1], sums[2], sums[3]))
