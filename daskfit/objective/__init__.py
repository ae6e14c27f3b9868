"""The objective every solver minimises: loss + penalty over the data.

``contract`` lists what a solver may use of an objective (``SolverObjective``);
``rows`` evaluates it through the row engine (one pass per evaluation).
"""

from .contract import SolverObjective
from .rows import Objective, checked_classes, penalty_mask

__all__ = ["Objective", "SolverObjective", "checked_classes", "penalty_mask"]
