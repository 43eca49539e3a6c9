"""Primitives shared by every method, by concern:

* :mod:`.model` — running the classifier (wrappers, inference engines, targets);
* :mod:`.perturbation` — masks, fillers and the perturbed image;
* :mod:`.optimisation` — games, regularisers and the optimisation loop;
* :mod:`.scoring` — scoring perturbed images in batches;
* :mod:`.explanation` — the ``Explanation`` result, with :mod:`.atomic` writes and :mod:`.progress` reporting.
"""

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import Classifier, ModelOutputError, TargetError
from maskscope.core.model.grouped_classifier import GroupedClassifier

__all__ = ["Classifier", "Explanation", "GroupedClassifier", "ModelOutputError", "TargetError"]
