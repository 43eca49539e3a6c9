"""Gradient saliency (Simonyan, Vedaldi, Zisserman, "Deep Inside Convolutional Networks", 2014).

The class score ``S_c`` is linearised around the image, ``S_c(x) ≈ wᵀx + b`` with
``w = ∂S_c/∂x |_x``, and the saliency of a pixel is the largest magnitude over its colour
channels: ``M(i, j) = max_k |w(k, i, j)|``. The paper's ``S_c`` is the unnormalised class
score, the logit (``score="logit"``); the default, as for every method, is the probability.
A set of target classes sums their scores. Images go ``batch_size`` at a time through the
forward and backward pass, so memory does not grow with the number of images.
"""

from __future__ import annotations

from typing import Iterator

import torch

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES, Classifier
from maskscope.core.progress import progress_bar
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.methods.base import Method
from maskscope.methods.parameters import OneOf, at_least
from maskscope.methods.registry import register


def chunks(count: int, batch_size: int | None, device: torch.device, progress: bool, desc: str) -> Iterator[slice]:
    """Slices of ``range(count)`` of ``batch_size`` (the device's default when ``None``), with a progress bar."""
    size = default_batch_size(batch_size, device)
    for start in progress_bar(range(0, count, size), desc=desc, disable=not progress, leave=False):
        yield slice(start, min(start + size, count))


def target_score(classifier: Classifier, images: torch.Tensor, target_weights: torch.Tensor, score: str) -> torch.Tensor:
    """The summed target score of each image (B): target logits or target probabilities."""
    outputs = classifier.class_scores(images, score)
    return (outputs * target_weights.to(outputs)).sum(1)


def input_gradients(classifier: Classifier, images: torch.Tensor, target_weights: torch.Tensor, score: str) -> torch.Tensor:
    """``∂S_c/∂x`` for each image, B×3×H×W (images are independent, so one backward serves the batch)."""
    inputs = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (gradients,) = torch.autograd.grad(target_score(classifier, inputs, target_weights, score).sum(), inputs)
    return gradients


@register
class Gradient(Method):
    """Vanilla gradient saliency, ``max_k |∂S_c/∂x_k|``.

    Args:
        score: ``"probability"`` (the default of every method) or ``"logit"`` (the paper's unnormalised score).
        batch_size: images per forward/backward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
    """

    name = "gradient"
    constraints = {"score": OneOf(*SCORES), "batch_size": at_least(1)}
    pixel_level = True

    def __init__(self, score: str = DEFAULT_SCORE, batch_size: int | None = None, progress: bool = False) -> None:
        self.score = score
        self.batch_size = batch_size
        self.progress = progress

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        parts = chunks(len(images), self.batch_size, images.device, self.progress, "gradient")
        gradients = torch.cat([input_gradients(classifier, images[c], target_weights[c], self.score) for c in parts])
        return Explanation(
            saliency=gradients.abs().amax(1).cpu(), targets=targets, method=self.name, attributions=gradients.cpu()
        )
