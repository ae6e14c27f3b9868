"""The packed parameter vector ``theta`` and its pieces: the one place that packs it.

``theta`` holds ``K`` blocks, one per output (``K`` is 1 except for the
multinomial loss, one per class), each block the ``p`` coefficients followed
by the intercept when there is one::

    theta = [coef[0, :], intercept[0], coef[1, :], intercept[1], ...]

Examples
--------
>>> import numpy as np
>>> theta = np.arange(6.0)
>>> coef, intercept = unpack(theta, n_features=2, n_outputs=2, fit_intercept=True)
>>> coef
array([[0., 1.],
       [3., 4.]])
>>> intercept
array([2., 5.])
>>> pack(coef, intercept, fit_intercept=True)
array([0., 1., 2., 3., 4., 5.])
"""

from __future__ import annotations

import numpy as np

__all__ = ["width", "n_params", "blocks", "unpack", "pack", "penalised"]


def width(n_features, fit_intercept):
    """Entries of ``theta`` per output: the coefficients, then the intercept."""
    return n_features + int(fit_intercept)


def n_params(n_features, n_outputs, fit_intercept):
    """Length of ``theta``."""
    return n_outputs * width(n_features, fit_intercept)


def blocks(theta, n_features, n_outputs, fit_intercept):
    """``theta`` as a ``(K, width)`` float64 view, one row per output, intercept last."""
    return np.asarray(theta, dtype=np.float64).reshape(n_outputs,
                                                       width(n_features, fit_intercept))


def unpack(theta, n_features, n_outputs, fit_intercept):
    """``theta`` -> ``(coef of shape (K, p), intercept of shape (K,))``, both copies.

    Without an intercept the intercepts are zeros.
    """
    block = blocks(theta, n_features, n_outputs, fit_intercept)
    coef = block[:, :n_features].copy()
    intercept = block[:, n_features].copy() if fit_intercept else np.zeros(n_outputs)
    return coef, intercept


def pack(coef, intercept, fit_intercept):
    """``(coef (K, p) or (p,), intercept (K,) or scalar)`` -> flat ``theta``."""
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    if not fit_intercept:
        return coef.ravel()
    intercept = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (len(coef),))
    return np.column_stack([coef, intercept]).ravel()


def penalised(n_features, n_outputs, fit_intercept):
    """Boolean mask over ``theta``: True for coefficients, False for intercepts."""
    mask = np.ones((n_outputs, width(n_features, fit_intercept)), dtype=bool)
    if fit_intercept:
        mask[:, -1] = False
    return mask.ravel()
