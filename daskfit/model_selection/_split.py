"""Cross-validation splits on chunked data, without moving the training data.

A scikit-learn splitter runs on the client over *row numbers*: it needs only
``n_samples`` (known from the chunk sizes), and ``y`` or ``groups`` when it
stratifies or groups (``n`` values, computed once). Its folds become per-row
integer *codes*:

- **atoms** (K-fold, group K-fold, stratified K-fold, time-series splits):
  rows with the same train/test role in every split share one code, so each
  row is read once and every training set is a union of atoms. K-fold has K
  atoms; a time-series split K + 1.
- **nested** (the learning curve: splits that share a test set and whose
  training sets grow one inside the next): one grouping per test set, a
  row's code is the first of those splits that trains on it (``m`` for the
  test set, ``m + 1`` for neither), so each row is read once per test set,
  not once per split.
- **per split** (shuffle splits, whose rows fall in many role patterns):
  grouping ``s`` gives every row code 0 (train), 1 (test) or 2 (neither) in
  split ``s``; each row is read once per split, still in one pass.

The codes never travel in the graph when the client can say how to remake
them: a splitter whose folds follow from ``n_samples`` and ``y`` alone (an
int ``random_state`` or no shuffling, no ``groups``) is a
:class:`SplitRecipe`, and ONE task rebuilds the layout's codes on a worker
(from ``y``'s chunks, already on the cluster), checks them against the
client's digest, and hands each chunk task its slice: the graph holds the
recipe (bytes), not ``n`` codes. Codes that cannot be remade (an iterable
of row numbers, a splitter seeded by a ``RandomState``, group splitters)
reach the workers by ``Client.scatter``, chunk by chunk: the graph holds
futures. A diagnosis (:class:`DiagnosisSplits`) codes each row once per fold
for all of its parts (folds, learning curve, validation curve) and makes
those codes the same two ways. For Dask input with unknown chunk sizes (Dask DataFrames), the chunk
sizes come from one cheap pass over ``y`` alone (``n`` floats to the client),
which also serves a stratified splitter.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import uuid
from dataclasses import dataclass

import dask.array as da
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    LeaveOneGroupOut,
    LeaveOneOut,
    LeavePGroupsOut,
    LeavePOut,
    PredefinedSplit,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    ShuffleSplit,
    StratifiedKFold,
    StratifiedShuffleSplit,
    TimeSeriesSplit,
    check_cv,
)
from sklearn.utils import check_random_state

from .._data import ALIGN_HINT, ChunkedData, co_partition, is_dask_collection
from ..engine.rows import compute
from ..kernels.chunks import merge_moments
from ._fold_kernels import code_type, codes_dtype, pack_codes

__all__ = ["CodesPlan", "DiagnosisSplits", "FoldLayout", "SeededSplits", "SplitRecipe",
           "fold_pass_data", "nested_codes", "resolve_splits", "take_rows", "train_test_split"]

#: Splitters whose folds depend on n_samples (and groups) only, never on y:
#: for these the target is read on the client only when chunk sizes are unknown.
_TARGET_FREE = (KFold, GroupKFold, ShuffleSplit, GroupShuffleSplit, TimeSeriesSplit,
                LeaveOneOut, LeavePOut, LeaveOneGroupOut, LeavePGroupsOut,
                PredefinedSplit, RepeatedKFold)

#: Role patterns up to this many (per split) are read once per row as
#: "atoms"; beyond it (shuffle splits) each split gets its own codes, which
#: reads each row once per split but keeps the partial results small.
ATOMS_PER_SPLIT = 4
ATOMS_EXTRA = 8


def needs_target(cv, classifier):
    """Whether the splitter must see ``y`` (stratification, unknown splitters)."""
    if isinstance(cv, numbers.Integral) or cv is None:
        return classifier  # check_cv stratifies classifiers
    if hasattr(cv, "split"):
        return not isinstance(cv, _TARGET_FREE)
    return False  # an iterable of (train, test) pairs


def _vector_numpy(v):
    if v is None:
        return None
    if is_dask_collection(v):
        (v,) = compute(v)
    return np.asarray(v)


def with_row_chunks(arr, lengths):
    """The same Dask array with its (unknown) row chunk sizes filled in."""
    if arr is None or tuple(arr.chunks[0]) == tuple(lengths):
        return arr
    return da.Array(arr.dask, arr.name, (tuple(lengths),) + arr.chunks[1:], meta=arr._meta)


def _known(arr):
    return not any(math.isnan(c) for c in arr.chunks[0])


def align_rows(arr, lengths):
    """A Dask array with row chunks ``lengths``: filled in when unknown, else rechunked."""
    if not _known(arr):
        if arr.numblocks[0] != len(lengths):
            raise ValueError(
                f"An input has {arr.numblocks[0]} row chunks of unknown size where "
                f"{len(lengths)} are expected: take all inputs from the same Dask DataFrame.")
        return with_row_chunks(arr, lengths)
    if tuple(arr.chunks[0]) == tuple(lengths):
        return arr
    if arr.shape[0] != sum(lengths):
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{sum(lengths)}, {arr.shape[0]}].")
    return arr.rechunk({0: tuple(lengths)})


def row_lengths(X, y, need_y):
    """Row chunk sizes of ``X`` and, when needed, ``y`` on the client.

    Returns ``(lengths or None, y values or None, target_passes)``.
    ``lengths`` is ``None`` for in-memory ``X``. Unknown chunk sizes cost one
    pass over ``y`` (or, without a Dask ``y``, one pass returning only the
    chunk lengths of ``X``); so does a splitter that needs a Dask ``y``.
    """
    if not is_dask_collection(X):
        return None, (_vector_numpy(y) if need_y else None), 0
    y_lazy = y is not None and is_dask_collection(y)
    if isinstance(X, da.Array) and _known(X):
        lengths = tuple(int(c) for c in X.chunks[0])
        if not need_y:
            return lengths, None, 0
        return lengths, _vector_numpy(y), int(y_lazy)
    if not y_lazy:
        return chunk_lengths(X), (_vector_numpy(y) if need_y else None), 1
    yarr = y if isinstance(y, da.Array) else y.to_dask_array()
    if _n_row_blocks(X) != yarr.numblocks[0]:
        raise ValueError(
            f"X has {_n_row_blocks(X)} row chunks of unknown size but y has "
            f"{yarr.numblocks[0]}: they cannot be aligned. {ALIGN_HINT}")
    values = compute(*yarr.to_delayed().ravel())
    lengths = tuple(len(v) for v in values)
    return lengths, np.concatenate([np.asarray(v) for v in values]), 1


def _n_row_blocks(a):
    return a.numblocks[0] if isinstance(a, da.Array) else a.npartitions


def chunk_lengths(obj):
    """Row counts of the chunks of a Dask collection (one pass; only ints travel)."""
    if isinstance(obj, da.Array):
        col = obj if obj.ndim == 1 else obj[:, 0]
        counts = col.map_blocks(_len_array, chunks=((1,) * col.numblocks[0],),
                                dtype=np.int64)
        (values,) = compute(counts)
    else:
        (values,) = compute(obj.map_partitions(len))
    return tuple(int(v) for v in np.asarray(values))


def _len_array(block):
    return np.array([len(block)], dtype=np.int64)


def resolve_splits(cv, n_samples, y=None, groups=None, *, classifier=False):
    """The splitter's ``(train, test)`` row numbers, computed on the client.

    The splitter sees a zero-byte stand-in for ``X`` of ``n_samples`` rows,
    ``y`` (when given) and ``groups``.
    """
    splitter = check_cv(cv, y, classifier=classifier)
    placeholder = np.broadcast_to(np.zeros((1, 1), dtype=bool), (n_samples, 1))
    splits = []
    for train, test in splitter.split(placeholder, y, groups):
        train = np.asarray(train, dtype=np.intp)
        test = np.asarray(test, dtype=np.intp)
        splits.append((train, test))
    if not splits:
        raise ValueError(f"The cross-validation splitter {splitter!r} produced no splits.")
    return splits


class KFoldSplits:
    """The ``(train, test)`` row numbers of ``KFold(n_splits)`` without shuffling.

    Built on demand from the fold sizes scikit-learn documents (the first
    ``n_samples % n_splits`` folds have one row more, folds are consecutive),
    so planning a K-fold pass over millions of rows allocates nothing.
    ``tests/test_moments.py`` checks it against ``KFold.split``.
    """

    def __init__(self, n_samples, n_splits):
        sizes = np.full(n_splits, n_samples // n_splits, dtype=np.int64)
        sizes[: n_samples % n_splits] += 1
        self.n_samples = n_samples
        self.bounds = np.concatenate([[0], np.cumsum(sizes)])

    def __len__(self):
        return len(self.bounds) - 1

    def __getitem__(self, s):
        if not -len(self) <= s < len(self):
            raise IndexError(s)
        s %= len(self)
        a, b = int(self.bounds[s]), int(self.bounds[s + 1])
        train = np.concatenate([np.arange(a, dtype=np.intp),
                                np.arange(b, self.n_samples, dtype=np.intp)])
        return train, np.arange(a, b, dtype=np.intp)

    def __iter__(self):
        return (self[s] for s in range(len(self)))


def plain_kfold(splitter, n_samples):
    """``KFoldSplits`` when ``splitter`` is a plain, unshuffled ``KFold``; else None."""
    if type(splitter) is KFold and not splitter.shuffle and n_samples >= splitter.n_splits:
        return KFoldSplits(n_samples, splitter.n_splits)
    return None


@dataclass
class FoldLayout:
    """Per-row codes for one pass and how to rebuild each split from them.

    The codes are stored as runs: rows ``starts[r]`` up to the next start
    all have codes ``run_codes[r]`` (one per grouping). K-fold without
    shuffling has one run per fold, so planning the pass and shipping its
    codes cost next to nothing; shuffled folds have about one run per row.
    ``train[s]`` / ``test[s]`` list the ``(grouping, code)`` parts whose
    union is split ``s``'s training / validation set; ``total`` the parts
    that make up all rows.
    """

    starts: np.ndarray
    run_codes: np.ndarray
    n_samples: int
    n_codes: tuple
    train: list
    test: list
    total: list
    mode: str

    @property
    def n_splits(self):
        return len(self.train)

    @property
    def codes(self):
        """Codes of every row, of shape (n_samples, n_groupings)."""
        lengths = np.diff(np.append(self.starts, self.n_samples))
        return np.repeat(self.run_codes, lengths, axis=0)

    @classmethod
    def from_splits(cls, splits, n_samples):
        S = len(splits)
        # Rows are grouped into runs of one role pattern (0 neither, 1 train,
        # 2 test, per split) before anything is counted, so K-fold costs a
        # handful of runs rather than n rows.
        starts, roles = _role_runs(splits, n_samples)
        atom_roles, run_atom = _patterns(roles)
        n_atoms = len(atom_roles)
        if n_atoms <= ATOMS_PER_SPLIT * S + ATOMS_EXTRA:
            run_codes = run_atom.reshape(-1, 1).astype(code_type(n_atoms - 1))
            starts, run_codes = _merge_equal_runs(starts, run_codes)
            return cls(
                starts=starts, run_codes=run_codes, n_samples=n_samples, n_codes=(n_atoms,),
                train=[[(0, a) for a in np.flatnonzero(atom_roles[:, s] == 1)] for s in range(S)],
                test=[[(0, a) for a in np.flatnonzero(atom_roles[:, s] == 2)] for s in range(S)],
                total=[(0, a) for a in range(n_atoms)], mode="atoms")
        nested = _nested_layout(splits, n_samples)
        if nested is not None:
            return nested
        # Role 1 (train) -> code 0, 2 (test) -> 1, 0 (neither) -> 2.
        run_codes = np.array([2, 0, 1], dtype=np.int8)[roles]
        return cls(starts=starts, run_codes=run_codes, n_samples=n_samples,
                   n_codes=(3,) * S, train=[[(s, 0)] for s in range(S)],
                   test=[[(s, 1)] for s in range(S)], total=[(0, 0), (0, 1), (0, 2)],
                   mode="per-split")

    @classmethod
    def from_kfold(cls, splits: KFoldSplits):
        """The layout of plain K-fold from its fold bounds: fold ``a`` is atom ``a``.

        The same layout as :meth:`from_splits` builds from the row numbers
        (the atoms' order follows the pattern ``sum_s role_s 3**s``, which for
        K-fold is the fold order), without reading them.
        """
        k = len(splits)
        return cls(starts=splits.bounds[:-1].astype(np.int64),
                   run_codes=np.arange(k).reshape(-1, 1).astype(code_type(k - 1)),
                   n_samples=splits.n_samples, n_codes=(k,),
                   train=[[(0, a) for a in range(k) if a != s] for s in range(k)],
                   test=[[(0, s)] for s in range(k)],
                   total=[(0, a) for a in range(k)], mode="atoms")

    def chunk_codes(self, start, stop):
        """The compact literal of the codes of rows ``start:stop`` (one chunk).

        A structured array with a ``"codes"`` field: per run of equal codes
        (with a ``"start"`` field, relative to the chunk) when that is
        smaller, else per row (``n_groupings`` small ints each). Expanded by
        :func:`._fold_kernels.pack_codes` inside the chunk's task.
        """
        first = max(int(np.searchsorted(self.starts, start, side="right")) - 1, 0)
        last = int(np.searchsorted(self.starts, stop, side="left"))
        run_codes = self.run_codes[first:last]
        local = np.maximum(self.starts[first:last] - start, 0)
        field = ("codes", run_codes.dtype, run_codes.shape[1:])
        per_row = (stop - start) * run_codes.itemsize * run_codes.shape[1]
        if len(local) * (8 + run_codes.itemsize * run_codes.shape[1]) < per_row:
            out = np.empty(len(local), dtype=[("start", np.int64), field])
            out["start"], out["codes"] = local, run_codes
            return out
        out = np.empty(stop - start, dtype=[field])
        out["codes"] = np.repeat(run_codes, np.diff(np.append(local, stop - start)), axis=0)
        return out

    def assemble(self, parts):
        """Merge the pass's parts into per-split train / test and total moments."""

        def merged(members):
            return merge_moments([parts[g][c] for g, c in members])

        train = [merged(m) for m in self.train]
        test = [merged(m) for m in self.test]
        for s, (tr, te) in enumerate(zip(train, test)):
            if tr is None or te is None:
                which = "training" if tr is None else "validation"
                raise ValueError(
                    f"The {which} set of split {s} has zero total sample weight; "
                    "use other folds or positive weights.")
        return train, test, merged(self.total)


