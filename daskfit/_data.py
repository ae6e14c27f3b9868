"""Turn user input into row-chunked Dask arrays, checking metadata eagerly.

Everything that can be known without reading data (ndim, dtype, shapes,
chunk layout, column types) is checked here, before any work. Everything that
needs the values (finiteness, labels, counts, per-chunk row counts when a Dask
DataFrame does not know them) is checked by the engine inside the first data
pass, never in a pass of its own.

Error messages follow scikit-learn's wording where scikit-learn has one, show
shapes and chunks (never data) and say how to fix the input.
"""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass, field, replace

import dask.array as da
from dask.base import tokenize
import numpy as np
import pandas as pd
from sklearn.utils.validation import column_or_1d, validate_data

from .errors import DataError

__all__ = ["ChunkedData", "ROW_VECTORS", "ShardedData", "as_chunked", "co_partition", "is_dask_collection",
           "is_sparse", "scipy_sparse", "split_row_vectors", "target_chunks"]

# A NumPy input is cut into chunks of about this many bytes when it goes to a
# cluster: small enough that every worker thread gets several chunks, large
# enough that per-task overhead (~1 ms) stays far below per-chunk work.
NUMPY_CHUNK_BYTES = 64 * 2**20


def _is_dask_dataframe(obj) -> bool:
    import dask.dataframe as dd

    return isinstance(obj, (dd.DataFrame, dd.Series))


def is_dask_collection(obj) -> bool:
    """True for Dask arrays, DataFrames and Series."""
    return isinstance(obj, da.Array) or _is_dask_dataframe(obj)


def _is_pydata_sparse(obj) -> bool:
    """A ``sparse`` package array (``sparse.COO``, ``GCXS``), found without importing it.

    The ``sparse`` package is an optional input type: daskfit never needs it
    installed, it only recognises its arrays.
    """
    return type(obj).__module__.split(".")[0] == "sparse" and hasattr(obj, "tocsr")


def is_sparse(obj) -> bool:
    """True for ``scipy.sparse`` matrices and arrays and ``sparse`` package arrays.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> is_sparse(sp.eye(3, format="csr")), is_sparse(np.eye(3))
    (True, False)
    """
    import scipy.sparse as sp

    return sp.issparse(obj) or _is_pydata_sparse(obj)


def scipy_sparse(obj):
    """A ``sparse`` package array as a SciPy CSR matrix; SciPy sparse input unchanged.

    ``COO.tocsr()`` converts the coordinates (O(nnz)); nothing is densified.
    """
    return obj.tocsr() if _is_pydata_sparse(obj) else obj


def stored_nbytes(X):
    """Bytes a sparse matrix stores (its nonzeros and index arrays)."""
    X = scipy_sparse(X)
    arrays = [getattr(X, name, None) for name in ("data", "indices", "indptr", "row", "col",
                                                  "coords")]
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def is_sparse_dask(X) -> bool:
    """A Dask array whose chunks are sparse (as its ``_meta`` says)."""
    return isinstance(X, da.Array) and is_sparse(X._meta)


#: How to fix inputs that co_partition cannot align (tested to work in test_model_selection).
ALIGN_HINT = ("Take both from the same Dask DataFrame (df.drop(columns=target), df[target]), "
              "or give both known chunk sizes: v.to_dask_array().compute_chunk_sizes().")

#: Column names under which co_partition carries the vectors beside X.
_CARRIED = "__daskfit_vector_{}"


