"""Penalties on the coefficients (never the intercept).

One elastic-net form covers all four penalties::

    penalty(b) = l1 * ||b||_1 + l2 / 2 * ||b||_2^2

``none`` is ``l1 = l2 = 0``, ``L2`` is ``l1 = 0``, ``L1`` is ``l2 = 0``. The
smooth part (``l2``) goes into the gradient and the Hessian; the non-smooth part
(``l1``) is handled only through :meth:`Penalty.prox`, so solvers that need a
smooth objective can refuse ``l1 > 0`` by looking at :attr:`Penalty.smooth`.

Strengths are already on the scale of the *mean* loss: estimators translate
scikit-learn's parameters (``Ridge.alpha``, ``LogisticRegression.C``) once the
first data pass has told them the sum of sample weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Penalty", "l1_subgradient", "soft_threshold"]


def soft_threshold(v, threshold):
    """The proximal operator of ``threshold * |v|_1``: ``sign(v) max(|v| - threshold, 0)``.

    The one soft-thresholding of daskfit: penalties, coordinate descent,
    proximal gradient and local SGD all shrink through it. ``threshold`` is
    a scalar or broadcasts against ``v``. Shrunk entries are ``+0.0``, never
    ``-0.0`` (so a zero coefficient prints and serialises as 0). A scalar
    ``v`` takes a fast path with Python floats (coordinate descent calls this
    once per coordinate update); the value is the same as the array path's.

    Examples
    --------
    >>> soft_threshold(np.array([1.0, -0.2, -3.0]), 0.5)
    array([ 0.5,  0. , -2.5])
    >>> soft_threshold(-0.2, 0.5)
    0.0
    """
    if isinstance(v, (float, np.floating)) and isinstance(threshold, (float, int, np.floating)):
        shrunk = max(abs(v) - threshold, 0.0)
        return (shrunk if v > 0 else -shrunk if v < 0 else 0.0 * shrunk) + 0.0
    return np.sign(v) * np.maximum(np.abs(v) - threshold, 0.0) + 0.0


def l1_subgradient(grad, b, l1):
    """The minimum-norm subgradient of ``smooth + l1 |b|_1`` given the smooth gradient.

    A nonzero coefficient's entry is ``grad + l1 sign(b)``; a coefficient at
    zero keeps only the part of its gradient that the L1 term cannot absorb,
    ``soft_threshold(grad, l1)``. Its max-abs is the optimality measure of
    every lasso solver (zero exactly at an optimum).
    """
    return np.where(b != 0, grad + l1 * np.sign(b), soft_threshold(grad, l1))


@dataclass(frozen=True)
class Penalty:
    """Elastic-net penalty ``l1 * |b|_1 + l2 / 2 * |b|^2`` on masked entries.

    Parameters
    ----------
    l1 : float
        Strength of the L1 term (on the mean-loss scale).
    l2 : float
        Strength of the squared L2 term (on the mean-loss scale).

    Examples
    --------
    >>> import numpy as np
    >>> p = Penalty(l1=0.5, l2=0.0)
    >>> mask = np.array([True, True, False])   # last entry is the intercept
    >>> p.value(np.array([1.0, -2.0, 5.0]), mask)
    1.5
    >>> p.prox(np.array([1.0, -0.2, 5.0]), 1.0, mask)
    array([0.5, 0. , 5. ])
    """

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self):
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"Penalty strengths must be >= 0, got l1={self.l1}, l2={self.l2}.")

    @property
    def kind(self) -> str:
        """``"none"``, ``"l2"``, ``"l1"`` or ``"elasticnet"``."""
        if self.l1 == 0 and self.l2 == 0:
            return "none"
        if self.l1 == 0:
            return "l2"
        if self.l2 == 0:
            return "l1"
        return "elasticnet"

    @property
    def smooth(self) -> bool:
        """True when the penalty is differentiable everywhere (no L1 part)."""
        return self.l1 == 0

    def value(self, theta, mask):
        b = theta[mask]
        return float(self.l1 * np.abs(b).sum() + 0.5 * self.l2 * (b @ b))

    def smooth_value(self, theta, mask):
        b = theta[mask]
        return float(0.5 * self.l2 * (b @ b))

    def smooth_gradient(self, theta, mask):
        g = np.zeros_like(theta)
        g[mask] = self.l2 * theta[mask]
        return g

    def smooth_hessian_diagonal(self, mask):
        return np.where(mask, self.l2, 0.0)

    def prox(self, theta, step, mask):
        """Proximal operator of ``step * l1 * |b|_1`` (soft thresholding).

        Only the L1 part is proximal; the L2 part belongs to the smooth
        objective, which keeps the smooth/non-smooth split unambiguous.
        """
        out = np.array(theta, dtype=np.float64, copy=True)
        if self.l1 > 0:
            out[mask] = soft_threshold(out[mask], step * self.l1)
        return out
