"""Early stopping: a validation set held out in place, scored inside the training pass.

scikit-learn's SGD estimators set aside ``validation_fraction`` of the
training rows and stop when the validation score (the estimator's ``score``)
has not improved by at least ``tol`` for ``n_iter_no_change`` consecutive
iterations. daskfit does the same without moving a row and without a pass of
its own:

* **Which rows.** A row is a validation row when its uniform draw is below
  ``validation_fraction``. When the row chunk sizes are known (NumPy and Dask
  arrays) row ``i`` gets draw ``i`` of one PCG64 stream seeded by the fit's
  seed: a chunk jumps to its first row with ``PCG64.advance``, so the split
  is the same for every chunking of the same rows. When they are not (Dask
  DataFrames with unknown partition lengths) each chunk has its own stream,
  seeded by ``(seed, chunk index)``: the split then depends on the
  partitioning. Every task of every pass computes the same mask from the
  same numbers, so all passes agree and nothing is stored or sent.
  Each row is held out independently, so every class is held out in the same
  *expected* proportion (stratified in expectation, not exactly as
  ``StratifiedShuffleSplit``); a split that leaves the training or the
  validation set empty (on tiny data: probability ``(1 - fraction)**n``),
  or a class without training weight, is an error.
* **Same pass.** The evaluation kernel gives validation rows weight 0 in the
  loss, gradient and Hessian, and adds the validation score's sufficient
  statistics, computed from the margins it has already formed, as one more
  sum in the same reduction (:meth:`Holdout.score_sums`).
* **When to stop.** :class:`EarlyStopping` is the solvers' ``stop`` callback:
  SGD's rule, written as a small pure update (:func:`no_improvement_update`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.losses.base import SCORE_SUMS

__all__ = ["Holdout", "EarlyStopping", "NoImprovement", "no_improvement_update",
           "holdout_mask", "offset_runs"]

#: Length of the statistics vector every chunk returns (same for every score,
#: so partial results merge with a plain sum): count, weight, then three
#: score-specific sums (the loss's ``score_sums``).
N_SUMS = SCORE_SUMS

#: Row offsets travel inside every task as runs of equal chunk sizes (one run
#: for the usual uniform chunking). Past this many runs the offsets would
#: outweigh the coefficients in each task; rows are then keyed by
#: (chunk, position) instead, as for unknown chunk sizes.
MAX_OFFSET_RUNS = 256


def offset_runs(chunks):
    """Row offsets of row chunks as runs ``(first_chunk, size, first_row)``.

    Returns ``None`` when a chunk size is unknown (NaN) or the chunking has
    more than ``MAX_OFFSET_RUNS`` runs of equal sizes.
    """
    sizes = np.asarray(chunks, dtype=np.float64)
    if sizes.size == 0 or not np.isfinite(sizes).all():
        return None
    sizes = sizes.astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    new_run = np.concatenate([[True], sizes[1:] != sizes[:-1]])
    first = np.flatnonzero(new_run)
    if len(first) > MAX_OFFSET_RUNS:
        return None
    return (first.astype(np.int64), sizes[first], starts[first].astype(np.int64))


def holdout_mask(seed, fraction, index, n, runs):
    """Boolean validation mask of the ``n`` rows of row chunk ``index``.

    A pure function of ``(seed, fraction, global row index)`` when ``runs``
    (from :func:`offset_runs`) is given, of ``(seed, fraction, index,
    position)`` when it is ``None``. PCG64 draws about a million rows per
    millisecond, a small share of a pass.

    Examples
    --------
    >>> import numpy as np
    >>> runs = offset_runs((4, 4, 2))
    >>> whole = holdout_mask(7, 0.5, 0, 10, offset_runs((10,)))
    >>> parts = np.concatenate([holdout_mask(7, 0.5, i, n, runs)
    ...                         for i, n in enumerate((4, 4, 2))])
    >>> bool((whole == parts).all())
    True
    """
    if runs is None:
        stream = np.random.PCG64([seed, index])
    else:
        first_chunk, size, first_row = runs
        r = int(np.searchsorted(first_chunk, index, side="right")) - 1
        offset = int(first_row[r]) + (index - int(first_chunk[r])) * int(size[r])
        # Row i of the data is draw i of one stream: jump to this chunk's first
        # row. Generator.random takes exactly one 64-bit output per float64,
        # so advancing by the row offset lands on the chunk's first draw.
        stream = np.random.PCG64(seed).advance(offset)
    return np.random.Generator(stream).random(n) < fraction


@dataclass(frozen=True)
class Holdout:
    """Which rows are held out and how they are scored; embedded in every task.

    Attributes
    ----------
    seed : int
    fraction : float
        ``validation_fraction``.
    loss : Loss
        The loss being fitted: it owns the score (the estimator's ``score``:
        R^2, D^2 or accuracy) and its sufficient statistics.
    runs : tuple of three int64 arrays or None
        Row offsets of the chunks (:func:`offset_runs`); ``None``: rows keyed
        by (chunk, position).
    shift : float
        Subtracted from ``y`` before its moments are summed for R^2, so the
        total sum of squares does not cancel when ``|mean(y)| >> std(y)``.
        Set from the target's range after the first pass.
    """

    seed: int
    fraction: float
    loss: object
    runs: tuple | None
    shift: float = 0.0

    @property
    def score(self):
        """Name of the validation score (``"r2"``, ``"d2_poisson"``, ``"accuracy"`` ...)."""
        return self.loss.score

    @property
    def keyed_by(self):
        return "chunk and position" if self.runs is None else "global row index"

    def split(self, index, n, w):
        """``(training weights, validation row indices, their weights)`` of a chunk.

        Training weights are ``w`` times 0/1 rather than a selection, so a NaN
        or inf weight (or any bad value) on a validation row still reaches the
        checks of the pass. Validation rows are returned as indices: taking a
        few rows by index is much faster than by a boolean mask.
        """
        mask = holdout_mask(self.seed, self.fraction, index, n, self.runs)
        rows = np.flatnonzero(mask)
        if w is None:
            return (~mask).astype(np.float64), rows, np.ones(len(rows))
        return w * ~mask, rows, w[rows]

    def score_sums(self, y, raw, w):
        """Sufficient statistics of the score over some validation rows.

        ``y`` is the loss's encoding of the target (0/1 or class codes for
        classifiers), ``raw`` the linear predictor of the same rows.
        """
        out = np.zeros(N_SUMS)
        out[0], out[1] = len(y), w.sum()
        out[2:] = self.loss.score_sums(y, raw, w, self.shift)
        return out

    def score_value(self, sums):
        """The score from merged :meth:`score_sums` (as the estimator's ``score``)."""
        return self.loss.score_value(sums)


def accuracy_sums_at_zero(label_sums, classes, predicted_positive=None):
    """Validation statistics at ``theta = 0`` from per-label validation sums.

    Every margin is 0 there, so every row is predicted as ``classes[0]``
    (binary: ``raw > 0`` is false; multinomial: the first of equal maxima).
    With an offset (binary) the margin at zero is the offset:
    ``predicted_positive`` maps each label to the validation weight of its
    rows whose offset is positive, predicted as ``classes[1]``.
    """
    out = np.zeros(N_SUMS)
    for label, (sw, count) in label_sums.items():
        out[0] += count
        out[1] += sw
    out[2] = label_sums.get(classes[0], (0.0, 0))[0]
    if predicted_positive is not None:
        out[2] += (predicted_positive.get(classes[1], 0.0)
                   - predicted_positive.get(classes[0], 0.0))
    return out


# --------------------------------------------------------------- stopping rule


@dataclass(frozen=True)
class NoImprovement:
    """State of SGD's rule: best score so far and iterations without improvement."""

    best: float = -np.inf
    count: int = 0


def no_improvement_update(state, score, tol):
    """One iteration of scikit-learn's rule (``_plain_sgd``, ``MLP``).

    An iteration counts as "no improvement" when ``score < best + tol``; the
    best score itself follows every increase, however small.
    """
    count = state.count + 1 if score < state.best + tol else 0
    return NoImprovement(best=score if score > state.best else state.best, count=count)


class EarlyStopping:
    """The ``stop`` callback the estimators hand to the iterative solvers.

    Called as ``stop(iteration, theta)`` after the first pass (iteration 0)
    and after every accepted iteration. It reads the validation score of
    ``theta`` from the pass that evaluated it (no pass of its own), keeps the
    best-scoring coefficients and returns a reason to stop, or ``None``.

    Parameters
    ----------
    objective : Objective
        Built with a :class:`Holdout`.
    n_iter_no_change : int
    tol : float
    """

    def __init__(self, objective, *, n_iter_no_change, tol):
        self.objective = objective
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.state = NoImprovement()
        self.initial_score = None
        self.scores = []  # one per iteration 1, 2, ...
        self.best_theta = None
        self.best_iteration = 0
        self.stopped = False

    def __call__(self, iteration, theta):
        score = self.objective.validation_score(theta)
        if iteration == 0:
            # The starting point is not an iteration (SGD's scores start after
            # the first epoch); it is the answer only if no iteration runs.
            self.initial_score = score
            self.best_theta = np.array(theta, copy=True)
            return None
        self.scores.append(score)
        improved = score > self.state.best
        self.state = no_improvement_update(self.state, score, self.tol)
        if improved:
            self.best_theta = np.array(theta, copy=True)
            self.best_iteration = iteration
        if self.state.count >= self.n_iter_no_change:
            self.stopped = True
            return (f"early stopping: the validation score did not improve by at least "
                    f"tol={self.tol} for {self.n_iter_no_change} consecutive iterations")
        return None

    @property
    def best_score(self):
        return self.state.best if self.scores else self.initial_score
