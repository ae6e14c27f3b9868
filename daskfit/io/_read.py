"""Reading Parquet as one partition per file, with a partitioning that never changes."""

from __future__ import annotations

__all__ = ["read_parquet"]


def _read_parquet_file(path, fs):
    import pyarrow.parquet as pq

    # One thread: the Dask worker thread is already the unit of parallelism.
    return pq.read_table(path, filesystem=fs, use_threads=False).to_pandas()


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
    meta = pq.read_schema(paths[0], filesystem=fs).empty_table().to_pandas()
    return dd.from_map(_read_parquet_file, paths, fs=fs, meta=meta, enforce_metadata=False)
