"""Per-chunk numerics: what runs on a worker for one block of rows.

Internal package (nothing here is public API). ``chunks`` holds the per-chunk
kernels and the one table of merge rules (``combine``, ``merge_rule``) for
both engines, plus the chunk checks; ``alignment`` realigns misaligned chunks
into row blocks; ``sgd`` is the local-SGD kernel of parameter averaging;
``holdout`` scores early stopping's validation rows. The kernels import only
:mod:`daskfit.model`: no engine, solver or estimator.
"""
