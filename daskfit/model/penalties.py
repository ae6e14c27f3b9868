"""Penalties on the coefficients (never the intercept).

One elastic-net form covers all four penalties::

    penalty(b) = l1 * sum_j P1_j |b_j| + l2 / 2 * sum_j P2_j b_j^2

``none`` is ``l1 = l2 = 0``, ``L2`` is ``l1 = 0``, ``L1`` is ``l2 = 0``; the
per-feature weights ``P1``, ``P2`` (glum's, default all ones) scale each
coefficient's share, 0 leaving it unpenalised. The
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

__all__ = ["Penalty", "check_feature_weights", "l1_subgradient", "soft_threshold"]


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


@dataclass(frozen=True, eq=False)
class Penalty:
    """Elastic-net penalty ``sum_j l1 P1_j |b_j| + l2 / 2 sum_j P2_j b_j^2`` on masked entries.

    Parameters
    ----------
    l1 : float
        Strength of the L1 term (on the mean-loss scale).
    l2 : float
        Strength of the squared L2 term (on the mean-loss scale).
    P1, P2 : array-like of shape (n_features,), optional
        glum's per-feature weights of the L1 and the L2 term: coefficient
        ``j`` (of every output) is penalised by ``l1 * P1[j]`` and
        ``l2 * P2[j]``; 0 leaves it unpenalised. None means all ones.
        Intercepts are never penalised (the ``mask`` says which entries of
        ``theta`` are coefficients).

    Notes
    -----
    Every fact below is per coordinate: :meth:`l1_on` and :meth:`l2_on` give
    the strengths over ``theta`` (0 at the intercepts), which is what the
    solvers use; ``l1`` and ``l2`` alone are the scalars the estimator set.

    Examples
    --------
    >>> import numpy as np
    >>> p = Penalty(l1=0.5, l2=0.0)
    >>> mask = np.array([True, True, False])   # last entry is the intercept
    >>> p.value(np.array([1.0, -2.0, 5.0]), mask)
    1.5
    >>> p.prox(np.array([1.0, -0.2, 5.0]), 1.0, mask)
    array([0.5, 0. , 5. ])
    >>> Penalty(l1=0.5, P1=[0.0, 2.0]).l1_on(mask)
    array([0., 1., 0.])
    """

    l1: float = 0.0
    l2: float = 0.0
    P1: object = None
    P2: object = None

    def __post_init__(self):
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"Penalty strengths must be >= 0, got l1={self.l1}, l2={self.l2}.")
        for name in ("P1", "P2"):
            object.__setattr__(self, name, _feature_weights(getattr(self, name), name))

    @property
    def _has_l1(self):
        return self.l1 > 0 and (self.P1 is None or bool(np.any(self.P1 > 0)))

    @property
    def _has_l2(self):
        return self.l2 > 0 and (self.P2 is None or bool(np.any(self.P2 > 0)))

    @property
    def kind(self) -> str:
        """``"none"``, ``"l2"``, ``"l1"`` or ``"elasticnet"`` (what is actually penalised)."""
        if not self._has_l1 and not self._has_l2:
            return "none"
        if not self._has_l1:
            return "l2"
        if not self._has_l2:
            return "l1"
        return "elasticnet"

    @property
    def smooth(self) -> bool:
        """True when the penalty is differentiable everywhere (no L1 part)."""
        return not self._has_l1

    @property
    def uniform(self) -> bool:
        """True when every coefficient has the same strength (no ``P1``/``P2`` in effect)."""
        return (_all_ones(self.P1) or self.l1 == 0) and (_all_ones(self.P2) or self.l2 == 0)

    def check_n_features(self, n_features):
        """Raise, naming ``P1``/``P2``, unless each holds ``n_features`` weights."""
        check_feature_weights("P1", self.P1, n_features)
        check_feature_weights("P2", self.P2, n_features)

    def l1_weights(self, n):
        """The L1 strengths of ``n`` coefficients (``P1`` repeated once per output)."""
        return _per_coefficient(self.l1, self.P1, n, "P1")

    def l2_weights(self, n):
        """The L2 strengths of ``n`` coefficients (``P2`` repeated once per output)."""
        return _per_coefficient(self.l2, self.P2, n, "P2")

    def l1_on(self, mask):
        """The L1 strength of every entry of ``theta`` (0 where ``mask`` is False)."""
        return _on(self.l1_weights(int(np.count_nonzero(mask))), mask)

    def l2_on(self, mask):
        """The L2 strength of every entry of ``theta`` (0 where ``mask`` is False)."""
        return _on(self.l2_weights(int(np.count_nonzero(mask))), mask)

    def l1_value(self, theta, mask):
        """The L1 part at ``theta``."""
        b = np.asarray(theta, dtype=np.float64)[mask]
        return float(self.l1_weights(len(b)) @ np.abs(b))

    def value(self, theta, mask):
        return self.l1_value(theta, mask) + self.smooth_value(theta, mask)

    def smooth_value(self, theta, mask):
        b = np.asarray(theta, dtype=np.float64)[mask]
        return float(0.5 * (self.l2_weights(len(b)) * b) @ b)

    def smooth_gradient(self, theta, mask):
        return self.l2_on(mask) * np.asarray(theta, dtype=np.float64)

    def smooth_hessian_diagonal(self, mask):
        return self.l2_on(mask)

    def prox(self, theta, step, mask):
        """Proximal operator of ``step * sum_j l1_j |b_j|`` (soft thresholding).

        Only the L1 part is proximal; the L2 part belongs to the smooth
        objective, which keeps the smooth/non-smooth split unambiguous.
        """
        out = np.array(theta, dtype=np.float64, copy=True)
        if self._has_l1:
            n = int(np.count_nonzero(mask))
            out[mask] = soft_threshold(out[mask], step * self.l1_weights(n))
        return out


def check_feature_weights(name, P, n_features=None):
    """Refuse a bad ``P1``/``P2`` by name: not a vector, negative, NaN or infinite weights,
    or (given ``n_features``) a length other than ``n_features``.

    The estimators call it when their parameters are checked (before any
    data is read) and again once the number of features is known.
    """
    P = _feature_weights(P, name)
    if P is not None and n_features is not None and len(P) != n_features:
        raise ValueError(f"{name} has {len(P)} entries but X has {n_features} features; pass "
                         f"one weight per feature (or {name}=None for all ones).")


def _feature_weights(P, name):
    """``P`` as a read-only float64 vector of weights >= 0 (None stays None)."""
    if P is None:
        return None
    try:
        P = np.array(P, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a vector of per-feature weights >= 0 (or None); "
                         f"got {P!r}.") from error
    if P.ndim != 1:
        raise ValueError(f"{name} must be a vector of per-feature weights (shape "
                         f"(n_features,)); got shape {P.shape}. A matrix (glum's Tikhonov "
                         "P2) is not supported.")
    bad = np.flatnonzero(~np.isfinite(P) | (P < 0))
    if len(bad):
        raise ValueError(f"{name} must hold finite weights >= 0 (0 leaves a coefficient "
                         f"unpenalised); {len(bad)} do not, first {name}[{bad[0]}] = "
                         f"{float(P[bad[0]])}.")
    P.setflags(write=False)
    return P


def _all_ones(P):
    return P is None or bool(np.all(P == 1.0))


def _per_coefficient(strength, P, n, name):
    if P is None:
        return np.full(n, float(strength))
    if len(P) == 0 or n % len(P):
        raise ValueError(f"{name} has {len(P)} entries but the model has {n} penalised "
                         "coefficients; pass one weight per feature (n_features entries).")
    return float(strength) * np.tile(P, n // len(P))


def _on(weights, mask):
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape)
    out[mask] = weights
    return out
