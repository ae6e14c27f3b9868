"""Checkpoints: atomic, verified, never foreign, and a resumed fit ends where an
uninterrupted one does."""

from __future__ import annotations

import os

import numpy as np
import pytest

from daskfit._checkpoint import (
    CheckpointCorrupt,
    CheckpointMismatch,
    Checkpointer,
    fingerprint,
)

FP = fingerprint("token-of-X", {"C": 1.0}, (100, 5))


def test_save_load_round_trip_and_only_the_newest_is_kept(tmp_path):
    saver = Checkpointer(tmp_path, FP, every=3)
    for it in (3, 6, 9):
        saver.save(it, passes=it + 1, theta=np.full(4, float(it)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-9.npz"]
    ck = saver.load()
    assert (ck.iteration, ck.passes) == (9, 10)
    np.testing.assert_array_equal(ck.theta, np.full(4, 9.0))


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    saver = Checkpointer(tmp_path, FP)
    saver.save(10, passes=11, theta=np.arange(3.0))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        saver.save(20, passes=21, theta=np.arange(3.0) * 2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10.npz"]  # no temp file
    np.testing.assert_array_equal(saver.load().theta, np.arange(3.0))


def test_a_torn_newest_file_falls_back_to_the_older_one(tmp_path):
    saver = Checkpointer(tmp_path, FP)
    saver.save(10, passes=11, theta=np.arange(3.0))
    (tmp_path / "checkpoint-20.npz").write_bytes(b"PK\x03\x04 half a zip")  # a torn write
    assert saver.load().iteration == 10


def test_a_checkpoint_of_other_data_or_configuration_is_refused(tmp_path):
    Checkpointer(tmp_path, FP).save(10, passes=11, theta=np.arange(3.0))
    for other in (fingerprint("token-of-other-X", {"C": 1.0}, (100, 5)),
                  fingerprint("token-of-X", {"C": 2.0}, (100, 5))):
        with pytest.raises(CheckpointMismatch, match="other data or another configuration"):
            Checkpointer(tmp_path, other).load()


def test_a_tampered_checkpoint_fails_its_checksum(tmp_path):
    saver = Checkpointer(tmp_path, FP)
    saver.save(10, passes=11, theta=np.arange(3.0))
    path = tmp_path / "checkpoint-10.npz"
    with np.load(path) as data:
        header = str(data["header"])
    np.savez(path, theta=np.arange(3.0) + 1e-3, header=np.array(header))
    with pytest.raises(CheckpointCorrupt, match="checksum"):
        saver.load()


def test_non_finite_coefficients_are_never_checkpointed(tmp_path):
    with pytest.raises(FloatingPointError):
        Checkpointer(tmp_path, FP).save(1, passes=2, theta=np.array([1.0, np.nan]))
    assert not any(tmp_path.iterdir())


def test_no_pickle_is_ever_loaded(tmp_path):
    saver = Checkpointer(tmp_path, FP)
    np.savez(tmp_path / "checkpoint-5.npz", theta=np.array([object()], dtype=object),
             header=np.array("{}"))
    assert saver.load() is None  # np.load(allow_pickle=False) refuses the object array


# ------------------------------------------------------------- resumable fits

import daskfit  # noqa: E402
from daskfit.engine.rows import Engine  # noqa: E402

from conftest import as_kind, make_binary  # noqa: E402


class _Killed(BaseException):
    """Stands for the process dying: nothing in daskfit catches it."""


def _die_on_pass(monkeypatch, number):
    original = Engine.reduce
    count = {"passes": 0}

    def reduce(self, kernel, spec, label):
        count["passes"] += 1
        if count["passes"] == number:
            raise _Killed
        return original(self, kernel, spec, label)

    monkeypatch.setattr(Engine, "reduce", reduce)


@pytest.mark.parametrize("solver, exact", [("newton", True), ("lbfgs", False), ("gd", False)])
def test_a_killed_fit_resumes_from_its_checkpoint_to_the_same_coefficients(
        tmp_path, monkeypatch, solver, exact):
    X, y, _ = make_binary(seed=41, n=400)
    Xd, yd, _ = as_kind("dask", X, y, chunks=(100,) * 4)
    params = dict(solver=solver, tol=1e-8, max_iter=500, C=100.0)
    full = daskfit.LogisticRegression(**params).fit(Xd, yd)
    assert full.n_iter_[0] >= 4
    _die_on_pass(monkeypatch, full.n_passes_ - 1)
    with pytest.raises(_Killed):
        daskfit.LogisticRegression(**params).fit(
            Xd, yd, checkpoint={"directory": tmp_path, "every": 2})
    monkeypatch.undo()
    (left,) = list(tmp_path.iterdir())  # exactly one verified checkpoint
    resumed = daskfit.LogisticRegression(**params).fit(
        Xd, yd, checkpoint={"directory": tmp_path, "every": 2})
    assert resumed.resumed_from_ == int(left.stem.split("-")[1]) > 0
    assert resumed.n_passes_ < full.n_passes_  # it did not start over
    if exact:  # Newton's iterates depend on theta alone: the same path, bit for bit
        np.testing.assert_array_equal(resumed.coef_, full.coef_)
        assert resumed.n_iter_[0] == full.n_iter_[0]
    else:  # memory / momentum restart: the same optimum within tol
        np.testing.assert_allclose(resumed.coef_, full.coef_, rtol=1e-5, atol=1e-6)
    assert not any(tmp_path.iterdir())  # a finished fit leaves nothing to resume


def test_a_checkpoint_from_other_data_or_parameters_is_refused(tmp_path, monkeypatch):
    X, y, _ = make_binary(seed=42, n=300)
    _die_on_pass(monkeypatch, 5)
    with pytest.raises(_Killed):
        daskfit.LogisticRegression(solver="newton", C=100.0, tol=1e-10).fit(
            X, y, checkpoint={"directory": tmp_path, "every": 1})
    monkeypatch.undo()
    assert any(tmp_path.iterdir())
    with pytest.raises(CheckpointMismatch, match="other data or another configuration"):
        daskfit.LogisticRegression(solver="newton", C=100.0, tol=1e-10).fit(
            X[::-1], y[::-1], checkpoint=tmp_path)
    with pytest.raises(CheckpointMismatch, match="other data or another configuration"):
        daskfit.LogisticRegression(solver="newton", C=10.0, tol=1e-10).fit(
            X, y, checkpoint=tmp_path)


def test_one_pass_solvers_have_nothing_to_checkpoint(tmp_path):
    X, y, _ = make_binary(seed=43)
    with pytest.raises(ValueError, match="iterative solver"):
        daskfit.LinearRegression(solver="normal").fit(X, y.astype(float), checkpoint=tmp_path)
