"""Primitives shared by every method: classifier wrappers, fillers, masks, regularisers,
games, the optimisation and scoring engines, and the ``Explanation`` result."""

from maskscope.core.classifier import Classifier, ModelOutputError, TargetError
from maskscope.core.explanation import Explanation
from maskscope.core.grouped_classifier import GroupedClassifier

__all__ = ["Classifier", "Explanation", "GroupedClassifier", "ModelOutputError", "TargetError"]
