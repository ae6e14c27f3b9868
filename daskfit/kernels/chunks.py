"""Per-chunk kernels and the rules that merge their partial results.

Each kernel reads one row chunk ``(X, y, w)`` and returns a dict of partial
sums; :func:`combine` merges a list of such dicts, key by key, and is applied
as a tree by the engine. Kernels never raise on bad data: they report it under
``"errors"`` (with the chunk index) so that the client can raise one clear
error naming the first bad chunk.

Kernels compute in the dtype of ``X`` for the heavy products (so float32 data
moves half the bytes) and return float64 sums.

Sparse chunks (SciPy sparse or ``sparse.COO``) are read as CSR and never
densified: margins ``X @ coef`` and gradients ``X' g`` are sparse-dense
products, and a Gram or Hessian ``X' D X`` is a sparse product turned into
a dense ``p x p`` only where the solver needs one (Newton, the normal
equations; the planner keeps both to small ``p``). The one exception is
the normal equations' QR fallback for ill-conditioned data
(:func:`qr_chunk`): it factors row blocks of about ``BLOCK_BYTES`` made
dense, never a whole chunk.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg
from scipy.special import expit

from .._data import split_row_vectors
from .alignment import aligned, aligned_blocks, as_csr, is_sparse, rows_per_block

__all__ = ["EvalSpec", "bundle_chunks", "combine", "run_batch", "evaluate_chunk", "class_stats_chunk", "moments_chunk", "qr_chunk",
           "sparse_column_moments", "sparse_gram", "take_columns"]


@dataclass(frozen=True)
class EvalSpec:
    """What one evaluation pass computes. Embedded in every task of the pass.

    ``theta`` is the client's coefficient vector: it travels inside the
    graph (a few hundred bytes), never through ``scatter``.
    """

    loss: object
    theta: np.ndarray
    n_features: int
    n_outputs: int
    fit_intercept: bool
    classes: np.ndarray | None
    order: int  # 0: value, 1: value and gradient, 2: and Hessian
    checks: bool
    hessian_stride: int = 1  # Hessian from one row block in this many
    #: ``daskfit.kernels.holdout.Holdout`` for early stopping: its validation rows get
    #: weight 0 in the sums and are scored from the same margins.
    holdout: object = None
    #: ``class_weight``: one weight per encoded class (``classes`` order), by
    #: which :func:`evaluate_chunk` multiplies each training row's weight;
    #: None for no class weighting. Held-out rows keep their own weight.
    class_weight: np.ndarray | None = None
    #: The first pass of a class-weighted fit: :func:`class_stats_chunk`
    #: returns one gram per label (the weights are known only after it).
    class_grams: bool = False


def hessian_block(index, block_number, stride):
    """Whether this row block contributes to a sub-sampled Hessian.

    A fixed pseudo-random pattern over (chunk, block): deterministic, spread
    over every chunk, and independent of the scheduler.
    """
    return stride == 1 or (index * 7919 + block_number * 104729) % stride == 0


def _quiet(kernel):
    """Run a kernel without NumPy's floating-point warnings.

    Kernels check their own results for inf/NaN and report them as errors
    naming the chunk, so NumPy's RuntimeWarnings would only be noise.
    """

    @functools.wraps(kernel)
    def wrapper(*args):
        with np.errstate(all="ignore"):
            return kernel(*args)

    return wrapper


def chunk_kernel(kernel):
    """A row kernel ``kernel(index, X, y, w, spec)``: quiet, on aligned vectors.

    ``y`` and ``w`` are made aligned here (a copy only when misaligned: they
    are a small fraction of the chunk); ``X`` is realigned block by block
    inside the kernel (:func:`daskfit.kernels.alignment.aligned_blocks`).
    The weight slot is split into the weights and the offset
    (:func:`daskfit._data.split_row_vectors`); a kernel that adds an offset to
    its linear predictor declares an ``offset`` keyword and gets it there,
    and a kernel that does not is never handed one silently: the chunk
    reports an error instead.
    """
    quiet = _quiet(kernel)
    takes_offset = "offset" in inspect.signature(kernel).parameters

    @functools.wraps(kernel)
    def wrapper(index, X, y, w, spec):
        # A sparse chunk is read as CSR once per task (no copy when it is CSR).
        X = as_csr(X) if is_sparse(X) else X
        w, offset = split_row_vectors(aligned(w))
        if offset is None:
            return quiet(index, X, aligned(y), w, spec)
        n = X.shape[0]
        if offset.shape[0] != n:
            return {"n": n, "errors": [(index, (
                f"Row chunk {index} of X has {n} rows but the matching chunk of offset "
                f"has {offset.shape[0]}: X and offset are not aligned. Take both from the "
                "same Dask DataFrame, or call to_dask_array(lengths=True) on both."))]}
        if not takes_offset:
            return {"n": n, "errors": [(index, (
                f"{kernel.__name__} does not add an offset to the linear predictor, so "
                "this fit cannot take offset=; fit without it or with another solver."))]}
        return quiet(index, X, aligned(y), w, spec, offset)

    return wrapper


def whole_chunk_kernel(kernel):
    """A kernel that takes its arrays whole: quiet, every array argument aligned.

    For kernels without a row-block loop (column-sharded products, local
    SGD): a misaligned array is copied once per task, which costs one read
    and write of it, against 2x to 14x for computing on it in place.
    """
    quiet = _quiet(kernel)

    @functools.wraps(kernel)
    def wrapper(*args):
        return quiet(*(aligned(a) for a in args))

    return wrapper


def unpack(theta, n_features, n_outputs, fit_intercept):
    """theta -> (coef of shape (p,) or (p, K), intercept scalar or (K,))."""
    width = n_features + int(fit_intercept)
    if n_outputs == 1:
        coef = theta[:n_features]
        intercept = theta[n_features] if fit_intercept else 0.0
        return coef, intercept
    block = theta.reshape(n_outputs, width)
    coef = block[:, :n_features].T
    intercept = block[:, n_features] if fit_intercept else np.zeros(n_outputs)
    return coef, intercept


def _pack_gradient(gx, gb, fit_intercept):
    """(p,)/(p,K) and scalar/(K,) gradient pieces -> flat theta layout."""
    if gx.ndim == 1:
        return np.concatenate([gx, [gb]]) if fit_intercept else gx
    blocks = np.vstack([gx, gb[None, :]]) if fit_intercept else gx
    return blocks.T.ravel()


def weighted_gram(X, d, fit_intercept, nonnegative):
    """``[X, 1]^T diag(d) [X, 1]`` (without the 1 column when no intercept).

    ``X`` may be a CSR chunk (:func:`sparse_gram`): the product is sparse,
    only the ``p x p`` result is dense.
    """
    if is_sparse(X):
        gram = sparse_gram(X, d)
    elif nonnegative:
        Xs = X * np.sqrt(d, dtype=X.dtype)[:, None]
        gram = (Xs.T @ Xs).astype(np.float64)  # symmetric product: BLAS syrk
    else:
        gram = ((X * d[:, None].astype(X.dtype)).T @ X).astype(np.float64)
    if not fit_intercept:
        return gram
    p = X.shape[1]
    out = np.empty((p + 1, p + 1))
    out[:p, :p] = gram
    col = (X.T @ d.astype(X.dtype)).astype(np.float64)
    out[:p, p] = col
    out[p, :p] = col
    out[p, p] = d.sum()
    return out


#: A column whose weighted spread is below this fraction of its weighted
#: mean square (a large mean, or a constant column) would lose more than
#: three of float32's seven digits to cancellation: such blocks stay float64.
FLOAT32_MIN_SPREAD = 1e-3


def _gram_float32(X, d, fit_intercept):
    """:func:`weighted_gram` of a float64 block (``d >= 0``), its product in float32.

    Rounding is then about 1e-7 of each entry's scale, ``sqrt(G_ii G_jj)``;
    relative to the centred curvature (what the step depends on) that is
    multiplied by each column's mean square over its spread, so a block with
    a column whose ratio exceeds ``1 / FLOAT32_MIN_SPREAD`` is computed in
    float64 instead. The intercept row ``X' d`` and ``sum d`` are float64.
    """
    Xf = X.astype(np.float32)
    Xf *= np.sqrt(d).astype(np.float32)[:, None]
    gram = (Xf.T @ Xf).astype(np.float64)  # symmetric product: BLAS ssyrk
    s = X.T @ d
    total = float(d.sum())
    square = np.diag(gram)
    spread = square - (s * s / total if total > 0 else 0.0)
    if (spread < FLOAT32_MIN_SPREAD * square).any():
        return weighted_gram(X, d, fit_intercept, nonnegative=True)
    if not fit_intercept:
        return gram
    p = X.shape[1]
    out = np.empty((p + 1, p + 1))
    out[:p, :p] = gram
    out[:p, p] = s
    out[p, :p] = s
    out[p, p] = total
    return out


def _row_scaled(X, d):
    """``diag(d) X`` for a CSR ``X``, built from its arrays (a plain CSR matrix)."""
    import scipy.sparse as sp

    scale = np.repeat(d.astype(X.dtype, copy=False), np.diff(X.indptr))
    return sp.csr_matrix((X.data * scale, X.indices, X.indptr), shape=X.shape)


def sparse_gram(X, d):
    """``X' diag(d) X`` of a CSR ``X`` as a dense float64 ``p x p`` matrix.

    A sparse-sparse product (only pairs of features that share a row cost
    anything), made exactly symmetric from its upper triangle.
    """
    return _symmetric((X.T @ _row_scaled(X, d)).toarray())


def sparse_column_moments(X, w):
    """``(sum w, weighted means, sum w (x - mean)^2)`` of a sparse chunk's columns.

    From ``X' w`` and ``(X o X)' w`` (products over the nonzeros only), in
    float64; for the scales of standardised coordinates, where a few lost
    digits of a large-mean column's spread change the preconditioning, not
    the optimum.
    """
    import scipy.sparse as sp

    X = as_csr(X)
    ww = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    sw = float(ww.sum())
    p = X.shape[1]
    if sw == 0:
        return 0.0, np.zeros(p), np.zeros(p)
    values = X.data.astype(np.float64)
    sums = sp.csr_matrix((values, X.indices, X.indptr), shape=X.shape).T @ ww
    squares = sp.csr_matrix((values * values, X.indices, X.indptr), shape=X.shape).T @ ww
    mean = sums / sw
    return sw, mean, np.maximum(squares - sw * mean * mean, 0.0)


def _check_lengths(index, n, y, w):
    errors = []
    for name, v in (("y", y), ("sample_weight", w)):
        if v is not None and v.shape[0] != n:
            errors.append(
                (index, f"Row chunk {index} of X has {n} rows but the matching chunk of "
                 f"{name} has {v.shape[0]}: X and {name} are not aligned. Take both from "
                 "the same Dask DataFrame, or call to_dask_array(lengths=True) on both.")
            )
    return errors


def diagnose_chunk(index, X, y, w, offset=None):
    """Explain a non-finite partial result: bad input, or numerical overflow."""
    for name, v in (("X", X), ("y", y), ("sample_weight", w), ("offset", offset)):
        if v is not None and is_sparse(v):
            v = as_csr(v).data  # the stored values: the implicit zeros are finite
        if v is None or v.dtype.kind not in "fc":
            continue
        if np.isnan(v).any():
            return (index, f"Input {name} contains NaN.")
        if np.isinf(v).any():
            return (index, f"Input {name} contains infinity or a value too large for {v.dtype!r}.")
    return (index, "overflow")


def chunk_input_errors(index, n_rows, y, w, *, finite_weights=False):
    """The errors of one row chunk's target and weights, for both engines.

    ``y`` and ``w`` must have the chunk's ``n_rows`` rows; then the weights
    must be finite (with ``finite_weights``: the column engine checks them
    here, the row kernels through their non-finite sums) and nonnegative.
    Returns a list of ``(index, message)``, empty when the chunk is fine.
    """
    errors = _check_lengths(index, n_rows, y, w)
    if errors or w is None:
        return errors
    if finite_weights and not np.isfinite(w).all():
        return [diagnose_chunk(index, None, None, w)]
    if (w < 0).any():
        return [(index, "Negative values in data passed to sample_weight.")]
    return []


def basic_checks(index, X, y, w, out):
    errors = chunk_input_errors(index, X.shape[0], y, w)
    if errors:
        out["errors"] = errors
        return False
    return True


def _take(v, block):
    return None if v is None else v[block]


@chunk_kernel
def evaluate_chunk(index, X, y, w, spec: EvalSpec, offset=None):
    """Loss sum, gradient sum and Hessian sum of one row chunk.

    ``offset`` (one value a row, or None) is added to the linear predictor:
    the loss, its derivatives and the held-out scores all see ``X b + c +
    offset``.
    """
    n = X.shape[0]
    out = {"n": n, "chunk_rows": {index: n}}
    if spec.checks and not basic_checks(index, X, y, w, out):
        return out
    holdout = spec.holdout
    if holdout is not None:
        w, val_rows, w_val = holdout.split(index, n, w)
        val_raw = None  # margins of the chunk, scored once after the loop
        out["holdout"] = 0.0
    loss = spec.loss
    coef, intercept = unpack(spec.theta, spec.n_features, spec.n_outputs, spec.fit_intercept)
    coef = coef.astype(X.dtype)
    yenc = loss.encode(y, spec.classes)
    if spec.class_weight is not None:
        w = class_weighted(w, yenc, spec.class_weight)
    if spec.checks and n:
        out["y_min"], out["y_max"] = float(np.min(yenc)), float(np.max(yenc))
    loss_sum, grad, hess, hess_sw = 0.0, 0.0, 0.0, 0.0
    for number, block, Xb in aligned_blocks(X):
        yb, wb = yenc[block], _take(w, block)
        raw = (Xb @ coef).astype(np.float64) + intercept
        if offset is not None:
            raw += offset[block] if raw.ndim == 1 else offset[block, None]
        if holdout is not None:
            if val_raw is None:
                val_raw = np.empty((n,) + raw.shape[1:])
            val_raw[block] = raw
        if spec.order == 0:
            lv = loss.value(yb, raw)
            loss_sum += lv.sum() if wb is None else wb @ lv
            continue
        lv, g, h = loss.derivatives(yb, raw, hessian=spec.order >= 2)
        loss_sum += lv.sum() if wb is None else wb @ lv
        wg = g if wb is None else (g * (wb if g.ndim == 1 else wb[:, None]))
        gx = (Xb.T @ wg.astype(X.dtype)).astype(np.float64)
        grad = grad + _pack_gradient(gx, wg.sum(axis=0), spec.fit_intercept)
        if spec.order >= 2 and hessian_block(index, number, spec.hessian_stride):
            hess = hess + _hessian(Xb, h, wb, spec)
            hess_sw += float(len(raw) if wb is None else wb.sum())
    if holdout is not None and val_raw is not None:
        out["holdout"] = holdout.score_sums(yenc[val_rows], val_raw[val_rows], w_val)
    out["sw"] = float(n if w is None else w.sum())
    out["loss"] = float(loss_sum)
    if spec.order >= 1:
        out["grad"] = grad if n else np.zeros(_n_params(spec))
    if spec.order >= 2:
        out["hess"] = hess if hess_sw else np.zeros((_n_params(spec),) * 2)
        out["hess_sw"] = hess_sw
    finite = np.isfinite(out["loss"]) and (spec.order == 0 or np.isfinite(out["grad"]).all())
    if not finite:
        out["errors"] = [diagnose_chunk(index, X, y, w, offset)]
    return out


def class_weighted(w, yenc, class_weight):
    """Row weights times their class's weight (``yenc``: 0/1 or class codes).

    As scikit-learn's ``sample_weight *= class_weight_[le.transform(y)]``:
    every sum of the pass, ``sw`` included, is then class weighted.
    """
    cw = class_weight[yenc.astype(np.intp)]
    return cw if w is None else w * cw


def _n_params(spec):
    return spec.n_outputs * (spec.n_features + int(spec.fit_intercept))


#: A sub-sampled Hessian (``spec.hessian_stride > 1``) of float64 data is
#: computed from a float32 copy of each row block (:func:`_gram_float32`): it
#: is already an estimate (relative error about 3%, see
#: ``daskfit.solvers._newton.HESSIAN_ROWS_PER_PARAM``) that only steers the
#: step, while the gradient stays exact float64, so float32's rounding
#: (about 1e-6 relative) changes no optimum and halves the Hessian's cost.
HESSIAN_FLOAT32 = True


def _hessian(X, h, w, spec):
    if spec.n_outputs == 1:
        d = h if w is None else h * w
        if (HESSIAN_FLOAT32 and spec.hessian_stride > 1 and not is_sparse(X)
                and X.dtype == np.float64):
            return _gram_float32(X, d, spec.fit_intercept)
        return weighted_gram(X, d, spec.fit_intercept, nonnegative=True)
    # Multinomial: block (k, l) weights rows by p_k (delta_kl - p_l).
    p = h
    K = spec.n_outputs
    width = spec.n_features + int(spec.fit_intercept)
    H = np.empty((K * width, K * width))
    ww = 1.0 if w is None else w
    for k in range(K):
        for j in range(k, K):
            d = ww * p[:, k] * ((k == j) - p[:, j])
            block = weighted_gram(X, d, spec.fit_intercept, nonnegative=(k == j))
            H[k * width:(k + 1) * width, j * width:(j + 1) * width] = block
            H[j * width:(j + 1) * width, k * width:(k + 1) * width] = block.T
    return H


UNKNOWN_LABEL_TYPE = (
    "Unknown label type: {kind}. Maybe you are trying to fit a classifier, which "
    "expects discrete classes on a regression target with continuous values."
)


def label_problem(y):
    """Missing or infinite class labels, in scikit-learn's words; else None."""
    if y.dtype.kind == "f":
        if np.isnan(y).any():
            return "Input y contains NaN."
        if np.isinf(y).any():
            return f"Input y contains infinity or a value too large for {y.dtype!r}."
    elif y.dtype.kind == "O":
        import pandas as pd

        if pd.isna(y).any():
            return "Input y contains NaN."
    return None


