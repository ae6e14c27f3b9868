"""daskfit.save / daskfit.load: identical predictions, and nothing is ever unpickled."""

from __future__ import annotations

import json
import os
import pathlib

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model

import daskfit
from daskfit.io import FrameEncoder, ModelFormatError, TabularModel

from conftest import as_kind, make_counts, make_multiclass, make_regression


def _fitted():
    X, y, w = make_regression()
    Xm, ym, _ = make_multiclass()
    Xc, yc, _ = make_counts()
    return [
        (daskfit.LinearRegression().fit(X, y, sample_weight=w), X),
        (daskfit.Ridge(alpha=3.0, solver="lbfgs").fit(X, y), X),
        (daskfit.Lasso(alpha=0.05).fit(X, y), X),
        (daskfit.ElasticNet(alpha=0.05, l1_ratio=0.3).fit(X, y), X),
        (daskfit.LogisticRegression(C=np.inf, max_iter=200).fit(Xm, ym), Xm),
        (daskfit.PoissonRegressor(alpha=0.1).fit(Xc, yc), Xc),
        (daskfit.RidgeCV(alphas=[0.1, 1.0, 10.0]).fit(X, y), X),
    ]


@pytest.mark.parametrize("index", range(7))
def test_save_load_identical(index, tmp_path):
    est, X = _fitted()[index]
    daskfit.save(est, tmp_path / "model")
    assert sorted(os.listdir(tmp_path / "model")) == ["arrays.npz", "checksums.json", "model.json"]
    loaded = daskfit.load(tmp_path / "model")
    assert type(loaded) is type(est)
    assert loaded.get_params() == est.get_params()
    for attr in ("coef_", "intercept_", "n_iter_", "n_features_in_", "n_passes_", "classes_"):
        if hasattr(est, attr):
            np.testing.assert_array_equal(getattr(loaded, attr), getattr(est, attr))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    Xd, _, _ = as_kind("dask", X, chunks=(100, 200))
    np.testing.assert_array_equal(loaded.predict(Xd).compute(), est.predict(X))
    if hasattr(est, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_infinite_parameter_round_trips(tmp_path):
    est = _fitted()[4][0]
    daskfit.save(est, tmp_path / "m")
    assert daskfit.load(tmp_path / "m").C == np.inf


def _table(seed=0, n=240):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(5.0, 3.0, size=n),
                       "g": rng.choice(["x", "y", "z"], size=n)})
    y = df["a"] - 0.5 * df["b"] + 2.0 * (df["g"] == "z") + rng.normal(scale=0.1, size=n)
    return df, y