def _nested_layout(splits, n_samples):
    """The "nested" :class:`FoldLayout` of ``splits``, or None when they are not nested.

    Splits are grouped by test set; within a group, ordered by training size,
    each training set must contain the previous one. Row codes of a group:
    ``j`` for rows first trained on by its ``j``-th split, ``m`` (its number
    of splits) for the test rows, ``m + 1`` for the others.
    """
    groups = {}
    for s, (_, test) in enumerate(splits):
        groups.setdefault(_codes_digest(np.sort(test)), []).append(s)
    if len(groups) == len(splits):
        return None   # no test set shared: nothing to nest
    members = [sorted(g, key=lambda s: len(splits[s][0])) for g in groups.values()]
    largest = max(len(m) for m in members)
    codes = np.empty((n_samples, len(members)), dtype=code_type(largest + 1))
    train, test = [None] * len(splits), [None] * len(splits)
    for g, group in enumerate(members):
        m = len(group)
        column = np.full(n_samples, m + 1, dtype=codes.dtype)
        column[splits[group[0]][1]] = m
        for j, s in enumerate(group):
            tr = splits[s][0]
            fresh = tr[column[tr] == m + 1]
            column[fresh] = j
            # Nested: every training row is coded <= j, and no other row is.
            if np.any(column[tr] > j) or np.count_nonzero(column <= j) != len(tr):
                return None
            train[s] = [(g, c) for c in range(j + 1)]
            test[s] = [(g, m)]
        codes[:, g] = column
    starts = _run_starts(np.any(codes[1:] != codes[:-1], axis=1))
    return FoldLayout(starts=starts, run_codes=codes[starts], n_samples=n_samples,
                      n_codes=tuple(len(m) + 2 for m in members), train=train, test=test,
                      total=[(0, c) for c in range(len(members[0]) + 2)], mode="nested")


