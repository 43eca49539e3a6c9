"""The learned explainer (Stalder et al., NeurIPS 2022): a network trained against a frozen
classifier that predicts every class mask of an image in one forward pass.

* :mod:`.networks` — the explainer networks (a light U-Net, DeepLabV3-ResNet50, an encoder
  from the classifier's own features);
* :mod:`.checkpoint`, :mod:`.classifier_record` — checkpoints and the classifier they belong to;
* :mod:`.method` — the ``explainer`` method.

Training lives in :mod:`maskscope.training` and is imported only to train.
"""

from maskscope.methods.explainer.checkpoint import classifier_for_checkpoint, load_checkpoint
from maskscope.methods.explainer.classifier_record import CheckpointMismatch, ClassifierRecord
from maskscope.methods.explainer.method import Explainer
from maskscope.methods.explainer.networks import NETWORKS, ClassifierFeatureNetwork, LightEncoderDecoder, build_network

__all__ = [
    "NETWORKS",
    "CheckpointMismatch",
    "ClassifierFeatureNetwork",
    "ClassifierRecord",
    "Explainer",
    "LightEncoderDecoder",
    "build_network",
    "classifier_for_checkpoint",
    "load_checkpoint",
]
