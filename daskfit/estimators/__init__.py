"""scikit-learn–compatible estimators."""

from ._classification import LogisticRegression
from ._regression import (ElasticNet, GammaRegressor, Lasso, LinearRegression, PoissonRegressor,
                          Ridge, TweedieRegressor)

__all__ = ["ElasticNet", "GammaRegressor", "Lasso", "LinearRegression", "LogisticRegression",
           "PoissonRegressor", "Ridge", "TweedieRegressor"]
