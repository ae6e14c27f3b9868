"""Saving and loading fitted estimators as JSON plus ``.npz``: never pickle.

A saved model is a directory holding exactly two files:

``model.json``
    ``{"format": "daskfit-model", "format_version": 1, "daskfit_version": ...,
    "estimator": NODE}`` where ``NODE = {"class": NAME, "params": {...},
    "attributes": {...}, "not_saved": [...]}``. ``NAME`` is a bare class name
    looked up in an allow-list of daskfit's own estimators (never a module
    path, so nothing outside daskfit can be named). Parameters that are
    themselves estimators are nested nodes.
``arrays.npz``
    Every numeric array, read back with ``numpy.load(allow_pickle=False)``:
    an object array (the way a pickle hides in an ``.npz``) is refused.

``checksums.json``
    The sha256 of the two files above, written last: ``load`` refuses a model
    whose bytes changed after it was saved (a flipped bit, a hand edit). With
    a key in the environment variable ``DASKFIT_MODEL_KEY`` the digests are
    HMAC-SHA256 under that key instead: tamper evidence against someone who
    can rewrite the files but does not hold the key. A loader with the key
    set refuses a model without keyed digests.

Loading a hostile directory is bounded: ``model.json`` at most
:data:`MAX_JSON_BYTES` and :data:`MAX_JSON_DEPTH` levels deep; every array's
``.npy`` header is read before its data, must have the shape and dtype the
JSON declares for it, and all arrays together at most
:data:`MAX_ARRAY_BYTES` (so a small compressed ``.npz`` cannot inflate to
gigabytes); the fitted coefficients must have the shape the estimator's
``n_features_in_`` and ``classes_`` imply.

Loading refuses any other file in the directory, any array the JSON does not
name, any unknown class, parameter or tag, and any non-finite coefficient,
before an estimator is built. Nothing is unpickled or imported by name.

Values are encoded recursively: JSON scalars as themselves; non-finite floats
as ``{"__daskfit_float__": "inf"}``; numeric and boolean arrays as
``{"__daskfit_array__": key, "shape": [...], "dtype": "<f8"}`` (into the ``.npz``); string arrays as
``{"__daskfit_strings__": [...], "dtype": "object"|"<U3"}``; tuples as
``{"__daskfit_tuple__": [...]}``; estimators as
``{"__daskfit_estimator__": NODE}``. Fitted attributes that are none of these
(the solver's ``fit_result_``, the planner's ``fit_plan_``) are not saved and
are listed under ``not_saved``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from sklearn.base import BaseEstimator

__all__ = ["ModelFormatError", "clean_dead_temp_dirs", "load", "make_temp_dir", "remove_temp_dir",
           "save", "verify_manifest", "write_manifest"]

FORMAT = "daskfit-model"
FORMAT_VERSION = 1
MODEL_JSON = "model.json"
ARRAYS_NPZ = "arrays.npz"
#: sha256 of model.json and arrays.npz, written last: a flipped byte or an edit is refused.
CHECKSUMS = "checksums.json"
#: A run directory's sha256 of every file in it (``daskfit run``), written last.
MANIFEST = "manifest.json"
#: The only files a model directory may hold.
MODEL_FILES = frozenset({MODEL_JSON, ARRAYS_NPZ, CHECKSUMS})
#: Array dtypes stored in the .npz: booleans, integers, floats (never objects).
NUMERIC_KINDS = "biuf"
#: A fitted attribute name: identifier ending in "_", not private.
ATTRIBUTE_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*_$")
#: Attributes that must be finite for a model to be worth saving or loading.
FINITE_ATTRIBUTES = ("coef_", "intercept_")

#: Upper bounds of what loading a model may read: a hostile file is refused, not inflated.
MAX_JSON_BYTES = 64 * 2**20
MAX_JSON_DEPTH = 64
MAX_ARRAY_BYTES = 1 * 2**30
#: Environment variable holding the key of keyed (HMAC-SHA256) checksums.
KEY_ENV = "DASKFIT_MODEL_KEY"

_TAG_FLOAT = "__daskfit_float__"
_TAG_ARRAY = "__daskfit_array__"
_TAG_STRINGS = "__daskfit_strings__"
_TAG_TUPLE = "__daskfit_tuple__"
_TAG_ESTIMATOR = "__daskfit_estimator__"
_TAGS = {_TAG_FLOAT, _TAG_ARRAY, _TAG_STRINGS, _TAG_TUPLE, _TAG_ESTIMATOR}


class ModelFormatError(DataError):
    """A model directory that daskfit refuses to load (or an estimator it cannot save)."""


def allowed_classes():
    """Name -> class for every estimator ``load`` may build: daskfit's own, nothing else."""
    import daskfit

    from ._tabular import FrameEncoder, TabularModel

    classes = {"FrameEncoder": FrameEncoder, "TabularModel": TabularModel}
    for name in daskfit.__all__:
        obj = getattr(daskfit, name)
        if (isinstance(obj, type) and issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("daskfit.")):
            classes[name] = obj
    return classes


