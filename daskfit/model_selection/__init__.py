"""Model selection on chunked data: splits, cross-validation, CV estimators.

- :func:`cross_validate` and :func:`train_test_split` accept Dask arrays and
  DataFrames and never move the training data: a scikit-learn splitter runs
  on the client over row numbers, and each fold is cut chunk by chunk where
  the data lives.
- :class:`RidgeCV`, :class:`LassoCV` and :class:`ElasticNetCV` score every
  fold at every alpha, and refit, from ONE pass over the data: the pass
  returns the centred moments of each fold, and training sets, validation
  scores and the final fit follow from them exactly on the client.
- :class:`LogisticRegressionCV` fits the k fold models and the final model
  together along the path of ``C`` values: each pass serves all of them, so
  it costs the passes of one path fit.
"""

from ._cv_estimators import ElasticNetCV, LassoCV, RidgeCV
from ._logistic_cv import LogisticRegressionCV
from ._split import train_test_split
from ._validation import cross_validate

__all__ = ["ElasticNetCV", "LassoCV", "LogisticRegressionCV", "RidgeCV", "cross_validate", "train_test_split"]
