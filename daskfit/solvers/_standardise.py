"""First-order solvers in standardised coordinates: centred, unit-scale features.

Gradient methods (L-BFGS, gradient descent, FISTA) on raw features pay for
every feature mean and every difference of scales: with features of mean 0.5
the intercept and the coefficients are coupled through a Hessian eigenvalue
of about ``p / 4``, and an absolute gradient tolerance stops them far from
the optimum (issue 13: ``Ridge(alpha=1)`` on 1,000 x 4,500 features stopped
with intercept 0.008 where the optimum is 7.4, "converged").

The change of variables ``b = beta / d``, ``c = gamma - mu' b`` (``mu`` the
weighted feature means, ``d`` their standard deviations, over the training
rows) leaves the model unchanged, ``x' b + c = ((x - mu) / d)' beta + gamma``,
but makes the intercept independent of the coefficients and every feature of
unit scale: the same preconditioning scikit-learn gets by centring and
scaling X explicitly, here without touching the data (the solvers see
``beta, gamma``; each pass still evaluates ``b, c`` on the raw chunks).

The stopping rule is relative to the problem's scale: max-abs gradient (in
these coordinates) ``<= tol * s``, where ``s`` is the max-abs coefficient
gradient at zero, i.e. the largest (scaled) covariance between a feature and
the residual of the null model. It does not depend on the units of X or y.

The column statistics come from the fit's first pass (see
:func:`with_column_moments`), so standardising costs no pass.
"""

from __future__ import annotations

import functools

import numpy as np

from .._data import split_row_vectors
from ..model.penalties import soft_threshold
from ._steps import StopHook, met_tol_while_refining

__all__ = ["ColumnMoments", "Standardised", "in_standardised_coordinates",
           "with_column_moments"]


class ColumnMoments:
    """Weighted count, means and centred sums of squares of X's columns.

    Partial results of a pass are merged with ``+`` (the engine sums
    unknown keys); the merge is Chan's parallel formula, so features with
    large means do not cancel catastrophically.
    """

    def __init__(self, sw, mean, m2):
        self.sw, self.mean, self.m2 = float(sw), mean, m2

    @classmethod
    def of_chunk(cls, X, w):
        """The moments of one chunk, merged over cache-sized row blocks.

        A block at a time in float64: no full-size temporary of the chunk.
        """
        from ..kernels.alignment import is_sparse, row_blocks

        if is_sparse(X):  # sparse chunks: products over the nonzeros, never densified
            from ..kernels.chunks import sparse_column_moments

            return cls(*sparse_column_moments(X, w))
        total = cls(0.0, np.zeros(X.shape[1]), np.zeros(X.shape[1]))
        for block in row_blocks(X):
            Xb = np.asarray(X[block], dtype=np.float64)
            wb = np.ones(Xb.shape[0]) if w is None else np.asarray(w[block], dtype=np.float64)
            sw = float(wb.sum())
            if sw > 0:
                mean = (wb @ Xb) / sw
                total = total + cls(sw, mean, wb @ (Xb - mean) ** 2)
        return total

    def __add__(self, other):
        if not isinstance(other, ColumnMoments):
            return NotImplemented
        if other.sw == 0:
            return self
        if self.sw == 0:
            return other
        sw = self.sw + other.sw
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.sw / sw)
        m2 = self.m2 + other.m2 + delta**2 * (self.sw * other.sw / sw)
        return ColumnMoments(sw, mean, m2)

    def __radd__(self, other):
        # ``sum(parts)`` starts from 0.
        if isinstance(other, (int, float)) and other == 0:
            return self
        return NotImplemented

    @property
    def std(self):
        return np.sqrt(np.maximum(self.m2, 0.0) / self.sw) if self.sw > 0 else \
            np.zeros_like(self.mean)


def _column_moments_of(index, X, w, spec):
    w = split_row_vectors(w)[0]  # the weights of a slot that also holds an offset
    holdout = getattr(spec, "holdout", None)
    if holdout is not None:
        w = holdout.split(index, X.shape[0], w)[0]  # training rows only
    return ColumnMoments.of_chunk(X, w)


