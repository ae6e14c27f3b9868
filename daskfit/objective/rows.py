"""The objective a solver minimises: weighted mean loss + penalty.

``f(theta) = sum_i w_i loss(y_i, x_i @ coef + intercept) / sum_i w_i + penalty(coef)``

The intercept is the last entry of ``theta`` (per class for the multinomial
loss, whose ``theta`` is ``(n_classes, n_features + 1)`` flattened by class)
and is never penalised. A mean rather than a sum makes ``tol`` and step sizes
independent of ``n_samples`` and of how the data is chunked.

Every evaluation is one pass over the data (loss, gradient and, on request,
the Hessian come out of the same reduction), and the last evaluation is
cached so that asking twice for the same point costs nothing.

The *first* pass also validates the data (finiteness, chunk alignment,
negative weights, label set, target range): it is the evaluation at
``theta = 0`` with checks switched on, so validation adds no pass.

With a ``holdout`` (early stopping, see ``daskfit.kernels.holdout``) every sum above
is over the training rows only, and every pass also returns the validation
score's statistics at the point it evaluated; :meth:`Objective.validation_score`
reads them back without a pass of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target

from .._data import split_row_vectors
from ..engine.rows import DataError
from ..kernels.holdout import N_SUMS, accuracy_sums_at_zero
from ..kernels.chunks import (UNKNOWN_LABEL_TYPE, EvalSpec, MomentsWork, class_stats_chunk,
                              evaluate_chunk, moments_chunk, qr_chunk, rows_moments,
                              take_columns)
from ..kernels.sgd import local_sgd_chunk
from ..model import layout
from ._costs import EngineCosts
from ..solvers._standardise import column_moments_chunk, with_column_moments

__all__ = ["ColumnSpec", "Objective", "checked_classes", "class_weight_vector",
           "gram_columns_chunk", "penalty_mask"]

_ORDER = {"value": 0, "grad": 1, "hess": 2}


def penalty_mask(n_features, n_outputs, fit_intercept):
    """Boolean mask over theta: True for coefficients, False for intercepts."""
    return layout.penalised(n_features, n_outputs, fit_intercept)


def checked_classes(labels):
    """The sorted distinct class labels, or scikit-learn's error for a bad target."""
    try:
        classes = np.array(sorted(set(labels)))
    except TypeError:  # labels of mixed types across chunks (str and int)
        raise DataError(UNKNOWN_LABEL_TYPE.format(kind="unknown")) from None
    kind = type_of_target(classes)
    if kind not in ("binary", "multiclass"):
        raise DataError(UNKNOWN_LABEL_TYPE.format(kind=kind))
    if len(classes) < 2:
        raise DataError(
            "This solver needs samples of at least 2 classes in the data, but the "
            f"data contains only one class: {classes[0]!r}."
        )
    return classes


