"""Test doubles for the removal methods: classifiers whose attributions are known exactly,
and a mask-dependent filler (standing in for an inpainter) that records the masks it gets."""

from __future__ import annotations

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.core.perturbation.fillers import Filler


class RedSum(nn.Module):
    """Two logits: (Σ of the red channel / 100, 0), linear in every pixel."""

    def forward(self, x):
        red = x[:, 0].sum((1, 2)) / 100
        return torch.stack([red, torch.zeros_like(red)], 1)


class WeightedRed(nn.Module):
    """Two logits: (Σ_u A(u)·red(u), 0) for a fixed map A (H×W)."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, x):
        score = (x[:, 0] * self.weights).sum((1, 2))
        return torch.stack([score, torch.zeros_like(score)], 1)


def logit_classifier(model: nn.Module, size: int) -> Classifier:
    """``model`` with mean colour 0 (the default "mean" filler is black); its logits are linear,
    so methods explain them exactly with ``score="logit"``."""
    return Classifier(model, mean=(0, 0, 0), std=(1, 1, 1), view=ClassifierView(None, size))


def linear_classifier(size: int) -> Classifier:
    """Removing a region with the default filler lowers the target (class 0) by its red sum / 100."""
    return logit_classifier(RedSum(), size)


class RecordingFiller(Filler):
    """A mask-dependent filler (like an inpainter) that fills with 0.25 and keeps every mask it is given."""

    depends_on_mask = True

    def __init__(self) -> None:
        self.masks: list[torch.Tensor] = []

    def fill(self, images, masks=None):
        self.masks.append(masks.clone())
        return torch.full_like(images, 0.25)


def counted_images(monkeypatch, classifier: Classifier) -> list[int]:
    """The size of every batch ``classifier.class_scores`` is given from now on (for counting passes)."""
    sizes: list[int] = []
    class_scores = classifier.class_scores

    def counted(images, *args, **kwargs):
        sizes.append(len(images))
        return class_scores(images, *args, **kwargs)

    monkeypatch.setattr(classifier, "class_scores", counted)
    return sizes