@chunk_kernel
def class_stats_chunk(index, X, y, w, spec: EvalSpec, offset=None):
    """Per-label weight and weighted feature sums; optionally the weighted gram.

    This is a classifier's first pass: it discovers the label set and carries
    everything needed for the loss, gradient and Hessian at ``theta = 0``, so
    label discovery costs no pass of its own. With an ``offset`` the binary
    margin at zero is the offset itself: the pass then adds, per label, the
    sums of :func:`_offset_stats`, and its grams weigh each row by
    ``s (1 - s)`` with ``s = expit(offset)`` (the Hessian at zero itself).

    With ``spec.theta`` set (a warm start, see
    ``daskfit.solvers._warm_start``), the pass evaluates at ``theta`` instead,
    encoding the labels by ``spec.classes`` (the labels the warm start saw):
    the per-label weights still come back, so the client can check that the
    data holds no other label before it uses the evaluation.
    """
    n = X.shape[0]
    out = {"n": n, "chunk_rows": {index: n}}
    if not basic_checks(index, X, y, w, out):
        return out
    problem = label_problem(y)
    if problem:
        out["errors"] = [(index, problem)]
        return out
    try:
        labels, codes = _labels_and_codes(y)
    except TypeError:
        out["errors"] = [(index, UNKNOWN_LABEL_TYPE.format(kind="unknown"))]
        return out
    if spec.theta is not None and spec.holdout is None:
        return _labels_and_evaluation(index, X, y, w, spec, labels, codes, out)
    if spec.holdout is not None:
        # Label sums over the training rows; per-label validation weight and count.
        w, val_rows, w_val = spec.holdout.split(index, n, w)
        val_sw = np.bincount(codes[val_rows], weights=w_val, minlength=len(labels))
        val_n = np.bincount(codes[val_rows], minlength=len(labels))
        out["holdout_labels"] = {lab: (float(val_sw[i]), int(val_n[i]))
                                 for i, lab in enumerate(labels.tolist())}
        if offset is not None:
            # Validation weight predicted positive at zero (margin = offset > 0).
            pos = np.bincount(codes[val_rows], weights=w_val * (offset[val_rows] > 0),
                              minlength=len(labels))
            out["holdout_offset_labels"] = {lab: float(pos[i])
                                            for i, lab in enumerate(labels.tolist())}
    ww = np.ones(n) if w is None else w
    # Row weights of the gram: the Hessian at zero is 1/4 of it without an offset.
    dd = ww if offset is None else ww * _offset_curvature(offset)
    ws = None if offset is None else ww * expit(offset)
    sxs = np.zeros((X.shape[1], len(labels)))
    sx = np.zeros((X.shape[1], len(labels)))
    gram, gram_sw = 0.0, 0.0
    for number, block, Xb in aligned_blocks(X):
        onehot = np.zeros((block.stop - block.start, len(labels)), dtype=X.dtype)
        onehot[np.arange(block.stop - block.start), codes[block]] = ww[block]
        sx += (Xb.T @ onehot).astype(np.float64)  # (p, n_labels)
        if offset is not None:
            onehot[np.arange(block.stop - block.start), codes[block]] = ws[block]
            sxs += (Xb.T @ onehot).astype(np.float64)  # sum w s x per label
        if spec.order >= 2 and hessian_block(index, number, spec.hessian_stride):
            if spec.class_grams:
                _add_class_grams(out, Xb, ww[block], dd[block], codes[block], labels, spec)
                continue
            gram = gram + weighted_gram(Xb, dd[block], spec.fit_intercept,
                                        nonnegative=True)
            gram_sw += float(ww[block].sum())
    sw_class = np.bincount(codes, weights=ww, minlength=len(labels))
    if offset is not None:
        out["offset_stats"] = _offset_stats(ww, ws, sxs, offset, codes, labels)
    out["class_stats"] = {
        lab: (float(sw_class[i]), sx[:, i]) for i, lab in enumerate(labels.tolist())
    }
    out["sw"] = float(ww.sum())
    if spec.order >= 2 and not spec.class_grams:
        width = X.shape[1] + int(spec.fit_intercept)
        out["gram"] = gram if gram_sw else np.zeros((width, width))
        out["gram_sw"] = gram_sw
    grams = [out["gram"]] if "gram" in out else list(out.get("class_grams", {}).values())
    grams += list(out.get("offset_stats", {}).values())
    finite = np.isfinite(sx).all() and all(np.isfinite(g).all() for g in grams)
    if not finite:
        out["errors"] = [diagnose_chunk(index, X, None, w, offset)]
    return out