def _run_starts(changes):
    """First row of each run, from ``changes[i] = row i + 1 differs from row i``."""
    return np.concatenate([[0], np.flatnonzero(changes) + 1]).astype(np.int64)


def _merge_equal_runs(starts, run_codes):
    """Drop run boundaries between runs with equal codes."""
    keep = np.concatenate([[True], np.any(run_codes[1:] != run_codes[:-1], axis=1)])
    return starts[keep], run_codes[keep]


def _patterns(roles):
    """Distinct rows of ``roles`` (sorted) and each row's pattern number."""
    S = roles.shape[1]
    if S > 39:
        return np.unique(roles, axis=0, return_inverse=True)
    # The pattern as one integer (3**39 < 2**63): a sort of integers instead
    # of rows.
    key = np.zeros(len(roles), dtype=np.int64)
    for s in range(S):
        key += roles[:, s].astype(np.int64) * 3**s
    patterns, inverse = np.unique(key, return_inverse=True)
    return (patterns[:, None] // (3 ** np.arange(S, dtype=np.int64))) % 3, inverse.ravel()


#: Index sets with more ranges of consecutive rows than n_samples / this are
#: marked row by row (shuffled folds); fewer (K-fold, time-series splits) are
#: handled as ranges.
RANGES_PER_ROW_LIMIT = 64


def _ranges(idx):
    """``(starts, stops)`` of the ranges of consecutive rows of a strictly increasing ``idx``.

    ``None`` when ``idx`` is not strictly increasing (then it may repeat rows).
    """
    if len(idx) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    steps = np.diff(idx)
    if len(steps) and steps.min() <= 0:
        return None
    breaks = np.flatnonzero(steps != 1)
    return (np.concatenate([idx[:1], idx[breaks + 1]]),
            np.concatenate([idx[breaks] + 1, idx[-1:] + 1]))


def _check_range(s, name, idx, n_samples):
    if len(idx) and (idx.min() < 0 or idx.max() >= n_samples):
        raise ValueError(f"Split {s}: {name} indices out of range for {n_samples} rows.")


def _role_runs(splits, n_samples):
    """``(starts, roles)``: runs of rows with one role pattern, and that pattern.

    ``roles[r, s]`` is 0 (neither), 1 (train) or 2 (test) for the rows of
    run ``r`` in split ``s``. Splits given as sorted indices with few ranges
    of consecutive rows are handled range by range; others row by row.
    """
    S = len(splits)
    ranges = []
    for s, (train, test) in enumerate(splits):
        for name, idx in (("train", train), ("test", test)):
            _check_range(s, name, idx, n_samples)
        pair = (_ranges(train), _ranges(test))
        if None in pair or sum(len(r[0]) for r in pair) > n_samples // RANGES_PER_ROW_LIMIT:
            return _role_runs_by_row(splits, n_samples)
        ranges.append(pair)
    edges = [np.array([0], dtype=np.int64)]
    for pair in ranges:
        for starts, stops in pair:
            edges += [starts, stops]
    bounds = np.unique(np.concatenate(edges))
    starts = bounds[bounds < n_samples].astype(np.int64)
    roles = np.zeros((len(starts), S), dtype=np.int8)
    for s, pair in enumerate(ranges):
        inside = []
        for role, (r_starts, r_stops) in zip((1, 2), pair):
            i = np.searchsorted(r_starts, starts, side="right") - 1
            hit = (i >= 0) & (starts < r_stops[np.maximum(i, 0)]) if len(r_starts) \
                else np.zeros(len(starts), dtype=bool)
            roles[hit, s] = role
            inside.append(hit)
        if np.any(inside[0] & inside[1]):
            raise ValueError(f"Split {s}: some rows are in both the training and the test set.")
    return starts, roles


def _role_runs_by_row(splits, n_samples):
    """:func:`_role_runs` for unsorted or scattered indices: one role per row."""
    roles = np.empty((n_samples, len(splits)), dtype=np.int8)
    mark = np.empty(n_samples, dtype=np.int8)
    for s, (train, test) in enumerate(splits):
        _mark_split(s, train, test, n_samples, mark)
        roles[:, s] = mark
    starts = _run_starts(np.any(roles[1:] != roles[:-1], axis=1))
    return starts, roles[starts]


def _mark_split(s, train, test, n_samples, mark):
    """Write split ``s``'s roles into ``mark`` (0 neither, 1 train, 2 test), checking it.

    Folds must be sets of rows in range, and train and test disjoint. A
    repeat shows as fewer marked rows than indices.
    """
    mark[:] = 0
    for name, idx, role in (("train", train, 1), ("test", test, 2)):
        _check_range(s, name, idx, n_samples)
        if role == 2 and len(idx) and mark[idx].any():
            raise ValueError(f"Split {s}: some rows are in both the training and the test set.")
        mark[idx] = role
        if np.count_nonzero(mark == role) != len(idx):
            raise ValueError(
                f"Split {s}: repeated {name} indices (a bootstrap?) cannot be expressed as "
                "fold moments; use a splitter whose folds are sets of rows.")


@dataclass(frozen=True)
class SplitRecipe:
    """How to remake a list of splits anywhere: a seeded splitter, ``n``, and a transform.

    ``splits(y)`` runs the scikit-learn splitter on ``n`` row numbers (and
    ``y`` when it stratifies), then ``transform(splits, *transform_args)``
    when given (the learning curve's nested training subsets). Deterministic
    by construction (see :func:`recipe_for`), so a worker gets the same
    splits as the client; the fold pass checks that with a digest.
    """

    splitter: object
    n_samples: int
    classifier: bool = False
    needs_y: bool = False
    transform: object = None
    transform_args: tuple = ()

    def splits(self, y=None):
        splits = resolve_splits(self.splitter, self.n_samples, y, None,
                                classifier=self.classifier)
        if self.transform is not None:
            splits = self.transform(splits, *self.transform_args)
        return splits

    def then(self, transform, *args):
        """The same recipe followed by ``transform(splits, *args)`` (picklable)."""
        return SplitRecipe(self.splitter, self.n_samples, self.classifier, self.needs_y,
                           transform, args)


class SeededSplits(list):
    """Resolved ``(train, test)`` splits that also carry the :class:`SplitRecipe`
    that makes them, so a fold pass can rebuild their codes on the workers."""

    def __init__(self, splits, recipe):
        super().__init__(splits)
        self.recipe = recipe


#: Splitters that, with an int random_state (or without shuffling), give the
#: same folds for the same n_samples and y on any machine.
_SEEDABLE = (KFold, StratifiedKFold, TimeSeriesSplit, RepeatedKFold, RepeatedStratifiedKFold,
             ShuffleSplit, StratifiedShuffleSplit)


def recipe_for(cv, n_samples, groups=None, y=None, *, classifier=False):
    """A :class:`SplitRecipe` for ``cv`` when its folds can be remade from a seed, else None."""
    if groups is not None:
        return None   # group labels are client data: their codes ship as literals
    if cv is None or (isinstance(cv, numbers.Integral) and not isinstance(cv, bool)):
        splitter = check_cv(cv, y, classifier=classifier)   # as resolve_splits does
    elif isinstance(cv, _SEEDABLE):
        splitter = cv
    else:
        return None
    shuffles = isinstance(splitter, (ShuffleSplit, StratifiedShuffleSplit, RepeatedKFold,
                                     RepeatedStratifiedKFold)) or getattr(
        splitter, "shuffle", False)
    seed = getattr(splitter, "random_state", None)
    if shuffles and not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return None
    return SplitRecipe(splitter, int(n_samples), classifier,
                       needs_y=needs_target(splitter, classifier))


def _codes_digest(codes):
    return hashlib.blake2b(np.ascontiguousarray(codes).tobytes(), digest_size=16).hexdigest()


def _remade_codes(recipe, digest, *y_chunks):
    """The layout's per-row codes, rebuilt on a worker from the recipe (and ``y``)."""
    y = np.concatenate([np.asarray(c) for c in y_chunks]) if recipe.needs_y else None
    splits = recipe.splits(y)
    kfold = plain_kfold(recipe.splitter, recipe.n_samples) if recipe.transform is None \
        else None
    layout = FoldLayout.from_kfold(kfold) if kfold is not None else FoldLayout.from_splits(
        splits, recipe.n_samples)
    codes = layout.codes
    if _codes_digest(codes) != digest:
        raise RuntimeError(
            "The folds rebuilt on a worker differ from the client's (different NumPy or "
            "scikit-learn versions on the workers?): install the same versions everywhere.")
    return codes


def _codes_slice(codes, start, stop):
    """One chunk's codes in the compact literal's per-row form (see FoldLayout.chunk_codes)."""
    part = codes[start:stop]
    out = np.empty(len(part), dtype=[("codes", part.dtype, part.shape[1:])])
    out["codes"] = part
    return out


def fold_pass_data(data: ChunkedData, cv, groups, *, classifier=False):
    """Engine input for the fold pass, the layout, and the splits.

    Returns ``(ChunkedData, FoldLayout, splits, target_passes)``: ``X`` and
    the weights are the caller's (chunk sizes filled in if they were unknown);
    the ``y`` slot joins the target to the per-row codes, chunk by chunk.
    Row numbers never travel in the graph: plain K-fold ships a few bytes
    per chunk (runs), seeded folds (and a diagnosis's subsets) are remade by
    one task on a worker, and other codes reach the workers by scatter (see
    :func:`_code_chunk_tasks`).
    """
    known = data.chunks_known
    recipe = getattr(cv, "recipe", None)
    planned = isinstance(cv, DiagnosisSplits)
    need_y = needs_target(cv, classifier) if recipe is None and not planned else False
    if known and not need_y:
        lengths, y_values, target_passes = tuple(int(c) for c in data.X.chunks[0]), None, 0
    else:
        lengths, y_values, target_passes = row_lengths(data.X, data.y, need_y)
    n = int(sum(lengths))
    X = with_row_chunks(data.X, lengths)
    y = with_row_chunks(data.y, lengths)
    w = with_row_chunks(data.sample_weight, lengths)
    ykeys = list(y.__dask_keys__())
    if planned:
        splits, layout = list(cv), cv.layout
        source = cv.source if not isinstance(cv.source, CodesPlan) else (
            cv.source.codes, *(ykeys if cv.source.recipe.needs_y else []))
        n_groupings, largest = len(layout.n_codes), max(layout.n_codes) - 1
    else:
        if recipe is not None:   # resolved by the caller (SeededSplits)
            splits, layout = list(cv), FoldLayout.from_splits(list(cv), n)
        else:
            recipe = recipe_for(cv, n, groups, y_values, classifier=classifier)
            splits = plain_kfold(check_cv(cv, y_values, classifier=classifier), n)
            if splits is not None:
                layout = FoldLayout.from_kfold(splits)
            else:
                splits = resolve_splits(cv, n, y_values, _vector_numpy(groups),
                                        classifier=classifier)
                layout = FoldLayout.from_splits(splits, n)
        source = None
        # Few runs (plain K-fold) make literals of a few bytes per chunk: cheaper than a task.
        if len(layout.starts) > len(lengths) * 4:
            source = layout.codes if recipe is None else (
                _remade_codes, recipe, _codes_digest(layout.codes),
                *(ykeys if recipe.needs_y else []))
        n_groupings, largest = layout.run_codes.shape[1], max(layout.n_codes) - 1
    token = tokenize(y.name, uuid.uuid4().hex)
    name = f"daskfit-fold-y-{token}"
    if source is None:
        codes_name = f"daskfit-fold-codes-{token}"
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        layer = {(codes_name, i): layout.chunk_codes(int(offsets[i]), int(offsets[i + 1]))
                 for i in range(len(lengths))}
    else:
        codes_name, layer = _code_chunk_tasks(source, layout, y, lengths, token)
    for i, (ykey, rows) in enumerate(zip(ykeys, lengths)):
        layer[(name, i)] = (pack_codes, ykey, (codes_name, i), int(rows))
    dtype = codes_dtype(n_groupings, largest)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[y])
    packed = da.Array(graph, name, chunks=(tuple(lengths),), dtype=dtype)
    out = ChunkedData(X, packed, w, is_lazy=data.is_lazy, feature_names=data.feature_names)
    return out, layout, splits, target_passes


