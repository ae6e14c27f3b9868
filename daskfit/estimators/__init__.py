"""scikit-learn–compatible estimators."""

from ._classification import LogisticRegression
from ._regression import ElasticNet, Lasso, LinearRegression, PoissonRegressor, Ridge

__all__ = ["ElasticNet", "Lasso", "LinearRegression", "LogisticRegression",
           "PoissonRegressor", "Ridge"]