def _offset_curvature(offset):
    """``s (1 - s)``, ``s = expit(offset)``: the log-loss curvature at margin ``offset``."""
    s = expit(offset)
    return s * (1.0 - s)


def _offset_stats(ww, ws, sxs, offset, codes, labels):
    """Per label, the sums the binary log-loss at ``theta = 0`` needs with an offset.

    ``[sum w o, sum w log(1 + e^o), sum w s, sum w s x]`` with ``s =
    expit(o)``: the loss at zero is ``sum_all w log(1 + e^o) - sum_pos w o``
    and its gradient ``sum_all w s [x, 1] - sum_pos w [x, 1]``, whichever
    label turns out to be the positive class once the pass is merged.
    """
    k = len(labels)
    wo = np.bincount(codes, weights=ww * offset, minlength=k)
    wsoftplus = np.bincount(codes, weights=ww * np.logaddexp(0.0, offset), minlength=k)
    wsum = np.bincount(codes, weights=ws, minlength=k)
    return {lab: np.concatenate([[wo[i], wsoftplus[i], wsum[i]], sxs[:, i]])
            for i, lab in enumerate(labels.tolist())}


def _add_class_grams(out, Xb, wb, db, codes, labels, spec):
    """Add one row block's weighted gram per label to ``out["class_grams"]``.

    A class-weighted Hessian at zero is ``sum_c cw_c gram_c``; the class
    weights of ``"balanced"`` are known only once this pass is merged, so
    the pass keeps the grams apart (K grams of ``(p + 1)^2``, and the rows
    of each class multiplied once, as for the one gram).
    """
    grams = out.setdefault("class_grams", {})
    sws = out.setdefault("class_gram_sw", {})
    keys = labels.tolist()  # the labels as the class_stats keys (Python scalars)
    for i in np.unique(codes):
        rows = codes == i
        label = keys[i]
        gram = weighted_gram(Xb[rows], db[rows], spec.fit_intercept, nonnegative=True)
        grams[label] = grams[label] + gram if label in grams else gram
        sws[label] = sws.get(label, 0.0) + float(wb[rows].sum())


