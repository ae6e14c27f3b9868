"""Model parallelism: the column-block engine.

When ``X`` is chunked along its columns as well as its rows, the coefficient
vector is cut like ``X``'s columns, and block ``b_j`` lives on the cluster as
a task result next to the data it multiplies. No task and not the client ever
holds the whole vector while a fit runs; the client holds scalars (step
sizes, objective values, the intercept) and the *keys* of the blocks.

Layout
------
``X_ij`` is row chunk ``i`` of column block ``j``. Two products are a pass
(one read of ``X``):

* ``rmatvec``: ``g_j = sum_i X_ij^T r_i`` -- one task per ``(i, j)``, reading
  ``X_ij`` and the per-row-chunk vector ``r_i``, tree-summed over ``i`` per
  block (optionally with the block Hessian ``X_ij^T diag(h_i) X_ij``);
* ``matvec``: ``q_i = sum_j X_ij d_j`` -- one task per ``(i, j)``, tree-summed
  over ``j`` per row chunk (the margin change of a step ``d``).

Everything else is elementwise on per-row-chunk vectors (margins, residuals)
or on coefficient blocks, or reduces them to a few scalars for the client.
Reading only block ``j`` (block coordinate descent) counts as
``p_j / n_features`` of a pass.

Rounds
------
A :class:`Round` collects the tasks of one round trip: it ends with one
submission that keeps (persists) the state the next round needs -- blocks,
margins, directions -- and fetches one small dict of scalars to the client.
Task keys are ``("daskfit-<what>-<hex>", index...)``, so the dashboard shows
``daskfit-grad``, ``daskfit-xd``, ``daskfit-solve`` ... When ``X`` is streamed
from its source (not persisted), a round holds one pass at most
(:meth:`Round.split`), so that blocks of ``X`` are consumed as they are made.
The state is made of task results, never ``scatter``-ed data: a lost worker
costs a recompute from the lineage.

The first round is the validating pass (:func:`validating_pass`): weights,
counts, label set or target range, ``X_ij^T w``, ``X_ij^T (w y)`` and the
column sums of squares per block (which give the gradient at the best
constant model and a diagonal preconditioner for free) and, on request, the
block Gram matrices. Non-finite data shows up as non-finite
partial sums and becomes one :class:`~daskfit.engine.rows.DataError` naming the
first bad row chunk, as in the row engine.

Instrumentation: every callable in :data:`OBSERVERS` is called with
``("graph", layer)`` before a round is submitted and ``("fetch", value)``
with what the client receives, so tests can check that no coefficient-sized
array ever reaches the client. Labels in :data:`COLUMN_SPACE` name the tasks
whose results live in coefficient space (shape ``(p_j, ...)``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import dask
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from .rows import (DEFAULT_SPLIT_EVERY, DataError, current_client, known_nbytes, payload_bytes,
                   persisted_once, reduction_tree)
from .placement import local_scheduler
from .._progress import PassLog
from ..kernels.chunks import (UNKNOWN_LABEL_TYPE, label_problem, chunk_input_errors, combine,
                       combine_arrays, diagnose_chunk, weighted_gram, whole_chunk_kernel)

__all__ = ["COLUMN_SPACE", "IDX", "OBSERVERS", "W", "Y", "Each", "Round",
           "ShardedEngine", "Start", "Vec", "validating_pass"]

#: Test hooks: ``observer(event, payload)`` for ``"graph"`` and ``"fetch"``.
OBSERVERS = []

#: Task labels whose results are coefficient blocks or block-sized partials.
COLUMN_SPACE = frozenset({"check-pair", "blockstats", "coef", "grad", "grad-pair", "dir",
                          "step", "cache", "solve", "extrap", "metric"})

_FLOAT = 8  # bytes per float64


# ---------------------------------------------------------------- data


# ``ShardedData`` (the column-chunked container) lives with the row one in
# ``daskfit._data``: every metadata check of the input is there.


# ---------------------------------------------------------------- graph pieces


@dataclass
class Vec:
    """Keys of per-row-chunk (``"row"``), per-block (``"block"``) or single (``"one"``) values.

    ``handles[k]`` is the persisted ``Delayed`` behind ``keys[k]`` once a round
    has kept it, ``None`` while it is a task of the round being built.
    """

    kind: str
    keys: list
    handles: list = field(default=None)

    def __post_init__(self):
        if self.handles is None:
            self.handles = [None] * len(self.keys)

    def one(self, index):
        """Element ``index`` as a ``"one"`` Vec."""
        return Vec("one", [self.keys[index]], [self.handles[index]])

    def replace(self, index, one):
        keys, handles = list(self.keys), list(self.handles)
        keys[index], handles[index] = one.keys[0], one.handles[0]
        return Vec(self.kind, keys, handles)


class _Data:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<{self.name}>"


#: Markers for task arguments: the row chunk of ``y``, of the weights, the index.
Y, W, IDX = _Data("y"), _Data("w"), _Data("index")


@dataclass(frozen=True)
class Each:
    """A literal argument that differs per index (one value per block or row chunk)."""

    values: tuple


#: Partial-result dicts merge with the row engine's rules (one table:
#: :func:`daskfit.kernels.chunks.combine`), products such as ``X d`` are summed.
merge_partials = combine
merge_arrays = combine_arrays


class Round:
    """The tasks of one round trip; :meth:`run` keeps some results and fetches one."""

    def __init__(self, engine, label):
        self.engine = engine
        self.label = label
        self.layer = {}
        self.deps = {}
        self.reads = 0.0
        self.bytes = 0

    # ------------------------------------------------------------ building
    def _name(self, what):
        return f"daskfit-{what}-{uuid.uuid4().hex}"

    def _arg(self, arg, index):
        data = self.engine.data
        if isinstance(arg, Vec):
            k = 0 if arg.kind == "one" else index
            if arg.handles[k] is not None:
                self.deps[arg.keys[k]] = arg.handles[k]
            return arg.keys[k]
        if arg is Y:
            self.deps["y"] = data.y
            return data.y.__dask_keys__()[index]
        if arg is W:
            if data.sample_weight is None:
                return None
            self.deps["w"] = data.sample_weight
            return data.sample_weight.__dask_keys__()[index]
        if arg is IDX:
            return index
        if isinstance(arg, Each):
            return arg.values[index]
        return arg

    def _xkey(self, i, j):
        self.deps["X"] = self.engine.data.X
        return self.engine.data.X.__dask_keys__()[i][j]

    def map(self, what, kind, fn, *args):
        """One task ``fn(*args)`` per row chunk (``kind="row"``) or block (``"block"``)."""
        data = self.engine.data
        n = data.n_row_chunks if kind == "row" else data.n_blocks
        name = self._name(what)
        keys = []
        for index in range(n):
            key = (name, index)
            self.layer[key] = (fn, *[self._arg(a, index) for a in args])
            keys.append(key)
        return Vec(kind, keys)

    def one(self, what, fn, *args):
        """A single task ``fn(*args)``."""
        key = (self._name(what), 0)
        self.layer[key] = (fn, *[self._arg(a, 0) for a in args])
        return Vec("one", [key])

    def tree(self, what, keys, merge):
        """Tree-reduce ``keys`` with ``merge`` and fan-in ``split_every``; one key."""
        if len(keys) == 1:
            return keys[0]
        name = self._name(f"{what}-combine")
        root, _ = reduction_tree(self.layer, keys, merge, self.engine.split_every, name,
                                 (name, 0))
        return root

    def reduce(self, what, kind, fn, *args, merge=merge_partials):
        """Map ``fn`` like :meth:`map`, then tree-reduce the results to one."""
        mapped = self.map(what, kind, fn, *args)
        return Vec("one", [self.tree(what, mapped.keys, merge)])

    def rmatvec(self, what, kernel, rows, *args, block=None, row_vectors=1,
                out_floats=lambda p: p):
        """``kernel(X_ij, rows_i, *args)`` per ``(i, j)``, tree-summed over ``i``.

        Returns a ``"block"`` Vec, or a ``"one"`` Vec when ``block`` is given
        (block coordinate descent reads that column block only).
        """
        data = self.engine.data
        blocks = range(data.n_blocks) if block is None else [block]
        name = self._name(f"{what}-pair")
        out = []
        for j in blocks:
            leaves = []
            for i in range(data.n_row_chunks):
                key = (name, i, j)
                self.layer[key] = (kernel, self._xkey(i, j), self._arg(rows, i),
                                   *[self._arg(a, j) for a in args])
                leaves.append(key)
                p_j, n_i = data.col_chunks[j], data.row_chunks[i]
                self.bytes += _FLOAT * (row_vectors * n_i + out_floats(p_j))
            out.append(self.tree(what, leaves, merge_partials))
        self.reads += sum(data.col_chunks[j] for j in blocks) / data.n_features
        return Vec("block" if block is None else "one", out)

    def matvec(self, what, kernel, directions, *args, block=None, width=1):
        """``kernel(X_ij, d_j, *args)`` (``X_ij @ d_j``) per ``(i, j)``, tree-summed over ``j``."""
        data = self.engine.data
        blocks = range(data.n_blocks) if block is None else [block]
        name = self._name(f"{what}-pair")
        out = []
        for i in range(data.n_row_chunks):
            leaves = []
            for j in blocks:
                key = (name, i, j)
                self.layer[key] = (kernel, self._xkey(i, j), self._arg(directions, j),
                                   *[self._arg(a, i) for a in args])
                leaves.append(key)
                self.bytes += _FLOAT * width * (data.col_chunks[j] + data.row_chunks[i])
            out.append(self.tree(what, leaves, merge_arrays))
        self.reads += sum(data.col_chunks[j] for j in blocks) / data.n_features
        return Vec("row", out)

    # ------------------------------------------------------------ running
    def split(self, **vecs):
        """End the round here when ``X`` is streamed; returns ``(round, vecs)``.

        Two passes in one graph let the scheduler generate (or load) the
        blocks of the second pass while the first is still being reduced, so
        streamed blocks pile up in worker memory. Streaming rounds therefore
        hold one pass each: the state the rest of the round needs is kept
        (persisted) and a new round continues from it.
        """
        if not self.engine.streaming or not self.layer:
            return self, vecs
        kept, _ = self.run(vecs, wait=True)
        return self.engine.round(self.label), kept

    def run(self, keep, fetch=None, wait=False):
        """Submit the round: persist the Vecs in ``keep``, return ``(kept, fetched)``.

        With ``wait``, return only once everything kept is computed (a
        distributed ``persist`` returns at once).
        """
        engine = self.engine
        for observer in OBSERVERS:
            observer("graph", self.layer)
        layer_name = f"daskfit-{self.label}-{uuid.uuid4().hex}"
        deps = list({id(d): d for d in self.deps.values()}.values())
        hlg = HighLevelGraph.from_collections(layer_name, self.layer, dependencies=deps)
        new_keys = []
        for vec in keep.values():
            new_keys.extend(k for k, h in zip(vec.keys, vec.handles) if h is None)
        fetch_new = fetch is not None and fetch.handles[0] is None
        if fetch_new:
            new_keys.append(fetch.keys[0])
        new_keys = list(dict.fromkeys(new_keys))
        started = time.perf_counter()
        persisted = dict(zip(new_keys, engine.persist(
            [Delayed(k, hlg, layer=layer_name) for k in new_keys])))
        kept = {name: Vec(vec.kind, list(vec.keys),
                          [h if h is not None else persisted[k]
                           for k, h in zip(vec.keys, vec.handles)])
                for name, vec in keep.items()}
        if wait and self.engine.client is not None:
            from distributed import futures_of

            from .._cluster import wait_futures

            wait_futures(self.engine.client, futures_of(list(persisted.values())))
        value = None
        if fetch is not None:
            value = engine.gather(persisted[fetch.keys[0]] if fetch_new else fetch.handles[0])
            for observer in OBSERVERS:
                observer("fetch", value)
        engine.rounds += 1
        engine.passes += self.reads
        engine.bytes_communicated += self.bytes + payload_bytes(value)
        engine.pass_log.append((self.label, round(self.reads, 6),
                                time.perf_counter() - started))
        return kept, value


# ---------------------------------------------------------------- engine


class ShardedEngine:
    """Builds and runs the rounds of a model-parallel fit; counts passes and bytes.

    Parameters
    ----------
    data : daskfit._data.ShardedData
    split_every : int, default=8
        Fan-in of every reduction tree.
    persist : {"auto", True, False}, default="auto"
        As :class:`daskfit.engine.rows.Engine`: read ``X`` into cluster memory once
        when it fits, else stream it from its source every pass.
    client : distributed.Client, optional
        Defaults to the current client; without one, Dask's threaded
        scheduler runs the rounds.
    """

    def __init__(self, data, *, split_every=DEFAULT_SPLIT_EVERY, persist="auto", client=None,
                 expected_passes=2):
        if not isinstance(split_every, int) or split_every < 2:
            raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}.")
        self.data = data
        self.split_every = split_every
        self.client = client if client is not None else current_client()
        # The row engine's persist policy (one function), on the column-chunked arrays.
        self._sources = (data.X, data.y, data.sample_weight)
        held, persisted, self.persist_reason = persisted_once(
            self._sources, persist=persist, nbytes=known_nbytes(data.X), is_lazy=True,
            client=self.client, expected_passes=expected_passes, holder=self)
        data.X, data.y, data.sample_weight = held
        #: ``X`` is read from its source every pass (not held in memory).
        self.streaming = not persisted
        self.passes = 0.0
        self.bytes_communicated = 0
        self.rounds = 0
        self.pass_log = PassLog()  # (label, passes, seconds) per round, reported as run

    def round(self, label):
        return Round(self, label)

    def release(self):
        """Drop the persisted data (a failed call's cleanup); the caller's arrays stay."""
        if not self.streaming:
            self.data.X, self.data.y, self.data.sample_weight = self._sources
            self.streaming = True

    def persist(self, delayeds):
        if not delayeds:
            return []
        if self.client is not None:
            return list(self.client.persist(delayeds))
        return list(dask.persist(*delayeds, scheduler=local_scheduler()))

    def gather(self, handle):
        if self.client is not None:
            from distributed import futures_of

            from .._cluster import wait_result

            return wait_result(self.client, futures_of(handle)[0])
        return handle.compute(scheduler="sync")

    def gather_blocks(self, vec):
        """The blocks of a ``"block"`` Vec concatenated on the client (after a fit only)."""
        parts = [self.gather(h) for h in vec.handles]
        self.bytes_communicated += sum(p.nbytes for p in parts)
        return np.concatenate(parts) if parts else np.zeros(0)


# ---------------------------------------------------------------- kernels


def encode(loss, y, classes):
    """Targets as float64 (0/1 for the logistic loss)."""
    return loss.encode(y, classes) if classes is not None else np.asarray(y, dtype=np.float64)


#: Beyond this many distinct labels a chunk is no binary target; a few are kept
#: for the error message.
_MAX_LABELS = 3


@whole_chunk_kernel
def check_rows(index, n_rows, y, w, classify):
    """First pass, per row chunk: counts, weights, target statistics, input errors."""
    out = {"n": n_rows, "errors": chunk_input_errors(index, n_rows, y, w, finite_weights=True)}
    if out["errors"]:
        return out
    ww = np.ones(n_rows) if w is None else w
    out["sw"] = float(ww.sum())
    if classify:
        problem = label_problem(y)
        if problem:
            out["errors"].append((index, problem))
            return out
        try:
            labels, codes = np.unique(y, return_inverse=True)
        except TypeError:
            out["errors"].append((index, UNKNOWN_LABEL_TYPE.format(kind="unknown")))
            return out
        sums = np.bincount(codes, weights=ww, minlength=len(labels))
        out["labels"] = {lab: float(s) for lab, s in
                         zip(labels.tolist()[:_MAX_LABELS], sums[:_MAX_LABELS])}
        out["too_many_labels"] = int(len(labels) > _MAX_LABELS)
        return out
    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        out["errors"].append(diagnose_chunk(index, None, y, None))
        return out
    if n_rows:
        out["y_min"], out["y_max"] = float(y.min()), float(y.max())
    sw = out["sw"]
    if sw > 0:
        mean = float(ww @ y) / sw
        out["ymoments"] = (sw, mean, float(ww @ (y - mean) ** 2))
    out["swy"] = float(ww @ y)
    return out


@whole_chunk_kernel
def check_pair(i, j, X, y, w, classify, gram):
    """First pass, per ``(i, j)``: ``X_ij^T w``, ``X_ij^T (w y)`` (per label), Gram."""
    n = X.shape[0]
    if w is not None and (w.shape[0] != n or not np.isfinite(w).all() or (w < 0).any()):
        return {}  # the row check reports bad weights
    ww = np.ones(n) if w is None else w
    out = {"sx": (X.T @ ww.astype(X.dtype)).astype(np.float64),
           "sxx": np.einsum("ij,ij,i->j", X, X, ww.astype(X.dtype)).astype(np.float64)}
    if y is None or y.shape[0] != n:
        return out  # the row check reports the misalignment
    if classify:
        if label_problem(y) is not None:
            return out
        try:
            labels, codes = np.unique(y, return_inverse=True)
        except TypeError:
            return out
        if len(labels) <= _MAX_LABELS:
            out["by_label"] = {
                lab: (X.T @ np.where(codes == k, ww, 0.0).astype(X.dtype)).astype(np.float64)
                for k, lab in enumerate(labels.tolist())}
        parts = list(out.get("by_label", {}).values())
    else:
        out["sxy"] = (X.T @ (ww * np.asarray(y, dtype=np.float64)).astype(X.dtype)).astype(
            np.float64)
        parts = [out["sxy"]]
    if gram:
        out["gram"] = weighted_gram(X, ww, False, nonnegative=True)
        parts.append(out["gram"])
    if not all(np.isfinite(a).all() for a in [out["sx"], out["sxx"], *parts]):
        index, message = diagnose_chunk(i, X, None if classify else y, w)
        if message == "overflow":
            message = ("The sums of X overflowed although X is finite: values too large "
                       "for float64 products; rescale the features.")
        out["errors"] = [(index, message, j)]
    return out


def block_errors(stats):
    return {"errors": stats.get("errors", [])}


def block_stats(stats):
    """Per-block first-pass sums, kept on the cluster (errors dropped)."""
    return {k: v for k, v in stats.items() if k != "errors"}


def _bundle(*pairs):
    return dict(zip(pairs[::2], pairs[1::2]))


@whole_chunk_kernel
def row_derivatives(y, w, margin, intercept, loss, classes, order):
    """Loss, ``w * dloss/draw`` (and ``w * d2loss/draw2``) of one row chunk."""
    yv = encode(loss, y, classes)
    z = margin + intercept
    lv, g, h = loss.derivatives(yv, z, hessian=order >= 2)
    r = g if w is None else g * w
    out = {"r": r, "loss": float(lv.sum() if w is None else w @ lv), "gc": float(r.sum())}
    if order >= 2:
        hw = h if w is None else h * w
        out["h"] = hw
        out["hc"] = float(hw.sum())
    out["bad"] = int(not (np.isfinite(out["loss"]) and np.isfinite(r).all()))
    return out


_ROW_SCALARS = ("loss", "gc", "hc", "bad")


def row_scalars(derivs):
    """The scalars of :func:`row_derivatives` (what the client needs of a row chunk)."""
    return {k: derivs[k] for k in _ROW_SCALARS if k in derivs}


@whole_chunk_kernel
def pair_gradient(X, derivs, order, with_stats):
    """``X_ij^T r_i`` and, for ``order >= 2``, ``X_ij^T diag(h_i) X_ij`` and ``X_ij^T h_i``.

    With ``with_stats`` (one block per pass) the row chunk's scalars ride
    along, so the reduction tree of that block also sums the loss: no tree of
    its own over the row chunks.
    """
    out = {"g": (X.T @ derivs["r"].astype(X.dtype)).astype(np.float64)}
    if with_stats:
        out.update(row_scalars(derivs))
    if order >= 2:
        h = derivs["h"]
        out["H"] = weighted_gram(X, h, False, nonnegative=True)
        out["u"] = (X.T @ h.astype(X.dtype)).astype(np.float64)
    return out


@whole_chunk_kernel
def pair_matvec(X, d):
    """``X_ij @ d_j`` (``d_j`` of shape ``(p_j,)`` or ``(p_j, k)``)."""
    return (X @ np.asarray(d).astype(X.dtype)).astype(np.float64)


@whole_chunk_kernel
def row_line_search(y, w, margin, intercept, q, dc, cols, taus, loss, classes):
    """Loss changes of one row chunk at ``margin + tau * (q[:, col] + dc[col])``.

    One entry per candidate ``(col, tau)``; ``"adl"`` holds the sum of the
    absolute per-row changes (the scale of their round-off).
    """
    yv = encode(loss, y, classes)
    z = margin + intercept
    q = q if q.ndim == 2 else q[:, None]
    dl, adl = np.empty(len(cols)), np.empty(len(cols))
    for k, (col, tau) in enumerate(zip(cols, taus)):
        d = loss.loss_difference(yv, z, tau * (q[:, col] + dc[col]))
        dl[k] = d.sum() if w is None else w @ d
        adl[k] = np.abs(d).sum() if w is None else w @ np.abs(d)
    dl[~np.isfinite(dl)] = np.inf
    return {"dl": dl, "adl": adl}


@whole_chunk_kernel
def row_loss(y, w, margin, intercept, loss, classes):
    """Loss sum of one row chunk at ``margin + intercept``."""
    lv = loss.value(encode(loss, y, classes), margin + intercept)
    return {"loss": float(lv.sum() if w is None else w @ lv)}


def zeros(n):
    return np.zeros(n)


@whole_chunk_kernel
def axpy(x, d, col, tau):
    """``x + tau * d[:, col]`` (``d`` of shape ``(n,)`` or ``(n, k)``)."""
    d = d if d.ndim == 1 else d[:, col]
    return x + tau * d


@whole_chunk_kernel
def extrapolate(x, previous, beta):
    """``x + beta * (x - previous)``."""
    return x + beta * (x - previous)


# ---------------------------------------------------------------- first pass


@dataclass
class Start:
    """What the validating pass found, and the best constant model.

    ``intercept`` is ``c0`` (the optimal intercept with all coefficients at
    zero when ``fit_intercept``, else 0); ``mu0`` is ``dloss/draw + y`` there,
    so the raw gradient of block ``j`` at ``(0, c0)`` is
    ``mu0 * X_j^T w - X_j^T (w y)``.
    """

    loss: object
    classes: object
    penalty: object
    n_samples: int
    sum_weights: float
    fit_intercept: bool
    intercept: float
    mu0: float
    loss0: float  # sum_i w_i loss(y_i, c0)
    curvature: float  # d2loss/draw2 at the constant model (mean over rows)
    swy: float
    blockstats: Vec  # per block: sx, sxy or by_label, gram


def validating_pass(engine, loss, penalty_rule, fit_intercept, *, gram):
    """The first round: read ``X`` once, validate, keep the per-block sums.

    Raises
    ------
    DataError
        Bad input (NaN/inf, negative weights, label set, target range,
        misaligned chunks), the first bad row chunk named.
    """
    data = engine.data
    classify = loss.is_classification
    rnd = engine.round("check")
    rows = rnd.reduce("check", "row", check_rows, IDX, Each(data.row_chunks), Y, W, classify)
    name = rnd._name("check-pair")
    per_block = []
    for j in range(data.n_blocks):
        leaves = []
        for i in range(data.n_row_chunks):
            key = (name, i, j)
            rnd.layer[key] = (check_pair, i, j, rnd._xkey(i, j), rnd._arg(Y, i),
                              rnd._arg(W, i), classify, gram)
            leaves.append(key)
            p_j = data.col_chunks[j]
            rnd.bytes += _FLOAT * (2 * data.row_chunks[i] + 4 * p_j + (p_j * p_j if gram else 0))
        per_block.append(rnd.tree("blockstats", leaves, merge_partials))
    rnd.reads += 1.0
    merged = Vec("block", per_block)
    kept_stats = rnd.map("blockstats", "block", block_stats, merged)
    errors = rnd.reduce("check-errors", "block", block_errors, merged)
    fetch = rnd.one("check-summary", _bundle, "rows", rows, "blocks", errors)
    kept, summary = rnd.run({"stats": kept_stats}, fetch)
    rows = summary["rows"]
    # Row-level errors (y, weights) first: they also explain odd sums of X.
    errors = rows["errors"] + summary["blocks"]["errors"]
    if errors:
        index, message, *block = sorted(errors, key=lambda e: e[0])[0]
        where = f", column block {block[0]}" if block else ""
        raise DataError(f"{message} (first found in row chunk {index} of "
                        f"{data.n_row_chunks}{where})")
    n, sw = int(rows["n"]), float(rows.get("sw", 0.0))
    if n == 0:
        raise DataError(f"Found array with 0 sample(s) (shape=(0, {data.n_features})) while "
                        "a minimum of 1 is required.")
    if not sw > 0:
        raise DataError("The sample weights sum to zero: at least one sample needs a positive "
                        "weight.")
    classes = None
    if classify:
        classes, swy = _binary_classes(rows, loss)
    else:
        swy = float(rows["swy"])
        problem = loss.validate_target(rows["y_min"], rows["y_max"])
        if problem:
            raise DataError(problem)
    c0, mu0, loss0 = loss.constant_model(sw, swy, rows.get("ymoments"), fit_intercept)
    curvature = loss.constant_curvature(mu0)
    return Start(loss=loss, classes=classes, penalty=penalty_rule(sw), n_samples=n,
                 sum_weights=sw, fit_intercept=fit_intercept, intercept=c0, mu0=mu0,
                 loss0=loss0, curvature=curvature, swy=swy, blockstats=kept["stats"])


def _binary_classes(rows, loss):
    from sklearn.utils.multiclass import type_of_target

    labels = rows.get("labels", {})
    try:
        classes = np.array(sorted(labels))
    except TypeError:
        raise DataError(UNKNOWN_LABEL_TYPE.format(kind="unknown")) from None
    kind = type_of_target(classes)
    if kind not in ("binary", "multiclass"):
        raise DataError(UNKNOWN_LABEL_TYPE.format(kind=kind))
    if len(classes) < 2:
        raise DataError("This solver needs samples of at least 2 classes in the data, but the "
                        f"data contains only one class: {classes[0]!r}.")
    if len(classes) > 2 or rows.get("too_many_labels"):
        raise ValueError(
            "The model-parallel solvers ('sharded-gd', 'bcd') fit the binary logistic model "
            f"only, but y has more than two classes ({', '.join(map(repr, classes[:3].tolist()))}, "
            "...). Merge the column chunks (X.rechunk({1: -1})) and use solver='lbfgs' or "
            "'newton' for the multinomial model.")
    return classes, float(labels[classes[1]])


def initial_gradient(stats, mu0, positive):
    """Raw ``X_j^T w (dloss/draw)`` at the constant model: ``mu0 sx - sxy``."""
    sxy = stats["sxy"] if positive is None else stats["by_label"].get(positive)
    if sxy is None:
        sxy = np.zeros_like(stats["sx"])
    return {"g": mu0 * stats["sx"] - sxy}
