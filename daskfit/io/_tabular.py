"""Tables to model matrices: one-hot encoding and standardisation, and a model that keeps them.

:class:`FrameEncoder` learns everything it needs in ONE pass over a pandas or
Dask DataFrame (a single ``dask.compute`` of the numeric columns' means and
variances, each categorical column's value counts, and the partition
lengths), then encodes each partition independently (a task named
``daskfit-encode``): numeric columns become ``(x - mean_) / scale_``,
categorical columns one 0/1 column per category seen in training except the
first (sorted) one, the *reference level* (scikit-learn's
``OneHotEncoder(drop="first")``, pandas' ``get_dummies(drop_first=True)``).
With an intercept, a dummy for every level would make the columns sum to the
intercept's: a singular Gram matrix, which the normal-equations solver can
only handle with an extra QR pass. A category not seen in training encodes
as all zeros, i.e. as the reference level (``drop=None`` keeps every level,
and an unseen category is then all zeros, like scikit-learn's
``handle_unknown="ignore"``). Dummy columns are not standardised, so the
coefficient of ``column=category`` is "effect of this category relative to
the reference level".

With ``sparse`` (``"auto"``: from :data:`AUTO_SPARSE_MIN_COLUMNS` dummy
columns on) :meth:`FrameEncoder.transform_matrix` makes SciPy CSR matrices
(a Dask array of CSR chunks for a Dask DataFrame) instead of dense blocks:
a column of 100,000 levels then costs one stored value per row, not
100,000, and daskfit's row solvers fit it without densifying a chunk.

:class:`TabularModel` pairs a fitted encoder with a fitted estimator, so a
saved model predicts from the raw table, and scores a Dask DataFrame out of
core, one partition at a time.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._data import is_dask_collection

__all__ = ["AUTO_SPARSE_MIN_COLUMNS", "FrameEncoder", "TabularModel"]

#: ``sparse="auto"`` encodes as sparse matrices from this many one-hot columns
#: on: a dense block of 1,000 dummies per row is 8 KB of mostly zeros, and
#: the sparse products cost per nonzero (one per categorical column and row).
AUTO_SPARSE_MIN_COLUMNS = 1000


def _named(name):
    """Give a partition function a dashboard-friendly task name (``daskfit-...``)."""
    def wrap(func):
        func.__name__ = name
        return func
    return wrap


@_named("daskfit-encode")
def _encode_partition(pdf, numeric, mean, scale, categorical, categories, names, skip=None):
    """One partition encoded; ``skip[col]`` leading categories of ``col`` get no column."""
    parts = []
    if numeric:
        values = pdf[numeric].to_numpy(dtype=np.float64)
        parts.append((values - mean) / scale)
    for col in categorical:
        cats = categories[col]
        first = (skip or {}).get(col, 0)
        # -1 for a value not seen in training (and for missing values), like
        # the dropped reference level: all zeros.
        codes = pd.Index(cats).get_indexer(pdf[col].to_numpy()) - first
        onehot = np.zeros((len(pdf), len(cats) - first))
        seen = codes >= 0
        onehot[np.flatnonzero(seen), codes[seen]] = 1.0
        parts.append(onehot)
    block = np.hstack(parts) if parts else np.empty((len(pdf), 0))
    return pd.DataFrame(block, columns=names, index=pdf.index)


@_named("daskfit-encode-sparse")
def _encode_partition_sparse(pdf, numeric, mean, scale, categorical, categories, names,
                             skip=None):
    """One partition as a SciPy CSR matrix: numeric values, then one 1 per category.

    Built from coordinates, so nothing of the width of the one-hot columns is
    ever allocated per row (an unseen category stores nothing: all zeros).
    """
    import scipy.sparse as sp

    n = len(pdf)
    rows, cols, vals = [], [], []
    if numeric:
        values = (pdf[numeric].to_numpy(dtype=np.float64) - mean) / scale
        r, c = np.nonzero(values)
        rows.append(r), cols.append(c), vals.append(values[r, c])
    offset = len(numeric)
    for col in categorical:
        cats = categories[col]
        first = (skip or {}).get(col, 0)
        codes = pd.Index(cats).get_indexer(pdf[col].to_numpy()) - first
        seen = np.flatnonzero(codes >= 0)
        rows.append(seen), cols.append(offset + codes[seen]), vals.append(np.ones(len(seen)))
        offset += len(cats) - first
    if not rows:
        return sp.csr_matrix((n, len(names)))
    coo = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(n, len(names)))
    return coo.tocsr()


@_named("daskfit-partition-rows")
def _partition_rows(pdf):
    return pd.Series([len(pdf)])


class FrameEncoder(BaseEstimator):
    """One-hot encode categorical columns and standardise numeric ones, fitted in one pass.

    Parameters
    ----------
    numeric : list of str, default=None
        Numeric feature columns; ``None``: every column not in ``categorical``.
    categorical : list of str, default=None
        Columns to one-hot encode; ``None``: columns of object, string,
        categorical or boolean dtype.
    standardize : bool, default=True
        Centre and scale the numeric columns (a constant column gets scale 1).
    drop : {"first", None}, default="first"
        ``"first"``: no column for the first (sorted) category of each
        categorical column, the reference level that the intercept absorbs
        (keeps the design full rank). ``None``: a column for every category,
        for a model without intercept.
    sparse : {"auto", True, False}, default="auto"
        Whether :meth:`transform_matrix` (and :class:`TabularModel`) makes
        SciPy CSR matrices instead of dense arrays. ``"auto"``: sparse from
        :data:`AUTO_SPARSE_MIN_COLUMNS` one-hot columns on. :meth:`transform`
        always returns a dense DataFrame.

    Attributes
    ----------
    numeric_, categorical_ : list of str
    categories_ : dict of str to ndarray
        The sorted categories of each categorical column seen in training.
    dropped_ : dict of str to object
        The reference level of each categorical column that has no column
        (``None`` when ``drop=None``).
    mean_, scale_ : ndarray of shape (n_numeric,)
        The mean and scale of each column of ``numeric_``, in that order.
    feature_names_out_ : ndarray of str
        ``numeric_`` then ``column=category`` for each category kept.
    n_rows_ : int
        Rows seen in ``fit``.
    sparse_ : bool
        Whether :meth:`transform_matrix` makes sparse matrices.

    Examples
    --------
    >>> import pandas as pd
    >>> from daskfit.io import FrameEncoder
    >>> df = pd.DataFrame({"size": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"]})
    >>> enc = FrameEncoder().fit(df)
    >>> list(enc.feature_names_out_), enc.dropped_
    (['size', 'color=red'], {'color': 'blue'})
    >>> enc.transform(df).round(3).to_numpy().tolist()
    [[-1.225, 1.0], [0.0, 0.0], [1.225, 1.0]]
    """

    def __init__(self, numeric=None, categorical=None, standardize=True, drop="first",
                 sparse="auto"):
        self.numeric = numeric
        self.categorical = categorical
        self.standardize = standardize
        self.drop = drop
        self.sparse = sparse

    def fit(self, X, y=None):
        """Learn categories, means and scales in one pass over ``X`` (pandas or Dask).

        Parameters
        ----------
        X : pandas or Dask DataFrame
            Columns with string names; categorical ones by dtype unless
            ``categorical`` names them.
        y : None
            Ignored (scikit-learn's transformer signature).

        Returns
        -------
        self : FrameEncoder
        """
        if self.drop not in ("first", None):
            raise ValueError(f"drop must be 'first' or None; got {self.drop!r}.")
        if not (self.sparse is True or self.sparse is False or self.sparse == "auto"):
            raise ValueError(f"sparse must be 'auto', True or False; got {self.sparse!r}.")
        columns = [str(c) for c in X.columns]
        if columns != list(X.columns):
            raise ValueError(f"Column names must be strings; got {list(X.columns)!r}.")
        categorical = list(self.categorical) if self.categorical is not None else [
            c for c in columns if _is_categorical(X.dtypes[c])]
        numeric = list(self.numeric) if self.numeric is not None else [
            c for c in columns if c not in categorical]
        missing = sorted(set(numeric + categorical) - set(columns))
        if missing:
            raise ValueError(f"Columns {missing} are not in the data; it has {columns}.")
        bad = [c for c in numeric if not pd.api.types.is_numeric_dtype(X.dtypes[c])
               or pd.api.types.is_bool_dtype(X.dtypes[c])]
        if bad:
            raise ValueError(f"Numeric columns {bad} have non-numeric dtypes "
                             f"{[str(X.dtypes[c]) for c in bad]}; list them as categorical.")
        lazy = is_dask_collection(X)
        stats = {"n": X.shape[0] if not lazy else X.map_partitions(
            _partition_rows, meta=pd.Series([], dtype=np.int64))}
        if numeric:
            stats["mean"] = X[numeric].mean()
            stats["var"] = X[numeric].var(ddof=0)
        for c in categorical:
            stats[f"counts:{c}"] = (X[c].value_counts(split_out=1) if lazy  # a tree, no shuffle
                                   else X[c].value_counts())
        # ONE compute: the reads of X are shared by every statistic.
        (stats,) = dask.compute(stats) if lazy else (stats,)
        if lazy:
            self._partition_rows = tuple(int(v) for v in stats["n"])
            self.n_rows_ = int(sum(self._partition_rows))
        else:
            self.n_rows_ = int(stats["n"])
        self.numeric_, self.categorical_ = numeric, categorical
        if numeric:
            mean = np.asarray(stats["mean"], dtype=np.float64)
            std = np.sqrt(np.asarray(stats["var"], dtype=np.float64))
        else:
            mean = std = np.zeros(0)
        if not self.standardize:
            mean, std = np.zeros_like(mean), np.ones_like(std)
        # A constant column (std 0) is only centred, as scikit-learn's StandardScaler does.
        self.mean_, self.scale_ = mean, np.where(std > 0, std, 1.0)
        self.categories_ = {c: _category_array(stats[f"counts:{c}"].index, c) for c in categorical}
        self.dropped_ = {c: (_plain_value(self.categories_[c][0])
                             if self.drop == "first" and len(self.categories_[c]) else None)
                         for c in categorical}
        skip = self._skip()
        self.feature_names_out_ = np.array(
            numeric + [f"{c}={v}" for c in categorical for v in self.categories_[c][skip[c]:]],
            dtype=object)
        n_dummies = len(self.feature_names_out_) - len(numeric)
        self.sparse_ = (bool(self.sparse) if self.sparse != "auto"
                        else n_dummies >= AUTO_SPARSE_MIN_COLUMNS)
        return self

    def _skip(self):
        """Leading categories without a column, per column (none for a model saved
        before ``drop`` existed: it has no ``dropped_``)."""
        dropped = getattr(self, "dropped_", None) or {}
        return {c: int(dropped.get(c) is not None) for c in self.categorical_}

    def _args(self):
        return (self.numeric_, self.mean_, self.scale_, self.categorical_, self.categories_,
                list(self.feature_names_out_), self._skip())

    def transform(self, X):
        """Encoded float64 frame (pandas for pandas input, lazy Dask for Dask input).

        Parameters
        ----------
        X : pandas or Dask DataFrame
            With the columns seen by :meth:`fit` (others are ignored).

        Returns
        -------
        pandas or Dask DataFrame
            Columns ``feature_names_out_``.
        """
        self._check_columns(X)
        if is_dask_collection(X):
            meta = pd.DataFrame({n: pd.Series([], dtype=np.float64)
                                 for n in self.feature_names_out_})
            return X.map_partitions(_encode_partition, *self._args(), meta=meta)
        return _encode_partition(X, *self._args())


    def _check_columns(self, X):
        missing = sorted(set(self.numeric_ + self.categorical_) - set(X.columns))
        if missing:
            raise ValueError(f"Columns {missing} were used in fit but are not in the data; "
                             f"it has {list(X.columns)}.")

    def transform_matrix(self, X, lengths=None):
        """Encoded ``X`` as a matrix: dense or, with ``sparse_``, SciPy CSR.

        Parameters
        ----------
        X : pandas or Dask DataFrame
        lengths : sequence of int, optional
            Rows per partition of a Dask DataFrame (known chunk sizes); when
            omitted they are unknown (NaN) for sparse output, and computed
            by ``to_dask_array(lengths=True)`` for dense output.

        Returns
        -------
        ndarray or scipy.sparse.csr_matrix (pandas input), or a Dask array
        with one row chunk per partition (Dask input).
        """
        if not getattr(self, "sparse_", False):
            Xe = self.transform(X)
            if not is_dask_collection(X):
                return Xe.to_numpy()
            return Xe.to_dask_array(lengths=True if lengths is None else list(lengths))
        self._check_columns(X)
        if not is_dask_collection(X):
            return _encode_partition_sparse(X, *self._args())
        return _sparse_dask_array(X, self._args(), len(self.feature_names_out_), lengths)


def _sparse_dask_array(X, args, width, lengths):
    """A Dask array of CSR chunks, one per partition of the Dask DataFrame ``X``."""
    import dask.array as da
    import scipy.sparse as sp

    parts = X.to_delayed()
    lengths = [np.nan] * len(parts) if lengths is None else list(lengths)
    encode = dask.delayed(_encode_partition_sparse, pure=True)
    meta = sp.csr_matrix((0, width))
    blocks = [da.from_delayed(encode(part, *args), shape=(n, width), dtype=np.float64,
                              meta=meta) for part, n in zip(parts, lengths)]
    stacked = da.concatenate(blocks, axis=0)
    # concatenate forgets the blocks' meta: say the chunks are CSR (the planner reads it).
    return da.Array(stacked.dask, stacked.name, stacked.chunks, meta=meta)


def _is_categorical(dtype):
    return (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _plain_value(v):
    """A category as a plain Python value (saved as JSON with the model)."""
    return v.item() if isinstance(v, np.generic) else v


def _category_array(index, column):
    values = list(index)
    if all(isinstance(v, str) for v in values):
        return np.array(sorted(values), dtype=object)
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.array(sorted(values), dtype=bool)
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
            v, (bool, np.bool_)) for v in values):
        return np.array(sorted(values))
    raise ValueError(f"Categorical column {column!r} mixes value types "
                     f"({sorted({type(v).__name__ for v in values})}); make it one type.")


@_named("daskfit-predict-partition")
def _predict_partition(pdf, encoder, estimator, proba, offset=None):
    X = encoder.transform_matrix(pdf)  # CSR with a sparse encoder: never densified
    # The offset column (a name) of the partition, added to the linear predictor.
    extra = {} if offset is None else {"offset": pdf[offset].to_numpy(dtype=np.float64)}
    out = pd.DataFrame(index=pdf.index)
    if X.shape[0] == 0:
        out["prediction"] = estimator.predict(np.zeros((1, X.shape[1])))[:0]
    else:
        out["prediction"] = estimator.predict(X, **extra)
    if proba:
        P = (estimator.predict_proba(X, **extra) if X.shape[0]
             else np.zeros((0, len(estimator.classes_))))
        for k, c in enumerate(estimator.classes_):
            out[f"proba_{c}"] = P[:, k]
    return out


class TabularModel(BaseEstimator):
    """A fitted :class:`FrameEncoder` and a fitted daskfit estimator, used as one model.

    ``fit`` fits both in place (as scikit-learn's ``Pipeline`` does);
    ``predict`` encodes the raw table and predicts, one partition at a time
    for a Dask DataFrame, so scoring runs out of core. Saved and loaded with
    :func:`daskfit.save` / :func:`daskfit.load` like any estimator.

    Parameters
    ----------
    encoder : FrameEncoder, default=None
        ``None``: ``FrameEncoder()``.
    estimator : daskfit estimator, default=None
        ``None``: ``daskfit.Ridge()``.
    target : str, default=None
        The target column's name, for the record (and ``daskfit predict``).
    offset : str, default=None
        The offset column's name (log exposure, ...): ``predict`` reads it
        from the table and adds it to the linear predictor.

    Examples
    --------
    >>> import pandas as pd, daskfit
    >>> from daskfit.io import TabularModel
    >>> df = pd.DataFrame({"x": [0.0, 1, 2, 3], "g": ["a", "b", "a", "b"]})
    >>> y = 2 * df["x"] + (df["g"] == "b") + 1
    >>> model = TabularModel(estimator=daskfit.LinearRegression()).fit(df, y)
    >>> model.predict(pd.DataFrame({"x": [10.0], "g": ["b"]})).round(6)
    array([22.])
    """

    def __init__(self, encoder=None, estimator=None, target=None, offset=None):
        self.encoder = encoder
        self.estimator = estimator
        self.target = target
        self.offset = offset

    def _parts(self):
        from ..estimators import Ridge

        if self.encoder is None:
            self.encoder = FrameEncoder()
        if self.estimator is None:
            self.estimator = Ridge()
        return self.encoder, self.estimator

    def fit(self, X, y, sample_weight=None):
        """Fit the encoder (one pass) then the estimator on the encoded data.

        With ``offset`` (a column of ``X``) that column is no feature: it is
        the estimator's ``offset=``.

        Parameters
        ----------
        X : pandas or Dask DataFrame
            The raw table.
        y : pandas or Dask Series, or array-like of shape (n_samples,)
        sample_weight : pandas or Dask Series, or array-like of shape (n_samples,), default=None

        Returns
        -------
        self : TabularModel
        """
        encoder, estimator = self._parts()
        offset = None
        if self.offset is not None:
            offset, X = X[self.offset], X.drop(columns=[self.offset])
        encoder.fit(X)
        Xe, y, sample_weight = self.encode(X, y, sample_weight)
        extra = {} if offset is None else {"offset": self.encode(X, offset)[1]}
        estimator.fit(Xe, y, sample_weight=sample_weight, **extra)
        self.feature_names_in_ = np.array([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def encode(self, X, y=None, sample_weight=None):
        """Encoded ``X`` (and ``y``, weights) as Dask arrays with known chunks, or NumPy.

        For a Dask DataFrame seen by ``fit`` the partition lengths from the
        fit pass are reused, so the arrays' chunk sizes are known for free.

        Parameters
        ----------
        X : pandas or Dask DataFrame
        y : pandas or Dask Series, default=None
        sample_weight : pandas or Dask Series, default=None

        Returns
        -------
        tuple of (matrix, y, sample_weight)
            The encoded matrix (a Dask array, dense or of sparse chunks, or
            NumPy/SciPy for pandas input), then ``y`` and ``sample_weight`` as
            arrays chunked like it (``None`` where not given).
        """
        if not is_dask_collection(X):
            as_np = (lambda v: None if v is None else np.asarray(v))
            return self.encoder.transform_matrix(X), as_np(y), as_np(sample_weight)
        lengths = getattr(self.encoder, "_partition_rows", None)
        if lengths is None or len(lengths) != X.npartitions:
            # One pass for the partition lengths, shared by X, y and the weights.
            lengths = tuple(int(v) for v in X.map_partitions(
                _partition_rows, meta=pd.Series([], dtype=np.int64)).compute())
        if y is not None and pd.api.types.is_string_dtype(y.dtype) and y.dtype != object:
            y = y.astype(object)  # Dask arrays hold strings as objects; say so, silently
        Xe = self.encoder.transform_matrix(X, lengths)
        arrays = [v if v is None else v.to_dask_array(lengths=list(lengths))
                  for v in (y, sample_weight)]
        return (Xe, *arrays)

    def predict(self, X):
        """Predictions: NumPy for pandas input, a lazy Dask array for a Dask DataFrame.

        Parameters
        ----------
        X : pandas or Dask DataFrame
            The raw table (with the offset column, if the model has one).

        Returns
        -------
        ndarray or dask Array of shape (n_samples,)
        """
        frame = self.predict_frame(X)
        if is_dask_collection(frame):
            return frame["prediction"].to_dask_array()
        return frame["prediction"].to_numpy()

    def predict_frame(self, X, proba=False):
        """A frame with ``prediction`` (and ``proba_<class>`` columns), partition by partition.

        Parameters
        ----------
        X : pandas or Dask DataFrame
            The raw table (with the offset column, if the model has one).
        proba : bool, default=False
            Also the class probabilities (classifiers only).

        Returns
        -------
        pandas or Dask DataFrame
        """
        if proba and not hasattr(self.estimator, "predict_proba"):
            raise ValueError(f"{type(self.estimator).__name__} has no predict_proba.")
        if self.offset is not None and self.offset not in X.columns:
            raise ValueError(f"The model adds the offset column {self.offset!r} to its linear "
                             f"predictor, but the table has no such column.")
        if not is_dask_collection(X):
            return _predict_partition(X, self.encoder, self.estimator, proba, self.offset)
        meta = _predict_partition(X._meta, self.encoder, self.estimator, proba, self.offset)
        return X.map_partitions(_predict_partition, self.encoder, self.estimator, proba,
                                self.offset, meta=meta)

    def score(self, X, y, sample_weight=None):
        """The estimator's score (R^2, accuracy, D^2) on the encoded ``X``.

        Parameters
        ----------
        X : pandas or Dask DataFrame
            The raw table.
        y : pandas or Dask Series, or array-like of shape (n_samples,)
        sample_weight : pandas or Dask Series, or array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        Xe, y, sample_weight = self.encode(X, y, sample_weight)
        return self.estimator.score(Xe, y, sample_weight=sample_weight)
