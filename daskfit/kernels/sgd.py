"""Per-chunk local SGD: the kernel behind parameter averaging and async SGD.

One task reads one row chunk ``(X, y, w)`` and

1. evaluates the chunk's loss sum and gradient sum at the start point (the
   same sums as :func:`daskfit.kernels.chunks.evaluate_chunk`, so the client learns
   the objective at the coefficients it sent without another pass), and
2. runs mini-batch proximal SGD on the chunk's rows from the start point and
   returns where it ended (below: what exactly, and what it minimises).

Everything happens on the chunk in worker memory: the extra full-chunk
gradients some variants need cost compute, never another pass.

Coordinates
-----------
SGD runs on standardised features ``(x - mean) / scale`` with the intercept
absorbing the centring (``u = scale * coef``, ``v = intercept + mean @ coef``).
That is diagonal preconditioning: it changes the path, not the optimum (the
penalty is rewritten exactly in the new coordinates, so the L1 threshold is
``step * l1 / scale`` per coordinate). ``mean`` and ``scale`` come from the
client (global weighted statistics, the same for every chunk, so that the
averaged update has the right fixed point); when the client does not know them
yet (the first round) each chunk uses its own and returns the sums the client
needs. Without an intercept features are only scaled (by their root mean
square), never centred.

Step size and batches
---------------------
``learning_rate=None`` picks ``1 / (c * L_b)`` where ``c``
bounds the loss's second derivative (its ``curvature_bound``: 1 squared, 1/4
logistic, 1/2 multinomial; or its ``local_curvature_bound`` at the start
point, the largest ``exp(raw)`` for Poisson) and
``L_b = lam + (tr - lam) / b`` is the expected smoothness of a mini-batch of
``b`` rows (Gower et al., 2019): ``tr`` is the weighted mean squared row norm
of the standardised rows and ``lam`` the largest eigenvalue of their second
moment, both estimated from at most ``CURVATURE_SAMPLE_ROWS`` rows. One row
per step gives the classical ``1 / (c * mean |x|^2)``; large batches approach
the full-batch ``1 / (c * lam)``. The penalty (``l1`` and ``l2``) is applied by
its exact proximal step after every gradient step, so its curvature never
limits the step size. Variance-reduced runs take
``VR_STEP_FRACTION`` of it. ``batch_size=None`` takes ``n_c /
STEPS_PER_EPOCH`` rows per step, clipped to ``[MIN_BATCH, MAX_BATCH]``.

Classical local SGD (``variance_reduction=False``)
--------------------------------------------------
Each step uses the mini-batch gradient of the chunk's own objective
``F_c = sum_c w loss / sum_c w + penalty``. A chunk of ``n_c`` rows takes
``n_c / b`` steps per epoch, so the plain average of local end points would
weight chunk gradients by ``n_c^2``, not ``n_c`` (the "objective
inconsistency" of Wang et al., 2020, FedNova). The kernel therefore returns
``delta_c = (theta_start - theta_end) / a_c``, with ``a_c`` the displacement
per unit gradient of the same run on a constant gradient (the sum of its
learning rates, or their tail average with Polyak averaging); the client
moves by ``a_mean * weighted_mean(delta_c)``. When every chunk takes the same
steps this *is* the sample-weighted average of the local end points.

Variance-reduced local SGD (``variance_reduction=True``)
--------------------------------------------------------
Each mini-batch gradient ``g_B(x)`` is replaced by

    ``g_B(x) - g_B(r) + grad F_c(r) + (G(a) - grad F_c(a))``

* ``r`` is a local reference point (the start, then the iterate at the start
  of every local epoch) with the chunk's exact gradient there: SVRG (Johnson
  & Zhang, 2013), whose noise vanishes as the run settles;
* ``G(a)`` is the *global* mean-loss gradient at an anchor ``a`` known to the
  client (``anchor``, ``anchor_grad``), and ``grad F_c(a)`` the chunk's own,
  recomputed here: the drift correction of SCAFFOLD (Karimireddy et al.,
  2020). In expectation the run follows ``grad F_c(x) + G(a) -
  grad F_c(a)``, which at a common fixed point is the global gradient, so
  every chunk's run stays at the global optimum once there.

Every chunk's end point then has the global optimum as its fixed point, so
the client averages the end points themselves, weighted by sample weight
(``normalise=False``); normalising would amplify runs that have converged.

Mini-batches are drawn from a NumPy ``Generator`` seeded by ``(random_state,
round, chunk index)``: results do not depend on the scheduler, the worker or
the order in which tasks run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._data import split_row_vectors
from ..model import layout
from ..model.penalties import soft_threshold
from .chunks import EvalSpec, diagnose_chunk, evaluate_chunk, whole_chunk_kernel

__all__ = ["LocalSGDSpec", "local_sgd_chunk", "SCHEDULES", "learning_rate_factor"]

#: Rows used to estimate the largest eigenvalue of the standardised second
#: moment: enough for a few-percent estimate, small enough to cost far less
#: than one local epoch.
CURVATURE_SAMPLE_ROWS = 2048
#: Above this many parameters per output the eigenvalue comes from power
#: iteration on the sampled rows instead of a dense eigendecomposition.
DENSE_EIGEN_MAX = 500
POWER_ITERATIONS = 30
#: The sampled eigenvalue is an estimate; the step assumes it is this much
#: larger, which costs little speed and keeps a bad sample from diverging.
CURVATURE_MARGIN = 1.25
#: A feature whose scale is below this fraction of max(1, |mean|) is taken
#: as constant and left unscaled: the variance from running sums carries a
#: round-off of about eps * mean^2, i.e. a spurious scale of ~1e-8 * |mean|.
MIN_SCALE = 1e-6

#: Variance-reduced steps take this fraction of the default step: the SVRG
#: estimate's variance grows with the distance to its reference point, and
#: SVRG's analysis asks for a few times less than 1 / L. Measured on squared
#: and logistic problems of 300 to 20,000 rows, 0.5 needed the fewest rounds
#: (1.0 oscillates on squared loss with several local epochs; 0.25 needs ~40%
#: more rounds).
VR_STEP_FRACTION = 0.5

#: Default mini-batches: about this many steps per local epoch, with batches
#: of MIN_BATCH to MAX_BATCH rows. Smaller batches make the variance-reduced
#: steps noisy (more rounds); larger ones make few steps per epoch (slower
#: local progress); and each step costs ~20 us of Python, so a chunk of a
#: million rows should not take a million steps. Measured on 300 to 200,000
#: rows: fixed batches of 32 need 1.5-2x the wall time per round of 256 on
#: 50,000-row chunks, and 256 needs more rounds on 100-row chunks.
STEPS_PER_EPOCH = 128
MIN_BATCH = 32
MAX_BATCH = 256

SCHEDULES = ("constant", "inverse-sqrt", "inverse")


def learning_rate_factor(schedule, epochs_done):
    """Multiplier of the base learning rate after ``epochs_done`` global epochs.

    ``"constant"``: 1; ``"inverse-sqrt"``: ``1 / sqrt(1 + t)``; ``"inverse"``:
    ``1 / (1 + t)``, with ``t`` in epochs over the whole data set (so every
    chunk follows the same schedule whatever its size).
    """
    if schedule == "constant":
        return 1.0
    if schedule == "inverse-sqrt":
        return 1.0 / math.sqrt(1.0 + epochs_done)
    if schedule == "inverse":
        return 1.0 / (1.0 + epochs_done)
    raise ValueError(f"Unknown schedule {schedule!r}; choose from {sorted(SCHEDULES)}.")


@dataclass(frozen=True)
class LocalSGDSpec:
    """What every task of a local-SGD pass needs; embedded in each task.

    ``theta`` (the start point), ``mean``/``scale``, ``anchor`` and
    ``anchor_grad`` are small client-side vectors that travel inside the
    graph, never through ``scatter``.
    """

    loss: object
    theta: np.ndarray
    n_features: int
    n_outputs: int
    fit_intercept: bool
    classes: np.ndarray | None
    l1: float
    l2: float
    epochs: int  # local epochs over the chunk's rows (ignored when steps is set)
    steps: int | None  # exact number of mini-batch steps instead of epochs
    batch_size: int | None  # None: about STEPS_PER_EPOCH steps per local epoch
    learning_rate: float | None  # None: derived from the data (module docstring)
    schedule: str
    epochs_done: float  # global epochs before this run, for the schedule
    polyak: bool
    seed: tuple
    mean: np.ndarray | None = None  # global standardisation; None: the chunk's own
    scale: np.ndarray | None = None
    anchor: np.ndarray | None = None  # drift-correction anchor (variance reduction)
    anchor_grad: np.ndarray | None = None  # global mean-loss gradient at the anchor
    total_weight: float = 1.0  # sum of all sample weights, to place the chunk in an epoch
    normalise: bool = True  # return the normalised displacement, else the end point
    variance_reduction: bool = False  # local SVRG + drift correction (module docstring)


# ------------------------------------------------------------ coordinates
def _blocks(theta, spec):
    """Flat theta -> (K, width) view: one row per output, intercept last."""
    return layout.blocks(theta, spec.n_features, spec.n_outputs, spec.fit_intercept)


def to_standard(theta, mean, scale, spec):
    """theta -> (U of shape (K, p), V of shape (K,)) on standardised features."""
    T = _blocks(theta, spec)
    p = spec.n_features
    coef = T[:, :p]
    U = coef * scale
    V = (T[:, p] + coef @ mean) if spec.fit_intercept else np.zeros(len(T))
    return U, V


def from_standard(U, V, mean, scale, spec):
    coef = U / scale
    if spec.fit_intercept:
        return np.column_stack([coef, V - coef @ mean]).ravel()
    return coef.ravel()


def gradient_to_standard(g, mean, scale, spec):
    """A gradient in theta coordinates -> the gradient in (U, V) coordinates."""
    G = _blocks(g, spec)
    p = spec.n_features
    if spec.fit_intercept:
        gb = G[:, p]
        return G[:, :p] / scale - np.outer(gb, mean / scale), gb.copy()
    return G[:, :p] / scale, np.zeros(len(G))


def chunk_statistics(X, w):
    """Weighted sums ``(sw, sum w x, sum w x^2)`` of one chunk."""
    ww = np.ones(X.shape[0]) if w is None else w
    sx = (ww @ X).astype(np.float64)
    sxx = (ww @ np.square(X, dtype=np.float64))
    return float(ww.sum()), sx, sxx


def standardisation(sw, sx, sxx, fit_intercept):
    """``(mean, scale)`` from weighted sums; RMS scaling without an intercept."""
    if sw <= 0:
        p = len(sx)
        return np.zeros(p), np.ones(p)
    if fit_intercept:
        mean = sx / sw
        var = np.maximum(sxx / sw - mean**2, 0.0)
    else:
        mean = np.zeros_like(sx)
        var = sxx / sw
    scale = np.sqrt(var)
    reference = max(1.0, float(np.abs(mean).max(initial=0.0)))
    scale = np.where(scale > MIN_SCALE * reference, scale, 1.0)
    return mean, scale


def batch_rows(batch_size, n_rows):
    """Rows per local step in a chunk of ``n_rows`` rows (at least 1, at most all).

    ``None``: ``n_rows / STEPS_PER_EPOCH`` clipped to ``[MIN_BATCH, MAX_BATCH]``.
    """
    if batch_size is None:
        batch_size = min(MAX_BATCH, max(MIN_BATCH, math.ceil(n_rows / STEPS_PER_EPOCH)))
    return max(1, min(int(batch_size), n_rows))


# -------------------------------------------------------------- step size
def default_learning_rate(standard, n, w, spec, rng, curvature, scale):
    """``1 / (c L_b)``, from a sample of standardised rows.

    ``standard(rows)`` returns standardised rows of the chunk. Both the trace
    (mean squared row norm) and the largest eigenvalue of the second moment
    come from at most ``CURVATURE_SAMPLE_ROWS`` rows, so the estimate costs
    far less than one local epoch and never copies the whole chunk.
    """
    rows = np.sort(rng.choice(n, size=CURVATURE_SAMPLE_ROWS, replace=False)) \
        if n > CURVATURE_SAMPLE_ROWS else np.arange(n)
    Zs = standard(rows).astype(np.float64)
    if spec.fit_intercept:
        Zs = np.column_stack([Zs, np.ones(len(rows))])
    ws = np.ones(len(rows)) if w is None else w[rows].astype(np.float64)
    ws = ws / max(ws.sum(), np.finfo(float).tiny)
    trace = float(ws @ np.einsum("ij,ij->i", Zs, Zs))
    if Zs.shape[1] <= DENSE_EIGEN_MAX:
        M = (Zs * ws[:, None]).T @ Zs
        lam = float(np.linalg.eigvalsh(M)[-1])
    else:
        v = np.ones(Zs.shape[1]) / math.sqrt(Zs.shape[1])
        lam = 0.0
        for _ in range(POWER_ITERATIONS):
            mv = Zs.T @ (ws * (Zs @ v))
            lam = float(np.linalg.norm(mv))
            if lam == 0:
                break
            v = mv / lam
    lam = min(CURVATURE_MARGIN * lam, trace)
    b = batch_rows(spec.batch_size, n)
    smoothness = lam + (trace - lam) / b
    return 1.0 / (curvature * smoothness)


# ------------------------------------------------------------------ kernel
@whole_chunk_kernel
def local_sgd_chunk(index, X, y, slot, spec: LocalSGDSpec):
    """Evaluate at ``spec.theta``, then run local SGD; return sums to merge.

    Returns a dict of sums for :func:`daskfit.kernels.chunks.combine`: ``n``,
    ``sw``, ``loss`` and ``grad`` (at the start point, as
    :func:`daskfit.kernels.chunks.evaluate_chunk`); with ``spec.normalise``
    ``delta`` (``sw_c * (theta - theta_end) / a_c``) and ``step``
    (``sw_c * a_c``), else ``coef_sum`` (``sw_c * theta_end``); ``steps``
    (mini-batch steps taken); ``xsum`` and ``x2sum`` (``sum w x`` and
    ``sum w x^2``, when the spec carries no standardisation); and, on
    failure, ``errors``. Chunks with no weight return zeros: they contribute
    nothing. ``slot`` is the engine's weight slot: the weights, or records of
    weights and an offset (:func:`daskfit._data.split_row_vectors`); the
    offset is added to every raw prediction of the run.
    """
    w, offset = split_row_vectors(slot)
    eval_spec = EvalSpec(loss=spec.loss, theta=spec.theta, n_features=spec.n_features,
                         n_outputs=spec.n_outputs, fit_intercept=spec.fit_intercept,
                         classes=spec.classes, order=1, checks=False)
    out = evaluate_chunk(index, X, y, slot, eval_spec)
    out.pop("chunk_rows", None)
    n_params = len(spec.theta)
    if spec.normalise:
        out.update(delta=np.zeros(n_params), step=0.0, steps=0)
    else:
        out.update(coef_sum=np.zeros(n_params), steps=0)
    if "errors" in out:
        return out
    sw = out["sw"]
    if spec.mean is None:
        _, out["xsum"], out["x2sum"] = chunk_statistics(X, w)
    if n_params == 0 or X.shape[0] == 0 or sw <= 0:
        return out
    if spec.mean is None:
        mean, scale = standardisation(sw, out["xsum"], out["x2sum"], spec.fit_intercept)
    else:
        mean, scale = spec.mean, spec.scale
    theta_end, a, steps = _run(index, X, y, slot, spec, mean, scale, sw, out["grad"])
    out["steps"] = steps
    if not (np.isfinite(theta_end).all() and np.isfinite(a) and a > 0):
        out["errors"] = [diagnose_chunk(index, X, y, w)]
        return out
    if spec.normalise:
        out["delta"] = sw * (np.asarray(spec.theta, dtype=np.float64) - theta_end) / a
        out["step"] = sw * a
    else:
        out["coef_sum"] = sw * theta_end
    return out


def _run(index, X, y, slot, spec, mean, scale, sw, start_grad):
    """Mini-batch proximal SGD on the chunk; returns (theta_end, a_c, steps)."""
    w, offset = split_row_vectors(slot)
    loss = spec.loss
    n = X.shape[0]
    rng = np.random.default_rng([int(s) for s in spec.seed] + [int(index)])
    yenc = loss.encode(y, spec.classes)
    w_mean = sw / n
    scale_f = scale.astype(X.dtype)
    mean_f = mean.astype(X.dtype)

    def standard(rows):
        return (X[rows] - mean_f) / scale_f

    def chunk_gradient(theta):
        """The chunk's mean-loss gradient at theta, in standardised coordinates."""
        ev = EvalSpec(loss=loss, theta=np.asarray(theta, dtype=np.float64),
                      n_features=spec.n_features, n_outputs=spec.n_outputs,
                      fit_intercept=spec.fit_intercept, classes=spec.classes, order=1,
                      checks=False)
        return evaluate_chunk(index, X, y, slot, ev)["grad"] / sw

    U, V = to_standard(spec.theta, mean, scale, spec)
    single = spec.n_outputs == 1
    if loss.curvature_bound is None:
        # An unbounded second derivative (Poisson's exp): bound it where the run starts.
        raw0 = (X @ _blocks(spec.theta, spec)[:, :spec.n_features].T.astype(X.dtype)) \
            + (_blocks(spec.theta, spec)[:, -1] if spec.fit_intercept else 0.0)
        if offset is not None:
            raw0 = raw0 + offset[:, None]
        curvature = loss.local_curvature_bound(raw0)
    else:
        curvature = loss.curvature_bound
    vr = spec.variance_reduction
    if spec.learning_rate is None:
        base = default_learning_rate(standard, n, w, spec, rng, curvature, scale)
        if vr:
            base *= VR_STEP_FRACTION
    else:
        base = float(spec.learning_rate)
    b = batch_rows(spec.batch_size, n)
    per_epoch = math.ceil(n / b)
    total = spec.steps if spec.steps is not None else spec.epochs * per_epoch
    # Epochs over the whole data set that one step of this chunk stands for.
    share = (sw / spec.total_weight) / per_epoch if spec.total_weight > 0 else 0.0
    if vr:
        # Drift correction: what the global gradient at the anchor adds to this
        # chunk's own (SCAFFOLD's control variate), constant during the run.
        if spec.anchor is not None:
            g_anchor = (start_grad / sw if np.array_equal(spec.anchor, spec.theta)
                        else chunk_gradient(spec.anchor))
            DU, DV = gradient_to_standard(spec.anchor_grad - g_anchor, mean, scale, spec)
        else:
            DU, DV = np.zeros_like(U), np.zeros_like(V)
        # Local SVRG reference point, refreshed at every local epoch.
        RU, RV = U, V
        MU, MV = gradient_to_standard(start_grad / sw, mean, scale, spec)
    l1_thr = spec.l1 / scale  # per standardised coordinate
    l2_w = spec.l2 / scale**2
    tail_start = total // 2 if spec.polyak else total
    U_avg, V_avg, n_avg = np.zeros_like(U), np.zeros_like(V), 0
    moved, moved_avg = 0.0, 0.0  # displacement per unit gradient (constant-gradient run)
    perm, pos = rng.permutation(n), 0
    for t in range(total):
        if pos >= n:
            perm, pos = rng.permutation(n), 0
            if vr:
                RU, RV = U, V
                MU, MV = gradient_to_standard(
                    chunk_gradient(from_standard(U, V, mean, scale, spec)), mean, scale, spec)
        rows = np.sort(perm[pos:pos + b])
        pos += b
        Xb = standard(rows)
        yb = yenc[rows]
        wb = (w[rows] / w_mean) if w is not None else None
        ob = None if offset is None else offset[rows]
        gu, gv = _batch_gradient(loss, Xb, yb, wb, U, V, single, spec.fit_intercept, ob)
        if vr:
            ru, rv = _batch_gradient(loss, Xb, yb, wb, RU, RV, single, spec.fit_intercept, ob)
            gu, gv = gu - ru + MU + DU, gv - rv + MV + DV
        eta = base * learning_rate_factor(spec.schedule, spec.epochs_done + t * share)
        # Proximal step for the penalty (exact for elastic net per coordinate,
        # so its curvature never limits the step): soft-threshold, then shrink.
        U = U - eta * gu
        if spec.l1 > 0:
            U = soft_threshold(U, eta * l1_thr)
        if spec.l2 > 0:
            U = U / (1.0 + eta * l2_w)
        if spec.fit_intercept:
            V = V - eta * gv
        moved += eta
        if t >= tail_start:
            U_avg += U
            V_avg += V
            moved_avg += moved
            n_avg += 1
    if n_avg:
        U, V, moved = U_avg / n_avg, V_avg / n_avg, moved_avg / n_avg
    return from_standard(U, V, mean, scale, spec), moved, total


def _batch_gradient(loss, Xb, yb, wb, U, V, single, fit_intercept, ob=None):
    """Mean (weight-scaled) loss gradient of a mini-batch in (U, V) coordinates.

    ``ob``: the batch's offset (or None), added to its raw predictions.
    """
    if single:
        raw = (Xb @ U[0]).astype(np.float64) + V[0]
    else:
        raw = (Xb @ U.T).astype(np.float64) + V
    if ob is not None:
        raw = raw + (ob if single else ob[:, None])
    _, g, _ = loss.derivatives(yb, raw, hessian=False)
    if wb is not None:
        g = g * (wb if single else wb[:, None])
    m = Xb.shape[0]
    if single:
        gu = (Xb.T @ g.astype(Xb.dtype)).astype(np.float64)[None, :] / m
        gv = np.array([g.sum() / m]) if fit_intercept else np.zeros(1)
    else:
        gu = (g.astype(Xb.dtype).T @ Xb).astype(np.float64) / m
        gv = g.sum(axis=0) / m if fit_intercept else np.zeros(g.shape[1])
    return gu, gv
