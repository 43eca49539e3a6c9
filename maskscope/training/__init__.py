"""Training the learned explainer (Stalder et al., NeurIPS 2022) against a frozen classifier.

* :mod:`.losses` — the paper's loss and its presets, and the RTIS loss;
* :mod:`.images` — training examples and their pseudo-labels;
* :mod:`.trainer` — the training loop, checkpoints every epoch, resumable;
* :mod:`.log` — the loss terms per epoch as CSV and a plot.

Imported only to train (``maskscope train-explainer``); explaining with a trained checkpoint
needs :mod:`maskscope.methods.explainer` alone. To explain groups of classes (COCO categories
of an ImageNet model), train against a :class:`maskscope.core.model.grouped_classifier.GroupedClassifier`.
"""

from maskscope.training.images import TrainingImages, open_training_images, pseudo_labels
from maskscope.training.losses import PRESETS, ExplainerLoss, ExplainerWeights, RTISLoss, RTISWeights, build_loss
from maskscope.training.trainer import TrainingConfig, TrainingResult, train_explainer

__all__ = [
    "PRESETS",
    "ExplainerLoss",
    "ExplainerWeights",
    "RTISLoss",
    "RTISWeights",
    "TrainingConfig",
    "TrainingImages",
    "TrainingResult",
    "build_loss",
    "open_training_images",
    "pseudo_labels",
    "train_explainer",
]