#: Integer-valued labels spanning fewer values than this are counted with
#: ``np.bincount`` instead of sorted by ``np.unique``.
SMALL_LABEL_RANGE = 1 << 16


def _labels_and_codes(y):
    """``np.unique(y, return_inverse=True)``, without the sort for small integer labels.

    Sorting a 250,000-row chunk's labels costs several milliseconds per pass;
    labels that are integers in a small range (0/1, class numbers, also as
    integer-valued floats) are counted instead: the labels present are the
    nonzero counts, the code of a row its label's rank among them. Raises
    ``TypeError`` for labels that cannot be ordered (as ``np.unique`` does).
    """
    if y.dtype.kind not in "iubf" or not y.size:
        return np.unique(y, return_inverse=True)
    low, high = y.min(), y.max()
    if y.dtype.kind == "f" and not (float(low).is_integer() and float(high).is_integer()
                                    and -2**52 < low and high < 2**52):
        return np.unique(y, return_inverse=True)
    span = int(high) - int(low)
    if span >= SMALL_LABEL_RANGE:
        return np.unique(y, return_inverse=True)
    if span <= 1:
        # Two labels at most (0/1 targets): one comparison gives the codes.
        upper = y == high
        n_upper = np.count_nonzero(upper)
        if n_upper == y.size:
            return np.array([high], dtype=y.dtype), np.zeros(y.size, np.int8)
        if n_upper + np.count_nonzero(y == low) == y.size:
            return np.array([low, high], dtype=y.dtype), upper.view(np.int8)
        return np.unique(y, return_inverse=True)  # not integer-valued
    shifted = y - low if y.dtype.kind == "f" else y.astype(np.int64) - int(low)
    as_int = shifted.astype(np.int32)
    if y.dtype.kind == "f" and not np.array_equal(as_int, shifted):
        return np.unique(y, return_inverse=True)  # not integer-valued
    present = np.bincount(as_int) > 0
    values = np.flatnonzero(present)
    labels = values.astype(y.dtype) + low
    if len(values) == len(present):  # every value in the range is present
        return labels, as_int
    rank = np.cumsum(present) - 1
    return labels, rank[as_int]


