"""The statistical model, per row: losses, penalties and the parameter layout.

Internal package (nothing here is public API). ``losses`` holds the pointwise
losses (``LOSSES``, one module per loss, each owning its facts), ``layout``
the packing of ``theta`` into coefficients and intercepts, ``penalties`` the penalty and the only soft-thresholding
(``soft_threshold``, ``l1_subgradient``). It imports nothing else of daskfit,
so every layer above may use it.
"""
