"""Model-parallel solvers: feature-sharded proximal gradient and block coordinate descent.

Both run through ``solve`` on a column objective
(:class:`daskfit.objective.columns.ColumnObjective`), whose rounds run on
:mod:`daskfit.engine.columns`'s column-block engine: coefficient
block ``b_j`` lives on the cluster with column block ``j`` of ``X`` and is
updated there; the client holds scalars (steps, objective values, the
intercept) and keys. Objective, as everywhere in daskfit::

    F(b, c) = sum_i w_i loss(y_i, x_i b + c) / sum_i w_i + l1 |b|_1 + l2 / 2 |b|^2

``"sharded-gd"``: FISTA with gradient restart (or plain proximal gradient,
``accelerated=False``) in a fixed diagonal metric: columns centred (with an
intercept) and scaled by the diagonal of the Hessian at the best constant
model, ``d_k = curvature * var_k + l2``, which each block takes from the
first pass. Unit steps are then about right whatever the scale and offset of
the features (``precondition=False``: the identity metric). One iteration is
two passes: the gradient blocks at the extrapolated point ``y`` (``X^T r``),
then the margin change ``X d`` of the step ``d``. The backtracking line
search needs no further pass: candidate steps are checked on
``margin(y) + tau * X d`` elementwise, several in one round trip (for a
smooth objective every step is a multiple of one direction; with an L1 part
a few prox steps go through ``X`` together, as one matrix product).

``"bcd"``: cyclic block coordinate descent. Visiting block ``j`` reads column
block ``j`` twice (its gradient -- with the block Hessian for the GLMs -- and
then ``X_j d_j``), so a cycle over all blocks is two passes. The block
problem is solved by a task next to the block: exactly for squared loss
(Cholesky of the block Gram, which the first pass computes and which is
factored once; lasso coordinate descent inside the block for an L1 part), by
a damped Newton step for the GLMs (the same block solvers on the local
quadratic model, then an Armijo line search on the elementwise margin
change). The intercept joins every block problem (eliminated by a Schur
complement), so it stays optimal given the coefficients.

Stopping (``tol``, in gradient units as for every daskfit solver):
``"sharded-gd"`` stops when the max-abs gradient at ``y`` (with an L1 part:
the proximal gradient mapping, scaled back by the metric) is below ``tol``;
``"bcd"`` when over a whole cycle each block's max-abs (minimum-norm sub-)
gradient, measured when the block is visited, is below ``tol``.

Only scalars reach the client during a fit; the blocks are gathered into
``coef`` once it is over.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..engine.columns import (W, Y, Each, Vec, axpy, extrapolate, initial_gradient, pair_gradient,
                              pair_matvec, row_derivatives, row_line_search, row_loss,
                              row_scalars, zeros)
from ..model.penalties import l1_subgradient, soft_threshold
from ._coordinate import sweep
from ._first_order import fista_sequence
from ._result import FitResult, append_entry
from ._standardise import ACCURACY_MARGIN
from ._steps import armijo_holds, met_tol_while_refining

__all__ = ["solve_bcd", "solve_sharded_gd"]

#: Smooth objective: steps tried per round trip, each half the previous one
#: (the first is the last accepted step times the growth factor below).
SMOOTH_CANDIDATES = 8
#: With an L1 part each candidate is its own prox direction pushed through X:
#: these multiples of the step share one pass.
L1_CANDIDATE_FACTORS = (1.0, 0.5, 0.125)
#: An accepted step lets the next one be this much longer (FISTA: mildly).
STEP_GROWTH = 2.0
STEP_GROWTH_ACCELERATED = 1.25
MIN_STEP = 1e-20
#: Steps of the damped block-Newton line search (Armijo's rule, ``_steps``).
NEWTON_TAUS = 0.5 ** np.arange(12)
#: Lasso coordinate descent inside a block stops when no coordinate moves the
#: model gradient by more than this share of tol (or the floor, for tol = 0).
INNER_TOL_FACTOR = 0.1
INNER_TOL_FLOOR = 1e-13
#: Differences below this many ulps of their own scale are round-off.
ROUNDOFF_ULPS = 64
EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------- block kernels


def block_gradient(graw, coef, sum_weights, l2):
    """Mean-scale gradient of the smooth objective for one block."""
    return graw["g"] / sum_weights + l2 * coef


def gradient_stats(graw):
    """The row scalars (loss, dF/dc, ...) that rode along with block 0's gradient."""
    return row_scalars(graw)


