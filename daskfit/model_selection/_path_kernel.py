"""The pass of :class:`LogisticRegressionCV`: every fold model in one read of X.

A cross-validated path fits ``S`` fold models (each on the rows its split
trains on) and, to refit, one model on all rows. They differ only in their
coefficients and in which rows they weigh, so one pass serves all of them:
per row block the kernel multiplies X by the ``(p, n_models)`` matrix of
every model's coefficients (one BLAS call, X read once), weighs each model's
derivatives by its own row mask, and returns per model the loss sum, the
gradient sum and on request the Hessian sum. In the same pass each fold
model scores the rows its split validates on, so the CV scores cost nothing
extra either.

Rows carry their fold codes in the ``y`` slot (see
:func:`daskfit.model_selection._split.fold_pass_data`); ``y`` itself is the
class index as a float. ``roles`` tables turn codes into 0 (unused by the
split), 1 (trains) or 2 (validates), per split. A binary fit's ``offset``
(in the weight slot, see :func:`daskfit._data.split_row_vectors`) is added
to every model's log-odds, for its fit and for its scores alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.alignment import aligned_blocks
from ..kernels.chunks import basic_checks, chunk_kernel, diagnose_chunk, hessian_block, weighted_gram
from ..model import layout
from ..model.losses import LOSSES

__all__ = ["PathSpec", "path_chunk", "TRAIN", "VALIDATE"]

#: Roles of a row in a split.
TRAIN, VALIDATE = 1, 2


@dataclass(frozen=True)
class PathSpec:
    """What one pass of the CV path computes (embedded in every task).

    ``thetas`` is ``(n_active, n_params)``: the coefficients of the models
    still moving, ``models`` their numbers (fold ``s`` for ``s < n_splits``,
    ``n_splits`` for the model on all rows). ``splits[s] = (grouping,
    roles)`` maps split ``s``'s codes to roles. ``hessian`` lists the models
    (positions in ``models``) that need a Hessian this pass.
    ``class_weight`` (one weight per class code, or None) multiplies the
    training weights of every model, as scikit-learn's fold and refit fits
    do; validation rows keep their ``sample_weight``, as its scores do.
    """

    thetas: np.ndarray
    models: tuple
    splits: tuple
    n_features: int
    n_outputs: int
    fit_intercept: bool
    hessian: tuple
    checks: bool = False
    hessian_stride: int = 1
    class_weight: np.ndarray | None = None


def _row_roles(codes, splits):
    """Roles of each row in each split: int8 array of shape (n, n_splits)."""
    roles = np.empty((codes.shape[0], len(splits)), dtype=np.int8)
    for s, (grouping, table) in enumerate(splits):
        roles[:, s] = table[codes[:, grouping]]
    return roles


def _model_weights(roles, w, models, n_splits):
    """Training weights per model (n, n_models): a split's training rows, or all rows."""
    base = np.ones(roles.shape[0]) if w is None else w
    out = np.empty((roles.shape[0], len(models)))
    for j, m in enumerate(models):
        out[:, j] = base if m == n_splits else base * (roles[:, m] == TRAIN)
    return out


def _multinomial_hessian(X, p, d, fit_intercept):
    """``sum_i d_i kron(diag(p_i) - p_i p_i', x_i x_i')`` for one model, by class blocks."""
    K = p.shape[1]
    width = X.shape[1] + int(fit_intercept)
    H = np.empty((K * width, K * width))
    for k in range(K):
        for j in range(k, K):
            block = weighted_gram(X, d * p[:, k] * ((k == j) - p[:, j]), fit_intercept,
                                  nonnegative=(k == j))
            H[k * width:(k + 1) * width, j * width:(j + 1) * width] = block
            H[j * width:(j + 1) * width, k * width:(k + 1) * width] = block.T
    return H


def _coefficients(spec, dtype):
    """(p, M*K) coefficient matrix and (M*K,) intercepts of the active models."""
    M, K, p = len(spec.models), spec.n_outputs, spec.n_features
    # M models of K outputs each: one theta of M * K blocks.
    coef, intercept = layout.unpack(spec.thetas, p, M * K, spec.fit_intercept)
    return coef.T.astype(dtype), intercept


