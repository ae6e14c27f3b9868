"""A Newton fit's starting point from a small sample of rows.

Newton from ``theta = 0`` spends its first passes over the data walking to the
optimum's neighbourhood; only the last two or three passes converge
quadratically. A model fitted to a few tens of thousands of rows is already
in that neighbourhood (its coefficients are within about ``1/sqrt(rows)`` of
the full optimum), so the full-data Newton started there needs only those
last passes.

The sample is the first rows of evenly spaced chunks, one per worker thread:
each sample is fitted in memory, to convergence, by a task that runs where
its chunk is (no chunk moves), and the client averages the fits, weighted by
their rows' weight (one-shot parameter averaging). A sample is a fraction of
a chunk, so this costs much less than one pass; it is not counted as a pass
(``pass_log_`` lists it as ``"warm start"``).

Only for the single-output GLMs (binary logistic, Poisson) whose Newton fit
starts at ``theta = 0`` (no early stopping, no checkpoint to resume), and
only on data with at least :data:`MIN_DATA_PER_SAMPLE` times the sampled rows.
Any sample that cannot be fitted (bad labels or targets, not both classes,
a non-finite result) turns the warm start off: the fit then starts at zero
as before, and the first pass reports any bad input as usual.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

import numpy as np

from ..engine.placement import local_scheduler
from ..engine.rows import TRANSIENT_RETRIES, cluster_workers, local_blas_threads
from ..kernels.chunks import EvalSpec, evaluate_chunk
from ._newton import ARMIJO_C, BACKTRACK, DENSER_HESSIAN, MAX_BACKTRACKS, newton_direction

__all__ = ["WarmStart", "warm_start", "fit_sample"]

#: Rows sampled per worker, per parameter. Measured on a 2,000,000 x 50
#: logistic problem (standard normal X, coefficients linspace(-1, 1); 2
#: workers, C=1, tol=1e-4; relative max coefficient error against a
#: tol=1e-10 fit; scikit-learn's default lbfgs: 2.2e-5): from zero, 7
#: passes, 8.5e-6. From 2 samples of 25,500 rows (500 per parameter): 3
#: passes, 1.1e-5; of 51,000 rows (1000): 3 passes, 8.4e-6, the sample's fit
#: about half a pass's time. With the first pass's Hessian as sparse as the
#: later ones' (not ``hessian_density``), 4 passes (500) or 3 passes with
#: 1.7e-5 (1000).
ROWS_PER_PARAM = 1000
#: Warm-start only data with at least this many times the sampled rows: the
#: sample's fit then costs a small fraction of one pass.
MIN_DATA_PER_SAMPLE = 16
#: Samples from at most this many workers (one task each).
MAX_SAMPLES = 8
#: The in-memory Newton on a sample stops when its step is below this
#: (relative to the coefficients) or after ``MAX_ITER`` iterations: the
#: sample's own optimum is about 1e-2 from the full data's, so solving it
#: more exactly only costs iterations (each a Hessian of the sample).
SAMPLE_STEP_TOL = 1e-3
MAX_ITER = 30
#: The sample's Hessian from every other row block: half the cost of an
#: iteration, for a step that is still accurate to a few percent.
SAMPLE_HESSIAN_STRIDE = 2
#: The first stage fits this fraction of the sample, to this step tolerance
#: (see :func:`_stages`); samples under ``FIRST_STAGE_MIN_ROWS`` rows skip it.
FIRST_STAGE_FRACTION = 4
FIRST_STAGE_TOL = 3e-2
FIRST_STAGE_MIN_ROWS = 2000
#: Losses whose objective at the sample's optimum is a good start: the
#: single-output GLMs (multinomial fits need the full label set first).
LOSSES = ("logistic", "poisson")


@dataclass(frozen=True)
class WarmStart:
    """Where the full fit starts.

    Attributes
    ----------
    theta : ndarray
        The averaged coefficients of the sample fits.
    classes : ndarray or None
        The two labels every sample held (classifiers), sorted; the first
        full pass checks that the data holds no other.
    rows : int
        Rows fitted, over all samples.
    """

    theta: np.ndarray
    classes: np.ndarray | None
    rows: int
    #: The first full pass computes its Hessian from this many times the
    #: rows of a sub-sampled Newton pass: it starts near the optimum, where
    #: the Hessian's accuracy limits each step (see ``_newton.NEAR_THE_END``).
    hessian_density: int = DENSER_HESSIAN


def warm_start(engine, loss, penalty_rule, fit_intercept):
    """Fit a sample of rows on the workers; ``WarmStart`` or ``None``.

    ``None`` when the warm start does not apply (loss, too few rows, unknown
    row count) or a sample could not be fitted. Costs no pass; its time is
    appended to ``engine.pass_log`` as ``"warm start"``.
    """
    data = engine.data
    if loss.name not in LOSSES:
        return None
    n_rows = data.X.shape[0]
    if not np.isfinite(n_rows) or not data.chunks_known:
        return None
    n_params = data.n_features + int(fit_intercept)
    picks = _sample_chunks(engine)
    rows = ROWS_PER_PARAM * n_params
    if n_rows < MIN_DATA_PER_SAMPLE * rows * len(picks):
        return None
    started = time.perf_counter()
    spec = EvalSpec(loss=loss, theta=np.zeros(n_params), n_features=data.n_features,
                    n_outputs=1, fit_intercept=fit_intercept, classes=None, order=2,
                    checks=False)
    fits = _compute(engine, _sample_graph(data, picks, rows, spec, penalty_rule, n_rows))
    engine.pass_log.note("warm start", time.perf_counter() - started)
    return _average(fits)


def _sample_chunks(engine):
    """Evenly spaced chunk indices, one per worker thread (2 to ``MAX_SAMPLES``).

    Chosen by index, not by where the chunks are, so the same data and
    cluster size give the same start (and the same fit) every time; each
    task runs where its chunk is.
    """
    n = engine.data.n_chunks
    threads = 2
    if engine.client is not None:
        workers = cluster_workers(engine.client).values()
        threads = max(threads, sum(w.get("nthreads", 1) for w in workers))
    k = min(n, threads, MAX_SAMPLES)
    return sorted({(j * n) // k for j in range(k)})


def _sample_graph(data, picks, rows, spec, penalty_rule, n_rows):
    """One task per sampled chunk, on the chunk's own key (nothing is copied
    or concatenated on the way), and one that lists their fits."""
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    name = f"daskfit-warm-start-{uuid.uuid4().hex}"
    xkeys = [row[0] for row in data.X.__dask_keys__()]
    ykeys = data.y.__dask_keys__()
    wkeys = (data.sample_weight.__dask_keys__() if data.sample_weight is not None
             else [None] * len(xkeys))
    layer = {(name, j): (fit_sample, xkeys[i], ykeys[i], wkeys[i], rows, spec, penalty_rule,
                         n_rows)
             for j, i in enumerate(picks)}
    layer[name] = (list, [(name, j) for j in range(len(picks))])
    deps = [a for a in (data.X, data.y, data.sample_weight) if a is not None]
    return Delayed(name, HighLevelGraph.from_collections(name, layer, dependencies=deps))


def _compute(engine, graph):
    import dask

    if engine.client is not None:
        from .._cluster import wait_result

        # Retried like a pass (a worker lost mid-task), and bounded the same way.
        return wait_result(engine.client,
                           engine.client.compute(graph, retries=TRANSIENT_RETRIES))
    # In-process (NumPy input, or no cluster): the samples are fitted side by
    # side on the local threads, as a pass's chunks are (sequentially they
    # cost twice as long: 63 ms against 35 ms on 2,000,000 x 50, 2 cores).
    scheduler = local_scheduler()
    with local_blas_threads(scheduler):
        return dask.compute(graph, scheduler=scheduler)[0]


def _average(fits):
    if not fits or any(f is None for f in fits):
        return None
    classes = fits[0]["classes"]
    if classes is not None and any(not np.array_equal(f["classes"], classes) for f in fits):
        return None
    weights = np.array([f["weight"] for f in fits])
    theta = np.average(np.array([f["theta"] for f in fits]), axis=0, weights=weights)
    return WarmStart(theta=theta, classes=classes, rows=int(sum(f["rows"] for f in fits)))


def fit_sample(X, y, w, rows, spec, penalty_rule, n_rows):
    """Newton to convergence on the first ``rows`` rows of one chunk (on a worker).

    Returns ``{"theta", "classes", "rows", "weight"}``, or ``None`` when the
    sample cannot give a start (bad target, not exactly two classes, zero
    weight, a non-finite evaluation).
    """
    X, y = X[:rows], np.asarray(y[:rows])
    w = None if w is None else np.asarray(w[:rows], dtype=np.float64)
    if len(y) == 0 or (w is not None and (not np.isfinite(w).all() or (w < 0).any())):
        return None
    classes = _sample_classes(y, spec.loss)
    if classes is _UNUSABLE:
        return None
    weight = float(len(y) if w is None else w.sum())
    if not weight > 0:
        return None
    spec = replace(spec, classes=classes, hessian_stride=SAMPLE_HESSIAN_STRIDE)
    # The penalty is on the mean scale of the whole data: estimate its weight.
    penalty = penalty_rule(weight * n_rows / len(y))
    mask = np.ones(spec.theta.size, dtype=bool)
    if spec.fit_intercept:
        mask[-1] = False
    theta = spec.theta
    for rows_now, tol in _stages(len(y)):
        Xs, ys, ws = X[:rows_now], y[:rows_now], None if w is None else w[:rows_now]
        sw = float(rows_now if ws is None else ws.sum())
        if not sw > 0:
            return None
        theta = _newton(lambda t, order, Xs=Xs, ys=ys, ws=ws, sw=sw: _evaluate(
            Xs, ys, ws, spec, t, order, sw, penalty, mask), theta, tol)
        if theta is None:
            return None
    return {"theta": theta, "classes": classes, "rows": len(y), "weight": weight}


_UNUSABLE = object()


def _sample_classes(y, loss):
    """The sample's two sorted labels (classifiers), ``None`` (regression), or unusable."""
    with np.errstate(all="ignore"):
        if loss.is_classification:
            if y.dtype.kind == "f" and not np.isfinite(y).all():
                return _UNUSABLE
            try:
                labels = np.unique(y)
            except TypeError:  # labels of mixed types: the full pass explains
                return _UNUSABLE
            return labels if len(labels) == 2 else _UNUSABLE
        yf = np.asarray(y, dtype=np.float64)
        if not np.isfinite(yf).all() or loss.validate_target(yf.min(), yf.max()):
            return _UNUSABLE
        if loss.name == "poisson" and not yf.max() > 0:
            return _UNUSABLE
        return None