def co_partition(X, *vectors):
    """``X`` and the vectors with one partitioning when they come from one Dask DataFrame.

    ``X, y = df.drop(columns="label"), df["label"]`` on a multi-file
    ``dd.read_parquet`` frame gives two expressions that Dask optimises
    separately: reading the one column of ``y`` is cheap, so Dask fuses its
    files into fewer partitions than those of ``X`` (3 and 2, say), and the
    two cannot be zipped chunk by chunk. Expressions that Dask itself can
    align (the same source, no repartition: ``are_co_aligned``) are rebuilt
    from ONE frame holding all their columns, each taken out by an opaque
    per-partition selection that Dask cannot push into the read, so all of
    them keep that frame's partitions. Dask DataFrames are returned optimised
    (their ``npartitions`` is then the number of chunks Dask will make);
    inputs that are not Dask DataFrames are returned unchanged, and frames of
    different sources are not aligned (the usual checks then explain what is
    wrong).
    """
    import dask.dataframe as dd

    frames = [v for v in (X,) + vectors if _is_dask_dataframe(v)]
    if len(frames) < 2 or not isinstance(X, dd.DataFrame):
        return (X,) + vectors
    from dask.dataframe.dask_expr._expr import are_co_aligned

    if len({f.optimize().npartitions for f in frames}) == 1 or not are_co_aligned(
            *(f.expr for f in frames)):
        # Optimised, so that ``npartitions`` already counts the chunks that the
        # arrays made from them will have.
        return tuple(v.optimize() if _is_dask_dataframe(v) else v for v in (X,) + vectors)
    carried = {}
    for i, v in enumerate(vectors):
        if not _is_dask_dataframe(v):
            continue
        if isinstance(v, dd.DataFrame):
            carried.update({(i, c): v[c] for c in v.columns})
        else:
            carried[(i, None)] = v
    names = {key: _CARRIED.format(n) for n, key in enumerate(carried)}
    combined = X.assign(**{names[key]: v for key, v in carried.items()})
    out = [combined.map_partitions(_columns_of, list(X.columns), meta=X._meta)]
    for i, v in enumerate(vectors):
        if not _is_dask_dataframe(v):
            out.append(v)
        elif isinstance(v, dd.DataFrame):
            out.append(combined.map_partitions(
                _renamed_columns, [names[(i, c)] for c in v.columns], list(v.columns),
                meta=v._meta))
        else:
            out.append(combined.map_partitions(_renamed_series, names[(i, None)], v.name,
                                               meta=v._meta))
    return tuple(v.optimize() if _is_dask_dataframe(v) else v for v in out)


def _columns_of(part, columns):
    return part[columns]


def _renamed_columns(part, carried, columns):
    return part[carried].set_axis(columns, axis=1)


def _renamed_series(part, carried, name):
    return part[carried].rename(name)


#: The record of one row's vectors besides ``y`` when the fit has an offset:
#: its weight (absent without ``sample_weight``) and its offset. One array of
#: these records rides in the engine's weight slot, so the offset is chunked,
#: persisted, streamed and realigned with the weights, in the same pass.
ROW_VECTORS = {True: np.dtype([("w", np.float64), ("offset", np.float64)]),
               False: np.dtype([("offset", np.float64)])}


def split_row_vectors(w):
    """``(weights or None, offset or None)`` of one chunk of the weight slot.

    The slot holds plain float weights, ``None``, or records of
    :data:`ROW_VECTORS` when the fit has an offset. Every kernel that reads
    the slot splits it first (``daskfit.kernels.chunks.chunk_kernel`` does).
    """
    if w is None or w.dtype.names is None:
        return w, None
    weights = np.ascontiguousarray(w["w"]) if "w" in w.dtype.names else None
    return weights, np.ascontiguousarray(w["offset"])


def _pack_rows(w, offset):
    out = np.empty(offset.shape[0], dtype=ROW_VECTORS[w is not None])
    if w is not None:
        out["w"] = w
    out["offset"] = offset
    return out