def test_tabular_model_round_trip_on_dask_frame(tmp_path):
    df, y = _table()
    ddf = dd.from_pandas(df.assign(y=y), npartitions=4)
    model = TabularModel(estimator=daskfit.LinearRegression(), target="y")
    model.fit(ddf[["a", "b", "g"]], ddf["y"])
    daskfit.save(model, tmp_path / "model")
    loaded = daskfit.load(tmp_path / "model")
    assert isinstance(loaded.encoder, FrameEncoder)
    assert loaded.encoder.categories_["g"].tolist() == ["x", "y", "z"]
    np.testing.assert_array_equal(loaded.encoder.mean_, model.encoder.mean_)
    np.testing.assert_array_equal(loaded.predict(df), model.predict(df))
    np.testing.assert_array_equal(loaded.predict(ddf).compute(), model.predict(df))
    # The encoding is the oracle's: standardised numerics, one 0/1 column per category
    # but the first (pandas' drop_first), so the design is full rank.
    Xe = np.column_stack([(df["a"] - df["a"].mean()) / df["a"].std(ddof=0),
                          (df["b"] - df["b"].mean()) / df["b"].std(ddof=0),
                          pd.get_dummies(df["g"], drop_first=True).to_numpy(float)])
    ref = sklearn.linear_model.LinearRegression().fit(Xe, y)
    np.testing.assert_allclose(loaded.predict(df), ref.predict(Xe), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(loaded.estimator.coef_, ref.coef_, rtol=1e-8)
    assert loaded.encoder.dropped_ == {"g": "x"}


def test_reference_level_keeps_the_fit_to_one_pass():
    """With every level beside the intercept the Gram matrix is singular and the
    normal equations need a QR pass; dropping the reference level avoids it."""
    df, y = _table(n=600)
    ddf = dd.from_pandas(df.assign(y=y), npartitions=3)
    model = TabularModel(estimator=daskfit.LinearRegression()).fit(ddf[["a", "b", "g"]],
                                                                   ddf["y"])
    assert list(model.encoder.feature_names_out_) == ["a", "b", "g=y", "g=z"]
    assert model.estimator.n_passes_ == 1
    np.testing.assert_allclose(model.estimator.coef_[2:], [0.0, 2.0], atol=0.03)
    # drop=None keeps every level (a model without intercept needs them) and then
    # costs the QR pass, which n_passes_ and fit_result_.fallback own up to.
    every = TabularModel(encoder=FrameEncoder(drop=None),
                         estimator=daskfit.LinearRegression()).fit(ddf[["a", "b", "g"]],
                                                                   ddf["y"])
    assert list(every.encoder.feature_names_out_)[2:] == ["g=x", "g=y", "g=z"]
    assert every.estimator.n_passes_ == 2
    assert every.estimator.fit_result_.fallback
    np.testing.assert_allclose(every.predict(df), model.predict(df), rtol=1e-8)
    with pytest.raises(ValueError, match="drop"):
        FrameEncoder(drop="last").fit(df)


def test_model_saved_before_reference_levels_still_encodes_every_level(tmp_path):
    df, y = _table()
    model = TabularModel(encoder=FrameEncoder(drop=None),
                         estimator=daskfit.LinearRegression()).fit(df, y)
    # As saved by a version without drop: no dropped_, and loading it gives the
    # parameter its new default.
    del model.encoder.dropped_
    model.encoder.drop = "first"
    daskfit.save(model, tmp_path / "old")
    loaded = daskfit.load(tmp_path / "old")
    assert loaded.encoder.transform(df).shape[1] == 5
    np.testing.assert_allclose(loaded.predict(df), model.predict(df), rtol=1e-12)


def test_unseen_category_encodes_as_zeros():
    df, y = _table()
    enc = FrameEncoder().fit(df)
    out = enc.transform(pd.DataFrame({"a": [0.0], "b": [5.0], "g": ["never-seen"]}))
    assert out[["g=y", "g=z"]].to_numpy().tolist() == [[0.0, 0.0]]   # the reference level


def test_save_replaces_atomically(tmp_path):
    a, b = _fitted()[0][0], _fitted()[1][0]
    daskfit.save(a, tmp_path / "model")
    daskfit.save(b, tmp_path / "model")
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary directories left
    assert type(daskfit.load(tmp_path / "model")) is daskfit.Ridge


def test_save_refuses_foreign_unfitted_and_non_finite(tmp_path):
    X, y, _ = make_regression()
    with pytest.raises(ModelFormatError, match="daskfit saves only its own"):
        daskfit.save(sklearn.linear_model.Ridge().fit(X, y), tmp_path / "m")
    with pytest.raises(ModelFormatError, match="not fitted"):
        daskfit.save(daskfit.Ridge(), tmp_path / "m")
    est = daskfit.Ridge().fit(X, y)
    est.coef_ = est.coef_.copy()
    est.coef_[0] = np.nan
    with pytest.raises(ModelFormatError, match="NaN or infinity"):
        daskfit.save(est, tmp_path / "m")
    assert not (tmp_path / "m").exists()


class _Payload:
    """Unpickling this creates the marker file: proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _saved(tmp_path):
    est = _fitted()[1][0]
    return daskfit.save(est, tmp_path / "model")


def reseal(path):
    """Rewrite the checksums after an edit, as an attacker who knows the format would: the
    loader's own checks (allow-lists, dtypes, finiteness) must still refuse the content."""
    from daskfit.io._persistence import CHECKSUMS, write_manifest

    write_manifest(path, CHECKSUMS)


def test_object_array_payload_in_npz_is_refused_and_never_runs(tmp_path):
    path = _saved(tmp_path)
    marker = tmp_path / "PWNED"
    arrays = dict(np.load(path / "arrays.npz"))
    arrays["estimator.coef_"] = np.array([_Payload(str(marker))], dtype=object)
    np.savez(path / "arrays.npz", **arrays)
    reseal(path)
    with pytest.raises(ModelFormatError, match="allow_pickle"):
        daskfit.load(path)
    assert not marker.exists()
    # The payload is real: unpickling it would have created the marker.
    proof = tmp_path / "PROOF"
    arrays["estimator.coef_"] = np.array([_Payload(str(proof))], dtype=object)
    np.savez(tmp_path / "proof.npz", **arrays)
    np.load(tmp_path / "proof.npz", allow_pickle=True)["estimator.coef_"]
    assert proof.exists()


def test_planted_pickle_file_is_refused_and_never_runs(tmp_path):
    import pickle

    path = _saved(tmp_path)
    marker = tmp_path / "PWNED"
    (path / "model.pkl").write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ModelFormatError, match=r"unexpected files \['model.pkl'\]"):
        daskfit.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("cls", ["subprocess.Popen", "os.system", "Pipeline", "BaseEstimator"])