def _labels_and_evaluation(index, X, y, w, spec, labels, codes, out):
    """Per-label weights (no feature sums) and the evaluation at ``spec.theta``."""
    sw_class = np.bincount(codes, weights=w, minlength=len(labels))
    out["class_stats"] = {lab: (float(sw_class[i]), 0.0)
                          for i, lab in enumerate(labels.tolist())}
    evaluation = evaluate_chunk(index, X, y, w, replace(spec, checks=False))
    for key in ("sw", "loss", "grad", "hess", "hess_sw", "errors"):
        if key in evaluation:
            out[key] = evaluation[key]
    return out


@chunk_kernel
def moments_chunk(index, X, y, w, spec: EvalSpec, offset=None):
    """Weighted means and *centred* cross products of one chunk.

    With an ``offset`` the least-squares target is ``y - offset``: the
    squared loss of ``y`` at ``X b + c + offset`` is that of ``y - offset``
    at ``X b + c``.

    See :func:`rows_moments` for how the sums stay accurate when features
    have large means (Longley- or Wampler-like data); chunks are merged with
    Chan's parallel formula (:func:`merge_moments`).
    """
    n = X.shape[0]
    out = {"n": n, "chunk_rows": {index: n}}
    if not basic_checks(index, X, y, w, out):
        return out
    out["sw"] = float(n if w is None else w.sum())
    if n:
        out["y_min"], out["y_max"] = float(np.min(y)), float(np.max(y))
    target = y.astype(np.float64, copy=False)
    if offset is not None:
        target = target - offset
    out["moments"] = m = rows_moments(X, target, w, MomentsWork(X))
    if m is not None and not (np.isfinite(m[3]).all() and np.isfinite(m[4]).all()
                              and np.isfinite(m[5])):
        out["errors"] = [diagnose_chunk(index, X, y, w, offset)]
    return out