# ----------------------------------------------------------------- row selection


def take_rows(obj, rows, lengths):
    """Rows ``rows`` (sorted row numbers) of an array, frame or Dask collection.

    Dask collections are cut chunk by chunk: each output chunk is the
    selected rows of one input chunk, computed where that chunk lives. The
    row numbers of a chunk reach its task by ``Client.scatter`` under a
    distributed client (the graph holds a future, not ``n`` numbers: a
    cross-validation of millions of rows sent graphs of tens of MiB), and as
    a literal of that task only on the local schedulers.
    """
    if obj is None:
        return None
    if not is_dask_collection(obj):
        from sklearn.utils import _safe_indexing

        return _safe_indexing(obj, rows)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    local = [rows[(rows >= a) & (rows < b)] - a for a, b in zip(bounds[:-1], bounds[1:])]
    futures = _scattered(local)
    refs = local if futures is None else futures
    if isinstance(obj, da.Array):
        obj = align_rows(obj, lengths)
        name = f"daskfit-take-rows-{tokenize(obj.name, uuid.uuid4().hex)}"
        layer = {}
        for i, ref in enumerate(refs):
            for idx in np.ndindex(*obj.numblocks[1:]):
                layer[(name, i) + idx] = (_take, (obj.name, i) + idx, ref)
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[obj])
        chunks = (tuple(len(v) for v in local),) + obj.chunks[1:]
        return da.Array(graph, name, chunks=chunks, meta=obj._meta)
    import dask.dataframe as dd
    import pandas as pd

    # A one-column frame of row numbers, partitioned like obj (each partition
    # made from its own chunk's numbers), zipped with obj partition by partition.
    numbers_ = dd.from_map(_series, refs, meta=pd.Series([], dtype=np.intp),
                           enforce_metadata=False)
    return obj.map_partitions(_iloc, numbers_, meta=obj._meta, align_dataframes=False)


