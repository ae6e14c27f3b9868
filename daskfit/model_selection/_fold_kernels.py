"""The one-pass cross-validation kernel: centred moments per fold "atom".

Every row carries small integer *codes* (one per grouping, see
:mod:`._split`); the kernel returns, for every grouping ``g`` and every code
``c`` of it, the weighted centred moments ``(sw, mean_x, mean_y, Sxx, Sxy,
Syy)`` of the rows of its chunk with that code. Partials of different chunks
are merged code by code with Chan's parallel formula, so the client receives
the exact moments of every fold in one pass and builds the moments of any
union of folds (a training set, all the data) by merging them again.

The codes travel *with* the target: the engine's ``y`` slot holds a 1-D
structured array with fields ``"y"`` (the target) and ``"codes"`` (int, one
per grouping). The codes of a chunk are a literal only in that chunk's task,
never in the others, and a compact one (runs of equal codes where that is
smaller: K-fold ships a few bytes per chunk); :func:`pack_codes` expands it
next to the target chunk.

With an offset (it rides in the weight slot, see
:func:`daskfit._data.split_row_vectors`) the moments are those of
``y - offset``: least squares with an offset fits ``y - offset``. The pass
then also returns, per grouping and code, the moments of ``y`` itself
(``target_moments``, with no features): the denominators of the scores of
``y`` (R^2, explained variance) against ``X b + b0 + offset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.chunks import (
    MomentsWork,
    basic_checks,
    merge_moments,
    chunk_kernel,
    diagnose_chunk,
    rows_moments,
)

__all__ = ["FoldMoments", "FoldSpec", "fold_moments_chunk", "code_type", "codes_dtype",
           "pack_codes"]


@dataclass(frozen=True)
class FoldSpec:
    """What the fold pass computes: how many codes each grouping has."""

    n_codes: tuple


@dataclass
class FoldMoments:
    """Per grouping, per code: centred moments (or ``None`` when no rows).

    Merging is the engine's default rule, ``sum``: ``0 + a`` is ``a`` and
    ``a + b`` merges code by code with Chan's formula, so no merge rule has to
    be registered with the engine.
    """

    parts: list  # parts[g][c] -> (sw, mx, my, Sxx, Sxy, Syy) | None

    def __add__(self, other):
        if isinstance(other, (int, float)) and other == 0:
            return self
        if not isinstance(other, FoldMoments):
            return NotImplemented
        return FoldMoments([[merge_moments([a, b]) for a, b in zip(ga, gb)]
                            for ga, gb in zip(self.parts, other.parts)])

    __radd__ = __add__


def code_type(largest_code):
    """Smallest signed integer type that holds the codes."""
    for itype in (np.int8, np.int16, np.int32, np.int64):
        if largest_code <= np.iinfo(itype).max:
            return np.dtype(itype)
    raise ValueError(f"Fold code {largest_code} does not fit in 64 bits.")


def codes_dtype(n_groupings, largest_code):
    """Structured dtype of the engine's ``y`` slot: the target and its codes."""
    return np.dtype([("y", np.float64), ("codes", code_type(largest_code), (n_groupings,))])


def pack_codes(y, codes, n_rows):
    """One chunk of the ``y`` slot: the target chunk joined to its codes.

    ``codes`` is the chunk's compact literal (see
    :meth:`daskfit.model_selection._split.FoldLayout.chunk_codes`): a
    structured array with a ``"codes"`` field, either one entry per row, or,
    with a ``"start"`` field too, one entry per run of equal codes (K-fold
    without shuffling: one or two runs per chunk instead of ``n_rows``
    entries).
    """
    if len(y) != n_rows:
        raise ValueError(
            f"A chunk of y has {len(y)} rows but the fold layout expects {n_rows}: "
            "y changed between planning the folds and the pass.")
    values = codes["codes"]
    out = np.empty(n_rows, dtype=[("y", np.float64), ("codes", values.dtype, values.shape[1:])])
    out["y"] = y
    if "start" in codes.dtype.names:
        lengths = np.diff(np.append(codes["start"], n_rows))
        out["codes"] = np.repeat(values, lengths, axis=0)
    else:
        out["codes"] = values
    return out