def _evaluate(X, y, w, spec, theta, order, weight, penalty, mask):
    out = evaluate_chunk(0, X, y, w, replace(spec, theta=theta, order=order))
    if "errors" in out:
        return None
    f = out["loss"] / weight + penalty.smooth_value(theta, mask)
    if order == 0:
        return f, None, None
    g = out["grad"] / weight + penalty.smooth_gradient(theta, mask)
    H = out["hess"] / out["hess_sw"]
    H[np.diag_indices_from(H)] += penalty.smooth_hessian_diagonal(mask)
    return f, g, H


def _stages(rows):
    """``(rows, step tolerance)`` of each stage of the sample's fit.

    Newton from zero spends most of its iterations far from the optimum,
    where a quarter of the sample points the same way: those iterations run
    on a quarter, and the last one or two on the whole sample.
    """
    first = rows // FIRST_STAGE_FRACTION
    if first < FIRST_STAGE_MIN_ROWS:
        return [(rows, SAMPLE_STEP_TOL)]
    return [(first, FIRST_STAGE_TOL), (rows, SAMPLE_STEP_TOL)]


def _newton(evaluate, theta, tol):
    """Damped Newton on the in-memory sample; ``None`` if it cannot evaluate."""
    current = evaluate(theta, 2)
    if current is None:
        return None
    f, g, H = current
    for _ in range(MAX_ITER):
        d = newton_direction(H, g)
        if not np.all(np.isfinite(d)):
            return None
        step = 1.0
        for _ in range(MAX_BACKTRACKS):
            trial = evaluate(theta + step * d, 2)
            if trial is not None and trial[0] <= f + ARMIJO_C * step * (g @ d):
                break
            step *= BACKTRACK
        else:
            return theta  # no decrease left to find: as good as this sample gets
        theta = theta + step * d
        f, g, H = trial
        if step * np.abs(d).max() <= tol * max(np.abs(theta).max(), 1.0):
            break
    return theta if np.all(np.isfinite(theta)) else None
