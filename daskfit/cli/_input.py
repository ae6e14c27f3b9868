"""Finding, fingerprinting and reading the input table (Parquet, CSV, Zarr; fsspec URLs).

The fingerprint is a hash of every input file's name, size and modification
stamp (or ETag / checksum where the store has one), read from the store's
listing: it costs no pass over the data, and it changes whenever a file is
added, removed, resized or rewritten. With the configuration it makes the
run id, so re-running a finished run on unchanged input does nothing.
"""

from __future__ import annotations

import hashlib
import json

import fsspec

from ._config import resolve_path
from ._exit import ConfigError, DataProblem, InputMissing

__all__ = ["Input", "explain_csv_error", "explain_csv_nan", "find_input", "read_table"]

#: Properties that identify a file's version, best first (object stores, then POSIX).
STAMP_KEYS = ("ETag", "etag", "md5Hash", "checksum", "crc32c", "mtime", "LastModified",
              "last_modified", "updated", "modified")
GLOB_CHARS = "*?["


class Input:
    """The input of a run: where it is, which files, and their fingerprint."""

    def __init__(self, url, fmt, storage_options, files, fingerprint, nbytes, fs=None):
        self.url, self.format, self.storage_options = url, fmt, storage_options
        self.files, self.fingerprint, self.nbytes = files, fingerprint, nbytes
        self.fs = fs

    def urls(self):
        """The files as URLs with their protocol (``files`` are the store's own paths)."""
        if self.fs is None:
            return list(self.files)
        return [self.fs.unstrip_protocol(p) for p in self.files]

    def describe(self):
        return {"path": self.url, "format": self.format, "n_files": len(self.files),
                "bytes": self.nbytes, "fingerprint": self.fingerprint}


def infer_format(url):
    stem = url.rstrip("/").lower()
    if stem.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if stem.endswith(".zarr"):
        return "zarr"
    return "parquet"


def find_input(config):
    """Locate the input files and fingerprint them (no data is read).

    Raises :class:`InputMissing` when nothing is there.
    """
    data = config["data"]
    url = resolve_path(config, data["path"])
    fmt = data["format"] or infer_format(url)
    try:
        fs, root = fsspec.core.url_to_fs(url, **data["storage_options"])
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError(config["_file"], "data.storage_options",
                          f"cannot open {url!r} with these options: {exc}") from None
    return locate(fs, root, url, fmt, data["storage_options"],
                  where=f" (data.path in {config['_file']})")


def locate(fs, root, url, fmt, storage_options, where=""):
    """The files at ``root`` (a file, a directory or a glob) and their fingerprint."""
    if any(c in root for c in GLOB_CHARS):
        paths = sorted(fs.glob(root))
    elif fs.isdir(root):
        paths = sorted(p for p in fs.find(root) if not _hidden(p, root))
    elif fs.exists(root):
        paths = [root]
    else:
        paths = []
    if not paths:
        raise InputMissing(f"No input at {url}{where}.")
    entries, total = [], 0
    for p in paths:
        info = fs.info(p)
        stamp = next((str(info[k]) for k in STAMP_KEYS if k in info), "")
        entries.append([p[len(root):] or p.rsplit("/", 1)[-1], int(info.get("size") or 0), stamp])
        total += int(info.get("size") or 0)
    digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    return Input(url, fmt, storage_options, paths, digest, total, fs)


def _hidden(path, root):
    """Files Parquet readers skip (``_metadata`` aside): names starting with '_' or '.'."""
    name = path[len(root):].lstrip("/")
    return any(part.startswith((".", "_")) for part in name.split("/"))


def open_table(url, storage_options=None, blocksize="64MB"):
    """``daskfit predict``'s input: a Parquet or CSV path or URL, as a lazy Dask DataFrame."""
    storage_options = storage_options or {}
    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    source = locate(fs, root, url, infer_format(url), storage_options)
    config = {"data": {"blocksize": blocksize}}
    return read_table(config, source)