def _runs(codes):
    """``(code, rows)`` pairs of a block, rows a slice when the codes are sorted.

    K-fold without shuffling and time-series splits give sorted codes (often
    one code per block): those rows are taken as views, without copying X.
    """
    n = len(codes)
    if n == 0:
        return []
    if codes[0] == codes[-1] and (codes == codes[0]).all():
        return [(int(codes[0]), slice(0, n))]
    steps = np.diff(codes)
    if (steps >= 0).all():
        bounds = np.concatenate([[0], np.flatnonzero(steps) + 1, [n]])
        return [(int(codes[a]), slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(ordered)) + 1, [n]])
    return [(int(ordered[a]), order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


#: Rows of X grouped by code at a time when the codes are unsorted: large
#: enough that each code's product is big (BLAS-efficient, few merges), small
#: enough that the gather stays in the last-level cache.
GATHER_BYTES = 4 * 2**20


def _gather_pieces(n_rows, n_features):
    rows = max(1, GATHER_BYTES // max(1, 8 * n_features))
    return [slice(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)]


def _target_moments(y, w):
    """``(sw, [], mean_y, 0x0, [], Syy)``: centred moments of ``y`` alone, or None."""
    if y.shape[0] == 0:
        return None
    sw = float(y.shape[0]) if w is None else float(w.sum())
    if sw == 0:
        return None
    mean = float(np.average(y, weights=w))
    r = y - mean
    syy = float(r @ r) if w is None else float((w * r) @ r)
    empty = np.zeros(0)
    return (sw, empty, mean, np.zeros((0, 0)), empty, syy)


@chunk_kernel
def fold_moments_chunk(index, X, yc, w, spec: FoldSpec, offset=None):
    """Centred weighted moments of the rows of each code, in one read of X.

    Sorted codes (K-fold without shuffling, time-series splits: a chunk holds
    one or two runs) give each run's moments from row views of the chunk, the
    same product as one moments pass (:func:`daskfit.kernels.chunks.rows_moments`).
    Unsorted codes are grouped piece by piece (:data:`GATHER_BYTES` of rows):
    each code's rows of a piece are gathered once and multiplied in one
    product. With 1 MiB pieces a diagnosis chunk (five groupings of eight
    codes) took 14x one moments pass: thousands of tiny products, each
    paying the call and merge overhead; 4 MiB pieces take 6x (1.2x per
    grouping). Larger pieces are slower again (the gather leaves the cache).

    An ``offset`` makes these the moments of ``y - offset``, and adds
    ``target_moments``, those of ``y`` (see the module's docstring).
    """
    n = X.shape[0]
    out = {"n": n, "chunk_rows": {index: n}}
    y = yc["y"]
    if not basic_checks(index, X, y, w, out):
        return out
    codes = yc["codes"]
    out["sw"] = float(n if w is None else w.sum())
    y = np.ascontiguousarray(y, dtype=np.float64)
    raw_y = y
    if offset is not None:
        y = y - offset
    parts = [[None] * k for k in spec.n_codes]
    targets = None if offset is None else [[None] * k for k in spec.n_codes]
    work = MomentsWork(X)
    for g, n_codes in enumerate(spec.n_codes):
        column = codes[:, g]
        if n == 0:
            continue
        if column.min() < 0 or column.max() >= n_codes:
            bad = int(column.min() if column.min() < 0 else column.max())
            out["errors"] = [(index, f"Fold code {bad} out of range: the fold "
                              "layout does not match the data.")]
            return out
        sorted_codes = n < 2 or bool(np.all(column[1:] >= column[:-1]))
        pieces = [slice(0, n)] if sorted_codes else _gather_pieces(n, X.shape[1])
        for piece in pieces:
            Xp, yp, wp = X[piece], y[piece], None if w is None else w[piece]
            for code, rows in _runs(column[piece]):
                m = rows_moments(Xp[rows], yp[rows], None if wp is None else wp[rows], work)
                parts[g][code] = merge_moments([parts[g][code], m])
                if targets is not None:
                    t = _target_moments(raw_y[piece][rows], None if wp is None else wp[rows])
                    targets[g][code] = merge_moments([targets[g][code], t])
    out["fold_moments"] = FoldMoments(parts)
    if targets is not None:
        out["target_moments"] = FoldMoments(targets)
    finite = all(m is None or (np.isfinite(m[3]).all() and np.isfinite(m[4]).all()
                               and np.isfinite(m[5]))
                 for group in parts for m in group)
    if not finite:
        out["errors"] = [diagnose_chunk(index, X, raw_y, w, offset)]
    return out
