"""Reading Parquet as one partition per file, with a partitioning that never changes."""

from __future__ import annotations

__all__ = ["read_parquet"]


def _read_parquet_file(path, fs, schema=None, first=None, columns=None):
    import pyarrow.parquet as pq

    from ..engine.rows import DataError

    try:
        parquet = pq.ParquetFile(path, filesystem=fs)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Parquet file {path} was listed when the run was planned but is gone now (deleted "
            "or moved while it ran). Run again once the input is complete.") from None
    except (OSError, ValueError) as exc:   # pyarrow's ArrowInvalid is a ValueError
        raise _unreadable(path, exc) from None
    if schema is not None and not parquet.schema_arrow.equals(schema):
        # Schema drift: name the file and the first column that differs, not a pandas error
        # (or silently wrong values) further down. The whole schema is checked (it is in
        # the footer, already read) even when only some columns are read.
        problem = _schema_difference(schema, parquet.schema_arrow)
        raise DataError(f"Parquet file {path} does not have the schema of {first}: {problem}. "
                        "Rewrite that file with the same columns and types as the others, or "
                        "leave it out of the input.")
    # One thread: the Dask worker thread is already the unit of parallelism.
    try:
        table = parquet.read(columns=columns, use_threads=False)
    except (OSError, ValueError) as exc:   # a footer that reads, pages that do not
        raise _unreadable(path, exc) from None
    return table.to_pandas()


def _unreadable(path, exc):
    """The error for a file pyarrow cannot read (truncated, corrupt, not Parquet): named."""
    from ..engine.rows import DataError

    return DataError(f"Parquet file {path} cannot be read (truncated, corrupt or not "
                     f"Parquet): {type(exc).__name__}: {exc}. Rewrite or remove that file.")


def _schema_difference(expected, found):
    for field in expected:
        if field.name not in found.names:
            return f"column {field.name!r} is missing"
        other = found.field(field.name).type
        if other != field.type:
            return f"column {field.name!r} has type {other}, expected {field.type}"
    extra = [n for n in found.names if n not in expected.names]
    if extra:
        return f"it has extra columns {extra}"
    return f"columns in another order: {found.names} instead of {expected.names}"


# The dashboard's task stream shows "daskfit-read-parquet".
_read_parquet_file.__name__ = "daskfit-read-parquet"


def read_parquet(files, storage_options=None):
    """A Dask DataFrame with one partition per Parquet file.

    ``dask.dataframe.read_parquet`` may fuse small files into fewer
    partitions once columns are projected, so the partitioning a persisted
    collection was built with and the one the next graph sees can differ
    (and persisted partitions then go missing). Reading file by file keeps
    one partitioning for every pass, so partition lengths learnt in one pass
    stay valid for the next.

    Parameters
    ----------
    files : str or list of str
        A directory (every file not starting with ``_`` or ``.``), a glob,
        a file, or a list of files; local paths or fsspec URLs.
    storage_options : dict, optional
        fsspec options (credentials, endpoint).

    Returns
    -------
    frame : dask.dataframe.DataFrame

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> from daskfit.io import read_parquet
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     pd.DataFrame({"x": [float(i)] * 4}).to_parquet(os.path.join(folder, f"{i}.parquet"))
    >>> df = read_parquet(folder)
    >>> df.npartitions, int(df["x"].sum().compute())
    (3, 12)
    """
    import dask.dataframe as dd
    import fsspec
    import pyarrow.parquet as pq

    storage_options = storage_options or {}
    if isinstance(files, (list, tuple)):
        fs, _ = fsspec.core.url_to_fs(files[0], **storage_options)
        paths = list(files)
    else:
        fs, root = fsspec.core.url_to_fs(files, **storage_options)
        if any(c in root for c in "*?["):
            paths = sorted(fs.glob(root))
        elif fs.isdir(root):
            paths = sorted(p for p in fs.find(root) if not any(
                part.startswith((".", "_")) for part in p[len(root):].lstrip("/").split("/")))
        else:
            paths = [root]
    if not paths:
        raise FileNotFoundError(f"No Parquet files at {files!r}.")
    try:
        schema = pq.read_schema(paths[0], filesystem=fs)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise _unreadable(paths[0], exc) from None
    # Only the fields: the pandas metadata (index, row counts) may differ between files.
    schema = schema.remove_metadata()
    meta = schema.empty_table().to_pandas()
    return dd.from_map(_SchemaChecked(fs, schema, paths[0]), paths, meta=meta,
                       enforce_metadata=False)


class _SchemaChecked:
    """Read one file and check it against the first file's schema (picklable for workers)."""

    def __init__(self, fs, schema, first):
        self.fs, self.schema, self.first = fs, schema, first
        self.__name__ = "daskfit-read-parquet"

    def __call__(self, path, columns=None):
        # ``columns``: Dask projects a column selection into the read (from_map
        # looks for this keyword), so ``df["y"]`` reads one column of each file,
        # not all of them, when X and y are taken from the same files.
        return _read_parquet_file(path, self.fs, self.schema, self.first, columns)

    def __dask_tokenize__(self):
        return ("daskfit-read-parquet", self.first, str(self.schema),
                type(self.fs).__name__, self.fs.storage_options)
