"""Statistical inference for fitted GLMs: covariance, standard errors, tests, a summary.

The estimators get :class:`InferenceMixin`: ``summary(X, y, sample_weight)``
returns a coefficient table (a pandas DataFrame like glum's ``coef_table``),
``covariance(X, y, sample_weight)`` the covariance matrix of the
coefficients, and ``inference_`` (an :class:`Inference`) holds the rest:
deviance, null deviance, log-likelihood, AIC, BIC, dispersion, degrees of
freedom.

Why the data is passed again: a scikit-learn estimator holds no data (it is
cloned, pickled and shipped to workers), and the statistics need one pass
over the training rows at the fitted coefficients. So, as glum's
``coef_table(X, y)``, the first call takes the training data and runs that
one pass (:func:`daskfit.kernels.inference.inference_chunk`), which computes
everything at once -- the information matrix, the HC0 meat, deviances,
Pearson chi2 -- and stores the small result (``p x p`` matrices, a few
numbers) in ``inference_``. Later calls with the same data and
coefficients, or with no data at all, read ``inference_``: no pass, whatever
``cov_type`` or ``alpha`` they ask for. A refit (new coefficients) or other
data runs the pass again. A normal-equations fit (least squares, ridge)
keeps statistics from its own pass over the data (the exact Gram matrix and
sums of squares), so ``summary()`` without data costs no pass at all for the
model-based covariance; HC0 still needs the data (one pass).

Penalised fits (``Ridge``, ``LogisticRegression(C<inf)``,
``PoissonRegressor(alpha>0)``): with the information ``H`` and the penalty's
Hessian ``P`` (``alpha`` on scikit-learn's sum-of-losses scale; never on the
intercept), the covariance is the sandwich ``phi (H + P)^-1 H (H + P)^-1``
(``(H + P)^-1 M (H + P)^-1`` for HC0): the exact covariance of the ridge
estimator of least squares given ``X``, its delta-method approximation for
a GLM. It equals statsmodels' and glum's ``phi H^-1`` when ``P = 0``. It is
the frequentist spread of a biased estimator: intervals are centred on the
shrunk coefficients and cover the shrunk target, not the unpenalised one.
An L1 (or elastic-net) penalty is refused: the estimator is not
differentiable where coefficients are zero.

Non-canonical links (Gamma and Tweedie with the log link): the model-based
covariance uses the expected information, the HC0 sandwich the observed
one as its bread, both as statsmodels' GLM; the dispersion of least
squares, Gamma and Tweedie is Pearson's chi2 / df_resid (statsmodels'
default ``scale="X2"``). Every model fact comes from the loss object
(``daskfit.model.losses``, the inference rows of its contract).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from dask.base import tokenize
from scipy import stats
from sklearn.utils.validation import check_is_fitted

from .._data import as_chunked
from ..engine.placement import placed
from ..engine.rows import Engine
from ..kernels.inference import InferenceSpec, inference_chunk

__all__ = ["Inference", "InferenceMixin", "COV_TYPES", "inference_record"]

#: Most coefficients inference is computed for: each task of the pass holds
#: two k x k float64 matrices (400 MB at 5,000), as a Newton Hessian does;
#: three for a non-canonical link (the observed information too).
INFERENCE_MAX_PARAMS = 5000

#: Most coefficients for which a normal-equations fit keeps its statistics
#: (``inference_``, a k x k matrix: 8 MB at 1,000) in the fitted estimator;
#: beyond, ``summary`` takes the data and makes its one pass.
FIT_STATISTICS_MAX_PARAMS = 1000

#: ``"nonrobust"``: model-based, ``phi (H + P)^-1 H (H + P)^-1``;
#: ``"HC0"``: White's sandwich ``(H + P)^-1 (sum_i s_i s_i') (H + P)^-1``.
COV_TYPES = ("nonrobust", "HC0")


@dataclass
class Inference:
    """The statistics of one pass over the training data at the fitted coefficients.

    Coefficient order is daskfit's: the features, then the intercept (when
    fitted); :meth:`InferenceMixin.summary` puts the intercept first.

    Attributes
    ----------
    fisher : ndarray (k, k)
        ``sum w_i W_i x_i x_i'``, the (expected) information matrix times the
        dispersion: the model-based covariance's.
    meat : ndarray (k, k) or None
        ``sum w_i r_i^2 x_i x_i'`` (the HC0 middle, the dispersion not divided
        out); None for statistics taken from a normal-equations fit.
    penalty : ndarray (k,)
        Diagonal of the L2 penalty's Hessian on the sum-of-losses scale (0 unpenalised).
    family : str
        The name of the fitted loss (``"squared"``, ``"logistic"``,
        ``"poisson"``, ``"gamma"``, ``"tweedie"``).
    nobs : float
        ``sum(sample_weight)`` (the number of rows without weights): weights are
        frequency weights, as statsmodels' ``freq_weights``.
    df_model, df_resid : float
        ``k - fit_intercept`` and ``nobs - k``, as statsmodels.
    deviance, null_deviance, pearson_chi2 : float
        The null model is the constant (the weighted mean of ``y``), also for a
        fit without intercept, as statsmodels' ``null_deviance`` (R's ``glm``
        uses a zero linear predictor there).
    dispersion : float
        ``pearson_chi2 / df_resid`` for least squares, Gamma and Tweedie
        (statsmodels' ``scale``, its default ``scale="X2"``), 1 for binomial
        and Poisson.
    llf : float or None
        Log-likelihood; the Gaussian one at the dispersion's MLE
        ``deviance / nobs`` (statsmodels' OLS ``llf``), Gamma's at
        ``dispersion`` (statsmodels' GLM ``llf``). None where it would need a
        second pass or is undefined: Tweedie with a power other than 1 or 2
        (see ``TweedieLoss.log_likelihood``).
    aic, bic : float or None
        ``-2 llf + 2 k`` and ``-2 llf + k log(nobs)``, ``k`` the coefficients
        counted with the intercept (statsmodels' OLS ``aic``/``bic``, GLM
        ``aic``/``bic_llf``; the scale is not counted).
    t_test : bool
        Model-based statistics follow Student's t with ``df_resid`` (Gaussian)
        rather than the normal law (HC0 statistics always use the normal law).
    key : str
        Token of the data and coefficients the statistics belong to.
    passes : int
        Passes over the data the statistics cost: 1, or 0 when they come
        from the moments of a normal-equations fit.
    observed : ndarray (k, k) or None
        The observed information matrix (times the dispersion), the HC0
        sandwich's bread as statsmodels'; None where it equals ``fisher``
        (canonical links: least squares, logistic, Poisson).
    """

    fisher: np.ndarray
    meat: np.ndarray
    penalty: np.ndarray
    family: str
    nobs: float
    df_model: float
    df_resid: float
    deviance: float
    null_deviance: float
    pearson_chi2: float
    dispersion: float
    llf: float | None
    aic: float | None
    bic: float | None
    t_test: bool
    key: str
    passes: int = 1
    observed: np.ndarray | None = None

    def covariance(self, cov_type="nonrobust"):
        """Covariance of the coefficients (daskfit order: intercept last)."""
        _check_cov_type(cov_type)
        if cov_type == "HC0" and self.meat is None:
            raise ValueError(
                "cov_type='HC0' needs the per-row scores, which the normal equations of the "
                "fit do not hold: pass the training data, summary(X, y, sample_weight, "
                "cov_type='HC0') (one pass).")
        if cov_type == "HC0" and self.observed is not None:
            # The sandwich's bread is the observed Hessian of the objective.
            bread = _inverse(self.observed + np.diag(self.penalty))
            return _symmetrised(bread @ self.meat @ bread)
        inv = _inverse(self.fisher + np.diag(self.penalty))
        if cov_type == "HC0":
            middle = self.meat
        elif self.penalty.any():
            middle = self.dispersion * self.fisher
        else:  # phi H^-1, without the round-off of H^-1 H H^-1
            return _symmetrised(self.dispersion * inv)
        return _symmetrised(inv @ middle @ inv)

    def table(self, theta, names, cov_type="nonrobust", alpha=0.05):
        """The coefficient table for coefficients ``theta`` labelled ``names`` (same order)."""
        if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
            raise ValueError(f"alpha must be a float in (0, 1), e.g. 0.05 for 95% intervals; "
                             f"got {alpha!r}.")
        se = np.sqrt(np.diag(self.covariance(cov_type)))
        with np.errstate(divide="ignore", invalid="ignore"):  # a perfect fit: se = 0
            stat = theta / se
        # Student's t is exact for the Gaussian model-based covariance only; the
        # sandwich is asymptotic, so it is tested on the normal law (statsmodels'
        # OLS does the same: use_t defaults to False with a robust cov_type).
        t_test = self.t_test and cov_type == "nonrobust"
        law = stats.t(self.df_resid) if t_test else stats.norm()
        quantile = law.ppf(1 - alpha / 2)
        return pd.DataFrame({
            "coef": theta, "std_err": se, "t" if t_test else "z": stat,
            "p_value": 2 * law.sf(np.abs(stat)),
            "ci_lower": theta - quantile * se, "ci_upper": theta + quantile * se,
        }, index=pd.Index(names))


class InferenceMixin:
    """``summary``, ``covariance`` and ``inference_`` for a fitted single-output GLM.

    Costs one pass over the data on the first call, none on the next ones
    (see the module doc of ``daskfit.estimators._inference``).
    """

    @placed
    def summary(self, X=None, y=None, sample_weight=None, offset=None, *, cov_type="nonrobust",
                alpha=0.05):
        """Coefficient table: estimates, standard errors, tests and confidence intervals.

        Parameters
        ----------
        X, y, sample_weight : training data, optional
            The data the model was fitted on (any input ``fit`` takes). The
            first call needs it and makes one pass over it; later calls may
            omit it (or pass the same data: no pass either).
        offset : array-like or Dask collection of shape (n_samples,), default=None
            The offset given to ``fit`` (the statistics are at the fitted
            linear predictor, offset included). With an offset the null
            deviance is that of the intercept-only model with the offset (as
            statsmodels'), in closed form for least squares and Poisson; NaN
            for the logit, where that model needs a fit of its own.
        cov_type : {"nonrobust", "HC0"}, default="nonrobust"
            Model-based covariance, or White's heteroscedasticity-robust
            sandwich (statsmodels' ``cov_type="HC0"``).
        alpha : float, default=0.05
            ``1 - alpha`` confidence intervals.

        Returns
        -------
        DataFrame
            Index: ``"intercept"`` (when fitted), then ``feature_names_in_``
            (or ``x0, x1, ...``). Columns ``coef``, ``std_err``, ``t`` (least
            squares with ``cov_type="nonrobust"``: Student's t with
            ``df_resid`` degrees of freedom, as statsmodels' OLS) or ``z``
            (binomial, Poisson, Gamma, Tweedie, and any HC0 table, as
            statsmodels' GLM), ``p_value``
            (two-sided), ``ci_lower``, ``ci_upper``.

        Raises
        ------
        ValueError
            For an L1 or elastic-net penalised fit, a multinomial model, a
            loss that states no inference facts, or when no data was given
            and none was seen before.
        NotFittedError
            Before ``fit``.

        Examples
        --------
        >>> import numpy as np
        >>> from daskfit import LinearRegression
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(100, 2))
        >>> y = X @ [1.0, 0.0] + 2 + rng.normal(size=100)
        >>> reg = LinearRegression().fit(X, y)
        >>> reg.summary(X, y)[["coef", "std_err", "p_value"]].round(3)
                    coef  std_err  p_value
        intercept  1.837    0.113    0.000
        x0         0.892    0.116    0.000
        x1         0.175    0.119    0.147
        >>> reg.inference_.passes, reg.summary(cov_type="HC0").shape
        (1, (3, 6))
        """
        stats_ = self._inference(X, y, sample_weight, offset)
        theta, names = self._theta_and_names()
        table = stats_.table(theta, names, cov_type=cov_type, alpha=alpha)
        return table.iloc[self._summary_order()]

    @placed
    def covariance(self, X=None, y=None, sample_weight=None, offset=None, *,
                   cov_type="nonrobust"):
        """Covariance matrix of the coefficients, labelled as :meth:`summary`'s rows.

        Costs as :meth:`summary`: one pass on the first call, none after.

        Parameters
        ----------
        X, y, sample_weight : training data, optional
            As :meth:`summary`: needed by the first call only.
        offset : array-like or Dask collection of shape (n_samples,), default=None
            The offset given to ``fit``.
        cov_type : {"nonrobust", "HC0"}, default="nonrobust"
            Model-based covariance, or White's heteroscedasticity-robust sandwich.

        Returns
        -------
        DataFrame of shape (k, k)
        """
        stats_ = self._inference(X, y, sample_weight, offset)
        _, names = self._theta_and_names()
        order = self._summary_order()
        cov = stats_.covariance(cov_type)[np.ix_(order, order)]
        labels = pd.Index([names[i] for i in order])
        return pd.DataFrame(cov, index=labels, columns=labels)

    # ----------------------------------------------------------- internals
    def _set_fitted(self, outcome):
        super()._set_fitted(outcome)
        self._keep_normal_equations(outcome.moments)

    def _keep_normal_equations(self, moments):
        """Statistics from the fit's own Gram matrix, when it made one: no extra pass.

        The normal-equations solver's single pass holds the exact centred
        moments of ``[X, y]``; from them follow ``X'WX``, the residual sum of
        squares and the null deviance, so ``summary()`` (model-based
        covariance) needs no data. Only least squares without early stopping.
        """
        if "inference_" in vars(self):
            del self.inference_  # statistics of earlier coefficients
        loss = self._make_loss()
        # Moments determine the statistics of a quadratic loss (least squares) only.
        if (moments is None or not loss.is_quadratic or loss.dispersion is None
                or moments[1].size + int(self.fit_intercept) > FIT_STATISTICS_MAX_PARAMS
                or moments[0] <= moments[1].size + int(self.fit_intercept)  # no df_resid
                or self._penalty_rule()(1.0).kind not in ("none", "l2")):
            return
        theta, _ = self._theta_and_names()
        self.inference_ = _statistics(
            _sums_from_moments(moments, theta, self.fit_intercept), loss,
            self._penalty_rule(), self.fit_intercept, theta.size,
            key=f"{tokenize(theta)}:fit", passes=0)

    def _theta_and_names(self):
        coef = np.ravel(self.coef_)
        names = getattr(self, "feature_names_in_", None)
        names = [str(n) for n in names] if names is not None else \
            [f"x{i}" for i in range(coef.size)]
        if self.fit_intercept:
            return np.append(coef, np.ravel(self.intercept_)[0]), names + ["intercept"]
        return coef, names

    def _summary_order(self):
        p = np.ravel(self.coef_).size
        return ([p] if self.fit_intercept else []) + list(range(p))

    def _inference(self, X, y, sample_weight, offset=None):
        check_is_fitted(self)
        loss = self._inference_loss()
        theta, _ = self._theta_and_names()
        cached = getattr(self, "inference_", None)
        if X is None:
            if y is not None or sample_weight is not None or offset is not None:
                raise ValueError("y or sample_weight was given without X: pass the training "
                                 "data X, y (and sample_weight) together.")
            if cached is None or cached.key.split(":")[0] != tokenize(theta):
                raise ValueError(
                    f"{type(self).__name__} has no inference statistics for its current "
                    "coefficients yet: pass the training data once, e.g. "
                    "summary(X, y, sample_weight), which makes one pass over it.")
            return cached
        key = f"{tokenize(theta)}:{tokenize(X, y, sample_weight, offset)}"
        if cached is not None and cached.key == key:
            return cached
        self.inference_ = self._inference_pass(X, y, sample_weight, loss, theta, key, offset)
        return self.inference_

    def _inference_loss(self):
        """The fitted loss, once the fit is one inference is defined for (else why not)."""
        if "cv" in self.get_params(deep=False):
            raise ValueError(
                f"{type(self).__name__} chose its penalty by cross-validation, and the usual "
                "standard errors do not account for that choice. Refit the chosen model "
                "(e.g. Ridge(alpha=est.alpha_) or LogisticRegression(C=est.C_)) and call "
                "summary on it.")
        loss = self._make_loss()
        k = np.ravel(self.coef_).size + int(self.fit_intercept)
        if k > INFERENCE_MAX_PARAMS:
            matrices = 2 if loss.canonical_link else 3
            raise ValueError(
                f"Inference for {k} coefficients needs their {k} x {k} covariance matrix "
                f"({matrices * 8 * k * k / 2**30:.1f} GiB per task for the information "
                f"matrices and the HC0 middle); the limit is {INFERENCE_MAX_PARAMS}. Select "
                "features first, or fit the coefficients you want to test on their own.")
        if getattr(self, "classes_", None) is not None and len(self.classes_) > 2:
            raise ValueError(
                f"Inference is implemented for binary logistic regression only; this model "
                f"has {len(self.classes_)} classes (the symmetric multinomial model's "
                "information matrix is singular without a penalty). Fit one binary model "
                "per class to get standard errors.")
        if loss.dispersion is None:
            raise ValueError(
                f"{type(self).__name__} has no statistical inference: its loss "
                f"({loss!r}) states no variance function, deviance or dispersion rule "
                "(the inference facts of daskfit.model.losses.base.Loss). Fit a model "
                "whose loss has them (least squares, logistic, Poisson, Gamma, Tweedie).")
        kind = self._penalty_rule()(1.0).kind
        if kind in ("l1", "elasticnet"):
            raise ValueError(
                f"Standard errors are not defined for an {kind}-penalised fit: the L1 part "
                "makes the estimator non-differentiable where coefficients are zero (and "
                "selection invalidates the usual tests). Refit without an L1 part "
                "(LinearRegression, Ridge, l1_ratio=0) to get standard errors.")
        fit_result = getattr(self, "fit_result_", None)
        if fit_result is not None and not fit_result.converged:
            warnings.warn(
                f"{type(self).__name__} did not converge: standard errors assume the "
                "coefficients are at the optimum. Refit with a larger max_iter.",
                UserWarning, stacklevel=4)
        return loss

    def _inference_pass(self, X, y, sample_weight, loss, theta, key, offset=None):
        if y is None:
            raise ValueError(f"{type(self).__name__}.summary needs the target y with X.")
        classifier = getattr(self, "classes_", None) is not None
        data = as_chunked(self, X, y, sample_weight, reset=False, y_numeric=not classifier,
                          offset=offset).for_engine()
        if data.X.numblocks[1] > 1:
            data.X = data.X.rechunk({1: -1})  # whole rows per task, fused into the pass
        engine = Engine(data, split_every=self.split_every, persist=self.persist)
        engine.prepare(expected_passes=1)  # one pass: streamed unless persist=True
        spec = InferenceSpec(loss=loss, theta=np.asarray(theta, dtype=np.float64),
                             n_features=data.n_features, fit_intercept=self.fit_intercept,
                             classes=getattr(self, "classes_", None))
        try:
            sums = engine.reduce(inference_chunk, spec, "inference")
        finally:
            engine.release()
        return _statistics(sums, loss, self._penalty_rule(), self.fit_intercept, theta.size,
                           key, engine.passes)


def _statistics(sums, loss, penalty_rule, fit_intercept, k, key, passes):
    """The client-side arithmetic of the inference pass: no data, a few small matrices."""
    if sums.get("ymoments") is None:
        raise ValueError("The data passed for inference has no rows of positive weight.")
    sw, ybar, m2 = sums["ymoments"]
    if sw <= k:
        raise ValueError(f"Inference needs more observations than coefficients: the data has "
                         f"a total weight of {sw:g} for {k} coefficients.")
    penalty = penalty_rule(sw)
    mask = np.ones(k, dtype=bool)
    if fit_intercept:
        mask[-1] = False
    # Mean-loss strength l2 -> sum-of-losses scale: the objective times sum(w).
    pen = np.where(mask, penalty.l2 * sw, 0.0)
    df_resid = sw - k
    deviance, pearson = float(sums["inf_deviance"]), float(sums["inf_pearson"])
    ysums = np.asarray(sums.get("inf_ysums", np.zeros(0)))
    dispersion = pearson / df_resid if loss.dispersion == "pearson" else 1.0
    llf = loss.log_likelihood(deviance, sw, ybar, ysums, dispersion)
    null_deviance = (loss.null_deviance_of_mean(sw, ybar, m2, ysums) if "inf_offset" not in sums
                     else loss.null_deviance_with_offset(sw, ybar, m2, ysums, sums["inf_offset"]))
    aic = None if llf is None else -2 * llf + 2 * k
    bic = None if llf is None else -2 * llf + k * np.log(sw)
    return Inference(
        fisher=sums["inf_fisher"], meat=sums["inf_meat"], penalty=pen, family=loss.name,
        nobs=float(sw), df_model=float(k - int(fit_intercept)), df_resid=float(df_resid),
        deviance=deviance, null_deviance=float(null_deviance),
        pearson_chi2=pearson, dispersion=float(dispersion),
        llf=None if llf is None else float(llf), aic=aic, bic=bic,
        t_test=loss.t_statistics, key=key, passes=passes, observed=sums.get("inf_observed"))


def _sums_from_moments(moments, theta, fit_intercept):
    """The inference pass's sums for least squares, from centred weighted moments of ``[X, y]``."""
    sw, mx, my, Sxx, Sxy, Syy = moments
    p = mx.size
    b, c = theta[:p], (theta[p] if fit_intercept else 0.0)
    gram = Sxx + sw * np.outer(mx, mx)
    if fit_intercept:
        fisher = np.empty((p + 1, p + 1))
        fisher[:p, :p], fisher[:p, p], fisher[p, :p], fisher[p, p] = gram, sw * mx, sw * mx, sw
    else:
        fisher = gram
    # sum w (y - Xb - c)^2, split into its centred part and the mean residual's.
    rss = float(Syy - 2 * b @ Sxy + b @ Sxx @ b + sw * (my - mx @ b - c) ** 2)
    rss = max(rss, 0.0)  # a perfect fit can round to a tiny negative sum
    return {"inf_fisher": fisher, "inf_meat": None, "inf_deviance": rss, "inf_pearson": rss,
            "inf_ysums": np.zeros(0), "ymoments": (sw, my, Syy)}


def _check_cov_type(cov_type):
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {list(COV_TYPES)}; got {cov_type!r}.")


def _inverse(A):
    """``A^-1`` of the symmetric positive definite ``A``; a clear error when singular."""
    try:
        factor = scipy.linalg.cho_factor(A, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError(
            "The information matrix X'WX is singular: some features are collinear (or "
            "constant alongside the intercept), so their coefficients have no standard "
            "error. Drop the redundant features, or add an L2 penalty.") from None
    return scipy.linalg.cho_solve(factor, np.eye(A.shape[0]), check_finite=False)


def _symmetrised(C):
    return (C + C.T) / 2


def inference_record(estimator, X, y, sample_weight=None, names=None, offset=None):
    """The ``inference`` section of the CLI's ``metrics.json``: the table and fit statistics.

    One pass over ``X`` (see :meth:`InferenceMixin.summary`). A model without
    inference (an L1 penalty, the multinomial model, a singular design) gives
    ``{"skipped": why}`` instead of failing the run.

    Parameters
    ----------
    estimator : fitted daskfit estimator
    X, y, sample_weight : the training data
    names : sequence of str, optional
        Feature names for the rows (the encoded columns), in ``X``'s column order.
    """
    if not isinstance(estimator, InferenceMixin):
        return {"skipped": f"{type(estimator).__name__} has no statistical inference"}
    try:
        table = estimator.summary(X, y, sample_weight, offset)
    except ValueError as exc:  # the refusals of _inference_loss and _inverse: say why
        return {"skipped": str(exc)}
    if names is not None:
        given = dict(zip((f"x{i}" for i in range(len(names))), map(str, names)))
        table = table.rename(index=given)
    stats_ = estimator.inference_
    return {
        "cov_type": "nonrobust", "alpha": 0.05, "passes": stats_.passes,
        "table": {row: {col: _json_float(v) for col, v in values.items()}
                  for row, values in table.to_dict(orient="index").items()},
        **{name: _json_float(getattr(stats_, name))
           for name in ("nobs", "df_model", "df_resid", "deviance", "null_deviance",
                        "pearson_chi2", "dispersion", "llf", "aic", "bic")},
    }


def _json_float(value):
    """A float for strict JSON: None for a missing or non-finite value (a perfect fit's llf)."""
    return None if value is None or not np.isfinite(value) else float(value)
