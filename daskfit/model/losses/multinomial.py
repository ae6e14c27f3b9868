"""Multinomial log-loss with the symmetric softmax (three or more classes)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from .base import AccuracyScore, Loss

__all__ = ["MultinomialLoss"]


class MultinomialLoss(AccuracyScore, Loss):
    """Multinomial log-loss with the symmetric (over-complete) softmax.

    ``y`` is encoded as integer class codes; ``raw`` has shape
    ``(n, n_classes)``. The Hessian per row is ``diag(p) - p p^T``, whose
    largest eigenvalue is at most 1/2.
    """

    name = "multinomial"
    is_classification = True
    n_outputs = None  # one per class
    curvature_bound = 0.5

    def encode(self, y, classes):
        return np.searchsorted(classes, np.asarray(y))

    def value(self, y, raw):
        return logsumexp(raw, axis=1) - np.take_along_axis(raw, y[:, None], axis=1)[:, 0]

    def derivatives(self, y, raw, *, hessian):
        p = softmax(raw, axis=1)
        grad = p.copy()
        grad[np.arange(len(y)), y] -= 1.0
        # The per-row Hessian is built by the engine from p; return p itself.
        return self.value(y, raw), grad, (p if hessian else None)

    def inverse_link(self, raw):
        return softmax(raw, axis=1)

    def path_terms(self, raw, y):
        """Loss, d/draw, the probabilities and correctness of many models at once.

        ``raw`` is ``(n, M, K)``, ``y`` integer class codes; for the
        cross-validated path's one pass (the Hessian is built there from ``p``).
        """
        rows = np.arange(len(y))
        loss = logsumexp(raw, axis=2) - raw[rows, :, y]
        p = softmax(raw, axis=2)
        g = p.copy()
        g[rows, :, y] -= 1.0
        correct = np.argmax(raw, axis=2) == y[:, None]
        return loss, g, p, correct
