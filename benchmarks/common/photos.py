"""The photos the benchmarks explain: the first N of imagenet-samples, in the classifier's view."""

from __future__ import annotations

import torch

from maskscope import Classifier, load_image
from maskscope.data.registry import open_dataset


def imagenet_photos(classifier: Classifier, count: int) -> tuple[list[str], torch.Tensor]:
    """Names and images (N×3×crop×crop) of the first ``count`` imagenet-samples photos."""
    dataset = open_dataset("imagenet-samples").limit(count)
    images = torch.stack([classifier.view(load_image(sample.path, name=sample.name)) for sample in dataset])
    return [sample.name for sample in dataset], images
