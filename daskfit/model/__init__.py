"""The statistical model, per row: losses and penalties.

Internal package (nothing here is public API). ``losses`` holds the pointwise
losses (``LOSSES``), ``penalties`` the penalty and the only soft-thresholding
(``soft_threshold``, ``l1_subgradient``). It imports nothing else of daskfit,
so every layer above may use it.
"""