def class_weight_vector(class_weight, classes, class_totals=None):
    """One weight per class (``classes`` order), as scikit-learn computes it.

    Parameters
    ----------
    class_weight : None, "balanced" or dict
        A dict maps class labels to weights (classes it omits get 1);
        ``"balanced"`` is ``sum(sw) / (n_classes * sw of the class)``.
    classes : ndarray
        The sorted class labels.
    class_totals : ndarray, optional
        Total sample weight of each class (needed for ``"balanced"``).

    Returns
    -------
    ndarray of shape (n_classes,) or None for ``class_weight=None``.

    Notes
    -----
    This is scikit-learn's ``compute_class_weight`` itself: with ``y`` the
    class labels, each once, weighted by the class totals, its ``"balanced"``
    counts are those totals, and its dict handling (keys matched as int or
    str, its error for keys that are not class labels) is unchanged.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str) and class_weight == "balanced":
        totals = np.asarray(class_totals, dtype=np.float64)
        empty = [c for c, t in zip(classes.tolist(), totals) if not t > 0]
        if empty:
            raise DataError(
                f"class_weight='balanced' divides by each class's total sample weight, but "
                f"class(es) {empty} have none (every sample weight of theirs is 0). Give "
                "them positive weights or pass class_weight as a dict.")
        weights = compute_class_weight("balanced", classes=classes, y=classes,
                                       sample_weight=totals)
    else:
        weights = compute_class_weight(class_weight, classes=classes, y=classes)
    weights = np.asarray(weights, dtype=np.float64)
    if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
        raise ValueError(f"class_weight must give every class a finite weight >= 0; got "
                         f"{dict(zip(classes.tolist(), weights.tolist()))}.")
    return weights


@dataclass(frozen=True)
class ColumnSpec:
    """What a Gram pass over some columns reads: these columns of X (sorted indices)."""

    columns: np.ndarray


def gram_columns_chunk(index, X, y, w, spec):
    """Centred moments ``(sw, mean_x, mean_y, Sxx, Sxy, Syy)`` of ``X[:, columns]``.

    The same accurate (shifted where needed) accumulation as the normal
    equations' pass, on a copy of the chosen columns only (fresh, aligned).
    """
    w, offset = split_row_vectors(w)  # least squares with an offset: of y - offset
    Xw = take_columns(X, spec.columns)  # dense copy, or sparse columns kept sparse
    yy = np.asarray(y, dtype=np.float64)
    if offset is not None:
        yy = yy - offset
    return {"moments": rows_moments(Xw, yy, w, MomentsWork(Xw))}


class Objective(EngineCosts):
    """Weighted-mean loss plus penalty over the chunks held by an engine.

    Build it with :meth:`start`, which runs the first (validating) pass.
    It implements the solver contract,
    :class:`~daskfit.objective.contract.SolverObjective`: solvers use no
    other member (and never its ``engine``).

    Parameters
    ----------
    engine : Engine
    loss : loss object from ``daskfit.model.losses``
    penalty_rule : callable
        ``penalty_rule(sum_of_weights) -> Penalty``; scikit-learn's
        parameterisations (``Ridge.alpha`` is on the *sum* scale,
        ``LogisticRegression.C`` multiplies the loss) need the total weight,
        which the first pass provides.
    fit_intercept : bool
    holdout : daskfit.kernels.holdout.Holdout, optional
        Rows to leave out of the objective and score at every evaluation.
    class_weight : None, "balanced" or dict, optional
        scikit-learn's ``class_weight`` (classifiers): each training row's
        weight is multiplied by its class's weight, so the mean, the total
        weight of the penalty scale and every pass are class weighted. The
        first pass computes the weights (``"balanced"`` from its class sums,
        over training and held-out rows); ``class_weights`` then holds them.
    """

    #: Validation statistics are kept for this many recent evaluations: a
    #: solver asks for the score of its accepted point, which is the last or
    #: one of the last few points evaluated (line searches evaluate trials).
    HOLDOUT_MEMORY = 8
    #: Solvers check that the objective's layout is theirs (``solve``).
    layout = "rows"

    def __init__(self, engine, loss, penalty_rule, fit_intercept, holdout=None,
                 class_weight=None):
        self.engine = engine
        self.loss = loss
        self.penalty_rule = penalty_rule
        self.fit_intercept = fit_intercept
        self.n_features = engine.data.n_features
        self.classes = None
        self.n_outputs = 1
        self.penalty = None
        self.sum_weights = None
        self.n_samples = None
        self._cache = {}
        self._moments = None
        self._column_moments = None
        self.hessian_stride = 1
        self.holdout = holdout
        self._holdout_sums = OrderedDict()  # theta bytes -> validation statistics
        self.holdout_counts = None  # n and weight of the training / validation rows
        self.class_weight = class_weight
        self.class_weights = None  # one per class, from the first pass
        self.start_theta = None  # the point the first pass evaluated (see start)
        self.start_hessian_stride = None  # its Hessian's stride, when not hessian_stride

    # ----------------------------------------------------------- first pass
    def start(self, needs, column_moments=False, warm=None):
        """Run the first pass: validate the data and evaluate at ``theta = 0``.

        Parameters
        ----------
        needs : {"moments", "grad", "hess"}
            What the chosen solver needs at the starting point: ``"moments"``
            (centred X'X, X'y for the normal equations), or the gradient,
            or the gradient and Hessian.
        column_moments : bool, default=False
            Also compute the feature means and scales (of the training rows)
            in this pass, for solvers that work in standardised coordinates
            (see ``daskfit.solvers._standardise``).
        warm : daskfit.solvers._warm_start.WarmStart, optional
            Evaluate at ``warm.theta`` instead of zero (same pass, same
            checks). A classifier's evaluation is kept only when the data's
            labels are the warm start's two classes; otherwise one more pass
            evaluates at zero. :attr:`start_theta` is the point evaluated.
        """
        self.start_theta = None
        if column_moments and needs != "moments":
            return self._start(needs, with_column_moments)
        if warm is not None and needs != "moments" and self.holdout is None:
            return self._start_warm(needs, warm)
        return self._start(needs, None)

    def _start_warm(self, needs, warm):
        """The first pass at a warm start's point (see :meth:`start`)."""
        order = _ORDER[needs]
        theta = np.asarray(warm.theta, dtype=np.float64)
        # Near the optimum already: the Hessian from as many rows as a fit's last passes.
        stride = max(1, self.hessian_stride // warm.hessian_density)
        self.start_hessian_stride = stride
        if self.loss.is_classification:
            spec = replace(self._spec(theta, order, checks=True), classes=warm.classes,
                           hessian_stride=stride)
            result = self.engine.reduce(class_stats_chunk, spec, "labels")
            self._check_not_empty(result)
            self._set_classes(result)
            self._finish_checks(result)
            if self.n_outputs == 1 and np.array_equal(self.classes, warm.classes):
                self._store(theta, order, result)
                self.start_theta = theta
            else:  # labels the sample did not hold: encoded wrongly, start at zero
                self.start_theta = np.zeros(self.n_params)
                self._evaluate(self.start_theta, order)
            return self
        try:
            result = self.engine.reduce(
                evaluate_chunk, replace(self._spec(theta, order, True), hessian_stride=stride),
                "gradient")
        except FloatingPointError:
            # Overflow at the sample's optimum (a Poisson outlier): zero is safe.
            return self._start(needs, None)
        self._finish_checks(result)
        self._store(theta, order, result)
        self.start_theta = theta
        return self

    def _start(self, needs, wrap):
        def kernel(k):
            return k if wrap is None else wrap(k)

        if needs == "moments":
            if not self.loss.is_quadratic:
                raise ValueError("The normal equations apply to the squared loss only.")
            if self.holdout is not None:
                raise ValueError("The normal equations make one pass; early stopping needs "
                                 "an iterative solver.")
            result = self.engine.reduce(moments_chunk, None, "gram")
            self._finish_checks(result)
            self._moments = result["moments"]
            self.start_theta = np.zeros(self.n_params)
            return self
        order = _ORDER[needs]
        if self.loss.is_classification:
            spec = self._spec(None, order, checks=True)
            spec = replace(spec, class_grams=self.class_weight is not None)
            result = self.engine.reduce(kernel(class_stats_chunk), spec, "labels")
            self._keep_column_moments(result)
            self._check_not_empty(result)
            self._set_classes(result)
            if self.holdout is not None:
                labels = result["holdout_labels"]
                self._check_holdout(result, accuracy_sums_at_zero(
                    labels, self.classes, result.get("holdout_offset_labels")))
                self._check_training_classes(result, labels)
            self._apply_class_weights(result, order)
            self._finish_checks(result)
            self._cache_at_zero(result, order)
            self.start_theta = np.zeros(self.n_params)
        else:
            theta0 = np.zeros(self.n_params)
            result = self.engine.reduce(kernel(evaluate_chunk), self._spec(theta0, order, True),
                                        "gradient")
            self._keep_column_moments(result)
            if self.holdout is not None:
                self._check_not_empty(result)
                self._check_holdout(result, result["holdout"] + np.zeros(N_SUMS))
            self._finish_checks(result)
            self._store(theta0, order, result)
            self.start_theta = theta0
            if self.holdout is not None and "y_min" in result:
                # Centre y by its mid-range in later passes: R^2's total sum
                # of squares then does not cancel for a target far from 0.
                self.holdout = replace(self.holdout,
                                       shift=0.5 * (result["y_min"] + result["y_max"]))
        return self

    def _keep_column_moments(self, result):
        if "column_moments" in result:
            self._column_moments = result.pop("column_moments")

    def column_moments(self):
        """Weighted means and scales of the features over the training rows.

        From the first pass when it was asked for them, else one pass.
        """
        if self._column_moments is None:
            spec = self._spec(None, 0)
            result = self.engine.reduce(column_moments_chunk, spec, "column moments")
            self._column_moments = result["column_moments"]
        return self._column_moments

    def _check_holdout(self, result, sums):
        """The split left rows on both sides, and validation weight; keep its score."""
        n, n_val, sw_val = int(result["n"]), int(sums[0]), float(sums[1])
        fraction = self.holdout.fraction
        if n_val == 0 or n_val == n:
            # scikit-learn's words (SGD's _make_validation_split).
            raise DataError(
                f"Splitting {n} samples into a train set and a validation set with "
                f"validation_fraction={fraction!r} led to an empty set ({n - n_val} and "
                f"{n_val} samples). Please either change validation_fraction, increase "
                "number of samples, or disable early_stopping.")
        if not sw_val > 0:
            raise DataError("The sample weights for validation set are all zero, consider "
                            "using a different random state.")
        if not result.get("sw", 0.0) > 0:
            raise DataError("The sample weights for the training set are all zero, consider "
                            "using a different random state.")
        self.holdout_counts = {"train_samples": n - n_val, "validation_samples": n_val,
                               "train_weight": float(result["sw"]),
                               "validation_weight": sw_val}
        self._remember_holdout(np.zeros(self.n_params), sums)

    def _check_training_classes(self, result, labels):
        missing = [lab for lab, (sw, _) in result["class_stats"].items() if not sw > 0]
        if missing:
            counts = {lab: labels[lab][1] for lab in missing}
            raise DataError(
                f"Early stopping held out every row (or all the weight) of class(es) "
                f"{sorted(missing, key=str)} for validation ({counts} validation rows), so "
                "the training set lacks them. Lower validation_fraction, change "
                "random_state, or disable early_stopping.")

    def _check_not_empty(self, result):
        if result.get("n", 0) == 0:
            raise DataError(
                f"Found array with 0 sample(s) (shape=(0, {self.n_features})) while a "
                "minimum of 1 is required."
            )

    def _finish_checks(self, result):
        self._check_not_empty(result)
        n = result["n"]
        sw = result.get("sw", 0.0)
        if not sw > 0:
            raise DataError(
                "The sample weights sum to zero: at least one sample needs a positive "
                "weight."
            )
        if "y_min" in result:
            problem = self.loss.validate_target(result["y_min"], result["y_max"])
            if problem:
                raise DataError(problem)
        self.n_samples = int(n)
        self.sum_weights = float(sw)
        self.penalty = self.penalty_rule(self.sum_weights)

    def _set_classes(self, result):
        classes = checked_classes(result.get("class_stats", {}))
        self.classes = classes
        self.n_outputs = 1 if len(classes) == 2 else len(classes)
        if self.n_outputs > 1 and "offset_stats" in result:
            # The softmax is unchanged by a term added to every class's score.
            raise DataError(
                f"offset= applies to binary logistic regression (and the other GLMs), but y "
                f"has {len(classes)} classes: an offset added to every class's linear "
                "predictor does not change a multinomial model. Fit without offset.")
        # Binary log-loss becomes multinomial beyond two classes (the loss decides).
        self.loss = self.loss.for_classes(len(classes))

    def _apply_class_weights(self, result, order):
        """Set ``class_weights`` and scale the first pass's sums by them, in place.

        Each class's weight and feature sums scale by its weight; the gram
        at zero is the weighted sum of the per-class grams the pass kept
        apart (``class_grams``), so the cached Hessian at zero is exact.
        ``"balanced"`` counts the held-out rows too: it balances the data
        given to ``fit``, as LogisticRegressionCV balances the whole ``y``.
        """
        if self.class_weight is None:
            return
        stats = result["class_stats"]
        held_out = result.get("holdout_labels", {})
        totals = [stats[c][0] + held_out.get(c, (0.0, 0))[0] for c in self.classes.tolist()]
        cw = class_weight_vector(self.class_weight, self.classes, totals)
        self.class_weights = cw
        keys = self.classes.tolist()
        result["class_stats"] = {c: (k * stats[c][0], k * stats[c][1]) for c, k in zip(keys, cw)}
        if "offset_stats" in result:  # every sum of it is weighted by the row's class
            result["offset_stats"] = {c: k * result["offset_stats"][c] for c, k in zip(keys, cw)}
        raw_sw = result["sw"]
        result["sw"] = float(sum(k * stats[c][0] for c, k in zip(keys, cw)))
        if raw_sw > 0 and not result["sw"] > 0:
            raise DataError(
                f"class_weight gives weight 0 to every class that has sample weight "
                f"({dict(zip(keys, cw.tolist()))}): nothing is left to fit. Give at least "
                "one class a positive weight.")
        if order >= 2:
            grams, sws = result.pop("class_grams", {}), result.pop("class_gram_sw", {})
            width = self.n_features + int(self.fit_intercept)
            result["gram"] = sum((k * grams[c] for c, k in zip(keys, cw) if c in grams),
                                 np.zeros((width, width)))
            result["gram_sw"] = float(sum(k * sws[c] for c, k in zip(keys, cw) if c in sws))

    def _cache_at_zero(self, result, order):
        """Loss, gradient and Hessian at theta = 0 from the per-class sums.

        At theta = 0 every raw prediction is 0, so the derivative for a row
        depends only on its class and the Hessian on no label at all.
        """
        stats = result["class_stats"]
        sw = result["sw"]
        p, K, fi = self.n_features, self.n_outputs, self.fit_intercept
        width = p + int(fi)
        theta0 = np.zeros(self.n_params)
        sx_all = sum(stats[c][1] for c in self.classes)
        if "offset_stats" in result:
            self._store(theta0, order, self._binary_at_offset(result, order))
            return
        if K == 1:
            sw_pos, sx_pos = stats[self.classes[1]]
            grad = 0.5 * sx_all - sx_pos
            grad_b = 0.5 * sw - sw_pos
            loss_sum = np.log(2.0) * sw
            g = np.concatenate([grad, [grad_b]]) if fi else grad
        else:
            g = np.zeros((K, width))
            for k, c in enumerate(self.classes):
                swk, sxk = stats[c]
                g[k, :p] = sx_all / K - sxk
                if fi:
                    g[k, p] = sw / K - swk
            g = g.ravel()
            loss_sum = np.log(K) * sw
        out = {"loss": loss_sum, "grad": g, "sw": sw}
        if order >= 2:
            gram = result["gram"] * (sw / result["gram_sw"])
            if K == 1:
                out["hess"] = 0.25 * gram
            else:
                # Softmax Hessian at p = 1/K: (diag(p) - p p^T) kron gram.
                pk = np.full(K, 1.0 / K)
                out["hess"] = np.kron(np.diag(pk) - np.outer(pk, pk), gram)
            out["hess_sw"] = sw
        self._store(theta0, order, out)

    def _binary_at_offset(self, result, order):
        """Binary log-loss, gradient and Hessian at ``theta = 0`` with an offset.

        At zero the margin is the offset ``o``: from the per-label sums of
        ``class_stats_chunk`` (``[sum w o, sum w log(1 + e^o), sum w s, sum
        w s x]``, ``s = expit(o)``), the loss is ``sum w log(1 + e^o) -
        sum_pos w o`` and the gradient ``sum w s [x, 1] - sum_pos w [x,
        1]``; the pass's gram already weighs rows by ``s (1 - s)``.
        """
        offset_stats, stats = result["offset_stats"], result["class_stats"]
        p, fi, sw = self.n_features, self.fit_intercept, result["sw"]
        total = sum(offset_stats[c] for c in self.classes.tolist())
        positive = self.classes.tolist()[1]
        sw_pos, sx_pos = stats[positive]
        zero = np.zeros(3 + p)
        grad = total[3:] - sx_pos
        grad_b = total[2] - sw_pos
        out = {"loss": float(total[1] - offset_stats.get(positive, zero)[0]),
               "grad": np.concatenate([grad, [grad_b]]) if fi else grad, "sw": sw}
        if order >= 2:
            out["hess"] = result["gram"] * (sw / result["gram_sw"])
            out["hess_sw"] = sw
        return out

    # ------------------------------------------------------------- layout
    @property
    def n_params(self):
        return layout.n_params(self.n_features, self.n_outputs, self.fit_intercept)

    @property
    def penalised(self):
        """Boolean mask over theta: True for coefficients, False for intercepts."""
        return penalty_mask(self.n_features, self.n_outputs, self.fit_intercept)

    def hessian_null_basis(self):
        """Orthonormal directions the multinomial objective is flat along.

        Adding the same constant to every class's intercept (or, with no L2
        part, every class's coefficient for one feature) leaves the softmax
        unchanged. ``None`` for single-output losses.
        """
        K = self.n_outputs
        if K == 1:
            return None
        width = self.n_features + int(self.fit_intercept)
        columns = []
        if self.fit_intercept:
            columns.append(width - 1)
        # A feature with no L2 weight (l2 = 0, or P2_j = 0) is flat along it.
        l2 = self.penalty.l2_weights(self.n_features)
        columns.extend(np.flatnonzero(l2 == 0).tolist())
        if not columns:
            return None
        V = np.zeros((K * width, len(columns)))
        for j, col in enumerate(columns):
            V[col::width, j] = 1.0 / np.sqrt(K)
        return V

    def _spec(self, theta, order, checks=False):
        return EvalSpec(
            loss=self.loss,
            theta=None if theta is None else np.asarray(theta, dtype=np.float64),
            n_features=self.n_features,
            n_outputs=self.n_outputs,
            fit_intercept=self.fit_intercept,
            classes=self.classes,
            order=order,
            checks=checks,
            hessian_stride=self.hessian_stride,
            holdout=self.holdout,
            class_weight=self.class_weights,
        )

    # ------------------------------------------------------------ evaluate
    def _store(self, theta, order, result):
        self._cache = {"theta": np.array(theta, copy=True), "order": order, "result": result}

    def _evaluate(self, theta, order):
        theta = np.asarray(theta, dtype=np.float64)
        cached = self._cache
        if cached and cached["order"] >= order and np.array_equal(cached["theta"], theta):
            return cached["result"]
        label = ("loss", "gradient", "hessian")[order]
        result = self.engine.reduce(evaluate_chunk, self._spec(theta, order), label)
        self._store(theta, order, result)
        if self.holdout is not None:
            self._remember_holdout(theta, result["holdout"] + np.zeros(N_SUMS))
        return result

    # --------------------------------------------------------- validation
    def _remember_holdout(self, theta, sums):
        key = np.asarray(theta, dtype=np.float64).tobytes()
        self._holdout_sums[key] = sums
        self._holdout_sums.move_to_end(key)
        while len(self._holdout_sums) > self.HOLDOUT_MEMORY:
            self._holdout_sums.popitem(last=False)

    def validation_score(self, theta):
        """The estimator's score on the held-out rows at ``theta``.

        Free for a point evaluated recently (the statistics came with its
        pass); otherwise it costs one pass.
        """
        if self.holdout is None:
            raise ValueError("This objective holds out no validation rows.")
        key = np.asarray(theta, dtype=np.float64).tobytes()
        if key not in self._holdout_sums:
            result = self.engine.reduce(evaluate_chunk, self._spec(theta, 0), "loss")
            self._remember_holdout(theta, result["holdout"] + np.zeros(N_SUMS))
        return self.holdout.score_value(self._holdout_sums[key])

    def smooth_value(self, theta):
        """Mean loss + smooth (L2) part of the penalty. One pass (or cached)."""
        r = self._evaluate(theta, 0)
        return r["loss"] / self.sum_weights + self.penalty.smooth_value(theta, self.penalised)

    def smooth_value_and_grad(self, theta):
        """Smooth part and its gradient. One pass (or cached)."""
        r = self._evaluate(theta, 1)
        mask = self.penalised
        f = r["loss"] / self.sum_weights + self.penalty.smooth_value(theta, mask)
        g = r["grad"] / self.sum_weights + self.penalty.smooth_gradient(theta, mask)
        return f, g

    def value_and_grad(self, theta):
        """Full objective and gradient (requires a smooth penalty). One pass."""
        self.require_smooth()
        return self.smooth_value_and_grad(theta)

    def value_grad_hess(self, theta):
        """Objective, gradient and Hessian from one pass."""
        self.require_smooth()
        r = self._evaluate(theta, 2)
        mask = self.penalised
        f = r["loss"] / self.sum_weights + self.penalty.smooth_value(theta, mask)
        g = r["grad"] / self.sum_weights + self.penalty.smooth_gradient(theta, mask)
        # A sub-sampled Hessian is scaled by the weight of the rows it saw.
        H = r["hess"] / r["hess_sw"]
        H[np.diag_indices_from(H)] += self.penalty.smooth_hessian_diagonal(mask)
        return f, g, H

    def l1_value(self, theta):
        """The L1 part of the penalty at ``theta`` (no pass)."""
        return self.penalty.l1_value(theta, self.penalised)

    def prox(self, v, step):
        """``prox_{step * L1 part}(v)`` (intercepts untouched)."""
        return self.penalty.prox(v, step, self.penalised)

    def value(self, theta):
        """Full objective, L1 part included."""
        return self.smooth_value(theta) + self.l1_value(theta)

    def require_smooth(self):
        """Raise ``ValueError`` if the penalty has an L1 part (no pass)."""
        if not self.penalty.smooth:
            raise ValueError(
                f"This solver needs a smooth objective but the penalty has an L1 part "
                f"(l1={self.penalty.l1}). Use solver='proximal'."
            )

    # --------------------------------------------------------- least squares
    def moments(self):
        """Centred weighted moments ``(sw, mean_x, mean_y, Sxx, Sxy, Syy)``."""
        if self._moments is None:
            result = self.engine.reduce(moments_chunk, None, "gram")
            self._moments = result["moments"]
        return self._moments

    def qr_factor(self):
        """``(sw, mean, R)`` of the centred weighted ``[X, y]``: one more pass."""
        return self.engine.reduce(qr_chunk, None, "tsqr")["qr"]

    def gram_columns(self, columns):
        """Centred moments of ``X[:, columns]``, as :meth:`moments`: one pass."""
        spec = ColumnSpec(np.asarray(columns))
        return self.engine.reduce(gram_columns_chunk, spec, "gram (working set)")["moments"]

    def cached_gradient(self, theta):
        """Mean-loss gradient at ``theta`` if the last pass computed it there, else ``None``.

        No pass: lets a solver use the first (validating) pass's gradient at
        its starting point for free.
        """
        cached = self._cache
        if not cached or cached["order"] < 1 or not np.array_equal(cached["theta"], theta):
            return None
        return cached["result"]["grad"] / self.sum_weights

    # ------------------------------------------------------------ local SGD
    def local_sgd_pass(self, spec):
        """Local SGD on every row chunk from ``spec.theta``; the merged sums. One pass."""
        return self.engine.reduce(local_sgd_chunk, spec, "averaging")

    def local_sgd_as_completed(self, next_spec):
        """Local SGD chunk tasks, ``(index, spec, result)`` as each completes.

        ``next_spec(index)`` is the chunk's next spec, or ``None`` to retire
        it (see :meth:`daskfit.engine.rows.Engine.map_chunks_as_completed`).
        """
        return self.engine.map_chunks_as_completed(local_sgd_chunk, next_spec, "async-sgd")

    @property
    def n_chunks(self):
        """Row chunks of the data: tasks per pass."""
        return self.engine.data.n_chunks

