"""The engines: where and how a pass over the data runs on Dask.

Internal package (nothing here is public API, except the errors re-exported
by :mod:`daskfit`). ``rows`` is the row engine (persist policy, batches,
``reduction_tree``, the one tree builder, pass counts, typed errors);
``columns`` the column-block engine of model-parallel fits; ``placement``
decides where a call computes; ``streaming`` builds streamed batches and is
the only user of a private Dask API. The engines import the kernels below
them and no estimator, solver, objective, planner, model selection or CLI.
"""