def column_moments_chunk(index, X, y, w, spec):
    """A pass of its own: the column moments alone (when the first pass lacked them)."""
    return {"column_moments": _column_moments_of(index, X, w, spec)}


def _with_column_moments(kernel, index, X, y, w, spec):
    out = kernel(index, X, y, w, spec)
    if not out.get("errors"):  # bad data: the pass raises anyway
        out["column_moments"] = _column_moments_of(index, X, w, spec)
    return out


def with_column_moments(kernel):
    """``kernel`` that also returns ``"column_moments"`` (picklable, for the workers)."""
    return functools.partial(_with_column_moments, kernel)


class Standardised:
    """An Objective seen in standardised coordinates ``phi = (beta, gamma)``.

    With at least as many features as rows, X has a null space (and so has
    the data of a rank-deficient design), along which only the L2 part
    curves the objective. A gradient method from zero never leaves X's row
    space, and that is where the optimum lies (the minimum-norm one without
    a penalty), *if* the penalty is isotropic in its coordinates. Scaling
    the features one by one would weight the penalty unequally and pull the
    iterates into the null space, where they converge only at the rate of
    the L2 part (on 1,000 x 4,500 features, 3.5% coefficient error at the
    gradient rule). So wide data gets one common scale: centring, which is
    what those problems need, without the distortion.

    Offers what the first-order solvers use (values, gradients, the L1 part
    and its proximal operator, pass counts); ``theta_of`` and ``phi_of``
    map between the coordinates.
    """

    def __init__(self, objective, moments):
        self.objective = objective
        self.penalty = objective.penalty
        self.penalised = objective.penalised
        p, K = objective.n_features, objective.n_outputs
        self._fi = bool(objective.fit_intercept)
        self._shape = (K, p + int(self._fi))
        if self._fi:
            mean, scale = moments.mean, moments.std
        else:
            # No intercept to absorb a shift: scale by the root mean square.
            mean = np.zeros(p)
            scale = np.sqrt(moments.std**2 + moments.mean**2)
        scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
        if not objective.n_samples > p:
            scale = np.full(p, np.sqrt(np.mean(scale**2)) if p else 1.0)
        self.mean, self.scale = mean, scale
        # Per-coordinate L1 strength: l1_j |b_j| = l1_j |beta_j| / d_j (l1_j from
        # the penalty's P1 weights; 0 at the intercepts).
        self._l1_weight = self.penalty.l1_on(self.penalised) * np.tile(
            np.concatenate([1.0 / scale, [0.0] * int(self._fi)]), K)

    # ------------------------------------------------------------ mapping
    def theta_of(self, phi):
        phi = np.asarray(phi, dtype=np.float64).reshape(self._shape)
        p = len(self.scale)
        theta = np.empty_like(phi)
        theta[:, :p] = phi[:, :p] / self.scale
        if self._fi:
            theta[:, p] = phi[:, p] - theta[:, :p] @ self.mean
        return theta.ravel()

    def phi_of(self, theta):
        theta = np.asarray(theta, dtype=np.float64).reshape(self._shape)
        p = len(self.scale)
        phi = np.empty_like(theta)
        phi[:, :p] = theta[:, :p] * self.scale
        if self._fi:
            phi[:, p] = theta[:, p] + theta[:, :p] @ self.mean
        return phi.ravel()

    def gradient_of(self, g):
        """The gradient in ``phi`` from the gradient in ``theta`` (chain rule)."""
        g = np.asarray(g, dtype=np.float64).reshape(self._shape)
        p = len(self.scale)
        out = np.empty_like(g)
        out[:, :p] = g[:, :p] / self.scale
        if self._fi:
            out[:, :p] -= np.outer(g[:, p], self.mean / self.scale)
            out[:, p] = g[:, p]
        return out.ravel()

    def coefficient_part(self, v):
        """Entries of a ``phi``-shaped vector that are coefficients (not intercepts)."""
        return np.asarray(v)[self.penalised]

    # ------------------------------------------------- the solver interface
    def smooth_value(self, phi):
        return self.objective.smooth_value(self.theta_of(phi))

    def smooth_value_and_grad(self, phi):
        f, g = self.objective.smooth_value_and_grad(self.theta_of(phi))
        return f, self.gradient_of(g)

    def value_and_grad(self, phi):
        self.require_smooth()
        return self.smooth_value_and_grad(phi)

    def l1_value(self, phi):
        return float(self._l1_weight @ np.abs(phi))

    def value(self, phi):
        return self.smooth_value(phi) + self.l1_value(phi)

    def prox(self, v, step):
        """Soft-thresholding with the per-coordinate weights of the L1 part."""
        v = np.asarray(v, dtype=np.float64)
        if self.penalty.smooth:
            return v.copy()
        threshold = step * self._l1_weight
        return soft_threshold(v, threshold)

    def require_smooth(self):
        self.objective.require_smooth()

    @property
    def passes(self):
        return self.objective.passes

    @property
    def bytes_communicated(self):
        return self.objective.bytes_communicated


