"""The whole-image baseline: a constant map, ``S(u) = 1``.

Thresholded by value, by the maximum or by the mean at any α, every pixel survives (or none
does), so the weak-localisation box is the whole image: the baseline the G-removal paper
reports beside its methods (error 38.56% on ImageNet). Energy thresholding keeps pixels in
row-major order among ties, so read this baseline at the other thresholds.
"""

from __future__ import annotations

import torch

from maskscope.core.explanation import Explanation
from maskscope.methods.base import Method
from maskscope.methods.registry import register


@register
class WholeImage(Method):
    """A map of ones: its box is the whole image."""

    name = "whole"
    needs_gradients = False

    def __init__(self) -> None:
        pass

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        batch, _, height, width = images.shape
        return Explanation(saliency=torch.ones(batch, height, width), targets=targets, method=self.name)
