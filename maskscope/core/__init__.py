"""Primitives shared by every method: classifier wrapper, fillers, masks, regularisers,
games, the optimisation and scoring engines, and the ``Explanation`` result."""

from maskscope.core.classifier import Classifier, ModelOutputError, TargetError
from maskscope.core.explanation import Explanation

__all__ = ["Classifier", "Explanation", "ModelOutputError", "TargetError"]
