"""Reading tables into models and models onto disk.

- :func:`save` / :func:`load`: a fitted estimator as ``model.json`` plus
  ``arrays.npz``; loading never unpickles and builds only daskfit classes.
- :class:`FrameEncoder`: one-hot encoding and standardisation fitted in one
  pass over a pandas or Dask DataFrame.
- :func:`read_parquet`: one partition per file, a partitioning that stays put.
- :class:`TabularModel`: an encoder and an estimator, saved and loaded as one
  model that predicts from the raw table.
"""

from ._persistence import ModelFormatError, load, save
from ._read import read_parquet
from ._tabular import FrameEncoder, TabularModel

__all__ = ["FrameEncoder", "ModelFormatError", "TabularModel", "load", "read_parquet", "save"]