@dataclass
class ChunkedData:
    """Row-chunked design matrix, target and weights ready for the engine.

    ``X`` has exactly one column chunk; ``y`` and ``sample_weight`` (when not
    ``None``) have the same number of row chunks as ``X``. Row chunk sizes may
    be unknown (NaN) for Dask DataFrame input; the engine then checks that the
    chunks of ``X``, ``y`` and weights line up inside the first pass.

    With an ``offset`` (a term added to the linear predictor, e.g. the log
    of an exposure) ``sample_weight`` is the engine's slot for both: an
    array of :data:`ROW_VECTORS` records (see :func:`split_row_vectors`),
    and ``offset`` the aligned offset alone (for the checks above the
    kernels; the kernels read the slot).
    """

    X: da.Array
    y: da.Array | None
    sample_weight: da.Array | None
    is_lazy: bool
    feature_names: np.ndarray | None = None
    notes: list = field(default_factory=list)
    offset: da.Array | None = None
    #: The in-memory arrays ("X", "y", "sample_weight") the Dask arrays were
    #: cut from, by reference. Their Dask names are random (hashing 800 MB to
    #: name them costs seconds), so :meth:`token` hashes these instead, and
    #: only when asked (a checkpoint's fingerprint).
    sources: dict = field(default_factory=dict)

    def token(self):
        """A deterministic token of the data (hashes in-memory inputs: costly)."""
        return tokenize(*(_tokenizable(self.sources.get(name, arr)) for name, arr in
                          (("X", self.X), ("y", self.y), ("sample_weight", self.sample_weight),
                           ("offset", self.offset))))

    def for_engine(self):
        """This data with the offset packed into the weight slot (for the engine's kernels).

        ``as_chunked`` does it in ``fit``; the inference pass, whose data is
        read as ``predict``'s (``reset=False``), asks for it here.
        """
        if self.offset is None or self.sample_weight is not None and \
                self.sample_weight.dtype.names is not None:
            return self
        self.sources.setdefault("sample_weight", self.sample_weight)
        return replace(self, sample_weight=_packed_rows(self.sample_weight, self.offset))

    @property
    def n_chunks(self) -> int:
        return self.X.numblocks[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def chunks_known(self) -> bool:
        return not any(np.isnan(c) for c in self.X.chunks[0])

    @property
    def sparse(self) -> bool:
        """Whether X's chunks are sparse matrices (SciPy or ``sparse.COO``)."""
        return is_sparse_dask(self.X)

    @property
    def nbytes(self):
        """Bytes of X as stored: dense size, a sparse input's nonzeros, or NaN if unknown.

        A Dask array of sparse chunks does not know its nonzeros before a
        pass (NaN); an in-memory sparse matrix does.
        """
        if self.sparse:
            source = self.sources.get("X")
            return math.nan if source is None else float(stored_nbytes(source))
        return math.nan if not self.chunks_known else float(self.X.nbytes)


def _tokenizable(obj):
    """What :func:`dask.base.tokenize` hashes deterministically for ``obj``.

    Dask names a SciPy sparse matrix by a random token (two equal matrices
    differ), so a CSR source is hashed through its arrays instead.
    """
    if is_sparse(obj) and not isinstance(obj, da.Array):
        csr = scipy_sparse(obj).tocsr()
        return ("csr", csr.shape, csr.dtype.str, csr.data, csr.indices, csr.indptr)
    return obj


def _numpy_chunks(n_rows, row_bytes, n_chunks_hint):
    if n_chunks_hint is None:
        n_chunks_hint = max(1, int(np.ceil(n_rows * row_bytes / NUMPY_CHUNK_BYTES)))
    n_chunks_hint = max(1, min(n_chunks_hint, n_rows))
    return int(np.ceil(n_rows / n_chunks_hint))


def _check_dask_array_X(X, name):
    if X.ndim != 2:
        raise DataError(
            f"Expected 2D array, got {X.ndim}D array instead: {name} has shape {X.shape} "
            f"and chunks {X.chunks}. Reshape your data either using X.reshape(-1, 1) "
            "if your data has a single feature or X.reshape(1, -1) if it contains a "
            "single sample."
        )
    _check_dtype(X.dtype, name)
    if X.shape[1] == 0:
        raise DataError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    if not np.isnan(X.shape[0]) and X.shape[0] == 0:
        raise DataError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    if np.isnan(X.shape[1]):
        raise DataError(
            f"{name} has an unknown number of columns (chunks {X.chunks}). "
            "Compute the chunk sizes first, e.g. X.compute_chunk_sizes()."
        )


def _check_dtype(dtype, name):
    if dtype.kind == "c":
        raise DataError(f"Complex data not supported: {name} has dtype {dtype}.")
    if dtype.kind not in "biuf":
        raise DataError(
            f"{name} has dtype {dtype}, but numeric data is required. Convert or "
            "encode it first, e.g. X.astype('float64'), or one-hot encode the "
            "categorical columns."
        )


def _float_dtype(dtype):
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _standalone(arr):
    """A Dask array whose graph is one self-contained mapping.

    Arrays converted from (expression-based) Dask DataFrames carry lowered
    graphs whose layer dependencies do not survive being merged into a
    hand-built ``HighLevelGraph``; a flat copy of the graph does.
    """
    return da.Array(dict(arr.__dask_graph__()), arr.name, arr.chunks, meta=arr._meta)


def check_frame_columns(df, name):
    """Reject non-numeric columns of a pandas or Dask DataFrame by name."""
    complex_cols = [f"{col!r} ({dtype})" for col, dtype in df.dtypes.items()
                    if pd.api.types.is_complex_dtype(dtype)]
    if complex_cols:
        raise DataError(
            f"Complex data not supported: {name} has complex column(s) "
            f"{', '.join(sorted(complex_cols))}.")
    bad = [
        f"{col!r} ({dtype})"
        for col, dtype in df.dtypes.items()
        if isinstance(dtype, pd.CategoricalDtype)
        or not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
    ]
    if bad:
        raise DataError(
            f"{name} has non-numeric column(s) {', '.join(sorted(bad))}. Encode them "
            "first (for example pandas.get_dummies, or dask.dataframe's get_dummies "
            "after .categorize()) or drop them."
        )


def _is_extension_numeric(dtype):
    """A pandas extension dtype with numbers or booleans: ``Int64``, ``Float64``,
    ``boolean``, ``double[pyarrow]``, ... (NumPy has no dtype for them)."""
    return not isinstance(dtype, np.dtype) and (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _numpy_partition(part, dtype, name):
    """One partition with NumPy ``dtype``; missing values (``pd.NA``, Arrow nulls) as NaN.

    NaN is what the first data pass looks for: a missing value then fails
    the fit as "Input X contains NaN", as it does for pandas input. A
    non-float ``dtype`` (class labels) cannot hold them: a clear error.
    """
    if dtype.kind == "f":
        values = part.to_numpy(dtype=dtype, na_value=np.nan)
    elif part.isna().to_numpy().any():
        raise DataError(f"Input {name} contains missing values (pd.NA): drop or fill those "
                         "rows first, e.g. dropna().")
    else:
        values = part.to_numpy(dtype=dtype)
    if isinstance(part, pd.Series):
        return pd.Series(values, index=part.index, name=part.name)
    return pd.DataFrame(values, index=part.index, columns=part.columns)


def _without_extension_dtypes(frame, name, labels=False):
    """A Dask DataFrame/Series whose nullable or Arrow numeric columns are NumPy dtypes.

    ``to_dask_array`` cannot turn them into a NumPy dtype (``Cannot interpret
    'Int64Dtype()'``); the conversion runs per partition, inside the pass.
    Numbers become float64 (a missing value becomes NaN); class ``labels``
    keep their kind (``boolean`` -> bool, ``Int64`` -> int64), as pandas
    input does.
    """
    dtypes = [frame.dtype] if frame.ndim == 1 else list(frame.dtypes)
    if not any(_is_extension_numeric(d) for d in dtypes):
        return frame
    dtype = np.dtype(np.float64)
    if labels and frame.ndim == 1:
        dtype = np.dtype(getattr(frame.dtype, "numpy_dtype", np.float64))
    return frame.map_partitions(_numpy_partition, dtype, name,
                                meta=_numpy_partition(frame._meta, dtype, name))


def _dask_frame_to_array(df, name):
    """Dask DataFrame -> float Dask array with unknown row chunks."""
    check_frame_columns(df, name)
    if len(df.columns) == 0:
        raise DataError(
            "Found array with 0 feature(s) (shape=(?, 0)) while a minimum of 1 is required."
        )
    df = _without_extension_dtypes(df, name)
    dtypes = {np.dtype(d) for d in df.dtypes}
    dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
    dtype = _float_dtype(dtype)
    arr = df.to_dask_array()
    return _standalone(arr.astype(dtype) if arr.dtype != dtype else arr)


def _as_dask_X(estimator, X, reset, n_chunks_hint):
    """Return (dask X, feature_names, is_lazy)."""
    if _is_dask_dataframe(X):
        import dask.dataframe as dd

        if isinstance(X, dd.Series):
            raise DataError(
                "Expected 2D array, got a Dask Series for X instead. Use X.to_frame() "
                "if your data has a single feature."
            )
        names = np.asarray(X.columns, dtype=object)
        arr = _dask_frame_to_array(X, "X")
        return arr, names, True
    if isinstance(X, da.Array):
        _check_dask_array_X(X, "X")
        dtype = _float_dtype(X.dtype)
        if X.dtype != dtype:
            X = X.astype(dtype)
        # Column chunks are kept: the planner decides between merging them
        # (row-parallel solvers) and model parallelism.
        return X, None, True
    if is_sparse(X):
        return _sparse_in_memory(estimator, X, reset, n_chunks_hint)
    if isinstance(X, pd.DataFrame):
        check_frame_columns(X, "X")
    elif getattr(X, "dtype", None) is not None and np.dtype(X.dtype).kind == "c":
        # Checked here so that the message shows the dtype, never the data.
        raise DataError(f"Complex data not supported: X has dtype {X.dtype} and shape "
                         f"{getattr(X, 'shape', '?')}.")
    # In memory: scikit-learn's own validation gives its exact messages and
    # handles feature_names_in_ / n_features_in_. Finiteness is left to the
    # first data pass so that validation costs no pass of its own.
    Xn = validate_data(
        estimator,
        X,
        reset=reset,
        ensure_all_finite=False,
        dtype=[np.float64, np.float32],
        accept_sparse=False,
    )
    names = getattr(estimator, "feature_names_in_", None) if reset else None
    rows = _numpy_chunks(Xn.shape[0], Xn.shape[1] * Xn.itemsize, n_chunks_hint)
    return _from_memory(Xn, (rows, -1)), names, False


def _sparse_in_memory(estimator, X, reset, n_chunks_hint):
    """In-memory sparse ``X`` -> a Dask array of CSR row chunks (never densified).

    scikit-learn's validation converts CSC, COO (and ``sparse.COO``, via
    SciPy) to CSR, which slices rows without touching other rows; chunks
    are sized by the bytes of their nonzeros, not by the dense shape.
    """
    if getattr(X, "ndim", 2) != 2:
        raise ValueError(f"Expected a 2D sparse matrix for X, got {X.ndim}D (shape {X.shape}).")
    if np.dtype(X.dtype).kind == "c":
        raise ValueError(f"Complex data not supported: X has dtype {X.dtype} and shape {X.shape}.")
    Xs = validate_data(estimator, scipy_sparse(X), reset=reset, ensure_all_finite=False,
                       dtype=[np.float64, np.float32], accept_sparse="csr",
                       accept_large_sparse=True)
    names = getattr(estimator, "feature_names_in_", None) if reset else None
    row_bytes = max(1.0, Xs.nnz / max(1, Xs.shape[0])) * (Xs.data.itemsize + Xs.indices.itemsize)
    rows = _numpy_chunks(Xs.shape[0], row_bytes, n_chunks_hint)
    return _sparse_from_memory(Xs, rows), names, False


def _sparse_from_memory(Xs, rows):
    """A Dask array of CSR row slices of ``Xs`` (``rows`` rows each; slices copy O(nnz))."""
    n = Xs.shape[0]
    chunks = da.core.normalize_chunks((rows, -1), Xs.shape, dtype=Xs.dtype)
    name = f"daskfit-input-{uuid.uuid4().hex}"
    bounds = np.cumsum((0,) + chunks[0])
    graph = {(name, i, 0): Xs[int(bounds[i]):int(min(bounds[i + 1], n))]
             for i in range(len(chunks[0]))}
    out = da.Array(graph, name, chunks, meta=Xs[0:0])
    out._daskfit_source = Xs
    return out


def _from_memory(arr, chunks):
    """A Dask array whose chunks are views of the in-memory array ``arr``.

    ``da.from_array`` would copy the whole array first and name it by hashing
    every byte: 1 s and 4.5 s for 800 MB, longer than the fit itself. Views
    cost nothing; the random name means that :meth:`ChunkedData.token` hashes
    ``arr`` itself where a deterministic name is needed (checkpoints).
    """
    chunks = da.core.normalize_chunks(chunks, arr.shape, dtype=arr.dtype)
    name = f"daskfit-input-{uuid.uuid4().hex}"
    bounds = [np.cumsum((0,) + c) for c in chunks]
    graph = {}
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        where = tuple(slice(b[i], b[i + 1]) for b, i in zip(bounds, index))
        graph[(name,) + index] = arr[where]
    out = da.Array(graph, name, chunks, meta=arr[(slice(0, 0),) * arr.ndim])
    out._daskfit_source = arr
    return out


def target_chunks(X):
    return X.chunks[0]


def _as_dask_vector(v, X, name, numeric):
    """Align a target or weight vector with the row chunks of ``X``."""
    chunks = X.chunks[0]
    known = not any(np.isnan(c) for c in chunks)
    if _is_dask_dataframe(v):
        import dask.dataframe as dd

        if isinstance(v, dd.DataFrame):
            if len(v.columns) != 1:
                raise DataError(
                    f"{name} should be a 1d array, got a Dask DataFrame with "
                    f"{len(v.columns)} columns instead."
                )
            v = v[v.columns[0]]
        v = _standalone(_without_extension_dtypes(v, name, labels=not numeric).to_dask_array())
    if isinstance(v, da.Array):
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.ndim != 1:
            raise DataError(f"{name} should be a 1d array, got an array of shape {v.shape} instead.")
        if numeric:
            _check_dtype(v.dtype, name)
        if v.chunks[0] == chunks:
            return v
        v_known = not any(np.isnan(c) for c in v.chunks[0])
        if known and v_known:
            if v.shape[0] != X.shape[0]:
                raise DataError(
                    f"Found input variables with inconsistent numbers of samples: "
                    f"[{X.shape[0]}, {v.shape[0]}] (X and {name})."
                )
            return v.rechunk((chunks,))
        if v.numblocks[0] == X.numblocks[0]:
            # Same partitioning, sizes unknown: lengths are compared in the first pass.
            return v
        raise DataError(
            f"X and {name} are chunked differently and the chunk sizes are unknown "
            f"(X row chunks: {chunks}, {name} chunks: {v.chunks[0]}), so they cannot be "
            f"aligned. {ALIGN_HINT}"
        )
    # In memory.
    arr = np.asarray(v) if not isinstance(v, (pd.Series, pd.DataFrame)) else v.to_numpy()
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = column_or_1d(arr, warn=True)
    if arr.ndim != 1:
        raise DataError(f"{name} should be a 1d array, got an array of shape {arr.shape} instead.")
    if numeric:
        if arr.dtype.kind == "O":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"{name} must be numeric: {exc}") from None
        _check_dtype(arr.dtype, name)
    if not known:
        raise DataError(
            f"X has unknown row chunk sizes ({chunks}) but {name} is in memory, so they "
            "cannot be aligned. Call to_dask_array(lengths=True) on X, or pass "
            f"{name} as a column of the same Dask DataFrame."
        )
    if arr.shape[0] != X.shape[0]:
        raise DataError(
            f"Found input variables with inconsistent numbers of samples: "
            f"[{X.shape[0]}, {arr.shape[0]}] (X and {name})."
        )
    return _from_memory(arr, (chunks,))


def as_chunked(
    estimator,
    X,
    y=None,
    sample_weight=None,
    *,
    reset=True,
    y_numeric=True,
    n_chunks_hint=None,
    offset=None,
):
    """Validate metadata and return a :class:`ChunkedData`.

    Parameters
    ----------
    estimator : estimator instance
        Used for scikit-learn's messages and for ``n_features_in_`` /
        ``feature_names_in_`` bookkeeping (set when ``reset`` is true).
    X : array-like, pandas DataFrame, Dask array or Dask DataFrame
        Of shape (n_samples, n_features).
    y : array-like of shape (n_samples,), optional
    sample_weight : array-like of shape (n_samples,), optional
    reset : bool
        True in ``fit`` (record the features), False in ``predict``
        (check them against the fitted ones).
    y_numeric : bool
        Regressors require a numeric target; classifiers accept any labels.
    n_chunks_hint : int, optional
        How many row chunks to cut an in-memory input into.
    offset : array-like of shape (n_samples,), optional
        Added to the linear predictor (``log(exposure)`` for a rate). It is
        aligned with ``X`` as the weights are; in ``fit`` (``reset``) it is
        packed with them into the engine's weight slot (:data:`ROW_VECTORS`).
    """
    if y is None and reset and sample_weight is not None:
        raise DataError("sample_weight was given without y.")
    X, y, sample_weight, offset = co_partition(X, y, sample_weight, offset)
    Xd, names, lazy = _as_dask_X(estimator, X, reset, n_chunks_hint)
    if lazy:
        _record_features(estimator, Xd.shape[1], names, reset)
    yd = None if y is None else _as_dask_vector(y, Xd, "y", y_numeric)
    wd = None
    if sample_weight is not None:
        if np.isscalar(sample_weight):
            sample_weight = None if sample_weight == 1 else sample_weight
        if sample_weight is not None and np.isscalar(sample_weight):
            wd = da.full_like(yd, float(sample_weight), dtype=np.float64) if yd is not None else None
        elif sample_weight is not None:
            wd = _as_dask_vector(sample_weight, Xd, "sample_weight", True)
            if wd.dtype != np.float64:
                wd = wd.astype(np.float64)
    od = None if offset is None else _as_dask_offset(offset, Xd)
    if not reset:
        # Scoring and prediction read y, the weights and the offset lazily,
        # outside the engine's validating pass: check them as the blocks are
        # computed.
        yd, wd = _checked_finite(yd, "y"), _checked_finite(wd, "sample_weight")
        od = _checked_finite(od, "offset")
    sources = {name: arr._daskfit_source for name, arr in (("X", Xd), ("y", yd),
                                                             ("sample_weight", wd),
                                                             ("offset", od))
               if arr is not None and hasattr(arr, "_daskfit_source")}
    data = ChunkedData(Xd, yd, wd, is_lazy=lazy, feature_names=names, sources=sources,
                       offset=od)
    return data.for_engine() if reset else data


def _as_dask_offset(offset, Xd):
    """The offset as a float64 Dask vector on ``X``'s row chunks (a scalar is broadcast)."""
    if np.isscalar(offset):
        if not (isinstance(offset, (int, float, np.number)) and np.isfinite(offset)):
            raise DataError(f"offset must be a finite number or an array of shape "
                             f"(n_samples,); got {offset!r}.")
        if any(np.isnan(c) for c in Xd.chunks[0]):
            raise DataError("A scalar offset needs X's row chunk sizes; pass offset as an "
                             "array, or call to_dask_array(lengths=True) on X.")
        return da.full((Xd.shape[0],), float(offset), chunks=(Xd.chunks[0],))
    od = _as_dask_vector(offset, Xd, "offset", True)
    return od if od.dtype == np.float64 else od.astype(np.float64)


def _packed_rows(wd, od):
    """One Dask vector of :data:`ROW_VECTORS` records: the weights (if any) and the offset.

    Both are on ``X``'s row chunks already, so this is a blockwise zip: the
    records are made in the pass (or persist) that reads the chunks, and an
    in-memory pair is zipped once, here (16 bytes a row), so the token of
    the data stays a hash of the user's arrays.
    """
    source_w = getattr(wd, "_daskfit_source", None) if wd is not None else None
    source_o = getattr(od, "_daskfit_source", None)
    if source_o is not None and (wd is None or source_w is not None):
        return _from_memory(_pack_rows(source_w, source_o), (od.chunks[0],))
    dtype = ROW_VECTORS[wd is not None]
    if wd is None:
        return od.map_blocks(_pack_rows_only_offset, dtype=dtype, meta=np.empty(0, dtype))
    return da.map_blocks(_pack_rows, wd, od, dtype=dtype, meta=np.empty(0, dtype))


def _pack_rows_only_offset(offset):
    return _pack_rows(None, offset)


def _raise_if_not_finite(block, name):
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        kind = "NaN" if np.isnan(block).any() else "infinity or a value too large"
        raise DataError(f"Input {name} contains {kind}.")
    return block


def _checked_finite(v, name):
    if v is None or v.dtype.kind != "f":
        return v
    return v.map_blocks(_raise_if_not_finite, name, dtype=v.dtype,
                        name=f"daskfit-check-{name.replace('_', '-')}-{tokenize(v)}")


def _record_features(estimator, n_features, names, reset):
    """n_features_in_ / feature_names_in_ for Dask input (validate_data does NumPy)."""
    if reset:
        estimator.n_features_in_ = int(n_features)
        if names is not None and all(isinstance(n, str) for n in names):
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and n_features != expected:
        raise DataError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{expected} features as input."
        )
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and names is not None and list(fitted) != list(names):
        raise DataError(
            "The feature names should match those that were passed during fit. "
            f"Fitted with {list(fitted)}, got {list(names)}."
        )


