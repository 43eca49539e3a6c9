"""Explainer networks: a normalised image B×3×H×W → C mask logits B×C×H×W at the same size.

* ``light`` — :class:`LightEncoderDecoder`, a small U-Net at half resolution (torch only)
  that trains on a CPU in minutes at 64–128 px.
* ``deeplabv3-resnet50`` — the paper's network, torchvision's DeepLabV3 with a ResNet-50
  backbone, trained from scratch (no pretrained weights); needs the ``vision`` extra.
* ``classifier-features`` — :class:`ClassifierFeatureNetwork`, an encoder copied from the
  frozen classifier's own feature layers (then trained with the decoder unless frozen) and a
  light decoder. A deviation from the paper, which trains its explainer from scratch: with
  little data the classifier's features give the explainer a head start.

The networks see the image as the classifier does, normalised by its mean and std.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.core.model.classifier import Classifier


def _conv_block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False), nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True),
        nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False), nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True),
    )  # fmt: skip


class LightEncoderDecoder(nn.Module):
    """A U-Net at half resolution: a stride-2 3×3 conv-BN-ReLU stem to ``width`` channels, then
    ``levels`` 2×2 max-pool downsamplings, each level two 3×3 conv-BN-ReLU layers with
    ``width·2^level`` channels; the decoder upsamples bilinearly, concatenates the encoder's
    features of the same level and applies two conv layers; a 1×1 conv gives the C logits,
    upsampled bilinearly to the input size (as DeepLab's are, from 1/8). Any input size works."""

    def __init__(self, num_classes: int, width: int = 16, levels: int = 3) -> None:
        super().__init__()
        if levels < 1 or width < 1:
            raise ValueError(f"levels and width must be positive, got {levels} and {width}")
        channels = [width * 2**level for level in range(levels + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)
        )
        self.encoder = nn.ModuleList([_conv_block(channels[0], channels[0])])
        self.encoder.extend(_conv_block(channels[i], channels[i + 1]) for i in range(levels))
        self.decoder = nn.ModuleList(_conv_block(channels[i + 1] + channels[i], channels[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.encoder[0](self.stem(x))]
        for block in self.encoder[1:]:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for block in self.decoder:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
        return F.interpolate(self.head(y), size=x.shape[-2:], mode="bilinear", align_corners=False)


class _SegmentationOutput(nn.Module):
    """A torchvision segmentation model returning its ``"out"`` tensor instead of a dict."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def deeplabv3_resnet50(num_classes: int) -> nn.Module:
    """torchvision's DeepLabV3-ResNet50 with C outputs and random weights (the paper trains it from scratch)."""
    try:
        from torchvision.models.segmentation import deeplabv3_resnet50 as build
    except ImportError as error:
        raise ImportError(
            "the deeplabv3-resnet50 explainer network needs torchvision: pip install 'maskscope[vision]'"
        ) from error
    return _SegmentationOutput(build(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False))


class ClassifierFeatureNetwork(nn.Module):
    """An encoder copied from the classifier's feature layers and a light decoder.

    The encoder is a copy of the model's ``features`` module, or the model itself called
    through its ``extract_features`` method (EfficientNet); its features (B×F×h×w) pass a
    3×3 conv-BN-ReLU to ``width`` channels, are upsampled bilinearly to the input size,
    concatenated with a full-resolution branch (one conv block on the image) and a 1×1 conv
    gives the C logits.

    Args:
        classifier: the frozen classifier whose feature layers are copied (never modified).
        num_classes: C.
        width: channels of the decoder.
        train_encoder: fine-tune the copied encoder (True) or keep it fixed.
    """

    def __init__(self, classifier: Classifier, num_classes: int, width: int = 64, train_encoder: bool = True) -> None:
        super().__init__()
        self.encoder, self._extract = _copied_features(classifier)
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(train_encoder)
        self.train_encoder = train_encoder
        view_height, view_width = classifier.view.size
        with torch.no_grad():
            probe = torch.zeros(1, classifier.channels, view_height, view_width, device=classifier.device)
            feature_channels = self._extract(self.encoder.eval(), probe).shape[1]
        self.reduce = nn.Sequential(
            nn.Conv2d(feature_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.image_branch = _conv_block(classifier.channels, width // 4)
        self.head = nn.Sequential(_conv_block(width + width // 4, width // 2), nn.Conv2d(width // 2, num_classes, 1))

    def train(self, mode: bool = True) -> "ClassifierFeatureNetwork":
        super().train(mode)
        self.encoder.train(mode and self.train_encoder)  # a fixed encoder keeps its batch-norm statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.reduce(self._extract(self.encoder, x))
        features = F.interpolate(features, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([features, self.image_branch(x)], 1))


def _copied_features(classifier: Classifier) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
    model = classifier.model
    if not isinstance(model, nn.Module):
        raise TypeError(f"the classifier-features network needs a torch model; {classifier.name} is a callable")
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        return copy.deepcopy(features), lambda encoder, x: encoder(x)
    if callable(getattr(model, "extract_features", None)):
        return copy.deepcopy(model), lambda encoder, x: encoder.extract_features(x)
    raise TypeError(
        f"the classifier-features network needs a model with a 'features' module or an 'extract_features' "
        f"method; {classifier.name} ({type(model).__name__}) has neither"
    )


#: network name → builder ``(num_classes, classifier, **options) → nn.Module``
NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "light": lambda num_classes, classifier, **options: LightEncoderDecoder(num_classes, **options),
    "deeplabv3-resnet50": lambda num_classes, classifier, **options: deeplabv3_resnet50(num_classes, **options),
    "classifier-features": lambda num_classes, classifier, **options: ClassifierFeatureNetwork(
        classifier, num_classes, **options
    ),
}


def build_network(name: str, num_classes: int, classifier: Classifier | None = None, **options: Any) -> nn.Module:
    """The explainer network called ``name`` with ``num_classes`` outputs.

    Args:
        name: ``"light"``, ``"deeplabv3-resnet50"`` or ``"classifier-features"``.
        num_classes: C, the classes (or class groups) explained.
        classifier: the frozen classifier (needed by ``classifier-features``).
        options: the network's own parameters (``width``, ``levels``, ``train_encoder``).
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown explainer network {name!r}; choose from {', '.join(NETWORKS)}")
    if name == "classifier-features" and classifier is None:
        raise ValueError("the classifier-features network is built from a classifier; pass classifier=")
    try:
        return NETWORKS[name](num_classes, classifier, **options)
    except TypeError as error:
        if "unexpected keyword" in str(error):
            raise ValueError(f"network {name!r}: {error}") from error
        raise
