"""Cross-validation splits on chunked data, without moving the training data.

A scikit-learn splitter runs on the client over *row numbers*: it needs only
``n_samples`` (known from the chunk sizes), and ``y`` or ``groups`` when it
stratifies or groups (``n`` values, computed once). Its folds become per-row
integer *codes*:

- **atoms** (K-fold, group K-fold, stratified K-fold, time-series splits):
  rows with the same train/test role in every split share one code, so each
  row is read once and every training set is a union of atoms. K-fold has K
  atoms; a time-series split K + 1.
- **per split** (shuffle splits, whose rows fall in many role patterns):
  grouping ``s`` gives every row code 0 (train), 1 (test) or 2 (neither) in
  split ``s``; each row is read once per split, still in one pass.

The codes of a row chunk travel only in that chunk's task (``n`` small ints
in all). For Dask input with unknown chunk sizes (Dask DataFrames), the chunk
sizes come from one cheap pass over ``y`` alone (``n`` floats to the client),
which also serves a stratified splitter.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import dask.array as da
from dask.base import tokenize
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
    ShuffleSplit,
    TimeSeriesSplit,
    check_cv,
)
from sklearn.utils import check_random_state

from .._data import ChunkedData, is_dask_collection
from .._engine import compute
from .._kernels import _merge_moments
from ._fold_kernels import codes_dtype, pack_codes

__all__ = ["FoldLayout", "fold_pass_data", "resolve_splits", "take_rows", "train_test_split"]

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
            f"{yarr.numblocks[0]}: they cannot be aligned. Take X and y from the same "
            "Dask DataFrame, or call to_dask_array(lengths=True) on both.")
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


@dataclass
class FoldLayout:
    """Per-row codes for one pass and how to rebuild each split from them.

    ``codes`` is of shape (n_samples, n_groupings); ``train[s]`` / ``test[s]``
    list the ``(grouping, code)`` parts whose union is split ``s``'s
    training / validation set; ``total`` the parts that make up all rows.
    """

    codes: np.ndarray
    n_codes: tuple
    train: list
    test: list
    total: list
    mode: str

    @property
    def n_splits(self):
        return len(self.train)

    @classmethod
    def from_splits(cls, splits, n_samples):
        S = len(splits)
        roles = np.zeros((n_samples, S), dtype=np.int8)  # 0 neither, 1 train, 2 test
        for s, (train, test) in enumerate(splits):
            _check_split(s, train, test, n_samples)
            roles[train, s] = 1
            roles[test, s] = 2
        if S <= 39:  # 3**39 < 2**63: the role pattern as one integer
            key = roles.astype(np.int64) @ (3 ** np.arange(S, dtype=np.int64))
            patterns, inverse = np.unique(key, return_inverse=True)
            atom_roles = (patterns[:, None] // (3 ** np.arange(S, dtype=np.int64))) % 3
        else:
            atom_roles, inverse = np.unique(roles, axis=0, return_inverse=True)
        n_atoms = len(atom_roles)
        if n_atoms <= ATOMS_PER_SPLIT * S + ATOMS_EXTRA:
            return cls(
                codes=inverse.reshape(-1, 1), n_codes=(n_atoms,),
                train=[[(0, a) for a in np.flatnonzero(atom_roles[:, s] == 1)] for s in range(S)],
                test=[[(0, a) for a in np.flatnonzero(atom_roles[:, s] == 2)] for s in range(S)],
                total=[(0, a) for a in range(n_atoms)], mode="atoms")
        # Role 1 (train) -> code 0, 2 (test) -> 1, 0 (neither) -> 2.
        codes = np.array([2, 0, 1], dtype=np.int8)[roles]
        return cls(codes=codes, n_codes=(3,) * S, train=[[(s, 0)] for s in range(S)],
                   test=[[(s, 1)] for s in range(S)], total=[(0, 0), (0, 1), (0, 2)],
                   mode="per-split")

    def structured_codes(self):
        dtype = codes_dtype(self.codes.shape[1], max(self.n_codes) - 1)
        out = np.zeros(self.codes.shape[0], dtype=dtype)
        out["codes"] = self.codes
        return out

    def assemble(self, parts):
        """Merge the pass's parts into per-split train / test and total moments."""

        def merged(members):
            return _merge_moments([parts[g][c] for g, c in members])

        train = [merged(m) for m in self.train]
        test = [merged(m) for m in self.test]
        for s, (tr, te) in enumerate(zip(train, test)):
            if tr is None or te is None:
                which = "training" if tr is None else "validation"
                raise ValueError(
                    f"The {which} set of split {s} has zero total sample weight; "
                    "use other folds or positive weights.")
        return train, test, merged(self.total)