#: The raw (unshifted) product ``X'X`` of a run of rows is kept when no
#: feature's ``sum x^2`` exceeds its centred ``sum (x - mean)^2`` by more than
#: this factor. The round-off of the raw sums, relative to the centred result,
#: is that factor times the round-off of a product of centred data, so at
#: most 2 bits are lost. Standardised-looking data (|mean| <= std) passes and
#: is read without a copy; a feature with a large mean (Longley, Wampler) does
#: not, and its rows are shifted by a mean before the product.
RAW_PRODUCT_LIMIT = 4.0


class MomentsWork:
    """Scratch buffers shared by every block of one chunk.

    ``shifted`` turns on once a run of rows failed the raw-product test
    (:data:`RAW_PRODUCT_LIMIT`): later runs of the chunk go straight to the
    shifted product, since their features most likely have large means too.
    """

    def __init__(self, X):
        p = X.shape[1]
        self.shifted = False
        if is_sparse(X):  # sparse moments need no dense scratch (see _sparse_moments)
            self.max_rows, self.Z, self.V = 0, None, None
            return
        self.max_rows = rows_per_block(p, X.itemsize)
        rows = min(self.max_rows, X.shape[0])
        # [X - shift, y - shift_y, 1] for the shifted product, reused by every
        # block: a fresh 1 MiB temporary per block costs an mmap and page faults.
        self.Z = np.empty((rows, p + 2), dtype=X.dtype)
        # [y - mean_y, 1] for the raw product's X'y and X'1 (one BLAS call).
        self.V = np.ones((rows, 2), dtype=X.dtype)


def _symmetric(C):
    """Full symmetric float64 matrix from the upper triangle of a product.

    Mirroring the upper triangle makes the result exactly symmetric whatever
    the BLAS wrote below the diagonal.
    """
    C = np.triu(C).astype(np.float64, copy=False)
    return C + np.triu(C, 1).T


def rows_moments(X, y, w, work):
    """``(sw, mean_x, mean_y, Sxx, Sxy, Syy)`` of the rows of ``X``, or None.

    ``X'X`` is a symmetric BLAS product (syrk: half the flops of a general
    matrix product) over cache-sized row blocks. Unweighted rows first take
    the product of the raw data, read once from memory without a copy
    (:func:`_raw_moments`); when a feature's mean is large against its
    spread, every block is instead shifted by a mean in a scratch buffer and
    the blocks are merged with Chan's formula (:func:`_shifted_moments`).
    """
    if X.shape[0] == 0:
        return None
    if is_sparse(X):
        return _sparse_moments(as_csr(X), y, w)
    if w is None and not work.shifted:
        moments = _raw_moments(X, y, work)
        if moments is not None:
            return moments
        work.shifted = True
    acc = None
    for _, b, Xb in aligned_blocks(X):
        acc = merge_moments([acc, _shifted_moments(Xb, y[b], _take(w, b), work, acc)])
    return acc


def _sparse_moments(X, y, w):
    """Centred moments of a CSR chunk from sparse products, never densifying it.

    ``Sxx = X'WX - sw m m'`` with ``X'WX`` a sparse product (dense only as
    the ``p x p`` result); centring the rows first would fill them in.
    ``y`` is centred before its products, as in :func:`_raw_moments`. The
    raw product loses the digits a feature's mean takes from its spread
    (see :data:`RAW_PRODUCT_LIMIT`): exact enough for indicator and count
    columns, whose means are at most of the order of their spread.
    """
    ww = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    sw = float(ww.sum())
    if sw == 0:
        return None
    a = (X.T @ ww.astype(X.dtype)).astype(np.float64)  # weighted column sums
    mean = a / sw
    sy = float(ww @ y) / sw
    yd = y - sy
    wy = ww * yd
    b = float(wy.sum())
    Sxx = sparse_gram(X, ww) - sw * np.outer(mean, mean)
    Sxy = (X.T @ wy.astype(X.dtype)).astype(np.float64) - a * (b / sw)
    return (sw, mean, sy + b / sw, Sxx, Sxy, float(wy @ yd) - b * b / sw)


