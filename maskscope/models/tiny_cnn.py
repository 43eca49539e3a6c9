"""A tiny convolutional classifier that trains in seconds on a CPU, for tests and demos."""

from __future__ import annotations

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.view import ClassifierView


class TinyCNN(nn.Module):
    """Four 3×3 conv blocks (batch norm, ReLU, 2×2 max-pool after the first two), global max pool, linear."""

    def __init__(self, num_classes: int, width: int = 24) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.Conv2d(4 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        )  # fmt: skip
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).amax((2, 3)))


def train_tiny_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    multilabel: bool = False,
    epochs: int = 6,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> Classifier:
    """Train a :class:`TinyCNN` on images N×3×S×S in [0, 1] and return it wrapped.

    ``labels`` are multi-hot N×K; with ``multilabel`` the loss is binary cross-entropy and the
    classifier's output is ``"sigmoid"``, otherwise cross-entropy on ``labels.argmax(1)`` and
    ``"softmax"``. Inputs are normalised with mean 0.5, std 0.5.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TinyCNN(labels.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    inputs = (images - 0.5) / 0.5
    loss_function = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    targets = labels.float() if multilabel else labels.argmax(1)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch_size):
            chosen = order[start : start + batch_size]
            optimiser.zero_grad()
            loss_function(model(inputs[chosen]), targets[chosen]).backward()
            optimiser.step()
    size = images.shape[-1]
    return Classifier(
        model,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        output="sigmoid" if multilabel else "softmax",
        class_names=class_names,
        view=ClassifierView(resize=None, crop=size),
        name="tiny-cnn",
    )