def test_non_daskfit_class_is_refused(tmp_path, cls):
    path = _saved(tmp_path)
    doc = json.loads((path / "model.json").read_text())
    doc["estimator"]["class"] = cls
    (path / "model.json").write_text(json.dumps(doc))
    reseal(path)
    with pytest.raises(ModelFormatError, match="is not a daskfit estimator"):
        daskfit.load(path)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["estimator"]["params"].update(evil=1), "unknown parameters"),
    (lambda d: d.update(format_version=99), "format_version 99"),
    (lambda d: d["estimator"]["attributes"].update({"__class__": 1}), "fitted-attribute name"),
    (lambda d: d["estimator"]["attributes"].pop("coef_"), "does not name"),
])
def test_tampered_json_is_refused(tmp_path, edit, message):
    path = _saved(tmp_path)
    doc = json.loads((path / "model.json").read_text())
    edit(doc)
    (path / "model.json").write_text(json.dumps(doc))
    reseal(path)
    with pytest.raises(ModelFormatError, match=message):
        daskfit.load(path)


def test_non_finite_coefficients_on_disk_are_refused(tmp_path):
    path = _saved(tmp_path)
    arrays = dict(np.load(path / "arrays.npz"))
    arrays["estimator.coef_"] = arrays["estimator.coef_"] * np.nan
    np.savez(path / "arrays.npz", **arrays)
    reseal(path)
    with pytest.raises(ModelFormatError, match="NaN or infinity"):
        daskfit.load(path)


def test_missing_model_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model directory"):
        daskfit.load(tmp_path / "nothing")


# ------------------------------------------------------- hostile model files (bounded)
def _npy_member(archive, name, shape, dtype="<f8", data=b""):
    """Write an .npy member by hand: the header may declare what the data does not hold."""
    import io
    import zipfile

    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False,
                                        "shape": shape})
    archive.writestr(name, buffer.getvalue() + data, compress_type=zipfile.ZIP_DEFLATED)