def block_metric(stats, sum_weights, curvature, l2, fit_intercept, enabled):
    """The diagonal metric of one block: column means ``mu`` and scales ``d``.

    ``d = curvature * weighted variance + l2`` is the diagonal of the
    objective's Hessian at the constant model once the columns are centred
    (with an intercept); without ``enabled`` the metric is the identity.
    """
    p = len(stats["sx"])
    if not enabled:
        return {"mu": np.zeros(p), "d": np.ones(p)}
    mean = stats["sx"] / sum_weights
    second = stats["sxx"] / sum_weights
    mu = mean if fit_intercept else np.zeros(p)
    spread = np.maximum(second - mean * mean, 0.0) if fit_intercept else second
    d = curvature * spread + l2
    # A constant (or all-zero) column has no scale: any positive one will do.
    fallback = curvature * (second + 1.0)
    return {"mu": mu, "d": np.where(d > 1e-10 * fallback, d, fallback)}


def metric_sums(metric):
    """Block ``j``'s share of the mean metric scale (summed over blocks)."""
    return {"d_sum": float(metric["d"].sum()), "d_count": float(len(metric["d"]))}


def common_metric(metric, sums):
    """The block's metric with one scale for every column: the mean of ``d``.

    With at least as many features as rows, X has a null space along which
    only the L2 part curves the objective. From zero, gradient steps with one
    common scale never leave X's row space, where the optimum lies; scaling
    columns one by one pulls the iterates into the null space, where they
    converge at the rate of ``l2`` alone (on 300 x 4,500 uncentred features,
    a ridge fit "converged" 7.6e-3 from the optimum). As
    ``daskfit.solvers._standardise`` does for the row-parallel solvers.
    """
    mean = sums["d_sum"] / max(sums["d_count"], 1.0)
    return {"mu": metric["mu"], "d": np.full_like(metric["d"], mean)}


def block_directions(y, graw, metric, gstats, sigmas, l1, l2, sum_weights, fit_intercept):
    """Steps of one block in the metric: ``(p_j,)`` if smooth, else ``(p_j, k)`` prox steps.

    The centred gradient ``g - mu dF/dc`` is scaled by ``1 / d``; with an L1
    part each step ``sigma`` gives its own soft-thresholded point.
    """
    gc = gstats["gc"] / sum_weights if fit_intercept else 0.0
    centred = block_gradient(graw, y, sum_weights, l2) - metric["mu"] * gc
    d = metric["d"]
    if l1 == 0:
        return -centred / d
    t = np.asarray(sigmas)[None, :] / d[:, None]
    z = y[:, None] - t * centred[:, None]
    return soft_threshold(z, t * l1) - y[:, None]


def block_scalars(y, graw, D, metric, x, previous, cols, taus, l1, l2, sum_weights):
    """Inner products of one block for the line search, the restart test, the stop."""
    g = block_gradient(graw, y, sum_weights, l2)
    D = D if D.ndim == 2 else D[:, None]
    mu, d = metric["mu"], metric["d"]
    dD = d[:, None] * D
    out = {"gd": g @ D, "dd": np.einsum("ij,ij->j", D, D), "ddM": np.einsum("ij,ij->j", D, dD),
           "yd": y @ D, "mud": mu @ D, "dmax": np.abs(dD).max(axis=0, initial=0.0),
           "gmax": float(np.abs(g).max(initial=0.0)), "yy": float(y @ y),
           "y1": float(np.abs(y).sum())}
    if x is not None:
        diff = x - previous
        out["dprevM"] = diff @ dD
        out["muprev"] = float(mu @ diff)
    if l1 > 0:
        ay = np.abs(y).sum()
        out["pen1"] = np.array([np.abs(y + t * D[:, c]).sum() - ay for c, t in zip(cols, taus)])
    return out


def intercept_directions(gstats, scalars, factors, sum_weights, curvature, fit_intercept):
    """The intercept part of each direction column (it moves with the centring)."""
    if not fit_intercept:
        return np.zeros(len(factors))
    gc = gstats["gc"] / sum_weights
    return -np.asarray(factors) * gc / curvature - scalars["mud"]


def gd_line_search(y, w, margin, intercept, q, gstats, scalars, factors, sum_weights, curvature,
                   fit_intercept, cols, taus, loss, classes):
    """:func:`row_line_search` with the intercept directions worked out in the task."""
    dc = intercept_directions(gstats, scalars, factors, sum_weights, curvature, fit_intercept)
    return row_line_search(y, w, margin, intercept, q, dc, cols, taus, loss, classes)


def block_penalty(coef, l1, l2):
    return {"pen": float(l1 * np.abs(coef).sum() + 0.5 * l2 * coef @ coef)}


