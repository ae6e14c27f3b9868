"""Newton's warm start from a sample (daskfit.solvers._warm_start).

A default binary logistic or Poisson fit on many rows starts the full Newton
at a fit to a few thousand sampled rows, and evaluates there in the pass that
also discovers the labels: 3 passes instead of 6 or 7, at least as accurate.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import sklearn.linear_model as sk
from dataclasses import replace
from scipy.special import expit

import daskfit
import daskfit.fit as base  # where the fit wiring calls warm_start
from daskfit.kernels.chunks import EvalSpec, _labels_and_codes, class_stats_chunk, evaluate_chunk
from daskfit.model.losses import LOSSES

N, P, CHUNK = 128_000, 3, 16_000  # 8 chunks; 16 x the 2 x 4,000 sampled rows


def _problem(kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P))
    z = X @ np.linspace(-1.0, 1.0, P) + 0.3
    if kind == "binary":
        y = (rng.uniform(size=N) < expit(z)).astype(np.int64)
    else:
        y = rng.poisson(np.exp(0.5 * z)).astype(np.float64)
    return X, y


def _dask(X, y):
    return da.from_array(X, chunks=(CHUNK, P)), da.from_array(y, chunks=CHUNK)


def _theta(est):
    return np.r_[np.ravel(est.coef_), np.ravel(est.intercept_)]


def _relative_error(theta, reference):
    return np.abs(theta - reference).max() / np.abs(reference).max()


@pytest.mark.parametrize("kind", ["binary", "counts"])
def test_default_glm_fit_makes_three_passes_from_a_sample(kind, client, count_reductions):
    """The pass count of a default binary logistic / Poisson fit is 3, and
    cannot silently grow: the labels (or validating) pass evaluates at the
    sample's fit, then one Newton step and the final step (a gradient pass:
    nothing uses a Hessian after the last step)."""
    X, y = _problem(kind)
    make = daskfit.LogisticRegression if kind == "binary" else daskfit.PoissonRegressor
    est = make().fit(*_dask(X, y))
    first = "labels" if kind == "binary" else "gradient"
    # The third pass is the final step (a gradient pass) when one was taken,
    # else the Newton step that met the rule with a negligible final step.
    last = ("gradient" if est.fit_result_.message.endswith("then one final Newton step")
            else "hessian")
    assert count_reductions == [first, "hessian", last]
    assert est.n_passes_ == 3 and est.solver_ == "newton"
    assert est.pass_log_[0][0] == "warm start" and len(est.pass_log_) == 4
    # Accuracy: no worse than scikit-learn's default, against a tight reference.
    if kind == "binary":
        tight = sk.LogisticRegression(solver="newton-cholesky", tol=1e-14, max_iter=100)
        default = sk.LogisticRegression()
    else:
        tight = sk.PoissonRegressor(solver="newton-cholesky", tol=1e-14, max_iter=100)
        default = sk.PoissonRegressor()
    reference = _theta(tight.fit(X, y))
    ours = _relative_error(_theta(est), reference)
    assert ours <= _relative_error(_theta(default.fit(X, y)), reference)
    assert ours < 1e-6
    # The sample is chosen by chunk index, not placement: the same fit again.
    again = make().fit(*_dask(X, y))
    np.testing.assert_array_equal(_theta(again), _theta(est))


def test_a_label_the_sample_did_not_see_costs_one_pass_not_accuracy(count_reductions):
    """A third class only in the last rows: the labels pass finds it, the
    evaluation at the (binary) warm start is dropped, and the multinomial fit
    starts at zero with one more pass; the coefficients are those of a fit
    without the warm start."""
    X, y = _problem("binary")
    y[-50:] = 2
    est = daskfit.LogisticRegression().fit(*_dask(X, y))
    assert est.pass_log_[0][0] == "warm start" and list(est.classes_) == [0, 1, 2]
    n_iter = int(np.ravel(est.n_iter_)[0])
    assert count_reductions[0] == "labels" and est.n_passes_ == n_iter + 2
    count_reductions.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(base, "warm_start", lambda *args: None)
        cold = daskfit.LogisticRegression().fit(*_dask(X, y))
    assert cold.n_passes_ == est.n_passes_ - 1
    np.testing.assert_allclose(_theta(est), _theta(cold), rtol=0, atol=1e-12)


def test_sorted_labels_turn_the_warm_start_off():
    """Rows sorted by label: a sampled chunk holds one class, so there is no
    warm start (no pass is wasted) and the fit is the usual one."""
    X, y = _problem("binary")
    order = np.argsort(y, kind="stable")
    est = daskfit.LogisticRegression().fit(*_dask(X[order], y[order]))
    assert "warm start" in [label for label, _ in est.pass_log_]
    assert est.n_passes_ == int(np.ravel(est.n_iter_)[0]) + 1
    reference = _theta(sk.LogisticRegression(solver="newton-cholesky", tol=1e-14).fit(X, y))
    assert _relative_error(_theta(est), reference) < 1e-6


def test_small_data_is_not_warm_started(count_reductions):
    X, y = _problem("binary")
    est = daskfit.LogisticRegression().fit(X[:20_000], y[:20_000])
    assert "warm start" not in [label for label, _ in est.pass_log_]


@pytest.mark.parametrize("y", [
    np.array([0.0, 1.0, 1.0, 0.0]), np.array([1, 1, 1]), np.array([-3, 4, 0, 4]),
    np.array([True, False, True]), np.array([2.0, 0.0, 5.0], dtype=np.float32),
    np.array([0.5, 1.5, 0.5]), np.array([0.1, 1.1]), np.array([2**40, 2**40 + 3], np.int64),
    np.array([0, 2], np.uint64), np.array(["b", "a", "b"]), np.array([], dtype=np.float64),
], ids=lambda y: f"{y.dtype}{y[:2].tolist()}")
def test_label_codes_without_sorting_match_unique(y):
    labels, codes = _labels_and_codes(y)
    expected_labels, expected_codes = np.unique(y, return_inverse=True)
    assert labels.dtype == expected_labels.dtype
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(codes, np.ravel(expected_codes))


def test_labels_pass_at_a_warm_point_is_the_evaluation_there():
    """``class_stats_chunk`` with a theta: per-label weights plus exactly
    what ``evaluate_chunk`` returns at that theta."""
    X, y = _problem("binary")
    X, y = X[:5000], np.where(y[:5000] == 1, "yes", "no").astype(object)
    w = np.random.default_rng(1).uniform(0, 2, 5000)
    spec = EvalSpec(loss=LOSSES["logistic"], theta=np.array([0.2, -0.1, 0.3, 0.05]),
                    n_features=P, n_outputs=1, fit_intercept=True,
                    classes=np.array(["no", "yes"], dtype=object), order=2, checks=True)
    both = class_stats_chunk(3, X, y, w, spec)
    alone = evaluate_chunk(3, X, y, w, replace(spec, checks=False))
    for key in ("loss", "grad", "hess", "hess_sw", "sw"):
        np.testing.assert_array_equal(both[key], alone[key])
    assert {lab: sw for lab, (sw, _) in both["class_stats"].items()} == pytest.approx(
        {"no": w[y == "no"].sum(), "yes": w[y == "yes"].sum()})


def test_sampled_hessian_is_computed_in_float32_with_float64_fallback():
    """A sub-sampled Hessian block of float64 data is a float32 product (its
    rounding, about 1e-7 of the entries, shows), and a block with a
    large-mean column, whose spread float32 would cancel, stays float64."""
    from daskfit.kernels.chunks import _gram_float32, weighted_gram

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 6))
    d = rng.uniform(0.01, 0.25, 3000)
    exact = weighted_gram(X, d, True, nonnegative=True)
    fast = _gram_float32(X, d, True)
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    difference = np.abs(fast - exact) / scale
    assert 0 < difference.max() < 1e-5
    np.testing.assert_array_equal(fast[:-1, -1], X.T @ d)  # intercept row: float64
    X[:, 2] += 1e4  # mean / spread = 1e4: three digits left in float32
    np.testing.assert_array_equal(_gram_float32(X, d, True),
                                  weighted_gram(X, d, True, nonnegative=True))


def test_float32_sampled_hessian_keeps_passes_and_accuracy(monkeypatch):
    """With the Hessian sub-sampled (small row blocks here, as on millions of
    rows), the float32 Hessian gives the float64 Hessian's pass count and
    coefficients to well within the accuracy target."""
    import daskfit.kernels.alignment as alignment
    import daskfit.kernels.chunks as chunks

    monkeypatch.setattr(alignment, "BLOCK_BYTES", 2**12)  # 170-row blocks: stride 32
    X, y = _problem("binary")
    fits = {}
    for flag in (False, True):
        monkeypatch.setattr(chunks, "HESSIAN_FLOAT32", flag)
        est = daskfit.LogisticRegression().fit(*_dask(X, y))
        assert "Hessian from 1 row block in 32 " in est.solver_reason_
        fits[flag] = est
    assert fits[True].n_passes_ == fits[False].n_passes_ == 3
    reference = _theta(sk.LogisticRegression(solver="newton-cholesky", tol=1e-14,
                                             max_iter=100).fit(X, y))
    default = _relative_error(_theta(sk.LogisticRegression().fit(X, y)), reference)
    ours = _relative_error(_theta(fits[True]), reference)
    assert ours < default / 2
    assert _relative_error(_theta(fits[True]), _theta(fits[False])) < 1e-6


def test_verbose_reports_the_warm_start_as_a_line_of_its_own_not_a_pass(capsys):
    """The warm start reads no full pass: the pass lines (and the notebook bar, which
    counts the same events) number exactly ``n_passes_``, and the warm start has its own line."""
    import re

    X, y = _problem("binary")
    est = daskfit.LogisticRegression(verbose=1).fit(*_dask(X, y))
    out = capsys.readouterr().out
    numbers = [int(n) for n in re.findall(r"^\[daskfit\] LogisticRegression pass (\d+) ", out, re.M)]
    assert est.pass_log_[0][0] == "warm start"
    assert numbers == list(range(1, est.n_passes_ + 1))
    assert len(re.findall(r"^\[daskfit\] LogisticRegression warm start \(not a pass\): ", out, re.M)) == 1


def test_in_process_the_samples_are_fitted_side_by_side(monkeypatch):
    """Without a cluster the samples are fitted on the local scheduler's threads, as
    a pass's chunks are, not one after the other in the calling thread."""
    import threading

    import daskfit.solvers._warm_start as warm

    threads, real = [], warm.fit_sample

    def recording(*args):
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(warm, "fit_sample", recording)
    X, y = _problem("binary")
    est = daskfit.LogisticRegression().fit(*_dask(X, y))   # no client: local threads
    assert est.pass_log_[0][0] == "warm start" and len(threads) == 2
    assert threading.get_ident() not in threads