def _series(rows):
    import pandas as pd

    return pd.Series(np.asarray(rows))


def _take(block, rows):
    return block[np.asarray(rows)]


def _iloc(part, rows):
    return part.iloc[np.asarray(rows)]


# ----------------------------------------------------------------- train_test_split


def train_test_split(*arrays, test_size=0.25, random_state=None, shuffle=True):
    """Split arrays into train and test subsets; Dask data stays where it is.

    In-memory inputs go to scikit-learn's ``train_test_split``. For Dask
    arrays, DataFrames and Series (all of them Dask, with the same row
    chunking), every chunk is split where it lives:

    - ``shuffle=True``: each row goes to the test set independently with
      probability ``test_size`` (a float in (0, 1), or an int divided by
      ``n_samples``), drawn from a random generator seeded by
      ``(random_state, chunk index)``. Rows keep their order and chunk; the
      test share is ``test_size`` on average, not exactly; the split is
      reproducible for the same ``random_state`` and chunking, on any
      scheduler, and all arrays of one call get the same mask. Known chunk
      sizes stay known (the client redraws the masks to count them, without
      reading the data).
    - ``shuffle=False``: the last ``ceil(test_size * n_samples)`` rows are
      the test set, as in scikit-learn. Unknown chunk sizes (Dask DataFrames)
      cost one pass that returns only the partition lengths.

    Parameters
    ----------
    *arrays : sequence of arrays, DataFrames or Dask collections
        Of the same length.
    test_size : float or int, default=0.25
    random_state : int, RandomState instance or None, default=None
    shuffle : bool, default=True

    Returns
    -------
    splitting : list of length 2 * len(arrays)
        ``[a_train, a_test, b_train, b_test, ...]``.

    Examples
    --------
    >>> import dask.array as da
    >>> from daskfit.model_selection import train_test_split
    >>> X = da.ones((1000, 3), chunks=(250, 3))
    >>> X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    >>> X_train.numblocks, X_test.numblocks
    ((4, 1), (4, 1))
    >>> X_train.shape[0] + X_test.shape[0]
    1000
    """
    if not arrays:
        raise ValueError("At least one array required as input")
    lazy = [is_dask_collection(a) for a in arrays]
    if not any(lazy):
        from sklearn.model_selection import train_test_split as sk_split

        return sk_split(*arrays, test_size=test_size, random_state=random_state,
                        shuffle=shuffle)
    if not all(lazy):
        kinds = sorted({type(a).__name__ for a, is_lazy in zip(arrays, lazy) if not is_lazy})
        raise TypeError(
            f"train_test_split got Dask collections mixed with in-memory inputs ({kinds}): "
            "convert all to Dask (e.g. da.from_array(v, chunks=X.chunks[0])) so that each "
            "chunk is split where it lives.")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise ValueError(f"The 'shuffle' parameter must be of type bool; got {shuffle!r}.")
    arrays = co_partition(*arrays)   # columns of one Dask DataFrame: its partitions
    first = arrays[0]
    lengths = None
    if isinstance(first, da.Array) and not any(math.isnan(c) for c in first.chunks[0]):
        lengths = tuple(int(c) for c in first.chunks[0])
        arrays = [_same_row_chunks(a, lengths) for a in arrays]
    n_blocks = {_n_row_blocks(a) for a in arrays}
    if len(n_blocks) != 1:
        raise ValueError(
            f"All inputs must have the same number of row chunks, got {sorted(n_blocks)}. "
            "Take them from the same Dask DataFrame, or chunk them alike.")
    needs_n = not shuffle or isinstance(test_size, numbers.Integral)
    if lengths is None and needs_n:
        lengths = chunk_lengths(first)
        arrays = [_same_row_chunks(a, lengths) for a in arrays]
    n = None if lengths is None else int(sum(lengths))
    fraction = _test_fraction(test_size, n)
    out = []
    if not shuffle:
        n_test = math.ceil(fraction * n) if not isinstance(test_size, numbers.Integral) \
            else int(test_size)
        n_train = n - n_test
        if n_train <= 0 or n_test <= 0:
            raise ValueError(f"test_size={test_size!r} leaves an empty train or test set "
                             f"for {n} samples.")
        offsets = tuple(int(o) for o in np.concatenate([[0], np.cumsum(lengths)[:-1]]))
        rule = ("cut", n_train, offsets)
    else:
        seed = int(random_state) if isinstance(random_state, numbers.Integral) else \
            int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        rule = ("random", seed, fraction)
    counts = None
    if lengths is not None:
        counts = [int(_test_mask(rule, i, m).sum()) for i, m in enumerate(lengths)]
    for a in arrays:
        for test in (False, True):
            out.append(_select(a, rule, test, lengths, counts))
    return out


