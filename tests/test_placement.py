"""Where a fit computes: NumPy under a Client, and fits inside Dask tasks.

Each test bounds its waits (``result(timeout=...)``, ``pytest.mark.timeout``):
before ``daskfit.engine.placement``, a fit inside a task waited for ever on tasks
queued behind itself.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from distributed import get_task_stream

import daskfit
from daskfit.engine import placement as _placement


def regression(n=3_000, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    return X, X @ np.linspace(-1, 1, p) + 0.5 + rng.standard_normal(n)


def daskfit_tasks(stream):
    return [t for t in stream.data if str(t.get("key", "")).find("daskfit-") >= 0]


def test_numpy_under_a_client_no_bigger_than_this_machine_is_fitted_here(client,
                                                                        monkeypatch):
    X, y = regression()
    monkeypatch.setattr(_placement, "usable_cores", lambda: 1)  # as if the cluster were bigger
    reference = daskfit.LogisticRegression().fit(X, y > 0.5)
    monkeypatch.undo()
    with get_task_stream(client) as stream:
        est = daskfit.LogisticRegression().fit(X, y > 0.5)
        score = est.score(X, y > 0.5)
    assert daskfit_tasks(stream) == []  # nothing was shipped to the workers
    assert _placement.usable_cores() >= sum(
        w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=1e-12)
    assert est.n_passes_ == reference.n_passes_
    assert 0.5 < score <= 1.0


def test_numpy_under_a_client_bigger_than_this_machine_goes_to_the_cluster(client,
                                                                           monkeypatch):
    monkeypatch.setattr(_placement, "usable_cores", lambda: 1)
    X, y = regression()
    with get_task_stream(client) as stream:
        est = daskfit.Ridge(alpha=1.0).fit(X, y)
    assert len(daskfit_tasks(stream)) >= 1
    monkeypatch.undo()
    here = daskfit.Ridge(alpha=1.0).fit(X, y)
    np.testing.assert_allclose(est.coef_, here.coef_, rtol=1e-12)


@pytest.mark.timeout(120)
def test_fit_inside_a_task_with_data_in_the_task(client):
    X, y = regression()

    def fit_in_task():
        est = daskfit.LogisticRegression().fit(X, y > 0.5)
        return est.coef_, est.n_passes_

    coef, passes = client.submit(fit_in_task, pure=False).result(timeout=60)
    here = daskfit.LogisticRegression().fit(X, y > 0.5)
    np.testing.assert_allclose(coef, here.coef_, rtol=1e-12)
    assert passes == here.n_passes_


@pytest.mark.timeout(120)
def test_fit_inside_a_task_on_dask_collections_secedes(client):
    X, y = regression()

    def fit_in_task():
        Xd, yd = da.from_array(X, chunks=(700, -1)), da.from_array(y, chunks=700)
        return daskfit.Ridge(alpha=2.0).fit(Xd, yd).coef_

    with get_task_stream(client) as stream:
        coef = client.submit(fit_in_task, pure=False).result(timeout=60)
    assert len(daskfit_tasks(stream)) >= 1  # the cluster did the passes
    np.testing.assert_allclose(coef, daskfit.Ridge(alpha=2.0).fit(X, y).coef_, rtol=1e-10)


@pytest.mark.timeout(120)
def test_gridsearchcv_on_joblibs_dask_backend_completes(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, y = regression()
    grid = {"alpha": [0.1, 10.0, 1000.0]}
    with joblib.parallel_backend("dask", wait_for_workers_timeout=30):
        search = GridSearchCV(daskfit.Ridge(), grid, cv=3).fit(X, y)
    here = GridSearchCV(daskfit.Ridge(), grid, cv=3).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               here.cv_results_["mean_test_score"], rtol=1e-10)


@pytest.mark.timeout(120)
def test_dask_ml_gridsearchcv_with_a_daskfit_estimator_completes(client):
    dcv = pytest.importorskip("dask_ml.model_selection")
    X, y = regression()
    search = dcv.GridSearchCV(daskfit.Ridge(), {"alpha": [0.1, 100.0]}, cv=3).fit(X, y)
    assert search.best_params_ == {"alpha": 0.1}
