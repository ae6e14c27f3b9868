"""Pointwise losses on ``(y, raw_prediction)``, one module per loss.

``base`` holds the contract (:class:`~daskfit.model.losses.base.Loss`: the
derivatives and every other fact the layers above ask a loss about) and the
shared held-out scores. A new loss is one module here plus its line in
:data:`LOSSES`; estimators, solvers, kernels and engines ask the loss object,
never its name.
"""

from __future__ import annotations

from .base import Loss
from .gamma import GammaLoss
from .logistic import LogisticLoss
from .multinomial import MultinomialLoss
from .poisson import PoissonLoss
from .squared import SquaredLoss
from .tweedie import TweedieLoss

__all__ = ["LOSSES", "Loss", "SquaredLoss", "LogisticLoss", "MultinomialLoss", "PoissonLoss",
           "GammaLoss", "TweedieLoss", "register"]

#: The registered losses by name. A parametrised loss (Tweedie's power and
#: link) is registered with its defaults: the registry answers the facts that
#: hold for every parameter (solvers, model parallelism); an estimator builds
#: the instance it fits (``_make_loss``).
LOSSES = {}


def register(loss):
    """Add ``loss`` (an instance of a :class:`Loss` subclass) to :data:`LOSSES`.

    Returns the loss, so a module can write ``register(MyLoss())``.
    """
    if not isinstance(loss, Loss) or not isinstance(loss.name, str):
        raise TypeError(f"register() takes a named Loss instance, got {loss!r}.")
    LOSSES[loss.name] = loss
    return loss


for _loss in (SquaredLoss(), LogisticLoss(), MultinomialLoss(), PoissonLoss(), GammaLoss(),
              TweedieLoss()):
    register(_loss)
del _loss