def _same_row_chunks(a, lengths):
    return align_rows(a, lengths) if isinstance(a, da.Array) else a


def _test_fraction(test_size, n):
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 0 < test_size < n:
            raise ValueError(
                f"test_size={test_size} should be either positive and smaller than the "
                f"number of samples {n} or a float in the (0, 1) range")
        return test_size / n
    if isinstance(test_size, numbers.Real) and not isinstance(test_size, bool) \
            and 0 < test_size < 1:
        return float(test_size)
    raise ValueError(
        f"test_size={test_size!r} should be either positive and smaller than the number "
        "of samples or a float in the (0, 1) range")


def _test_mask(rule, index, n_rows):
    if rule[0] == "random":
        _, seed, fraction = rule
        return np.random.default_rng([seed, index]).random(n_rows) < fraction
    _, n_train, offsets = rule
    return offsets[index] + np.arange(n_rows) >= n_train


def _select_block(block, rule, test, block_id=None):
    mask = _test_mask(rule, block_id[0], block.shape[0])
    return block[mask if test else ~mask]


def _select_partition(part, rule, test, partition_info=None):
    mask = _test_mask(rule, partition_info["number"], len(part))
    return part[mask if test else ~mask]


def _select(a, rule, test, lengths, counts):
    if isinstance(a, da.Array):
        if counts is None:
            rows = (math.nan,) * a.numblocks[0]
        else:
            rows = tuple(c if test else m - c for c, m in zip(counts, lengths))
        label = "test" if test else "train"
        return a.map_blocks(_select_block, rule, test, chunks=(rows,) + a.chunks[1:],
                            dtype=a.dtype, meta=a._meta,
                            name=f"daskfit-{label}-rows-{tokenize(a.name, rule)}")
    return a.map_partitions(_select_partition, rule, test, meta=a._meta)