def test_npz_that_would_inflate_past_the_bound_is_refused_before_reading(tmp_path,
                                                                         monkeypatch):
    import tracemalloc
    import zipfile

    import daskfit.io._persistence as persistence

    path = _saved(tmp_path)
    arrays = dict(np.load(path / "arrays.npz"))
    doc = json.loads((path / "model.json").read_text())
    # 1. A header declaring 2 GiB (over the 1 GiB bound), consistent with the JSON.
    n = 2**28
    doc["estimator"]["attributes"]["coef_"]["shape"] = [n]
    (path / "model.json").write_text(json.dumps(doc))
    with zipfile.ZipFile(path / "arrays.npz", "w") as archive:
        for key, a in arrays.items():
            if key == "estimator.coef_":
                _npy_member(archive, key + ".npy", (n,), data=b"\0" * 4096)
            else:
                _npy_member(archive, key + ".npy", a.shape, a.dtype.str, a.tobytes())
    reseal(path)
    tracemalloc.start()
    with pytest.raises(ModelFormatError, match="more than"):
        daskfit.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20
    # 2. A real bomb: 64 MiB of zeros deflated to ~64 KiB, under a lowered bound.
    monkeypatch.setattr(persistence, "MAX_ARRAY_BYTES", 16 * 2**20)
    n = 8 * 2**20
    doc["estimator"]["attributes"]["coef_"]["shape"] = [n]
    (path / "model.json").write_text(json.dumps(doc))
    with zipfile.ZipFile(path / "arrays.npz", "w") as archive:
        for key, a in arrays.items():
            data = np.zeros(n) if key == "estimator.coef_" else a
            _npy_member(archive, key + ".npy", data.shape, data.dtype.str, data.tobytes())
    reseal(path)
    assert (path / "arrays.npz").stat().st_size < 2**20
    with pytest.raises(ModelFormatError, match="more than 16777216 bytes"):
        daskfit.load(path)


def test_every_array_must_match_the_shape_and_dtype_the_json_declares(tmp_path):
    path = _saved(tmp_path)
    arrays = dict(np.load(path / "arrays.npz"))
    arrays["estimator.coef_"] = np.append(arrays["estimator.coef_"], 1.0)
    np.savez(path / "arrays.npz", **arrays)
    reseal(path)
    with pytest.raises(ModelFormatError, match="declares"):
        daskfit.load(path)
    arrays["estimator.coef_"] = arrays["estimator.coef_"][:-1].astype(np.float32)
    np.savez(path / "arrays.npz", **arrays)
    reseal(path)
    with pytest.raises(ModelFormatError, match="float32"):
        daskfit.load(path)


def test_a_consistent_2d_coef_in_a_regressor_is_refused(tmp_path):
    """JSON and .npz agree, checksums resealed: the estimator's own metadata still refuses
    a coef_ that would make predict return (n, 3)."""
    path = _saved(tmp_path)
    arrays = dict(np.load(path / "arrays.npz"))
    coef = np.tile(arrays["estimator.coef_"], (3, 1)).T
    arrays["estimator.coef_"] = coef
    np.savez(path / "arrays.npz", **arrays)
    doc = json.loads((path / "model.json").read_text())
    doc["estimator"]["attributes"]["coef_"]["shape"] = list(coef.shape)
    (path / "model.json").write_text(json.dumps(doc))
    reseal(path)
    with pytest.raises(ModelFormatError, match="coef_ has shape"):
        daskfit.load(path)


def test_deeply_nested_json_is_a_clear_error_not_recursion(tmp_path):
    path = _saved(tmp_path)
    doc = json.loads((path / "model.json").read_text())
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(doc).replace('"not_saved": [', f'"not_saved": [{deep}, ', 1)
    (path / "model.json").write_text(text)
    reseal(path)
    with pytest.raises(ModelFormatError, match="nested 1000.. levels"):
        daskfit.load(path)


def test_keyed_checksums_need_the_key(tmp_path, monkeypatch):
    from daskfit.io._persistence import KEY_ENV

    monkeypatch.setenv(KEY_ENV, "s3cret-model-key")
    path = _saved(tmp_path)
    assert json.loads((path / "checksums.json").read_text())["algorithm"] == "hmac-sha256"
    reference = daskfit.load(path)
    # An attacker without the key rewrites a file and reseals with plain sha256: refused.
    reseal_plain = pathlib.Path(tmp_path / "plain")
    monkeypatch.delenv(KEY_ENV)
    daskfit.save(reference, reseal_plain)
    monkeypatch.setenv(KEY_ENV, "s3cret-model-key")
    with pytest.raises(ModelFormatError, match="keyed"):
        daskfit.load(reseal_plain)
    # ... or with another key: refused.
    monkeypatch.setenv(KEY_ENV, "another-key")
    with pytest.raises(ModelFormatError, match="checksum"):
        daskfit.load(path)
    # Without the key the loader says which variable to set.
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ModelFormatError, match=KEY_ENV):
        daskfit.load(path)