def gradient_scale(standardised, objective):
    """``s``: the max-abs coefficient gradient at zero, in standardised coordinates.

    The gradient at zero is cached from the first pass (free). For the
    squared loss it is the largest covariance of a standardised feature with
    y, so ``tol * s`` is in the units of the problem; 1 when it is 0 (y
    constant: zero is already the answer).
    """
    _, g0 = objective.smooth_value_and_grad(np.zeros(objective.n_params))
    part = standardised.coefficient_part(standardised.gradient_of(g0))
    s = float(np.abs(part).max()) if part.size else 0.0
    return s if np.isfinite(s) and s > 0 else 1.0


#: lbfgs and gd stop at this fraction of ``tol`` (relative rule). Two
#: solvers that stop at the first iterate under the same threshold land
#: anywhere within one iteration's progress of it: on the benchmark's
#: logistic problem (200,000 x 50, C=1) lbfgs at ``tol * s`` ended 1.31e-4
#: and gd 1.82e-4 from the optimum, where scikit-learn's lbfgs (absolute
#: gradient <= tol) ends 1.19e-4. A tenth costs lbfgs one pass there
#: (superlinear near the end), gd two; errors 3.9e-6 and 6.8e-6.
ACCURACY_MARGIN = 0.1


def in_standardised_coordinates(run, objective, coef0, *, tol, stop=None, certify=None,
                                margin=1.0, **options):
    """Run ``run(objective, coef0, tol=..., stop=..., **options)`` on standardised coordinates.

    ``certify(theta) -> reason or None`` (an optional stopping rule on the
    raw coefficients) is passed on in ``phi``'s terms. The solver's rule is
    ``margin * tol * s`` (see :data:`ACCURACY_MARGIN`); a run that ends
    short of it (max_iter) with ``tol * s`` met still counts as converged.
    ``grad_norm`` is reported relative to ``s``, so it compares with ``tol``.

    Returns the solver's FitResult mapped back: ``coef`` in the raw
    coordinates, ``grad_norm`` relative (max-abs standardised gradient over
    ``s``, so it compares with ``tol`` directly), and a message saying so.
    """
    z = Standardised(objective, objective.column_moments())
    s = gradient_scale(z, objective)
    hook = StopHook(stop, transform=z.theta_of)  # the caller's hook sees raw coefficients
    if certify is not None:  # a rule on the raw coefficients, e.g. the duality gap
        options["certify"] = lambda phi: certify(z.theta_of(phi))
    result = run(z, z.phi_of(coef0), tol=margin * tol * s,
                 stop=hook if hook.active else None, **options)
    result.theta = z.theta_of(result.theta)
    result.grad_norm = float(result.grad_norm) / s
    # ``tol * s`` met while refining to the margin counts as converged.
    met_tol_while_refining(result, tol, margin, stopped=hook.stopped)
    result.message += (f" (standardised coordinates; gradient relative to its scale "
                       f"{s:.3g} at zero)")
    return result