# ----------------------------------------------------------------- the diagnosis's one pass


def splits_digest(splits):
    """A digest of ``(train, test)`` row numbers: checks folds remade on a worker."""
    h = hashlib.blake2b(digest_size=16)
    for train, test in splits:
        for rows in (train, test):
            h.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
            h.update(b"|")
    return h.hexdigest()


def nested_codes(splits, sizes, random_state, n_samples):
    """Per-row codes of the diagnosis's one pass, of shape (n_samples, n_splits).

    Column ``s`` codes split ``s``'s rows for the learning curve of that
    split, exactly as :func:`daskfit.overfitting._folds.learning_curve_splits`
    draws its subsets (one generator seeded by ``random_state`` permutes each
    split's training rows, in split order; the subset of size ``sizes[j]`` is
    the first ``sizes[j]`` of them): ``j`` for rows that enter at size ``j``,
    ``m = len(sizes)`` for the validation rows, ``m + 1`` for training rows in
    no subset, ``m + 2`` for rows in neither set. Built with a few scatters
    per split (no sort), so a worker makes them in a fraction of a pass.
    """
    m = len(sizes)
    codes = np.full((int(n_samples), len(splits)), m + 2, dtype=code_type(m + 2))
    rng = check_random_state(random_state)
    bounds = np.concatenate([[0], np.asarray(sizes, dtype=np.int64)])
    for s, (train, test) in enumerate(splits):
        perm = rng.permutation(train)
        column = codes[:, s]
        column[train] = m + 1
        for j in range(m):
            column[perm[bounds[j]:bounds[j + 1]]] = j
        column[test] = m
    return codes


