"""Normal equations: one pass for centred X'X and X'y, then a client solve.

The pass accumulates *centred* moments (chunk means merged with Chan's
formula), so features with large means do not cancel catastrophically. The
client scales the centred Gram matrix to unit diagonal and solves it with a
Cholesky factorisation. When the scaled system is too ill-conditioned for the
Gram route (condition number above ``GRAM_CONDITION_LIMIT``), it
takes a second pass for a tall-skinny QR of the centred data and solves the
triangular system instead, which only loses ``cond(X)`` and not
``cond(X)**2``.

With an L1 part (lasso / elastic net) the same moments feed a cyclic
coordinate descent on the client (the "covariance updates" of glmnet):
still one pass over the data, however many sweeps.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..model.penalties import l1_subgradient
from ._coordinate import sweep
from ._result import FitResult

__all__ = ["solve_normal"]

#: Above this condition number of the scaled Gram matrix, switch to TSQR.
#: The Gram route's relative error grows like cond * eps times the error of
#: accumulating the moments; at 1e5 it still leaves about 10 digits, while
#: NIST's Wampler1 (scaled Gram condition 2.7e6) lost 7 of them.
GRAM_CONDITION_LIMIT = 1e5

#: Largest number of coordinate-descent sweeps for the L1 case.
DEFAULT_MAX_SWEEPS = 10_000


def _unpack_theta(objective, coef, intercept):
    return np.concatenate([coef, [intercept]]) if objective.fit_intercept else coef


def _raw_moments(objective):
    """Moments about the origin when there is no intercept."""
    sw, mx, my, Sxx, Sxy, Syy = objective.moments()
    if objective.fit_intercept:
        return sw, mx, my, Sxx, Sxy, Syy
    # Un-centre: sum w x x^T = Sxx + sw mx mx^T.
    return (sw, np.zeros_like(mx), 0.0, Sxx + sw * np.outer(mx, mx),
            Sxy + sw * mx * my, Syy + sw * my * my)


def solve_normal(objective, coef0, *, tol=1e-4, max_iter=DEFAULT_MAX_SWEEPS):
    """Solve least squares (+ L2, + L1 by coordinate descent) from moments.

    Parameters
    ----------
    objective : Objective
        With the squared loss.
    coef0 : ndarray
        Starting point for coordinate descent (ignored by the direct solve).
    tol : float
        Coordinate descent stops when the largest coefficient change in a
        sweep, relative to the largest coefficient, is below ``tol`` and the
        optimality (subgradient) condition holds to ``tol``.
    max_iter : int
        Maximum coordinate-descent sweeps.
    """
    if not objective.loss.is_quadratic:
        raise ValueError("solver='normal' applies to the squared loss only.")
    sw, mx, my, Sxx, Sxy, Syy = _raw_moments(objective)
    penalty = objective.penalty
    # Mean-scale system: (Sxx / sw + diag(l2)) b = Sxy / sw.
    A = Sxx / sw
    c = Sxy / sw
    fallback = ""
    # Per-coefficient strengths (the penalty's P1 / P2 weights, all equal without them).
    l1, l2 = penalty.l1_weights(len(c)), penalty.l2_weights(len(c))
    if not penalty.smooth:
        coef, n_iter, converged, gmax = gram_coordinate_descent(
            A, c, l1, l2, coef0[: len(c)], tol, max_iter)
        message = (f"coordinate descent on the Gram matrix, {n_iter} sweeps"
                   + ("" if converged else " (max_iter reached)"))
    else:
        passes_before = objective.passes
        coef, message = _direct(objective, A, c, l2)
        n_iter, converged, gmax = 0, True, np.nan
        if objective.passes > passes_before:  # the QR fallback read the data again
            fallback = f"{message}: {objective.passes} passes in all, not one"
    intercept = my - mx @ coef
    theta = _unpack_theta(objective, coef, intercept)
    resid = Syy / sw - 2 * coef @ c + coef @ A @ coef
    loss = 0.5 * resid + penalty.value(theta, objective.penalised)
    # A direct solve counts as one iteration (scikit-learn's n_iter_ >= 1).
    n_iter = max(n_iter, 1)
    return FitResult(theta=theta, loss=float(loss), grad_norm=float(gmax), n_iter=n_iter,
                     passes=objective.passes, converged=converged, message=message,
                     history=[{"iter": n_iter, "objective": float(loss),
                               "grad_norm": float(gmax), "passes": objective.passes,
                               "bytes": objective.bytes_communicated}],
                     solver="normal", fallback=fallback)


def _direct(objective, A, c, l2):
    p = len(c)
    d = np.sqrt(np.diag(A))
    d[d == 0] = 1.0  # constant column: leave unscaled, regularisation or lstsq handles it
    As = A / np.outer(d, d)
    As[np.diag_indices(p)] += l2 / d**2
    cs = c / d
    cond = np.linalg.cond(As)
    if np.isfinite(cond) and cond < GRAM_CONDITION_LIMIT:
        factor = scipy.linalg.cho_factor(As, check_finite=False)
        return scipy.linalg.cho_solve(factor, cs) / d, "Cholesky on the scaled centred Gram matrix"
    return _tsqr_solve(objective, l2), (
        f"scaled Gram matrix ill-conditioned (cond {cond:.1e}): solved by tall-skinny QR "
        "(one extra pass)")


def _tsqr_solve(objective, l2):
    """Least squares from R of the centred [X, y]; ridge by augmentation."""
    sw, mean, R = objective.qr_factor()
    p = R.shape[1] - 1
    R11, r12 = R[:p, :p], R[:p, p]
    if not objective.fit_intercept:
        # Un-centre: append the mean row so that R describes the raw data.
        row = np.sqrt(sw) * mean
        R = scipy.linalg.qr(np.vstack([R, row]), mode="r")[0][: p + 1]
        R11, r12 = R[:p, :p], R[:p, p]
    if np.any(l2 > 0):
        # (R11^T R11 + sw diag(l2)) b = R11^T r12  <=>  lstsq of [R11; sqrt(sw diag(l2))].
        aug = np.vstack([R11, np.sqrt(l2 * sw) * np.eye(p)])
        rhs = np.concatenate([r12, np.zeros(p)])
        return _min_norm_lstsq(aug, rhs)
    return _min_norm_lstsq(R11, r12)


def _min_norm_lstsq(A, b):
    """Minimum-norm least squares with NumPy's rank cutoff (eps * max(shape)).

    Columns are equilibrated first: with features on scales 1 to 1e6 (a
    polynomial design) the rank cutoff would otherwise discard a direction
    that is only small because of its units. SciPy's default cutoff (eps
    alone) keeps round-off singular values of rank-deficient data and
    returns a different, larger-norm solution.
    """
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    cutoff = np.finfo(np.float64).eps * max(A.shape)
    return scipy.linalg.lstsq(A / scale, b, cond=cutoff, check_finite=False)[0] / scale


def gram_coordinate_descent(A, c, l1, l2, b0, tol, max_sweeps):
    """min_b 1/2 b'Ab - c'b + sum_j l1_j |b_j| + l2_j/2 b_j^2 by cyclic coordinate descent."""
    b = np.array(b0, dtype=np.float64, copy=True)
    grad = A @ b - c  # gradient of the quadratic part, kept up to date by the sweeps
    converged = False
    sweeps = 0
    gmax = np.inf
    for sweeps in range(1, max_sweeps + 1):
        max_change, _ = sweep(A, grad, b, l1, l2)
        gmax = _subgradient_norm(grad + l2 * b, b, l1)
        scale = max(np.abs(b).max(), 1e-12)
        if max_change / scale <= tol and gmax <= tol:
            converged = True
            break
    return b, sweeps, converged, gmax


def _subgradient_norm(g, b, l1):
    """Max violation of the lasso optimality conditions."""
    viol = np.abs(l1_subgradient(g, b, l1))
    return float(viol.max()) if len(viol) else 0.0
