"""The moments pass and the fold layout: exact sums, fast paths that stay exact.

The moments kernel takes the raw ``X'X`` of a run of rows when that loses
at most 2 bits (``RAW_PRODUCT_LIMIT``) and shifts the rows by a mean
otherwise; the fold layout groups rows into runs of one role pattern. Each
fast path is checked against a direct NumPy reference and against the slow
path it replaces.
"""

import numpy as np

from daskfit.kernels import alignment
import pytest
from sklearn.model_selection import GroupKFold, KFold, ShuffleSplit, TimeSeriesSplit

import daskfit.kernels.chunks as kernels
from daskfit.model_selection import _split
from daskfit.model_selection._fold_kernels import FoldSpec, fold_moments_chunk, pack_codes
from daskfit.model_selection._split import FoldLayout, resolve_splits


def reference_moments(X, y, w=None):
    """Centred moments in extended precision (np.longdouble) from the definition."""
    X, y = X.astype(np.longdouble), y.astype(np.longdouble)
    w = np.ones(len(y), dtype=np.longdouble) if w is None else w.astype(np.longdouble)
    sw = w.sum()
    mx, my = (w @ X) / sw, (w @ y) / sw
    Xc, yc = X - mx, y - my
    return [float(sw), mx.astype(float), float(my), ((Xc * w[:, None]).T @ Xc).astype(float),
            ((Xc * w[:, None]).T @ yc).astype(float), float((w * yc) @ yc)]


def assert_moments_close(got, ref, rtol):
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b)))


@pytest.fixture
def small_blocks(monkeypatch):
    """64-row blocks so that a few thousand rows make many blocks."""
    monkeypatch.setattr(alignment, "BLOCK_BYTES", 64 * 4 * 8)


def data(n, means, rng, drift_after=None):
    X = rng.normal(size=(n, len(means))) + np.asarray(means)
    if drift_after is not None:
        X[drift_after:] += 1e7  # the rows after the first block far from its mean
    y = X @ np.arange(1.0, len(means) + 1) + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", ["centred", "large-means", "drift"])
def test_moments_chunk_is_exact_on_every_path(small_blocks, case, weighted):
    rng = np.random.default_rng(0)
    means = {"centred": [0.5, -0.2, 0.0, 0.3], "large-means": [1e8, -3e6, 1.0, 5e4],
             "drift": [0.1, 0.0, 0.2, 0.0]}[case]
    X, y = data(3000, means, rng, drift_after=64 if case == "drift" else None)
    w = rng.uniform(0, 2, size=len(y)) if weighted else None
    out = kernels.moments_chunk(0, X, y, w, None)
    assert_moments_close(out["moments"], reference_moments(X, y, w), rtol=1e-9)
    # The naive raw formula X'X - n m m' is far off on large means: the test
    # above has teeth.
    if case == "large-means":
        naive = X.T @ X - len(y) * np.outer(X.mean(0), X.mean(0))
        ref = reference_moments(X, y)[3]
        assert np.abs(naive - ref).max() > 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("case, shifted", [("centred", False), ("large-means", True),
                                           ("drift", True)])
def test_raw_product_only_where_accurate(small_blocks, case, shifted):
    """Centred-looking data is read without a copy; large means are shifted."""
    rng = np.random.default_rng(1)
    means = [1e6, 0.0, 0.0, 0.0] if case == "large-means" else [0.5, 0.0, -0.5, 0.0]
    X, y = data(2000, means, rng, drift_after=64 if case == "drift" else None)
    work = kernels.MomentsWork(X)
    got = kernels.rows_moments(X, y, None, work)
    assert work.shifted is shifted
    assert_moments_close(got, reference_moments(X, y), rtol=1e-10)