@chunk_kernel
def path_chunk(index, X, yc, w, spec: PathSpec, offset=None):
    """Per model: loss, gradient (and Hessian) sums on its training rows; per
    fold model: loss and correct counts on its validation rows.

    ``offset`` (binary models only: the caller refuses it for more classes)
    is added to every model's linear predictor ``X b + b0``.
    """
    n = X.shape[0]
    out = {"n": n, "chunk_rows": {index: n}}
    y = yc["y"]
    if spec.checks and not basic_checks(index, X, y, w, out):
        return out
    M, K, p = len(spec.models), spec.n_outputs, spec.n_features
    S = len(spec.splits)
    width = layout.width(p, spec.fit_intercept)
    coef, intercept = _coefficients(spec, X.dtype)
    loss = LOSSES["logistic"] if K == 1 else LOSSES["multinomial"]
    roles_all = _row_roles(yc["codes"], spec.splits)
    labels = y.astype(np.intp) if K > 1 else y
    fold_models = [j for j, m in enumerate(spec.models) if m < S]
    row_cw = None if spec.class_weight is None else spec.class_weight[y.astype(np.intp)]
    loss_sum = np.zeros(M)
    train_loss = np.zeros(M)
    train_score_sw = np.zeros(M)
    grad = np.zeros((M, K, width))
    hess = {j: 0.0 for j in spec.hessian}
    hess_sw = np.zeros(M)
    train_sw = np.zeros(M)
    train_correct = np.zeros(M)
    val_loss = np.zeros(M)
    val_sw = np.zeros(M)
    val_correct = np.zeros(M)
    for number, block, Xb in aligned_blocks(X):
        yb = labels[block]
        wb = None if w is None else w[block]
        roles = roles_all[block]
        Wr = _model_weights(roles, wb, spec.models, S)  # for the training scores
        Wt = Wr if row_cw is None else Wr * row_cw[block, None]  # for the fit
        raw = (Xb @ coef).astype(np.float64) + intercept  # (nb, M*K)
        if offset is not None:
            raw += offset[block, None]
        if K == 1:
            lv, g, h, correct = loss.path_terms(raw, yb)
            wg = (g * Wt)[:, :, None]
        else:
            lv, g, h, correct = loss.path_terms(raw.reshape(-1, M, K), yb)
            wg = g * Wt[:, :, None]
        loss_sum += (lv * Wt).sum(axis=0)
        train_sw += Wt.sum(axis=0)
        train_correct += (correct * Wr).sum(axis=0)
        train_loss += (lv * Wr).sum(axis=0)
        train_score_sw += Wr.sum(axis=0)
        gx = (Xb.T @ wg.reshape(Xb.shape[0], M * K).astype(X.dtype)).astype(np.float64)
        grad[:, :, :p] += gx.T.reshape(M, K, p)
        if spec.fit_intercept:
            grad[:, :, p] += wg.sum(axis=0)
        if spec.hessian and hessian_block(index, number, spec.hessian_stride):
            for j in spec.hessian:
                if K == 1:
                    hess[j] = hess[j] + weighted_gram(Xb, h[:, j] * Wt[:, j],
                                                      spec.fit_intercept, nonnegative=True)
                else:
                    hess[j] = hess[j] + _multinomial_hessian(Xb, h[:, j, :], Wt[:, j],
                                                             spec.fit_intercept)
                hess_sw[j] += Wt[:, j].sum()
        base = np.ones(Xb.shape[0]) if wb is None else wb
        for j in fold_models:
            v = base * (roles[:, spec.models[j]] == VALIDATE)
            val_loss[j] += v @ lv[:, j]
            val_sw[j] += v.sum()
            val_correct[j] += v @ correct[:, j]
    out.update(loss=loss_sum, grad=grad.reshape(M, -1), train_sw=train_sw,
               train_correct=train_correct, train_loss=train_loss,
               train_score_sw=train_score_sw, val_loss=val_loss, val_sw=val_sw,
               val_correct=val_correct, hess_sw=hess_sw)
    for j in spec.hessian:
        out[f"hess{j}"] = hess[j] if np.ndim(hess[j]) else np.zeros((K * width,) * 2)
    if not (np.isfinite(loss_sum).all() and np.isfinite(grad).all()):
        out["errors"] = [diagnose_chunk(index, X, y, w, offset)]
    return out
