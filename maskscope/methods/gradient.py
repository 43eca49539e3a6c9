"""Gradient saliency (Simonyan, Vedaldi, Zisserman, "Deep Inside Convolutional Networks", 2014).

The class score ``S_c`` is linearised around the image, ``S_c(x) ≈ wᵀx + b`` with
``w = ∂S_c/∂x |_x``, and the saliency of a pixel is the largest magnitude over its colour
channels: ``M(i, j) = max_k |w(k, i, j)|``. ``S_c`` is the unnormalised class score (the
logit), as in the paper; ``score="probability"`` differentiates the probability instead.
A set of target classes sums their scores.
"""

from __future__ import annotations

import torch

from maskscope.core.classifier import Classifier
from maskscope.core.explanation import Explanation
from maskscope.methods.base import Method
from maskscope.methods.registry import register

SCORE_KINDS = ("logit", "probability")


def check_score_kind(score: str) -> str:
    if score not in SCORE_KINDS:
        raise ValueError(f"score must be one of {SCORE_KINDS}, got {score!r}")
    return score


def target_score(classifier: Classifier, images: torch.Tensor, weights: torch.Tensor, score: str) -> torch.Tensor:
    """The summed target score of each image (B): target logits or target probabilities."""
    outputs = classifier.logits(images) if score == "logit" else classifier.probabilities(images)
    return (outputs * weights.to(outputs)).sum(1)


def input_gradients(classifier: Classifier, images: torch.Tensor, weights: torch.Tensor, score: str) -> torch.Tensor:
    """``∂S_c/∂x`` for each image, B×3×H×W (images are independent, so one backward serves the batch)."""
    inputs = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (gradients,) = torch.autograd.grad(target_score(classifier, inputs, weights, score).sum(), inputs)
    return gradients


@register
class Gradient(Method):
    """Vanilla gradient saliency, ``max_k |∂S_c/∂x_k|``.

    Args:
        score: ``"logit"`` (the paper's unnormalised score) or ``"probability"``.
    """

    name = "gradient"
    pixel_level = True

    def __init__(self, score: str = "logit") -> None:
        self.score = check_score_kind(score)

    def _explain(self, classifier, images, targets, weights, seed):
        gradients = input_gradients(classifier, images, weights, self.score)
        return Explanation(
            saliency=gradients.abs().amax(1).cpu(), targets=targets, method=self.name, mask=gradients.cpu()
        )