def test_float32_moments_keep_float32_accuracy(small_blocks):
    rng = np.random.default_rng(2)
    X, y = data(3000, [0.0, 1e6, 0.0, 0.0], rng)
    got = kernels.moments_chunk(0, X.astype(np.float32), y, None, None)["moments"]
    ref = reference_moments(X.astype(np.float32).astype(np.float64), y)
    # The mean adds back the shift as subtracted in float32 (1e6 is spaced 0.06 there).
    np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=1e-4)
    for a, b in zip(got[3:5], ref[3:5]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


def codes_by_definition(splits, n):
    """Each row's role pattern, numbered as the layout numbers its atoms.

    Patterns are ordered by ``sum_s role_s 3**s``: the last split's role first.
    """
    roles = np.zeros((n, len(splits)), dtype=np.int64)
    for s, (train, test) in enumerate(splits):
        roles[train, s], roles[test, s] = 1, 2
    _, inverse = np.unique(roles[:, ::-1], axis=0, return_inverse=True)
    return inverse.ravel()


SPLITTERS = {
    "kfold": lambda n: resolve_splits(KFold(5), n),
    "kfold-shuffled": lambda n: resolve_splits(KFold(4, shuffle=True, random_state=0), n),
    "time-series": lambda n: resolve_splits(TimeSeriesSplit(4), n),
    "group-kfold": lambda n: resolve_splits(GroupKFold(3), n, groups=np.arange(n) // 7),
}


@pytest.mark.parametrize("name", sorted(SPLITTERS))
def test_layout_by_ranges_equals_layout_by_rows(name, monkeypatch):
    n = 1003
    splits = SPLITTERS[name](n)
    fast = FoldLayout.from_splits(splits, n)
    monkeypatch.setattr(_split, "RANGES_PER_ROW_LIMIT", n + 1)  # always row by row
    slow = FoldLayout.from_splits(splits, n)
    assert fast.mode == slow.mode == "atoms"
    np.testing.assert_array_equal(fast.codes, slow.codes)
    np.testing.assert_array_equal(fast.codes[:, 0], codes_by_definition(splits, n))
    assert (fast.train, fast.test, fast.n_codes) == (slow.train, slow.test, slow.n_codes)
    if name == "kfold":
        assert len(fast.starts) == 5  # one run per fold, not one per row


@pytest.mark.parametrize("name", ["kfold", "kfold-shuffled", "shuffle-split"])
def test_chunk_codes_round_trip(name):
    n = 1000
    splits = (resolve_splits(ShuffleSplit(12, test_size=0.3, random_state=0), n)
              if name == "shuffle-split" else SPLITTERS[name](n))
    layout = FoldLayout.from_splits(splits, n)
    bounds = [0, 1, 130, 500, 777, 1000]
    literal_rows = 0
    for a, b in zip(bounds[:-1], bounds[1:]):
        literal = layout.chunk_codes(a, b)
        literal_rows += len(literal)
        packed = pack_codes(np.arange(a, b, dtype=float), literal, b - a)
        np.testing.assert_array_equal(packed["codes"], layout.codes[a:b])
        np.testing.assert_array_equal(packed["y"], np.arange(a, b))
    if name == "kfold":
        assert literal_rows < 15  # runs, not rows
    with pytest.raises(ValueError, match="y changed"):
        pack_codes(np.zeros(3), layout.chunk_codes(0, 4), 4)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("sorted_codes", [True, False], ids=["sorted", "shuffled"])
def test_fold_kernel_matches_per_code_reference(small_blocks, sorted_codes, weighted):
    rng = np.random.default_rng(3)
    X, y = data(2000, [1e5, 0.0, 2.0, 0.0], rng)
    w = rng.uniform(0, 2, size=len(y)) if weighted else None
    codes = np.repeat(np.arange(4), 500)
    if not sorted_codes:
        codes = rng.permutation(codes)
    yc = np.empty(len(y), dtype=[("y", float), ("codes", np.int8, (1,))])
    yc["y"], yc["codes"][:, 0] = y, codes
    out = fold_moments_chunk(0, X, yc, w, FoldSpec((4,)))
    for code, got in enumerate(out["fold_moments"].parts[0]):
        rows = codes == code
        assert_moments_close(got, reference_moments(X[rows], y[rows],
                                                     None if w is None else w[rows]), 1e-9)


@pytest.mark.parametrize("n, k", [(5, 5), (17, 3), (1003, 5), (1000, 10)])
def test_plain_kfold_shortcut_equals_sklearn(n, k):
    """Plain K-fold is planned from its fold sizes: the same splits and layout."""
    splits = _split.plain_kfold(KFold(k), n)
    reference = resolve_splits(KFold(k), n)
    assert len(splits) == len(reference) == k
    for (train, test), (ref_train, ref_test) in zip(splits, reference):
        np.testing.assert_array_equal(train, ref_train)
        np.testing.assert_array_equal(test, ref_test)
    fast, slow = FoldLayout.from_kfold(splits), FoldLayout.from_splits(reference, n)
    for field in ("starts", "run_codes"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field))
    assert (fast.train, fast.test, fast.total, fast.n_codes, fast.mode) == \
        (slow.train, slow.test, slow.total, slow.n_codes, slow.mode)
    # Shuffled or too few rows: no shortcut (scikit-learn's own split and errors).
    assert _split.plain_kfold(KFold(k, shuffle=True, random_state=0), n) is None
    assert _split.plain_kfold(KFold(k), k - 1) is None