# --------------------------------------------------------------------- save
class _Encoder:
    """Turns estimators into JSON nodes, collecting numeric arrays for the .npz."""

    def __init__(self):
        self.arrays = {}

    def estimator(self, est, where):
        cls = type(est)
        if allowed_classes().get(cls.__name__) is not cls:
            raise ModelFormatError(
                f"{where}: cannot save a {cls.__module__}.{cls.__name__}; daskfit saves only "
                f"its own estimators: {sorted(allowed_classes())}.")
        params = {}
        for name, value in est.get_params(deep=False).items():
            try:
                params[name] = self.value(value, f"{where}.params.{name}")
            except _Unsupported as exc:
                raise ModelFormatError(
                    f"{where}: parameter {name!r} = {value!r} cannot be saved without pickle "
                    f"({exc}). Use a JSON-friendly value (numbers, strings, lists, dicts).") from None
        attributes, not_saved = {}, []
        for name, value in sorted(vars(est).items()):
            if not ATTRIBUTE_NAME.match(name):
                continue
            if name in FINITE_ATTRIBUTES and not np.all(np.isfinite(np.asarray(value, float))):
                raise ModelFormatError(
                    f"{where}: {name} contains NaN or infinity; refusing to save a broken model.")
            try:
                attributes[name] = self.value(value, f"{where}.{name}")
            except _Unsupported:
                not_saved.append(name)
        if not attributes:
            raise ModelFormatError(f"{where}: {cls.__name__} is not fitted; fit it before saving.")
        return {"class": cls.__name__, "params": params, "attributes": attributes,
                "not_saved": not_saved}

    def value(self, v, key):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            v = float(v)
            return v if math.isfinite(v) else {_TAG_FLOAT: repr(v)}
        if isinstance(v, np.ndarray):
            return self.array(v, key)
        if isinstance(v, BaseEstimator):
            return {_TAG_ESTIMATOR: self.estimator(v, key)}
        if isinstance(v, tuple):
            return {_TAG_TUPLE: [self.value(x, f"{key}.{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.value(x, f"{key}.{i}") for i, x in enumerate(v)]
        if isinstance(v, dict):
            if not all(isinstance(k, str) and k not in _TAGS for k in v):
                raise _Unsupported("dict keys must be strings")
            return {k: self.value(x, f"{key}.{k}") for k, x in v.items()}
        raise _Unsupported(f"type {type(v).__name__}")

    def array(self, a, key):
        if a.dtype.kind in NUMERIC_KINDS:
            self.arrays[key] = a
            return {_TAG_ARRAY: key, "shape": list(a.shape), "dtype": a.dtype.str}
        if a.dtype.kind in "UO" and a.ndim == 1 and all(isinstance(x, str) for x in a):
            return {_TAG_STRINGS: [str(x) for x in a],
                    "dtype": "object" if a.dtype.kind == "O" else a.dtype.str}
        raise _Unsupported(f"array of dtype {a.dtype} and shape {a.shape}")


class _Unsupported(Exception):
    """A value with no pickle-free encoding."""


def save(estimator, path):
    """Save a fitted daskfit estimator to the directory ``path`` (JSON + ``.npz``).

    The directory is assembled next to ``path`` and renamed into place, so a
    reader never sees half a model; an existing model at ``path`` is
    replaced. Only daskfit's own estimators are saved, and never with pickle.

    Parameters
    ----------
    estimator : fitted daskfit estimator
        Any daskfit estimator, or a :class:`~daskfit.io.TabularModel`.
    path : str or path-like
        Directory to create (its parent must exist).

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, daskfit
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = 2 * X[:, 0] + 1
    >>> reg = daskfit.LinearRegression().fit(X, y)
    >>> folder = tempfile.mkdtemp()
    >>> _ = daskfit.save(reg, folder + "/model")
    >>> daskfit.load(folder + "/model").predict([[10.0]]).round(6)
    array([21.])
    """
    from .. import __version__

    path = Path(path)
    encoder = _Encoder()
    node = encoder.estimator(estimator, "estimator")
    document = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "daskfit_version": __version__, "estimator": node}
    text = json.dumps(document, indent=2, allow_nan=False)
    parent = path.parent if str(path.parent) else Path(".")
    clean_dead_temp_dirs(parent)
    tmp = make_temp_dir(parent, path.name)
    try:
        (tmp / MODEL_JSON).write_text(text + "\n")
        np.savez(tmp / ARRAYS_NPZ, **encoder.arrays)
        write_manifest(tmp, CHECKSUMS)
        replace_dir(tmp, path)
    except BaseException:
        remove_temp_dir(tmp)
        raise
    return path


#: Suffix of the lock file beside a temporary directory: it names the owning process.
LOCK_SUFFIX = ".lock"


def _process_identity(pid):
    """``(pid, start time)``: the start time tells a live owner from a recycled pid."""
    import psutil

    return pid, psutil.Process(pid).create_time()


def make_temp_dir(parent, name):
    """A hidden directory next to the final one, with the umask's permissions (not 0700).

    Beside it, ``<dir>.lock`` records the owner (host, pid, process start
    time), so :func:`clean_dead_temp_dirs` can remove what a killed process
    (SIGKILL, power loss) left behind, and never what a live one is writing.
    """
    import socket

    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    pid, started = _process_identity(os.getpid())
    lock = Path(str(tmp) + LOCK_SUFFIX)
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": started}))
    return tmp


def remove_temp_dir(tmp):
    """Remove a temporary directory of :func:`make_temp_dir` and its lock file."""
    shutil.rmtree(tmp, ignore_errors=True)
    Path(str(tmp) + LOCK_SUFFIX).unlink(missing_ok=True)


def _owner_alive(owner):
    """Whether the process a lock names still runs (a lock from another host: assume so)."""
    import socket

    import psutil

    if owner.get("host") != socket.gethostname():
        return True
    try:
        return _process_identity(int(owner["pid"]))[1] == owner["started"]
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:   # exists, but not ours to inspect: alive
        return True


def clean_dead_temp_dirs(parent):
    """Remove temporary directories under ``parent`` whose owning process is dead.

    Returns the directories removed. A lock that cannot be read is left alone
    (never guess about someone else's files).
    """
    removed = []
    for lock in Path(parent).glob(f".*{LOCK_SUFFIX}"):
        try:
            owner = json.loads(lock.read_text())
            alive = _owner_alive(owner)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not alive:
            tmp = Path(str(lock)[:-len(LOCK_SUFFIX)])
            remove_temp_dir(tmp)
            removed.append(tmp)
    return removed


def replace_dir(tmp, path):
    """Move the finished directory ``tmp`` to ``path``, replacing what was there.

    If the final rename fails (a crash, a full disk), the previous directory
    is put back, so ``path`` holds either the old artifact or the new one,
    never neither; the caller removes ``tmp``.
    """
    lock = Path(str(tmp) + LOCK_SUFFIX)
    if not path.exists():
        os.replace(tmp, path)
        lock.unlink(missing_ok=True)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
    try:
        os.replace(path, old / "x")
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old / "x", path)   # put the previous artifact back
            raise
    finally:
        if path.exists():   # never delete the only copy, even if putting it back failed
            shutil.rmtree(old, ignore_errors=True)
    lock.unlink(missing_ok=True)


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checksum_key():
    """The key of keyed checksums (``DASKFIT_MODEL_KEY``, UTF-8), or None when unset."""
    key = os.environ.get(KEY_ENV)
    return key.encode() if key else None


def _digest(path, key):
    """sha256 of the file, or its HMAC-SHA256 under ``key``."""
    if key is None:
        return _sha256(path)
    with open(path, "rb") as handle:
        return hmac.new(key, handle.read(), "sha256").hexdigest()


def write_manifest(directory, name=MANIFEST):
    """Write ``directory/name``: the digest of every other file under ``directory``.

    The digest is sha256, or HMAC-SHA256 when ``DASKFIT_MODEL_KEY`` holds a
    key. Written last (to a temporary name, then renamed), so its presence
    means every file it lists was complete. Returns ``{relative path: digest}``.
    """
    directory = Path(directory)
    key = checksum_key()
    files = {p.relative_to(directory).as_posix(): _digest(p, key)
             for p in sorted(directory.rglob("*")) if p.is_file() and p.name != name}
    algorithm = "sha256" if key is None else "hmac-sha256"
    tmp = directory / f".{name}.tmp"
    tmp.write_text(json.dumps({"algorithm": algorithm, "files": files}, indent=2) + "\n")
    os.replace(tmp, directory / name)
    return files


def verify_manifest(directory, name=MANIFEST, only=None):
    """Check the files listed in ``directory/name`` against their sha256.

    ``only``: a path prefix (``"model/"``) to check just those entries.
    Raises :class:`ModelFormatError` naming the first file that differs or is
    missing, or an unreadable manifest.
    """
    directory = Path(directory)
    manifest = directory / name
    try:
        if manifest.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(f"larger than {MAX_JSON_BYTES} bytes")
        document = json.loads(manifest.read_text())
        files, algorithm = document["files"], document.get("algorithm", "sha256")
        if not (isinstance(files, dict) and all(isinstance(v, str) for v in files.values())):
            raise TypeError("'files' must map paths to digests")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelFormatError(f"{manifest} is missing or unreadable ({exc}); cannot verify "
                               f"{directory}. Save or run again.") from None
    key = _key_for(algorithm, manifest)
    for rel, expected in files.items():
        if only is not None and not rel.startswith(only):
            continue
        target = (directory / rel).resolve()
        if not target.is_relative_to(directory.resolve()):
            raise ModelFormatError(f"Refusing to load {directory}: {name} lists {rel!r}, "
                                   "outside the directory.")
        if not target.is_file():
            raise ModelFormatError(f"Refusing to load {directory}: {rel} is listed in {name} "
                                   "but missing.")
        if not hmac.compare_digest(_digest(target, key), expected):
            raise ModelFormatError(
                f"Refusing to load {directory}: {rel} fails its {algorithm} checksum in {name} "
                "(the file was changed or corrupted after it was written"
                + (", or written under another key" if key is not None else "")
                + "). Restore it from the original artifact or save the model again.")
    return files


def _key_for(algorithm, manifest):
    """The key to verify ``manifest`` with: None for sha256; refuses a mismatch of the
    manifest's algorithm and whether this process holds a key."""
    key = checksum_key()
    if algorithm == "sha256":
        if key is not None:
            raise ModelFormatError(
                f"Refusing {manifest.parent}: {KEY_ENV} is set, so only models with keyed "
                f"(hmac-sha256) checksums are trusted, and {manifest.name} has plain sha256 "
                "ones. Save the model again with the key set.")
        return None
    if algorithm == "hmac-sha256":
        if key is None:
            raise ModelFormatError(
                f"{manifest} has keyed (hmac-sha256) checksums: set {KEY_ENV} to the key "
                "they were written with to verify and load it.")
        return key
    raise ModelFormatError(f"{manifest}: unknown checksum algorithm {algorithm!r}.")


# --------------------------------------------------------------------- load
def load(path):
    """Load an estimator saved by :func:`save`; refuse anything that is not one.

    Parameters
    ----------
    path : str or path-like
        A model directory (``model.json`` and ``arrays.npz``).

    Returns
    -------
    estimator : fitted daskfit estimator

    Raises
    ------
    FileNotFoundError
        ``path`` or ``model.json`` does not exist.
    ModelFormatError
        Any unexpected file (a pickle, say), an object array in the ``.npz``,
        a class that is not daskfit's, an unknown parameter or tag, or
        non-finite coefficients. Nothing in the directory is executed.

    Examples
    --------
    See :func:`save`.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No model directory at {path}; save one with daskfit.save().")
    extra = sorted(p.name for p in path.iterdir() if p.name not in MODEL_FILES)
    if extra:
        raise ModelFormatError(
            f"Refusing to load {path}: unexpected files {extra}. A daskfit model holds only "
            f"{sorted(MODEL_FILES)}; anything else (a pickle, say) is never read.")
    json_path = path / MODEL_JSON
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path} is missing: {path} is not a daskfit model.")
    verify_manifest(path, CHECKSUMS)
    run_dir = path.parent
    if (run_dir / MANIFEST).is_file():   # a run's model/: its run manifest must agree too
        verify_manifest(run_dir, MANIFEST, only=path.name + "/")
    document = _read_json(json_path)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFormatError(f"{json_path} is not a daskfit model (no format={FORMAT!r}).")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{json_path} has format_version {document.get('format_version')!r}; this daskfit "
            f"reads version {FORMAT_VERSION}.")
    npz_path = path / ARRAYS_NPZ
    if not npz_path.is_file():
        raise FileNotFoundError(f"{npz_path} is missing: not a complete daskfit model.")
    try:
        with zipfile.ZipFile(npz_path) as archive:
            arrays = _NpzArrays(archive, npz_path)
            unused = sorted(set(arrays.headers) - _declared_arrays(document))
            if unused:
                raise ModelFormatError(f"Refusing to load {path}: {ARRAYS_NPZ} holds arrays the "
                                       f"model does not name: {unused}.")
            decoder = _Decoder(arrays, json_path)
            estimator = decoder.estimator(document.get("estimator"), "estimator")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        # a corrupt zip: say so, never guess
        raise ModelFormatError(f"{npz_path} is not a readable .npz file: {exc}") from None
    return estimator


def _reject_constant(name):
    raise ModelFormatError(f"non-standard JSON constant {name} in a model file")


def _json_depth(text):
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (strings skipped), in one scan."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _read_json(json_path):
    """``model.json`` parsed, refused when too large or nested too deep to parse safely."""
    size = json_path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ModelFormatError(f"Refusing to load {json_path}: {size} bytes, more than the "
                               f"{MAX_JSON_BYTES} a daskfit model's JSON may have.")
    try:
        text = json_path.read_text()
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{json_path} is not valid JSON: {exc}") from None
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ModelFormatError(f"Refusing to load {json_path}: JSON nested {depth} levels "
                               f"deep; a daskfit model has at most {MAX_JSON_DEPTH}.")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{json_path} is not valid JSON: {exc}") from None


def _declared_arrays(node):
    """Every ``.npz`` key the JSON document names (iteratively: depth is bounded already)."""
    names, stack = set(), [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get(_TAG_ARRAY), str):
                names.add(value[_TAG_ARRAY])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return names


class _NpzArrays:
    """The arrays of an ``.npz``, read header first and bounded, never with pickle.

    Every member's ``.npy`` header (shape, dtype) is read when the archive is
    opened: object dtypes are refused there, and the sizes the headers
    declare must add up to at most :data:`MAX_ARRAY_BYTES` and match what
    each member really holds once decompressed, so reading a member never
    inflates past what was checked. The data of an array is read only when
    the JSON names it with the same shape and dtype (:meth:`get`).
    """

    def __init__(self, archive, path):
        self.archive, self.path, self.headers = archive, path, {}
        total = 0
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                self.fail(f"member {info.filename!r} is not an .npy array")
            key = info.filename[:-4]
            shape, dtype, offset = self._header(info)
            nbytes = math.prod(shape) * dtype.itemsize
            total += nbytes
            if total > MAX_ARRAY_BYTES:
                self.fail(f"its arrays declare more than {MAX_ARRAY_BYTES} bytes (array "
                          f"{key!r} alone {nbytes}); a daskfit model is far smaller")
            if info.file_size != offset + nbytes:
                self.fail(f"array {key!r} declares {nbytes} bytes of data but its member holds "
                          f"{info.file_size - offset}")
            self.headers[key] = (shape, dtype, info)

    def fail(self, message):
        raise ModelFormatError(f"Refusing to load {self.path}: {message}.")

    def _header(self, info):
        from numpy.lib import format as npy

        with self.archive.open(info) as handle:
            try:
                version = npy.read_magic(handle)
                read = npy.read_array_header_1_0 if version == (1, 0) else \
                    npy.read_array_header_2_0
                shape, _, dtype = read(handle)
            except ValueError as exc:
                self.fail(f"member {info.filename!r} has no valid .npy header ({exc})")
            offset = handle.tell()
        if dtype.hasobject or dtype.kind not in NUMERIC_KINDS:
            self.fail(f"array {info.filename[:-4]!r} has dtype {dtype}; only numeric arrays "
                      "are allowed (never allow_pickle: an object array can hide a pickle)")
        return tuple(shape), dtype, offset

    def get(self, key, shape, dtype, where):
        """Array ``key``, after checking the JSON's ``shape`` and ``dtype`` against its header."""
        from numpy.lib import format as npy

        if key not in self.headers:
            self.fail(f"{where}: array {key!r} is not in {ARRAYS_NPZ}")
        found_shape, found_dtype, info = self.headers[key]
        if shape is None and dtype is None:
            self.fail(f"{where}: {MODEL_JSON} does not declare the shape and dtype of array "
                      f"{key!r} (a model saved before daskfit checked them, or an edited "
                      "one); save the model again with this daskfit")
        try:
            declared = (tuple(int(n) for n in shape), np.dtype(str(dtype)))
        except (TypeError, ValueError):
            self.fail(f"{where}: array {key!r} has no valid shape and dtype in {MODEL_JSON} "
                      f"(got shape={shape!r}, dtype={dtype!r})")
        if declared != (found_shape, found_dtype):
            self.fail(f"{where}: array {key!r} is {found_dtype} of shape {found_shape} in "
                      f"{ARRAYS_NPZ}, but {MODEL_JSON} declares {declared[1]} of shape "
                      f"{declared[0]}")
        with self.archive.open(info) as handle:
            return npy.read_array(handle, allow_pickle=False)


def check_fitted_shapes(est, where):
    """Refuse coefficients whose shape does not fit the estimator's own metadata.

    A regressor's ``coef_`` is ``(n_features_in_,)`` and its ``intercept_`` a
    scalar; a classifier's ``coef_`` is ``(1 or n_classes, n_features_in_)``
    and its ``intercept_`` one value per row. A 2-D ``coef_`` in a regressor
    would otherwise load and predict an (n, 3) array.
    """
    from sklearn.base import is_classifier

    if not hasattr(est, "coef_"):
        return
    coef = np.asarray(est.coef_)
    intercept = np.asarray(getattr(est, "intercept_", 0.0))
    n_features = getattr(est, "n_features_in_", None)
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 0:
        raise ModelFormatError(f"{where}: n_features_in_ must be a count; got {n_features!r}")
    if is_classifier(est):
        classes = np.asarray(getattr(est, "classes_", ()))
        rows = 1 if classes.size == 2 else classes.size
        expected, expected_intercept = (rows, n_features), (rows,)
    else:
        expected, expected_intercept = (n_features,), ()
    if coef.shape != expected or intercept.shape != expected_intercept:
        raise ModelFormatError(
            f"{where}: coef_ has shape {coef.shape} and intercept_ {intercept.shape}, but a "
            f"fitted {type(est).__name__} with {n_features} features has {expected} and "
            f"{expected_intercept}")


class _Decoder:
    def __init__(self, arrays, source):
        self.arrays, self.source = arrays, source

    def fail(self, where, message):
        raise ModelFormatError(f"{self.source}: {where}: {message}")

    def estimator(self, node, where):
        if not isinstance(node, dict) or not {"class", "params", "attributes"} <= set(node):
            self.fail(where, "expected an object with 'class', 'params' and 'attributes'")
        classes = allowed_classes()
        name = node["class"]
        if name not in classes:
            self.fail(where, f"class {name!r} is not a daskfit estimator; allowed: "
                             f"{sorted(classes)}")
        cls = classes[name]
        params = {k: self.value(v, f"{where}.params.{k}") for k, v in node["params"].items()}
        known = set(cls().get_params(deep=False))
        unknown = sorted(set(params) - known)
        if unknown:
            self.fail(where, f"unknown parameters {unknown} for {name}")
        est = cls(**params)
        for attr, v in node["attributes"].items():
            if not ATTRIBUTE_NAME.match(attr):
                self.fail(where, f"{attr!r} is not a fitted-attribute name")
            value = self.value(v, f"{where}.{attr}")
            if attr in FINITE_ATTRIBUTES and not np.all(np.isfinite(np.asarray(value, float))):
                self.fail(where, f"{attr} contains NaN or infinity")
            setattr(est, attr, value)
        check_fitted_shapes(est, f"{self.source}: {where}")
        return est

    def value(self, v, where):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [self.value(x, where) for x in v]
        if not isinstance(v, dict):
            self.fail(where, f"unexpected JSON value {v!r}")
        tags = _TAGS & set(v)
        if not tags:
            return {k: self.value(x, f"{where}.{k}") for k, x in v.items()}
        tag = tags.pop()
        if tag == _TAG_FLOAT:
            if v[tag] not in ("inf", "-inf", "nan"):
                self.fail(where, f"bad float {v[tag]!r}")
            return float(v[tag])
        if tag == _TAG_ARRAY:
            return self.arrays.get(v[tag], v.get("shape"), v.get("dtype"), where)
        if tag == _TAG_STRINGS:
            items, dtype = v[tag], v.get("dtype")
            if not all(isinstance(x, str) for x in items) or not (
                    dtype == "object" or re.fullmatch(r"<U\d+", str(dtype))):
                self.fail(where, "bad string array")
            return np.array(items, dtype=object if dtype == "object" else dtype)
        if tag == _TAG_TUPLE:
            return tuple(self.value(x, where) for x in v[tag])
        return self.estimator(v[tag], where)