def block_penalty_changes(b, delta, taus, l1, l2):
    """Penalty change of block ``b`` at ``b + tau * delta`` for each ``tau``."""
    ab = np.abs(b).sum()
    return np.array([l1 * (np.abs(b + t * delta).sum() - ab)
                     + l2 * (t * (b @ delta) + 0.5 * t * t * (delta @ delta)) for t in taus])


def block_cache(stats, sum_weights, l1, l2, fit_intercept):
    """Squared loss: the reduced block Hessian, factored once (it never changes).

    With the intercept ``c`` in the block problem, eliminating it leaves
    ``C = X_j^T W X_j / sw - u u^T`` (``u = X_j^T w / sw``): the weighted
    covariance of the block.
    """
    u = stats["sx"] / sum_weights
    C = stats["gram"] / sum_weights
    if fit_intercept:
        C = C - np.outer(u, u)
    out = {"u": u, "hh": 1.0, "C": C, "chol": None}
    if l1 == 0:
        out["chol"] = _cholesky(C, l2)
        if out["chol"] is not None:
            out["C"] = None  # not needed: saves p_j^2 floats per block
    return out


def _cholesky(C, l2):
    try:
        return scipy.linalg.cho_factor(C + l2 * np.eye(len(C)), check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None


def optimality(grad, b, l1):
    """Max-abs minimum-norm subgradient of ``smooth + l1 |b|_1`` (the gradient if ``l1 = 0``)."""
    if len(b) == 0:
        return 0.0
    if l1 == 0:
        return float(np.abs(grad).max())
    return float(np.abs(l1_subgradient(grad, b, l1)).max())


def coordinate_descent(C, lin, b, l1, l2, tol, max_sweeps):
    """Minimise ``lin'(v-b) + (v-b)'C(v-b)/2 + l1|v|_1 + l2|v|^2/2`` over ``v`` (lasso CD)."""
    v = np.array(b, dtype=np.float64, copy=True)
    q = np.array(lin, dtype=np.float64, copy=True)  # model gradient (without l2) at v
    for _ in range(max_sweeps):
        _, biggest = sweep(C, q, v, l1, l2)
        if biggest <= tol:
            break
    return v


def block_solve(stats, gstats, b, cache, sum_weights, l1, l2, fit_intercept, tol, max_sweeps):
    """One block's step ``delta`` (and the intercept's ``dc``) from its quadratic model.

    Squared loss: the model is the objective, so the step is exact. GLMs: the
    Newton model at the current margin; the caller damps the step.
    """
    g = stats["g"] / sum_weights
    gc = gstats["gc"] / sum_weights if fit_intercept else 0.0
    if cache is not None:
        u, hh, C, chol = cache["u"], cache["hh"], cache["C"], cache["chol"]
    else:
        u, hh = stats["u"] / sum_weights, gstats["hc"] / sum_weights
        C, chol = stats["H"] / sum_weights, None
    eliminate = fit_intercept and hh > 0
    grad = g + l2 * b
    opt = optimality(grad, b, l1)
    if fit_intercept:
        opt = max(opt, abs(gc))
    if cache is None and eliminate:
        C = C - np.outer(u, u) / hh
    lin = g - u * (gc / hh) if eliminate else g
    if l1 == 0:
        rhs = -(lin + l2 * b)
        if chol is None and cache is None:
            chol = _cholesky(C, l2)
        if chol is not None:
            delta = scipy.linalg.cho_solve(chol, rhs, check_finite=False)
            Cdelta = -(lin + l2 * b) - l2 * delta
        else:  # singular block (no penalty, collinear columns): minimum-norm step
            delta = np.linalg.lstsq(C + l2 * np.eye(len(C)), rhs, rcond=None)[0]
            Cdelta = C @ delta
    else:
        inner_tol = max(INNER_TOL_FACTOR * tol, INNER_TOL_FLOOR)
        delta = coordinate_descent(C, lin, b, l1, l2, inner_tol, max_sweeps) - b
        Cdelta = C @ delta
    dc = -(gc + u @ delta) / hh if eliminate else 0.0
    new = b + delta
    pen_old = l1 * np.abs(b).sum() + 0.5 * l2 * b @ b
    pen_new = l1 * np.abs(new).sum() + 0.5 * l2 * new @ new
    # Model change with dc eliminated: lin'd + d'Cd/2 - gc^2/(2 hh).
    pred = lin @ delta + 0.5 * delta @ Cdelta - (gc * gc / (2 * hh) if eliminate else 0.0)
    info = {"dc": float(dc), "opt": opt, "pred": float(pred + pen_new - pen_old),
            "armijo": float(grad @ delta + gc * dc + l1 * (np.abs(new).sum() - np.abs(b).sum())),
            "pen_old": float(pen_old), "pen_new": float(pen_new)}
    return {"delta": delta, "info": info}


def intercept_step(info):
    return np.array([info["dc"]])


# ---------------------------------------------------------------- driver


@dataclass
class _Point:
    coef: Vec  # "block"
    margin: Vec  # "row": X coef, without the intercept
    intercept: float


def _bundle(*pairs):
    return dict(zip(pairs[::2], pairs[1::2]))


class _Run:
    """State shared by both solvers: the column objective, its first pass, history, the final round."""

    def __init__(self, objective, name):
        self.objective, self.name = objective, name
        self.start = start = objective.first_pass
        self.loss, self.classes = start.loss, start.classes
        self.sw = start.sum_weights
        self.l1, self.l2 = start.penalty.l1, start.penalty.l2
        self.fi = start.fit_intercept
        self.positive = None if self.classes is None else self.classes[1]
        self.history = []

    def record(self, iteration, objective, grad_norm, **extra):
        entry = {"iter": iteration, "objective": float(objective),
                 "grad_norm": float(grad_norm), "passes": round(self.objective.passes, 6),
                 "bytes": int(self.objective.bytes_communicated)}
        entry.update(extra)
        append_entry(self.history, entry)

    def origin(self, rnd):
        """Coefficients and margins at zero, created where they will live."""
        data = self.objective.data
        coef = rnd.map("coef", "block", zeros, Each(data.col_chunks))
        margin = rnd.map("margin", "row", zeros, Each(data.row_chunks))
        return _Point(coef, margin, self.start.intercept)

    def gradient_stats0(self):
        s = self.start
        return {"loss": s.loss0, "gc": s.mu0 * s.sum_weights - s.swy, "hc": s.sum_weights,
                "bad": 0}

    def gradient_pass(self, rnd, point, order, block=None):
        """Derivatives at ``point`` per row chunk, then ``X^T r`` (per block or for one).

        Returns the raw gradient sums and the row scalars (loss, dF/dc ...),
        which ride along with the first block's tree.
        """
        R = rnd.map("derivs", "row", row_derivatives, Y, W, point.margin, point.intercept,
                    self.loss, self.classes, order)
        n_blocks = self.objective.data.n_blocks
        stats = True if block is not None else Each((True,) + (False,) * (n_blocks - 1))
        out_floats = (lambda p: p) if order == 1 else (lambda p: p * p + 2 * p)
        graw = rnd.rmatvec("grad", pair_gradient, R, order, stats, block=block,
                           row_vectors=order, out_floats=out_floats)
        gstats = rnd.one("derivs-sum", gradient_stats, graw if block is not None else graw.one(0))
        return graw, gstats

    def check_finite(self, gstats):
        if gstats.get("bad"):
            raise FloatingPointError(
                f"The objective or its gradient overflowed to inf/NaN during solver "
                f"{self.name!r} although the input is finite: the solver diverged. Standardise "
                "the features or increase the regularisation.")

    def finish(self, rnd, point, *, n_iter, converged, message, grad_norm):
        """Last round: exact objective at ``point``; then gather the coefficient blocks."""
        rnd = rnd or self.objective.round(f"{self.name}-final")
        lsum = rnd.reduce("loss", "row", row_loss, Y, W, point.margin, point.intercept,
                          self.loss, self.classes)
        pen = rnd.reduce("penalty", "block", block_penalty, point.coef, self.l1, self.l2)
        fetch = rnd.one("fetch", _bundle, "loss", lsum, "pen", pen)
        kept, out = rnd.run({"coef": point.coef}, fetch)
        objective = out["loss"]["loss"] / self.sw + out["pen"]["pen"]
        coef = self.objective.gather_blocks(kept["coef"])  # after the fit: allowed
        result = FitResult(
            theta=np.concatenate([coef, [point.intercept]]) if self.fi else coef,
            loss=float(objective), grad_norm=float(grad_norm), n_iter=int(n_iter),
            passes=round(self.objective.passes, 6), converged=bool(converged), message=message,
            history=self.history, solver=self.name)
        return result, coef, float(point.intercept), kept["coef"]


class _ShardedGD(_Run):
    """FISTA with gradient restart (or plain proximal gradient) over column blocks.

    The iteration runs in a fixed diagonal metric: centred columns (with an
    intercept) scaled by the diagonal of the Hessian at the constant model,
    ``d_k = curvature * var_k + l2``, computed per block from the first pass.
    In those coordinates unit steps are about right whatever the scale of
    the features; FISTA, its line search and the restart test are those of
    plain FISTA on the transformed problem. ``precondition=False`` uses the
    identity metric.
    """

    def solve(self, *, tol, max_iter, accelerated, step_size, precondition):
        sw, l1, l2 = self.sw, self.l1, self.l2
        smooth = l1 == 0
        self.hm = self.start.curvature if precondition and self.fi else 1.0
        rnd = self.objective.round("gd")
        x = self.origin(rnd)
        metric = rnd.map("metric", "block", block_metric, self.start.blockstats, sw,
                         self.start.curvature, l2, self.fi, bool(precondition))
        data = self.objective.data
        if precondition and sum(data.row_chunks) <= sum(data.col_chunks):  # wide
            sums = rnd.reduce("metric-scale", "block", metric_sums, metric)
            metric = rnd.map("metric-common", "block", common_metric, metric, sums)
        graw = rnd.map("grad", "block", initial_gradient, self.start.blockstats,
                       self.start.mu0, self.positive)
        gstats = self.gradient_stats0()
        self.record(0, self.start.loss0 / sw, np.nan, step=0.0)
        previous, t, step = x, 1.0, float(step_size)
        growth = STEP_GROWTH_ACCELERATED if accelerated else STEP_GROWTH
        n_iter, converged, message, gmap = 0, False, "max_iter reached", np.inf
        pending = None
        while True:
            rnd = rnd or self.objective.round("gd")
            if pending is not None:
                x = self._take_step(rnd, *pending)
                pending = None
            if n_iter >= max_iter:
                break
            if accelerated:
                t_next = fista_sequence(t)
                beta = (t - 1.0) / t_next
            else:
                t_next, beta = t, 0.0
            if beta > 0:
                y = _Point(rnd.map("extrap", "block", extrapolate, x.coef, previous.coef, beta),
                           rnd.map("extrap-margin", "row", extrapolate, x.margin,
                                   previous.margin, beta),
                           x.intercept + beta * (x.intercept - previous.intercept))
            else:
                y = x
            if graw is None:
                graw, gstats = self.gradient_pass(rnd, y, 1)
                rnd, kept = rnd.split(x=x.coef, xm=x.margin, y=y.coef, ym=y.margin, graw=graw,
                                      gstats=gstats, metric=metric)
                x = _Point(kept["x"], kept["xm"], x.intercept)
                y = _Point(kept["y"], kept["ym"], y.intercept)
                graw, gstats, metric = kept["graw"], kept["gstats"], kept["metric"]
            # Backtracking: every candidate step of a round is checked at once;
            # another round only if all fail (a pass only with an L1 part).
            D = Q = None
            while True:
                if smooth:
                    sigmas = step * 0.5 ** np.arange(SMOOTH_CANDIDATES)
                    cols, taus, factors = np.zeros(len(sigmas), int), sigmas, np.ones(1)
                    if D is None:
                        D = rnd.map("dir", "block", block_directions, y.coef, graw, metric,
                                    gstats, None, 0.0, l2, sw, self.fi)
                        Q = rnd.matvec("xd", pair_matvec, D)
                else:
                    sigmas = step * np.asarray(L1_CANDIDATE_FACTORS)
                    cols, taus, factors = np.arange(len(sigmas)), np.ones(len(sigmas)), sigmas
                    D = rnd.map("dir", "block", block_directions, y.coef, graw, metric, gstats,
                                sigmas, l1, l2, sw, self.fi)
                    Q = rnd.matvec("xd", pair_matvec, D, width=len(sigmas))
                bs = rnd.reduce("scalars", "block", block_scalars, y.coef, graw, D, metric,
                                x.coef if beta > 0 else None,
                                previous.coef if beta > 0 else None, cols, taus, l1, l2, sw)
                ls = rnd.reduce("ls", "row", gd_line_search, Y, W, y.margin, y.intercept, Q,
                                gstats, bs, factors, sw, self.hm, self.fi, cols, taus,
                                self.loss, self.classes)
                fetch = rnd.one("fetch", _bundle, "g", gstats, "ls", ls, "bs", bs)
                keep = {"x": x.coef, "xm": x.margin, "y": y.coef, "ym": y.margin,
                        "graw": graw, "D": D, "Q": Q, "metric": metric}
                kept, out = rnd.run(keep, fetch)
                rnd = self.objective.round("gd")
                x = _Point(kept["x"], kept["xm"], x.intercept)
                y = _Point(kept["y"], kept["ym"], y.intercept)
                graw, D, Q, metric = kept["graw"], kept["D"], kept["Q"], kept["metric"]
                gstats = out["g"]
                out["dc"] = intercept_directions(gstats, out["bs"], factors, sw, self.hm,
                                                 self.fi)
                self.check_finite(gstats)
                choice = self._choose(out, cols, taus, sigmas, smooth, beta,
                                      x.intercept - previous.intercept)
                if choice is not None or sigmas.min() < MIN_STEP:
                    break
                step = sigmas.min() * 0.5
            if choice is None:
                message = "line search failed: step size underflow"
                break
            k, objective, gmap, restart = choice
            col, tau, sigma = cols[k], taus[k], sigmas[k]
            pending = (y, D, Q, col, tau, float(out["dc"][col]))
            n_iter += 1
            self.record(n_iter, objective, gmap, step=float(sigma), restart=bool(restart))
            if gmap <= tol:
                converged, message = True, "gradient mapping norm below tol"
                x = self._take_step(rnd, *pending)
                pending = None
                break
            # Gradient restart forgets the momentum: t = 1 makes the next beta 0.
            t = 1.0 if restart else t_next
            previous = x
            step = float(sigma) * growth
            graw = None
        return self.finish(rnd, x, n_iter=n_iter, converged=converged, message=message,
                           grad_norm=gmap)

    def _take_step(self, rnd, y, D, Q, col, tau, dc):
        return _Point(rnd.map("coef", "block", axpy, y.coef, D, int(col), float(tau)),
                      rnd.map("margin", "row", axpy, y.margin, Q, int(col), float(tau)),
                      y.intercept + tau * dc)

    def _choose(self, out, cols, taus, sigmas, smooth, beta, intercept_move):
        """The longest candidate step satisfying the quadratic upper bound, or ``None``.

        ``F(x+) <= F(y) + g'(x+ - y) + |x+ - y|_M^2 / (2 sigma)`` in the metric
        ``M``, with the loss change computed row by row (the loss's ``loss_difference``).
        Returns ``(candidate, F(x+), stopping measure, restart)``.
        """
        sw, l1, l2, hm = self.sw, self.l1, self.l2, self.hm
        g, ls, bs, dc = out["g"], out["ls"], out["bs"], out["dc"]
        gc = g["gc"] / sw if self.fi else 0.0
        f_y = g["loss"] / sw + 0.5 * l2 * bs["yy"] + l1 * bs["y1"]
        for k in np.argsort(-np.asarray(sigmas), kind="stable"):
            col, tau, sigma = cols[k], taus[k], sigmas[k]
            gd = tau * (bs["gd"][col] + gc * dc[col])
            centred = dc[col] + bs["mud"][col]  # intercept move in centred coordinates
            norm = tau * tau * (bs["ddM"][col] + hm * centred * centred)
            dpen2 = l2 * (tau * bs["yd"][col] + 0.5 * tau * tau * bs["dd"][col])
            dsmooth = ls["dl"][k] / sw + dpen2
            allow = ROUNDOFF_ULPS * EPS * (ls["adl"][k] / sw + abs(dpen2) + abs(gd)
                                           + norm / (2 * sigma))
            if not dsmooth <= gd + norm / (2 * sigma) + allow:
                continue
            dpen1 = l1 * bs["pen1"][k] if l1 > 0 else 0.0
            if smooth:
                gmap = max(bs["gmax"], abs(gc))
            else:
                gmap = max(tau * bs["dmax"][col] / sigma, abs(gc))
            restart = False
            if "dprevM" in bs:
                # (y - x+)'M(x+ - x) > 0: momentum points uphill (O'Donoghue & Candes).
                along = bs["dprevM"][col] + hm * centred * (intercept_move + bs["muprev"])
                restart = -tau * beta * along - norm > 0
            return k, f_y + dsmooth + dpen1, gmap, restart
        return None


class _BlockCD(_Run):
    """Cyclic block coordinate descent; exact block solves or damped block Newton."""

    def solve(self, *, tol, max_iter, max_sweeps):
        sw, l1, l2 = self.sw, self.l1, self.l2
        data = self.objective.data
        squared = self.loss.is_quadratic  # exact block solves on a cached Hessian
        order = 1 if squared else 2
        rnd = self.objective.round("bcd")
        x = self.origin(rnd)
        cache = None
        if squared:
            cache = rnd.map("cache", "block", block_cache, self.start.blockstats, sw, l1, l2,
                            self.fi)
            graw0 = rnd.one("grad", initial_gradient, self.start.blockstats.one(0),
                            self.start.mu0, self.positive)
        penalties = np.zeros(data.n_blocks)
        objective = self.start.loss0 / sw
        self.record(0, objective, np.nan)
        n_iter, converged, message, opt_cycle = 0, False, "max_iter reached", np.inf
        pending = None
        taus = np.ones(1) if squared else NEWTON_TAUS
        for cycle in range(1, max_iter + 1):
            opt_cycle, skipped = 0.0, 0
            for j in range(data.n_blocks):
                rnd = rnd or self.objective.round("bcd")
                if pending is not None:
                    x = self._take_step(rnd, x, *pending)
                    pending = None
                if squared and cycle == 1 and j == 0:
                    # The first pass gave this gradient: nothing has moved since.
                    S, gstats = graw0, self.gradient_stats0()
                else:
                    S, gstats = self.gradient_pass(rnd, x, order, block=j)
                sol = rnd.one("solve", block_solve, S, gstats, x.coef.one(j),
                              cache.one(j) if cache is not None else None, sw, l1, l2, self.fi,
                              tol, max_sweeps)
                delta = rnd.one("step", operator.getitem, sol, "delta")
                info = rnd.one("info", operator.getitem, sol, "info")
                state = {"coef": x.coef, "margin": x.margin, "delta": delta, "info": info}
                if isinstance(gstats, Vec):
                    state["gstats"] = gstats
                if cache is not None:
                    state["cache"] = cache
                rnd, state = rnd.split(**state)
                x = _Point(state["coef"], state["margin"], x.intercept)
                delta, info = state["delta"], state["info"]
                gstats, cache = state.get("gstats", gstats), state.get("cache")
                Q = rnd.matvec("xd", pair_matvec, delta, block=j)
                parts = ["info", info, "g", gstats]
                if not squared:
                    dc = rnd.one("dc", intercept_step, info)
                    ls = rnd.reduce("ls", "row", row_line_search, Y, W, x.margin, x.intercept,
                                    Q, dc, np.zeros(len(taus), int), taus, self.loss,
                                    self.classes)
                    pen = rnd.one("pen", block_penalty_changes, x.coef.one(j), delta, taus, l1,
                                  l2)
                    parts += ["ls", ls, "pen", pen]
                fetch = rnd.one("fetch", _bundle, *parts)
                keep = {"coef": x.coef, "margin": x.margin, "delta": delta, "Q": Q}
                if cache is not None:
                    keep["cache"] = cache
                kept, out = rnd.run(keep, fetch)
                rnd = None
                x = _Point(kept["coef"], kept["margin"], x.intercept)
                cache = kept.get("cache")
                self.check_finite(out["g"])
                info = out["info"]
                opt_cycle = max(opt_cycle, info["opt"])
                objective = out["g"]["loss"] / sw + penalties.sum()  # exact, before the step
                if squared:
                    # The block model is the objective: the exact block minimiser is taken.
                    tau, change, new_pen = 1.0, info["pred"], info["pen_new"]
                else:
                    tau, change, dpen = self._armijo(out, taus, info)
                    new_pen = info["pen_old"] + dpen
                if tau > 0:
                    penalties[j] = new_pen
                    objective += change
                    pending = (j, kept["delta"], kept["Q"], tau, info["dc"])
                else:
                    skipped += 1
            n_iter = cycle
            self.record(cycle, objective, opt_cycle, skipped=skipped)
            if opt_cycle <= tol:
                converged, message = True, "block gradients below tol over a whole cycle"
                break
            if skipped == data.n_blocks:
                message = "no block step decreased the objective (round-off level reached)"
                break
        rnd = rnd or self.objective.round("bcd-final")
        if pending is not None:
            x = self._take_step(rnd, x, *pending)
        return self.finish(rnd, x, n_iter=n_iter, converged=converged, message=message,
                           grad_norm=opt_cycle)

    def _take_step(self, rnd, x, j, delta, Q, tau, dc):
        coef = x.coef.replace(j, rnd.one("coef", axpy, x.coef.one(j), delta, 0, float(tau)))
        margin = rnd.map("margin", "row", axpy, x.margin, Q, 0, float(tau))
        return _Point(coef, margin, x.intercept + tau * dc)

    def _armijo(self, out, taus, info):
        """Largest ``tau`` with ``F(x + tau d) <= F(x) + ARMIJO tau delta`` (Tseng & Yun)."""
        ls, pen = out["ls"], out["pen"]
        if not info["armijo"] < 0:
            return 0.0, 0.0, 0.0
        for k, tau in enumerate(taus):
            change = ls["dl"][k] / self.sw + pen[k]
            allow = ROUNDOFF_ULPS * EPS * (ls["adl"][k] / self.sw + abs(pen[k]))
            if armijo_holds(change, tau, info["armijo"], allow):
                return float(tau), float(change), float(pen[k])
        return 0.0, 0.0, 0.0


# ---------------------------------------------------------------- entry points


def solve_sharded_gd(objective, coef0, *, tol=1e-4, max_iter=100, accelerated=True,
                     step_size=1.0, precondition=True):
    """Feature-sharded proximal gradient (FISTA with restart) on a column objective.

    Parameters
    ----------
    objective : ColumnObjective
        Started (``daskfit.objective.columns``); squared, binary logistic or
        Poisson loss, any penalty.
    coef0 : ndarray of shape (n_params,)
        Must be zero: the run starts from the best constant model, whose
        gradient the first pass gave.
    tol : float, default=1e-4
        Max-abs (proximal) gradient at which to stop; the solver refines to
        ``ACCURACY_MARGIN * tol`` (a tenth: at ``tol`` itself a wide lasso
        ended 3.9e-4 from the optimum where scikit-learn's default ends
        1.3e-4), and a run out of ``max_iter`` that meets ``tol`` still
        counts as converged.
    max_iter : int, default=100
        Iterations (two passes each).
    accelerated : bool, default=True
        FISTA momentum with gradient restart; ``False``: plain proximal gradient.
    step_size : float, default=1.0
        First step in the metric; the line search adapts it.
    precondition : bool, default=True
        Diagonal metric from the first pass (``False``: the identity).

    Returns
    -------
    FitResult
        ``coef`` is the flat ``[coef, intercept]`` gathered after the fit;
        ``passes`` counts reads of ``X`` (fractional for block reads);
        ``coef_blocks`` the fitted blocks as a Dask array chunked like ``X``'s
        columns; ``rounds`` the rounds run.
    """
    return _solve(_ShardedGD, "sharded-gd", objective, coef0, tol=tol, max_iter=max_iter,
                  accelerated=accelerated, step_size=step_size, precondition=precondition)


def solve_bcd(objective, coef0, *, tol=1e-4, max_iter=100, max_sweeps=1000):
    """Cyclic block coordinate descent on a column objective.

    Parameters as :func:`solve_sharded_gd`; ``max_iter`` counts cycles over
    all blocks (about two passes each) and ``max_sweeps`` bounds the
    coordinate-descent sweeps of one block solve (L1 part). Start the
    objective with ``needs="gram"`` (the registry's) so that the squared
    loss's exact block solves get their Gram matrices from the first pass.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from daskfit.model.penalties import Penalty
    >>> from daskfit.objective.columns import ColumnObjective
    >>> from daskfit.solvers import solve
    >>> rng = np.random.default_rng(0)
    >>> Xn = rng.normal(size=(200, 6)); yn = Xn @ np.arange(6.0) + 1.0
    >>> X = da.from_array(Xn, chunks=(50, 2)); y = da.from_array(yn, chunks=50)
    >>> objective = ColumnObjective.from_arrays(
    ...     X, y, loss="squared", penalty_rule=lambda sw: Penalty()).start("gram")
    >>> result = solve("bcd", objective, np.zeros(objective.n_params), tol=1e-10)
    >>> np.round(result.theta, 6), result.coef_blocks.chunks
    (array([0., 1., 2., 3., 4., 5., 1.]), ((2, 2, 2),))
    """
    return _solve(_BlockCD, "bcd", objective, coef0, tol=tol, max_iter=max_iter,
                  max_sweeps=max_sweeps)


def _solve(runner, name, objective, coef0, *, tol, max_iter, **options):
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 0):
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}.")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}.")
    if objective.first_pass is None:
        raise ValueError(f"Solver {name!r} needs a started objective: call "
                         "objective.start(SOLVERS[name].needs) first.")
    if np.any(np.asarray(coef0) != 0):
        raise ValueError(f"Solver {name!r} starts from the best constant model (the first "
                         "pass's); pass coef0 = zeros.")
    result, coef, intercept, blocks = runner(objective, name).solve(
        tol=ACCURACY_MARGIN * tol, max_iter=int(max_iter), **options)
    # The margin refines; ``tol`` itself holds (as in ``_standardise``).
    met_tol_while_refining(result, tol, ACCURACY_MARGIN)
    if not (np.isfinite(coef).all() and np.isfinite(intercept)):
        raise FloatingPointError(f"Solver {name!r} produced non-finite coefficients "
                                 f"({result.message}); nothing was fitted.")
    result.coef_blocks = objective.blocks_as_array(blocks)
    result.rounds = objective.rounds
    return result
