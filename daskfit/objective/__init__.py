"""The objective every solver minimises: loss + penalty over the data.

``contract`` lists what a solver may use of an objective (``SolverObjective``
for row chunks, ``ColumnSolverObjective`` for column blocks); ``rows``
evaluates it through the row engine (one pass per evaluation), ``columns``
through the column engine for the model-parallel solvers.
"""

from .columns import ColumnObjective
from .contract import ColumnSolverObjective, SolverObjective
from .rows import Objective, checked_classes, penalty_mask

__all__ = ["ColumnObjective", "ColumnSolverObjective", "Objective", "SolverObjective",
           "checked_classes", "penalty_mask"]
