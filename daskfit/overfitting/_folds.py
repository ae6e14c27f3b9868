"""Folds of the diagnosis and the nested training subsets of the learning curve.

All parts of a report use the same splits, resolved once on the client over
row numbers (``daskfit.model_selection`` cuts each fold where the data
lives). The learning curve follows scikit-learn's ``learning_curve(...,
shuffle=True, random_state=random_state)`` exactly: each split's training
rows are permuted by one generator seeded with ``random_state`` (in split
order), and the first ``n`` of them train the model of size ``n``; sizes
given as fractions are of the *first* split's training set.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state

from .._data import is_dask_collection
from ..model_selection._split import SeededSplits, recipe_for, resolve_splits, row_lengths

__all__ = ["client_vectors", "known_lengths", "learning_curve_splits", "make_splits",
           "offset_values", "translate_train_sizes"]


def _numpy(v):
    if v is None:
        return None
    if is_dask_collection(v):
        from ..engine.rows import compute

        (v,) = compute(v)
    return np.asarray(v)


def client_vectors(X, y, sample_weight, groups):
    """``(n_samples, y, sample_weight, groups)`` as NumPy on the client.

    These are ``n`` values each (never ``X``): the splitter and the constant
    baseline need them. For Dask input this costs one pass over ``y`` (and
    the weights), which also yields unknown chunk sizes.
    """
    if y is None:
        raise ValueError("diagnose requires y to be passed, but the target y is None.")
    lengths, y_values, _ = row_lengths(X, y, True)
    if lengths is not None:
        n = int(sum(lengths))
    else:
        n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
    y_values = np.asarray(y_values).ravel() if y_values is not None else _numpy(y).ravel()
    w = _numpy(sample_weight)
    if len(y_values) != n or (w is not None and len(w) != n):
        sizes = [n, len(y_values)] + ([] if w is None else [len(w)])
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {sizes}.")
    return n, y_values, (None if w is None else w.ravel()), _numpy(groups), lengths


def offset_values(offset, n):
    """The offset as ``n`` float64 values on the client (for the null model), or None."""
    if offset is None:
        return None
    values = _numpy(offset)
    values = np.full(n, float(values)) if values.ndim == 0 else values.ravel()
    if len(values) != n:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{n}, {len(values)}] (X and offset).")
    return values.astype(np.float64)


def known_lengths(lengths, *collections):
    """Dask DataFrames/Series as Dask arrays with the row chunk sizes already counted.

    The lengths cost a pass over ``y`` in :func:`client_vectors`; without this
    every later fold pass and fit would count them again.
    """
    import dask.dataframe as dd

    out = []
    for c in collections:
        if lengths is not None and isinstance(c, (dd.DataFrame, dd.Series)) \
                and c.npartitions == len(lengths):
            c = c.to_dask_array(lengths=list(lengths))
        out.append(c)
    return out


def make_splits(cv, n, y, groups, classifier, random_state):
    """The ``(train, test)`` row numbers of every split.

    An int ``cv`` is a *shuffled* ``KFold`` (``StratifiedKFold`` for
    classifiers) seeded by ``random_state``: data stored sorted (by time, by
    target) would otherwise give folds that differ systematically.
    """
    if cv is None:
        cv = 5  # scikit-learn's default
    if isinstance(cv, bool) or (isinstance(cv, numbers.Integral) and cv < 2):
        raise ValueError(f"cv must be an int >= 2, a cross-validation splitter or an iterable "
                         f"of (train, test) row numbers; got cv={cv!r}.")
    if isinstance(cv, numbers.Integral):
        if cv > n:
            raise ValueError(f"cv={cv} folds need at least {cv} samples; got {n}. Use "
                             "fewer folds.")
        splitter = (StratifiedKFold if classifier else KFold)(
            int(cv), shuffle=True, random_state=random_state)
    elif isinstance(cv, (str, bytes, float)) or not (
            hasattr(cv, "split") or hasattr(cv, "__iter__")):
        raise ValueError(f"cv must be an int >= 2, a cross-validation splitter or an iterable "
                         f"of (train, test) row numbers; got cv={cv!r}.")
    else:
        splitter = cv
    splits = resolve_splits(splitter, n, y, groups, classifier=classifier)
    for s, (train, test) in enumerate(splits):
        if len(train) == 0 or len(test) == 0:
            raise ValueError(f"cv: split {s} has an empty training or validation set.")
    recipe = recipe_for(splitter, n, groups, y, classifier=classifier)
    # With a recipe, fold passes rebuild the codes on the workers (see SplitRecipe).
    return splits if recipe is None else SeededSplits(splits, recipe)


def translate_train_sizes(train_sizes, n_max):
    """Absolute, unique training sizes (scikit-learn's rule, errors that name the fix)."""
    sizes = np.asarray(train_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.number):
        raise ValueError(f"train_sizes must be a non-empty 1-D sequence of numbers; got "
                         f"{train_sizes!r}.")
    if np.issubdtype(sizes.dtype, np.floating):
        if sizes.min() <= 0 or sizes.max() > 1:
            raise ValueError(f"train_sizes given as fractions must lie in (0, 1]; got "
                             f"{sizes.tolist()}.")
        sizes = np.clip((sizes * n_max).astype(int), 1, n_max)
    elif sizes.min() <= 0 or sizes.max() > n_max:
        raise ValueError(f"train_sizes given as counts must lie in [1, {n_max}] (the size of "
                         f"the first training set); got {sizes.tolist()}.")
    return np.unique(sizes)


def learning_curve_splits(splits, sizes, random_state):
    """One ``(train subset, test)`` pair per (size, split), size-major.

    Splits that carry a recipe, with an int ``random_state``, keep one (the
    subsets are then remade on the workers as well).
    """
    out = _subsets(splits, sizes, random_state)
    recipe = getattr(splits, "recipe", None)
    if recipe is None or recipe.transform is not None or not (
            isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)):
        return out
    return SeededSplits(out, recipe.then(_subsets, np.asarray(sizes).tolist(),
                                         int(random_state)))


def _subsets(splits, sizes, random_state):
    rng = check_random_state(random_state)
    permuted = [rng.permutation(train) for train, _ in splits]
    return [(np.sort(perm[:n]), test) for n in sizes
            for perm, (_, test) in zip(permuted, splits)]