# ----------------------------------------------- column-chunked (model parallel)


@dataclass
class ShardedData:
    """Row- and column-chunked ``X`` with ``y`` and weights on its row chunks.

    The model-parallel fits' container (the row fits' is :class:`ChunkedData`):
    chunk sizes must be known, so ``y`` and the weights can be cut to X's row
    chunks before the first pass.
    """

    X: object
    y: object
    sample_weight: object

    @classmethod
    def from_arrays(cls, X, y, sample_weight=None):
        import dask.array as da

        if not isinstance(X, da.Array) or X.ndim != 2:
            raise ValueError(f"X must be a 2-D Dask array, got {type(X).__name__}"
                             f"{' of shape ' + str(X.shape) if hasattr(X, 'shape') else ''}.")
        rows = X.chunks[0]
        if any(np.isnan(c) for c in rows) or any(np.isnan(c) for c in X.chunks[1]):
            raise ValueError(
                f"Model-parallel solvers need known chunk sizes, but X has chunks {X.chunks}. "
                "Call X.compute_chunk_sizes() (or to_dask_array(lengths=True) on a Dask "
                "DataFrame) first.")
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        return cls(X, _as_row_vector(y, rows, "y"), _as_row_vector(sample_weight, rows,
                                                                   "sample_weight"))

    @property
    def row_chunks(self):
        return tuple(int(c) for c in self.X.chunks[0])

    @property
    def col_chunks(self):
        return tuple(int(c) for c in self.X.chunks[1])

    @property
    def n_row_chunks(self):
        return len(self.X.chunks[0])

    @property
    def n_blocks(self):
        return len(self.X.chunks[1])

    @property
    def n_features(self):
        return int(self.X.shape[1])


def _as_row_vector(v, rows, name):
    import dask.array as da

    if v is None:
        return None
    if not isinstance(v, da.Array):
        v = np.asarray(v)
        if v.ndim != 1 or v.shape[0] != sum(rows):
            raise ValueError(f"{name} should be a 1-D array of length {sum(rows)}, got shape "
                             f"{v.shape}.")
        return da.from_array(v, chunks=(rows,))
    if v.ndim != 1:
        raise ValueError(f"{name} should be a 1-D array, got shape {v.shape}.")
    if v.chunks[0] == tuple(rows):
        return v
    if any(np.isnan(c) for c in v.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes ({v.chunks[0]}), so it cannot be aligned with "
            f"the row chunks of X ({tuple(rows)}). Call {name}.compute_chunk_sizes() or "
            "to_dask_array(lengths=True) first.")
    if v.shape[0] != sum(rows):
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{sum(rows)}, {v.shape[0]}] (X and {name}).")
    return v.rechunk((tuple(rows),))
