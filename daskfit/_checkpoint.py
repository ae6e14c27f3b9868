"""Checkpoints of a long fit: written atomically, verified, refused when foreign.

A checkpoint is one ``.npz`` file (``allow_pickle=False``: arrays and a JSON
header, never a pickle) holding the coefficient vector after an iteration,
the iteration and pass counts so far, and a *fingerprint* of the data and the
configuration that produced it. Writing follows the rule "never lose the
last good state":

1. write ``<dir>/checkpoint-<iteration>.npz.tmp-<random>`` and fsync it;
2. ``os.replace`` it to ``checkpoint-<iteration>.npz`` (atomic on POSIX);
3. read it back and check its sha256 and contents;
4. only then delete the older checkpoints.

A crash at any point leaves at least one complete, verified checkpoint.
Loading picks the newest file that verifies; a checkpoint whose fingerprint
differs (other data, another configuration) is refused with an error, never
silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Defined with the other typed errors; importable from here as before.
from .errors import CheckpointCorrupt, CheckpointMismatch, ParameterError

__all__ = ["Checkpoint", "CheckpointCorrupt", "CheckpointMismatch", "Checkpointer", "fingerprint"]

_NAME = re.compile(r"^checkpoint-(\d+)\.npz$")
#: Format version of the file; a reader refuses versions it does not know.
FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """The state a fit resumes from."""

    iteration: int
    passes: int
    theta: np.ndarray
    fingerprint: str
    path: Path


def fingerprint(*parts):
    """A stable hex digest of the data and configuration a fit depends on.

    ``parts`` are Dask tokens, parameter dicts and shapes; they are
    serialised as canonical JSON (sorted keys) before hashing.
    """
    blob = json.dumps(parts, sort_keys=True, default=_jsonable).encode()
    return hashlib.sha256(blob).hexdigest()


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    return repr(value)


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class Checkpointer:
    """Save a fit's state every ``every`` iterations into ``directory``.

    Parameters
    ----------
    directory : str or Path
        Created if missing. Holds ``checkpoint-<iteration>.npz`` files.
    fingerprint : str
        From :func:`fingerprint`; stored in every checkpoint and required to
        match on :meth:`load`.
    every : int, default=10
        Save after every ``every``-th iteration.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> saver = Checkpointer(d, fingerprint("data", {"C": 1.0}), every=2)
    >>> saver.save(4, passes=5, theta=np.array([1.0, 2.0]))
    >>> saver.load().iteration
    4
    >>> Checkpointer(d, fingerprint("other data", {"C": 1.0})).load()
    Traceback (most recent call last):
    ...
    daskfit.errors.CheckpointMismatch: ...
    """

    def __init__(self, directory, fingerprint, every=10):
        if not isinstance(every, int) or every < 1:
            raise ParameterError(f"checkpoint_every must be an int >= 1; got {every!r}.",
                                 parameter="every", value=every)
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self.every = every

    # -------------------------------------------------------------- write
    def save(self, iteration, *, passes, theta):
        """Write, verify, then drop older checkpoints (see the module docstring)."""
        theta = np.asarray(theta, dtype=np.float64)
        if not np.all(np.isfinite(theta)):
            raise FloatingPointError(
                f"Refusing to checkpoint non-finite coefficients at iteration {iteration}.")
        self.directory.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"format": FORMAT, "iteration": int(iteration),
                             "passes": int(passes), "fingerprint": self.fingerprint,
                             "theta_sha256": hashlib.sha256(theta.tobytes()).hexdigest()})
        final = self.directory / f"checkpoint-{int(iteration)}.npz"
        fd, tmp = tempfile.mkstemp(prefix=final.name + ".tmp-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, theta=theta, header=np.array(header))
                handle.flush()
                os.fsync(handle.fileno())
            digest = _sha256(tmp)
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_directory(self.directory)
        if _sha256(final) != digest or self._read(final).iteration != iteration:
            raise OSError(f"Checkpoint {final} did not read back as written; the older "
                          "checkpoints were kept.")
        for path, number in self._files():
            if number != iteration:
                path.unlink(missing_ok=True)

    def callback(self, passes_of, offset=0):
        """A solver ``stop(iteration, theta)`` hook that saves and never stops.

        ``offset`` is the iteration a resumed fit started from, so numbers
        keep counting across the interruption.
        """

        def hook(iteration, theta):
            total = offset + iteration
            if iteration > 0 and total % self.every == 0:
                self.save(total, passes=passes_of(), theta=theta)
            return None

        return hook

    # --------------------------------------------------------------- read
    def _files(self):
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append((path, int(match.group(1))))
        return sorted(found, key=lambda item: item[1])

    def _read(self, path):
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            theta = np.array(data["theta"], dtype=np.float64)
        if header.get("format") != FORMAT:
            raise ValueError(f"Checkpoint {path} has format {header.get('format')!r}; this "
                             f"daskfit reads format {FORMAT}.")
        if hashlib.sha256(theta.tobytes()).hexdigest() != header.get("theta_sha256"):
            raise CheckpointCorrupt(f"Checkpoint {path} fails its checksum: it was modified "
                                    "after it was written. Delete it.")
        return Checkpoint(int(header["iteration"]), int(header["passes"]), theta,
                          header["fingerprint"], path)

    def load(self):
        """The newest checkpoint that reads back completely, or ``None``.

        Raises
        ------
        CheckpointMismatch
            When that checkpoint was written for another fingerprint.
        CheckpointCorrupt
            When its coefficients fail their checksum (tampered with).
        """
        for path, _ in reversed(self._files()):
            try:
                checkpoint = self._read(path)
            except CheckpointCorrupt:
                raise
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                continue  # torn by a crash: an older checkpoint may still be good
            if checkpoint.fingerprint != self.fingerprint:
                raise CheckpointMismatch(
                    f"The checkpoint {path} was written for other data or another "
                    "configuration (its fingerprint differs), so it cannot be resumed "
                    "from. Delete it, or run without resume.")
            if not np.all(np.isfinite(checkpoint.theta)):
                continue
            return checkpoint
        return None

    def clear(self):
        """Delete every checkpoint (after a fit completes)."""
        for path, _ in self._files():
            path.unlink(missing_ok=True)


def _fsync_directory(directory):
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
