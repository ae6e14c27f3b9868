"""The objective every solver minimises: loss + penalty over the data.

``rows`` evaluates it through the row engine (one pass per evaluation).
"""

from .rows import Objective, checked_classes, penalty_mask

__all__ = ["Objective", "checked_classes", "penalty_mask"]
