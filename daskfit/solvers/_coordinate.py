"""Lasso coordinate descent on a quadratic model: the one implementation.

Every L1 solver that works on a Gram (or Hessian) matrix on the client or in
a task -- the normal equations' lasso, the working-set sub-problems and the
block solves of ``"bcd"`` -- minimises::

    1/2 b'Ab - c'b + l1 |b|_1 + l2/2 |b|^2

one coordinate at a time, keeping the gradient of the quadratic part,
``grad = A b - c``, up to date. They differ only in which coordinates a sweep
visits and when they stop, so :func:`sweep` is shared and each caller keeps
its own stopping rule.
"""

from __future__ import annotations

import numpy as np

from ..model.penalties import soft_threshold

__all__ = ["sweep"]


def sweep(A, grad, b, l1, l2, coordinates=None):
    """One pass of cyclic coordinate descent, updating ``b`` and ``grad`` in place.

    Parameters
    ----------
    A : ndarray of shape (p, p)
        The symmetric matrix of the quadratic part (without ``l2``).
    grad : ndarray of shape (p,)
        ``A b - c`` on entry; kept equal to it as coordinates move.
    b : ndarray of shape (p,)
        The coefficients (float64, written in place).
    l1, l2 : float or ndarray of shape (p,)
        Penalty strengths, one per coordinate where the penalty weighs
        features differently (``P1``, ``P2``).
    coordinates : iterable of int, optional
        The coordinates to visit, in order (default: all). Coordinates whose
        curvature ``A[j, j] + l2`` is zero or negative are skipped.

    Returns
    -------
    max_change : float
        Largest ``|new - old|`` of the sweep.
    max_scaled_change : float
        Largest ``(A[j, j] + l2) |new - old|``: the change it made to the
        model's gradient in the coordinate's own units.
    """
    l1 = np.broadcast_to(np.asarray(l1, dtype=np.float64), b.shape)
    l2 = np.broadcast_to(np.asarray(l2, dtype=np.float64), b.shape)
    diag = np.diag(A) + l2
    max_change = max_scaled = 0.0
    for j in range(len(b)) if coordinates is None else coordinates:
        if diag[j] <= 0:
            continue
        old = b[j]
        z = diag[j] * old - grad[j] - l2[j] * old
        new = soft_threshold(z, l1[j]) / diag[j]
        if new != old:
            grad += A[:, j] * (new - old)
            b[j] = new
            change = abs(new - old)
            max_change = max(max_change, change)
            max_scaled = max(max_scaled, diag[j] * change)
    return max_change, max_scaled
