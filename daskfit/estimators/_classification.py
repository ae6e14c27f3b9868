"""LogisticRegression: binary and multinomial, scikit-learn's parameters.

scikit-learn minimises ``C sum_i w_i loss_i + r(b)`` with
``r(b) = (1 - l1_ratio) / 2 |b|^2 + l1_ratio |b|_1``; dividing by ``C sum w``
gives daskfit's mean-loss objective with ``l1 = l1_ratio / (C sum w)`` and
``l2 = (1 - l1_ratio) / (C sum w)``. ``C = inf`` means no penalty. With three
or more classes the multinomial (softmax) loss is fitted, as scikit-learn
does; labels are never silently treated as binary.
"""

from __future__ import annotations

from dataclasses import replace

import dask.array as da
from dask.base import tokenize
import numpy as np
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin

from .._data import as_chunked, is_dask_collection
from ..errors import ParameterError
from ..model.penalties import Penalty
from ._base import LinearModelBase, ravel_output, weighted_mean
from ._inference import InferenceMixin
from ._params import FeatureWeights, Real, Satisfies
from ..engine.placement import placed
from ..planner import NO_CLASS_WEIGHT
from ..solvers import SOLVERS

__all__ = ["LogisticRegression"]


#: ``class_weight``'s kind; the details (labels, values) are checked with the data.
CLASS_WEIGHT = Satisfies(lambda v: v is None or isinstance(v, dict) or v == "balanced",
                         "None, 'balanced' or a dict {class label: weight}")


