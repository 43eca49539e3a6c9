"""The learned explainer (Stalder et al., NeurIPS 2022): a network trained against a frozen
classifier that predicts every class mask of an image in one forward pass.

* :mod:`.networks` — the explainer networks (a light U-Net, DeepLabV3-ResNet50, an encoder
  from the classifier's own features);
* :mod:`.losses` — the paper's loss and its presets, and the RTIS loss;
* :mod:`.training_data`, :mod:`.training` — examples, pseudo-labels, the trainer;
* :mod:`.checkpoint`, :mod:`.classifier_record` — checkpoints and the classifier they belong to;
* :mod:`.method` — the ``explainer`` method.

To explain groups of classes (COCO categories of an ImageNet model), train against a
:class:`maskscope.core.grouped_classifier.GroupedClassifier`.
"""

from maskscope.methods.explainer.checkpoint import classifier_for_checkpoint, load_checkpoint
from maskscope.methods.explainer.classifier_record import CheckpointMismatch, ClassifierRecord
from maskscope.methods.explainer.losses import PRESETS, ExplainerLoss, ExplainerWeights, RTISLoss, RTISWeights, build_loss
from maskscope.methods.explainer.method import Explainer
from maskscope.methods.explainer.networks import NETWORKS, ClassifierFeatureNetwork, LightEncoderDecoder, build_network
from maskscope.methods.explainer.training import TrainingConfig, TrainingResult, train_explainer
from maskscope.methods.explainer.training_data import TrainingImages, open_training_images, pseudo_labels

__all__ = [
    "NETWORKS",
    "PRESETS",
    "CheckpointMismatch",
    "ClassifierFeatureNetwork",
    "ClassifierRecord",
    "Explainer",
    "ExplainerLoss",
    "ExplainerWeights",
    "LightEncoderDecoder",
    "RTISLoss",
    "RTISWeights",
    "TrainingConfig",
    "TrainingImages",
    "TrainingResult",
    "build_loss",
    "build_network",
    "classifier_for_checkpoint",
    "load_checkpoint",
    "open_training_images",
    "pseudo_labels",
    "train_explainer",
]