def _accurate_raw(Cdiag, Sdiag):
    return bool(np.all(Cdiag <= RAW_PRODUCT_LIMIT * Sdiag))


def _raw_moments(X, y, work):
    """Centred moments from raw products, or None when they would lose accuracy.

    ``S = X'X - a a'/n`` with ``a = X'1``; ``y`` is centred first (it is one
    column, cheap to copy), so ``X'(y - mean_y)`` is accurate whenever ``X'X``
    is. The first block is tested on its own before the rest is read.
    """
    n, p = X.shape
    sy = float(y.mean())
    C = np.zeros((p, p))
    G = np.zeros((p, 2))
    for number, b, Xb in aligned_blocks(X):
        V = work.V[: Xb.shape[0]]
        V[:, 0] = y[b] - sy
        # NumPy's matmul sees X'X and calls BLAS syrk itself, with the GIL
        # released (SciPy's f2py syrk wrapper holds it: two worker threads
        # then ran the product one after the other, 1.69x a 2-process pass).
        C += Xb.T @ Xb
        G += Xb.T @ V  # X'(y - sy) and X'1
        if number == 0 and b.stop < n:
            m = b.stop - b.start
            if not _accurate_raw(np.diag(C), np.diag(C) - G[:, 1] ** 2 / m):
                return None
    a = G[:, 1]
    Cxx = _symmetric(C)
    Sxx = Cxx - np.outer(a, a / n)
    if not _accurate_raw(np.diag(Cxx), np.diag(Sxx)):
        return None
    yd = y - sy
    b = float(yd.sum())
    return (float(n), a / n, sy + b / n, Sxx, G[:, 0] - a * (b / n), float(yd @ yd - b * b / n))


def _shifted_moments(X, y, w, work, near):
    """Moments of one block from the product of ``[X - s, y - s_y, 1]``.

    The shift ``s`` is the mean of ``near`` (the moments merged so far, close
    to this block's mean) or this block's own mean; a rank-one update turns
    the shifted sums into centred ones.
    """
    m, p = X.shape
    sw = float(m if w is None else w.sum())
    if sw == 0:
        return None
    sx, sy = (X.mean(axis=0, dtype=np.float64), float(y.mean())) if near is None \
        else (near[1], near[2])
    # The shift actually subtracted (rounded to X's dtype) is the one to add back.
    sx = sx.astype(X.dtype).astype(np.float64)
    Z = work.Z[:m]
    np.subtract(X, sx.astype(X.dtype), out=Z[:, :p])
    yd = y - sy
    Z[:, p] = yd
    Z[:, p + 1] = 1
    if w is None:
        b, yy = float(yd.sum()), float(yd @ yd)
    else:
        # Rows times sqrt(w), the column of ones included (it becomes sqrt(w)):
        # one in-place pass over the contiguous buffer.
        Z *= np.sqrt(w).astype(X.dtype)[:, None]
        wy = w * yd
        b, yy = float(wy.sum()), float(wy @ yd)
    # Upper triangle of [Xs, ys, 1]' W [Xs, ys, 1]: Xs'W Xs, Xs'W ys and Xs'w.
    C = Z.T @ Z  # syrk inside NumPy, GIL released
    a = C[:p, p + 1].astype(np.float64)
    Sxx = _symmetric(C[:p, :p]) - np.outer(a, a / sw)
    Sxy = C[:p, p].astype(np.float64) - a * (b / sw)
    return (sw, sx + a / sw, sy + b / sw, Sxx, Sxy, yy - b * b / sw)


def take_columns(X, columns):
    """``X[:, columns]`` of a chunk, ready for :func:`rows_moments`.

    Dense: a fresh C-ordered (so aligned) copy. Sparse: the CSR of those
    columns (still sparse; :func:`rows_moments` takes sparse products).
    """
    if is_sparse(X):
        return as_csr(X)[:, columns]
    return np.ascontiguousarray(X[:, columns])


@chunk_kernel
def qr_chunk(index, X, y, w, spec: EvalSpec, offset=None):
    """R factor of the chunk-centred, weighted ``[X, y - offset]`` (for tall-skinny QR)."""
    n = X.shape[0]
    out = {"n": n}
    if n == 0:
        out["qr"] = None
        return out
    target = y.astype(np.float64) if offset is None else y.astype(np.float64) - offset
    ww = np.ones(n) if w is None else w
    if is_sparse(X):
        out["qr"] = _sparse_qr(X, target, ww)
        return out
    out["qr"] = _qr_of(np.column_stack([X.astype(np.float64), target]), ww)
    return out


def _qr_of(Z, ww):
    """``(sw, mean, R)`` of the weighted, centred rows ``Z``; None without weight."""
    sw = float(ww.sum())
    if sw == 0:
        return None
    mean = (ww @ Z) / sw
    Zc = (Z - mean) * np.sqrt(ww)[:, None]
    R = scipy.linalg.qr(Zc, mode="r", check_finite=False)[0][: Z.shape[1]]
    return (sw, mean, R)


