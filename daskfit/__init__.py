"""daskfit: linear models on data larger than one process, with Dask.

Estimators mirror scikit-learn's (same names, parameters and fitted
attributes); each fit maps one fused kernel over the row chunks of a Dask
array and tree-reduces the partial sums on the current Dask cluster.
"""

from ._cluster import connect
from . import errors
from .errors import (ClusterUnreachable, DaskfitError, DataError, ParameterError,
                     SchedulerUnresponsive)
from .engine.rows import WorkerCrashError
from .planner import Plan, plan
from .estimators import (
    ElasticNet,
    GammaRegressor,
    Lasso,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    TweedieRegressor,
)
from . import model_selection
from . import overfitting
from .model_selection import ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV
from .solvers import FitResult
from . import io
from .io import load, save

__all__ = [
    "ClusterUnreachable",
    "DaskfitError",
    "DataError",
    "ElasticNet",
    "ElasticNetCV",
    "FitResult",
    "GammaRegressor",
    "Plan",
    "Lasso",
    "LassoCV",
    "LinearRegression",
    "LogisticRegression",
    "LogisticRegressionCV",
    "ParameterError",
    "PoissonRegressor",
    "Ridge",
    "RidgeCV",
    "SchedulerUnresponsive",
    "TweedieRegressor",
    "WorkerCrashError",
    "connect",
    "errors",
    "io",
    "load",
    "model_selection",
    "overfitting",
    "plan",
    "save",
]

__version__ = "0.1.0"