def read_table(config, source):
    """The input as a lazy Dask DataFrame (nothing is read but metadata)."""
    import dask.dataframe as dd

    data = config["data"]
    try:
        if source.format == "parquet":
            return _read_parquet_files(source)
        if source.format == "csv":
            # The listed files, not the URL: a directory is read file by file (dask's
            # read_csv takes a file or a glob, and would fail on a directory).
            return dd.read_csv(source.urls(), blocksize=data["blocksize"],
                               storage_options=source.storage_options)
        return _read_zarr(config, source)
    except (FileNotFoundError, InputMissing):
        raise
    except (ValueError, OSError, TypeError) as exc:
        raise DataProblem(f"Cannot read {source.url} as {source.format}: {exc}") from None


def _read_parquet_files(source):
    """One partition per file (see :func:`daskfit.io.read_parquet` for why)."""
    from ..io import read_parquet

    return read_parquet(list(source.files), source.storage_options)


def _read_zarr(config, source):
    """A Zarr group with one 1-D array per column (requires the ``zarr`` package)."""
    try:
        import zarr  # noqa: F401
    except ImportError:
        raise ConfigError(config["_file"], "data.format",
                          "zarr input needs the zarr package: pip install zarr") from None
    import dask.array as da
    import dask.dataframe as dd

    data = config["data"]
    columns = list(data["features"] or []) + [data["target"]]
    columns += [data[key] for key in ("sample_weight", "offset") if data[key]]
    if data["features"] is None:
        raise ConfigError(config["_file"], "data.features",
                          "is required for zarr input (one array per column)")
    arrays = [da.from_zarr(source.url, component=c, storage_options=source.storage_options)
              for c in columns]
    return dd.concat([dd.from_dask_array(a, columns=c) for a, c in zip(arrays, columns)],
                     axis=1)


def explain_csv_error(source, meta):
    """On a CSV read that failed on dtypes, the file and column to blame (or None).

    Dask infers the column types from the first file's first rows and
    reports a later mismatch without saying where it is. Only on that failure
    path, each file is read with those types until one refuses: its name and
    the column go into the error. Costs a read of the files up to the culprit.
    """
    import pandas as pd

    dtypes = {str(c): t for c, t in meta.dtypes.items() if t.kind in "biuf"}
    for path in source.files:
        with fsspec.open(path, "rb", compression="infer", **source.storage_options) as handle:
            frame = pd.read_csv(handle, usecols=lambda c: str(c) in dtypes)
        for column in dtypes:
            values = frame[column]
            if values.dtype.kind in "biuf":
                continue
            bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
            row = int(bad.to_numpy().argmax())
            return DataProblem(
                f"CSV dtype drift: {path}, column {column!r}, data row {row + 1}: "
                f"{values.iloc[row]!r} is not a number, but the column is "
                f"{dtypes[column]} in the files read before. Fix or remove that value, or "
                "exclude the file.")
    return None


def explain_csv_nan(source, columns):
    """On a fit that failed on NaN or infinity in CSV input: the file, column and row.

    The engine knows the chunk, not the file. Only on that failure path,
    each file is read (just the numeric ``columns`` the run uses) until one
    holds a missing or infinite value. Returns a :class:`DataProblem`, or
    ``None`` when no file has one.
    """
    import numpy as np
    import pandas as pd

    for path in source.urls():
        with fsspec.open(path, "rb", compression="infer", **source.storage_options) as handle:
            frame = pd.read_csv(handle, usecols=lambda c: str(c) in columns)
        for column in frame.columns:
            values = frame[column]
            if values.dtype.kind not in "biuf":   # categories (missing ones encode as zeros)
                continue
            bad = values.isna() | np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                row = int(bad.to_numpy().argmax())
                what = "missing (empty or NaN)" if pd.isna(values.iloc[row]) else "infinite"
                return DataProblem(
                    f"CSV {path}, column {column!r}, data row {row + 1} (line {row + 2}): the "
                    f"value is {what}. daskfit does not impute: fill or drop that row, or "
                    "leave the column out of data.features.")
    return None