class LogisticRegression(ClassifierMixin, InferenceMixin, LinearModelBase):
    """Logistic regression (binary and multinomial) on Dask data.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, > 0; ``np.inf`` for no penalty.
    l1_ratio : float in [0, 1], default=0.0
        0 is an L2 penalty, 1 an L1 penalty, between them elastic net.
    P1, P2 : array-like of shape (n_features,), default=None
        glum's per-feature weights of the L1 and the L2 part: coefficient
        ``j`` (of every class) is penalised by ``l1_ratio P1[j] / C`` and
        ``(1 - l1_ratio) P2[j] / C`` (on scikit-learn's sum scale); 0 leaves
        it unpenalised. None means all ones. A part the penalty lacks
        (``l1_ratio=0`` has no L1 part) ignores its weights. Vectors only
        (glum's matrix ``P2`` is refused). Not with the ``"averaging"``,
        ``"async-sgd"``, ``"sharded-gd"`` or ``"bcd"`` solvers.
    fit_intercept : bool, default=True
    solver : {"auto", "newton", "lbfgs", "gd", "proximal"}, default="auto"
        ``"auto"`` picks Newton for up to a few hundred parameters, L-BFGS
        beyond, and accelerated proximal gradient when ``l1_ratio > 0``.
    max_iter : int, default=100
    tol : float, default=1e-4
        Max-abs gradient (of the mean-loss objective) at which to stop.
    persist : {"auto", True, False}, default="auto"
    split_every : int, default=8
    solver_options : dict, default=None
        Extra options for the solver (see :class:`~daskfit.LinearRegression`).
    early_stopping : bool, default=False
        Hold out a ``validation_fraction`` of the rows and stop when their
        accuracy has not improved by at least ``tol`` for ``n_iter_no_change``
        consecutive iterations; every class is held out in the same expected
        proportion. See :class:`~daskfit.LinearRegression` for the details.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=5
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split.
    class_weight : dict, "balanced" or None, default=None
        As scikit-learn's: each row's sample weight is multiplied by its
        class's weight (a dict ``{label: weight}``, classes it omits get 1;
        ``"balanced"``: ``n_samples / (n_classes * count)``, counts weighted
        by ``sample_weight``), and the penalty scale uses the multiplied
        weights. ``"balanced"`` comes from the first pass (no extra pass).
        Early stopping scores its held-out rows by ``sample_weight`` alone.
        Not with the ``"averaging"``, ``"async-sgd"``, ``"sharded-gd"`` or
        ``"bcd"`` solvers.
    verbose : int, default=0
        0 prints nothing; 1 prints a line per pass over the data (its label,
        seconds, and the objective and gradient norm of the iteration it
        completed) on stdout, and in a Jupyter notebook also shows a bar
        counting passes; 2 adds a summary of the fit. The lines also go to
        the ``"daskfit.progress"`` logger at INFO. Never changes the result.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,)
    n_features_in_, feature_names_in_, solver_, solver_reason_, fit_result_, n_passes_
        As :class:`~daskfit.LinearRegression`.
    validation_scores_, best_validation_score_, validation_split_
        Accuracy on the held-out rows per iteration, its best value, and the
        split's counts; ``None`` without early stopping.

    Examples
    --------
    >>> import numpy as np
    >>> from daskfit import LogisticRegression
    >>> X = np.array([[0.0], [1], [2], [3], [4], [5]])
    >>> y = np.array(["no", "no", "yes", "no", "yes", "yes"])
    >>> clf = LogisticRegression(C=10.0).fit(X, y)
    >>> clf.classes_
    array(['no', 'yes'], dtype='<U3')
    >>> clf.predict([[0.5], [4.5]])
    array(['no', 'yes'], dtype='<U3')
    """

    _loss_name = "logistic"

    def __init__(self, *, C=1.0, l1_ratio=0.0, fit_intercept=True, solver="auto",
                 max_iter=100, tol=1e-4, persist="auto", split_every=8, solver_options=None,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 random_state=None, class_weight=None, P1=None, P2=None, verbose=0):
        self.C = C
        self.l1_ratio = l1_ratio
        self.P1 = P1
        self.P2 = P2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.persist = persist
        self.split_every = split_every
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.class_weight = class_weight
        self.verbose = verbose

    _parameter_constraints = {**LinearModelBase._parameter_constraints,
                              "C": Real(low=0, low_open=True, allow_inf=True),
                              "l1_ratio": Real(low=0, high=1),
                              "class_weight": CLASS_WEIGHT,
                              "P1": FeatureWeights(), "P2": FeatureWeights()}

    def _check_parameter_combinations(self):
        super()._check_parameter_combinations()
        check_class_weight(self.class_weight, type(self).__name__)
        if self.class_weight is not None and self.solver in NO_CLASS_WEIGHT:
            raise ParameterError(
                f"class_weight={self.class_weight!r} is not supported by "
                f"solver={self.solver!r}: its passes do not weigh rows by class. Use "
                f"solver='auto' or one of {sorted(_class_weight_solvers())}, or "
                "class_weight=None.", parameter="class_weight", value=self.class_weight)

    def _fit_request(self, checkpoint):
        return replace(super()._fit_request(checkpoint), class_weight=self.class_weight)

    def _penalty_rule(self):
        C, ratio, P1, P2 = float(self.C), float(self.l1_ratio), self.P1, self.P2
        if np.isinf(C):
            return lambda sum_weights: Penalty()
        return lambda sum_weights: Penalty(l1=ratio / (C * sum_weights),
                                           l2=(1 - ratio) / (C * sum_weights), P1=P1, P2=P2)

    @placed
    def fit(self, X, y, sample_weight=None, offset=None, *, checkpoint=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels; two classes give the binary model, more the multinomial one.
        sample_weight : array-like of shape (n_samples,), default=None
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            A fixed term added to the binary model's log-odds (coefficient 1),
            as glum's and statsmodels' ``offset``; pass the same kind of offset
            to :meth:`predict`. Refused for more than two classes, where it
            would not change the model.
        checkpoint : str, Path or dict, default=None
            A directory to checkpoint the iterative solvers into (every 10
            iterations; ``{"directory": ..., "every": N}`` to choose). A
            matching checkpoint found there is resumed from; one written for
            other data or parameters is refused. See ``daskfit._checkpoint``.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, classifier=True, checkpoint=checkpoint,
                         offset=offset)

    def _set_fitted(self, outcome):
        self.classes_ = outcome.classes
        super()._set_fitted(outcome)

    def _store_coef(self, coef, intercept):
        self.coef_ = coef
        self.intercept_ = intercept

    def _set_fitted_n_iter(self, n_iter):
        # scikit-learn reports one count per fitted problem: shape (1,).
        self.n_iter_ = np.array([n_iter])

    def decision_function(self, X, offset=None):
        """Raw scores: shape (n_samples,) for two classes, (n_samples, n_classes) beyond.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the binary log-odds, as in :meth:`fit`.

        Returns
        -------
        ndarray or dask Array
        """
        return ravel_output(self._raw_prediction(X, offset))

    def predict_proba(self, X, offset=None):
        """Class probabilities of shape (n_samples, n_classes), columns in ``classes_`` order.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        ndarray or dask Array of shape (n_samples, n_classes)
        """
        raw = self._raw_prediction(X, offset)
        if isinstance(raw, da.Array):
            return raw.map_blocks(_proba, dtype=np.float64,
                                  chunks=(raw.chunks[0], (len(self.classes_),)),
                                  name=f"daskfit-predict-proba-{tokenize(raw)}")
        return _proba(raw)

    def predict_log_proba(self, X, offset=None):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        ndarray or dask Array of shape (n_samples, n_classes)
        """
        proba = self.predict_proba(X, offset)
        return da.log(proba) if isinstance(proba, da.Array) else np.log(proba)

    def predict(self, X, offset=None):
        """Predicted labels from ``classes_``; NumPy in, NumPy out; Dask in, lazy Dask out.

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        ndarray or dask Array of shape (n_samples,)
        """
        raw = self._raw_prediction(X, offset)
        classes = self.classes_
        if isinstance(raw, da.Array):
            return raw.map_blocks(_labels, classes, dtype=classes.dtype, drop_axis=1,
                                  name=f"daskfit-predict-label-{tokenize(raw, classes)}")
        return _labels(raw, classes)

    @placed
    def score(self, X, y, sample_weight=None, offset=None):
        """Mean accuracy, as a float (computed for Dask input).

        Parameters
        ----------
        X : {array-like, DataFrame, dask Array, dask DataFrame} of shape (n_samples, n_features)
        y : array-like or dask collection of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        offset : array-like, dask Array or dask Series of shape (n_samples,), default=None
            Added to the linear predictor, as in :meth:`fit`.

        Returns
        -------
        float
        """
        if not is_dask_collection(X):
            if offset is None:
                return super().score(X, y, sample_weight=sample_weight)
            from sklearn.metrics import accuracy_score

            return float(accuracy_score(y, self.predict(X, offset),
                                        sample_weight=sample_weight))
        data = as_chunked(self, X, y, sample_weight, reset=False, y_numeric=False,
                          offset=offset)
        correct = (self.predict(data.X, data.offset) == data.y).astype(np.float64)
        return weighted_mean(correct, data.sample_weight)


def check_class_weight(class_weight, owner):
    """``class_weight``: None, "balanced" or a dict (scikit-learn's constraint)."""
    ok = (class_weight is None or isinstance(class_weight, dict)
          or (isinstance(class_weight, str) and class_weight == "balanced"))
    if not ok:
        raise ValueError(
            f"The 'class_weight' parameter of {owner} must be an instance of 'dict', a str "
            f"among {{'balanced'}} or None. Got {class_weight!r} instead.")


def _class_weight_solvers():
    return {name for name, info in SOLVERS.items()
            if name not in NO_CLASS_WEIGHT and info.supports("logistic", "l2")}


def _proba(raw):
    if raw.shape[1] == 1:
        p = expit(raw[:, 0])
        return np.column_stack([1 - p, p])
    return softmax(raw, axis=1)


def _labels(raw, classes):
    if raw.shape[1] == 1:
        return classes[(raw[:, 0] > 0).astype(int)]
    return classes[np.argmax(raw, axis=1)]