def _check_split(s, train, test, n_samples):
    """Folds must be sets of rows in range, and train and test disjoint."""
    counts = []
    for name, idx in (("train", train), ("test", test)):
        if len(idx) and (idx.min() < 0 or idx.max() >= n_samples):
            raise ValueError(f"Split {s}: {name} indices out of range for {n_samples} rows.")
        count = np.bincount(idx, minlength=n_samples)
        if len(idx) and count.max() > 1:
            raise ValueError(
                f"Split {s}: repeated {name} indices (a bootstrap?) cannot be expressed as "
                "fold moments; use a splitter whose folds are sets of rows.")
        counts.append(count)
    if np.any(counts[0] & counts[1]):
        raise ValueError(f"Split {s}: some rows are in both the training and the test set.")


def fold_pass_data(data: ChunkedData, cv, groups, *, classifier=False):
    """Engine input for the fold pass, the layout, and the splits.

    Returns ``(ChunkedData, FoldLayout, splits, target_passes)``: ``X`` and
    the weights are the caller's (chunk sizes filled in if they were unknown);
    the ``y`` slot joins the target to the per-row codes, chunk by chunk.
    """
    known = data.chunks_known
    need_y = needs_target(cv, classifier)
    if known and not need_y:
        lengths, y_values, target_passes = tuple(int(c) for c in data.X.chunks[0]), None, 0
    else:
        lengths, y_values, target_passes = row_lengths(data.X, data.y, need_y)
    n = int(sum(lengths))
    splits = resolve_splits(cv, n, y_values, _vector_numpy(groups), classifier=classifier)
    layout = FoldLayout.from_splits(splits, n)
    X = with_row_chunks(data.X, lengths)
    y = with_row_chunks(data.y, lengths)
    w = with_row_chunks(data.sample_weight, lengths)
    codes = da.from_array(layout.structured_codes(), chunks=(lengths,), name=False)
    # map_blocks' name is the whole key name: make it unique to these inputs.
    packed = da.map_blocks(pack_codes, y, codes, dtype=codes.dtype,
                           name=f"daskfit-fold-codes-{tokenize(y.name, codes.name)}")
    out = ChunkedData(X, packed, w, is_lazy=data.is_lazy, feature_names=data.feature_names)
    return out, layout, splits, target_passes


# ----------------------------------------------------------------- row selection


def take_rows(obj, rows, lengths):
    """Rows ``rows`` (sorted row numbers) of an array, frame or Dask collection.

    Dask collections are cut chunk by chunk: each output chunk is the
    selected rows of one input chunk, computed where that chunk lives, and
    its task holds only that chunk's row numbers.
    """
    if obj is None:
        return None
    if not is_dask_collection(obj):
        from sklearn.utils import _safe_indexing

        return _safe_indexing(obj, rows)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    local = [rows[(rows >= a) & (rows < b)] - a for a, b in zip(bounds[:-1], bounds[1:])]
    if isinstance(obj, da.Array):
        obj = align_rows(obj, lengths)
        pieces = [obj.blocks[i][idx] for i, idx in enumerate(local)]
        return da.concatenate(pieces, axis=0)
    import dask.dataframe as dd
    import pandas as pd

    # A one-column frame of row numbers, partitioned like obj (each task
    # holds its own partition's numbers), zipped with obj partition by partition.
    numbers_ = dd.from_map(pd.Series, local, meta=pd.Series([], dtype=np.intp),
                           enforce_metadata=False)
    return obj.map_partitions(_iloc, numbers_, meta=obj._meta, align_dataframes=False)


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