def diagnosis_layout(n_samples, n_splits, n_sizes):
    """The :class:`FoldLayout` of :func:`nested_codes`: the K folds, then the
    learning curve's ``n_sizes * K`` (subset, fold) splits, size-major.

    Every split lies in one grouping (its fold's column), so the same layout
    serves the moments estimators and the logistic path. The codes themselves
    are not kept on the client (``starts``/``run_codes`` are None): they are
    made where the data are (see :class:`DiagnosisSplits`).
    """
    m, K = n_sizes, n_splits
    train = [[(s, c) for c in range(m)] + [(s, m + 1)] for s in range(K)]
    test = [[(s, m)] for s in range(K)]
    for j in range(m):
        train += [[(s, c) for c in range(j + 1)] for s in range(K)]
        test += [[(s, m)] for s in range(K)]
    return FoldLayout(starts=None, run_codes=None, n_samples=n_samples,
                      n_codes=(m + 3,) * K, train=train, test=test,
                      total=[(0, c) for c in range(m + 3)], mode="diagnosis")


@dataclass(frozen=True)
class CodesPlan:
    """How a worker remakes :func:`nested_codes`: the folds' recipe, the sizes,
    the learning curve's seed, and the digest of the client's folds."""

    recipe: SplitRecipe
    sizes: tuple
    random_state: int
    digest: str

    def codes(self, *y_chunks):
        y = np.concatenate([np.asarray(c) for c in y_chunks]) if self.recipe.needs_y else None
        splits = self.recipe.splits(y)
        if splits_digest(splits) != self.digest:
            raise RuntimeError(
                "The folds rebuilt on a worker differ from the client's (different NumPy or "
                "scikit-learn versions on the workers?): install the same versions everywhere.")
        return nested_codes(splits, self.sizes, self.random_state, self.recipe.n_samples)


class DiagnosisSplits(list):
    """The folds and the learning curve's splits of a diagnosis, for ONE fold pass.

    A list of ``K + len(sizes) * K`` entries: the ``K`` folds ``(train,
    test)``, then one ``(None, test)`` per (size, fold), size-major (the
    subsets are never made on the client). ``layout`` is
    :func:`diagnosis_layout`; ``source`` is a :class:`CodesPlan` when the
    folds and the subsets can be remade on a worker (an int seed, no groups),
    else the codes themselves, which travel to the workers by scatter, not in
    the graph (see :func:`fold_pass_data`).
    """

    def __init__(self, folds, sizes, random_state, n_samples):
        sizes = tuple(int(v) for v in sizes)
        super().__init__(list(folds) + [(None, test) for _ in sizes for _, test in folds])
        recipe = getattr(folds, "recipe", None)
        seed_ok = isinstance(random_state, numbers.Integral) and not isinstance(
            random_state, bool)
        if recipe is not None and seed_ok:
            self.source = CodesPlan(recipe, sizes, int(random_state), splits_digest(folds))
        else:   # a RandomState (its state is the client's) or folds not remade
            self.source = nested_codes(folds, sizes, random_state, n_samples)
        self.n_folds = len(folds)
        self.layout = diagnosis_layout(int(n_samples), len(folds), len(sizes))


def _scattered(arrays):
    """``arrays`` sent to the workers by ``Client.scatter`` (futures), or None
    without a distributed client: data that must not travel in a graph."""
    from ..engine.rows import current_client

    client = current_client()
    if client is None:
        return None
    # hash=False: content-hashed keys are shared between calls (X's and y's row
    # numbers of a fold are the same arrays), and a key being released by one
    # call while another scatters it again leaves the second call's tasks
    # with a lost dependency.
    return client.scatter(list(arrays), hash=False)


def _identity(x):
    return x


def _code_chunk_tasks(source, layout, y, lengths, token):
    """Graph entries ``(codes-name, i) -> chunk i's codes`` and the extra entries.

    ``source``: a plan (:class:`CodesPlan` or :class:`SplitRecipe` with its
    digest) remade by one task on a worker and sliced there; or the per-row
    codes (n, groupings), scattered chunk by chunk to the workers under a
    distributed client (the graph then holds futures, not rows), else put in
    each chunk's task (the local schedulers serialise nothing).
    """
    codes_name = f"daskfit-fold-codes-{token}"
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    bounds = [(int(offsets[i]), int(offsets[i + 1])) for i in range(len(lengths))]
    layer = {}
    if isinstance(source, tuple):   # (callable, args...) remaking all codes on a worker
        remade = f"daskfit-fold-layout-{token}"
        layer[remade] = source
        for i, (a, b) in enumerate(bounds):
            layer[(codes_name, i)] = (_codes_slice, remade, a, b)
        return codes_name, layer
    pieces = [_codes_slice(source, a, b) for a, b in bounds]
    futures = _scattered(pieces)
    for i, piece in enumerate(pieces):
        layer[(codes_name, i)] = piece if futures is None else (_identity, futures[i])
    return codes_name, layer