def _sparse_qr(X, y, ww):
    """TSQR of a CSR chunk, one dense row block of about ``BLOCK_BYTES`` at a time.

    QR fills in, so it cannot stay sparse; only the block being factored is
    dense (``rows_per_block(p + 1)`` rows), and the blocks' factors are
    merged as chunks are (:func:`_merge_two_qr`).
    """
    import scipy.sparse as sp

    n, p = X.shape
    rows = rows_per_block(p + 1, 8)
    acc = None
    for start in range(0, n, rows):
        Xb = X[start:start + rows]
        # A plain CSR over the block's arrays: only this block becomes dense.
        dense = sp.csr_matrix((Xb.data, Xb.indices, Xb.indptr), shape=Xb.shape).toarray()
        Z = np.column_stack([dense.astype(np.float64, copy=False),
                             y[start:start + rows].astype(np.float64)])
        acc = _merge_qr([acc, _qr_of(Z, ww[start:start + rows])])
    return acc


# ---------------------------------------------------------------- merging


def _fold_present(merge_two):
    """Turn a merge of two partials into a merge of a list, skipping empty ones."""

    def merge(parts):
        present = [part for part in parts if part is not None]
        return functools.reduce(merge_two, present) if present else None

    return merge


def _merge_two_moments(a, b):
    """Chan et al.'s parallel update of weighted means and centred cross products."""
    wa, ma, mya, Sa, sa, ya = a
    wb, mb, myb, Sb, sb, yb = b
    w = wa + wb
    dx, dy = mb - ma, myb - mya
    c = wa * wb / w
    return (w, ma + dx * (wb / w), mya + dy * (wb / w), Sa + Sb + c * np.outer(dx, dx),
            sa + sb + c * dx * dy, ya + yb + c * dy * dy)


def _merge_two_qr(a, b):
    """Stack two centred R factors plus the row that re-centres them; re-factor."""
    wa, ma, Ra = a
    wb, mb, Rb = b
    w = wa + wb
    shift = np.sqrt(wa * wb / w) * (mb - ma)
    R = scipy.linalg.qr(np.vstack([Ra, Rb, shift]), mode="r", check_finite=False)[0]
    return (w, ma + (mb - ma) * (wb / w), R[: Ra.shape[1]])


merge_moments = _fold_present(_merge_two_moments)
_merge_qr = _fold_present(_merge_two_qr)


def _merge_class_stats(parts):
    out = {}
    for part in parts:
        for label, (sw, sx) in part.items():
            if label in out:
                out[label] = (out[label][0] + sw, out[label][1] + sx)
            else:
                out[label] = (sw, sx)
    return out


def _merge_dicts(parts):
    out = {}
    for part in parts:
        out.update(part)
    return out


def _merge_labels(parts):
    """Sum ``{label: value}`` dicts label by label (labels seen in any part)."""
    out = {}
    for part in parts:
        for label, value in part.items():
            out[label] = out[label] + value if label in out else value
    return out


def _merge_ymoments(parts):
    """Chan's merge of ``(sum w, weighted mean, sum w (y - mean)^2)``."""
    acc = None
    for part in parts:
        if part is None or part[0] == 0:
            continue
        if acc is None:
            acc = part
            continue
        wa, ma, sa = acc
        wb, mb, sb = part
        w = wa + wb
        acc = (w, ma + (mb - ma) * (wb / w), sa + sb + (mb - ma) ** 2 * wa * wb / w)
    return acc


def _elementwise_max(parts):
    return functools.reduce(np.maximum, parts)


#: The one table of merge rules, for the row engine and the column-block
#: engine alike: a key not listed is summed (``sum``: ``0 + a`` is ``a``),
#: except that a key ending in ``max`` takes the elementwise maximum.
_MERGERS = {
    "errors": lambda parts: [e for p in parts for e in p],
    "chunk_rows": _merge_dicts,
    "class_stats": _merge_class_stats,
    "holdout_labels": _merge_class_stats,
    "class_grams": _merge_labels,
    "class_gram_sw": _merge_labels,
    "offset_stats": _merge_labels,
    "holdout_offset_labels": _merge_labels,
    "labels": _merge_labels,
    "by_label": _merge_labels,
    "moments": merge_moments,
    "ymoments": _merge_ymoments,
    "qr": _merge_qr,
    "y_min": min,
    "y_max": max,
}


def merge_rule(key):
    """How the partials of ``key`` are merged (see :data:`_MERGERS`)."""
    if key in _MERGERS:
        return _MERGERS[key]
    return _elementwise_max if key.endswith("max") else sum


def bundle_chunks(xs, ys, ws):
    """Several row chunks as one value (references, not copies) for a batch task."""
    return xs, ys, ws


def run_batch(kernel, indices, bundle, spec):
    """One task over a bundle of row chunks: each through ``kernel``, then merged."""
    xs, ys, ws = bundle
    return combine([kernel(i, x, y, w, spec) for i, x, y, w in zip(indices, xs, ys, ws)])


@_quiet
def combine(parts):
    """Merge a list of partial-result dicts (one tree node of a reduction)."""
    keys = {}
    for part in parts:
        for key in part:
            keys.setdefault(key, []).append(part[key])
    return {key: merge_rule(key)(vals) for key, vals in keys.items()}


@_quiet
def combine_arrays(parts):
    """Sum a list of arrays (one tree node of a reduction of products such as ``X d``)."""
    return sum(parts)
