"""The random baseline: a map of independent uniform draws, ``S(u) ~ U(0, 1)``.

It carries no information about the image or the model, so any method worth using must
beat it on every metric; its pointing-game accuracy is roughly the share of the image
within tolerance of the object.
"""

from __future__ import annotations

import torch

from maskscope.core.explanation import Explanation
from maskscope.methods.base import Method
from maskscope.methods.registry import register


@register
class RandomMap(Method):
    """Uniform random saliency, one independent map per image, fixed by ``seed``."""

    name = "random"
    needs_gradients = False

    def __init__(self) -> None:
        pass

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        batch, _, height, width = images.shape
        generator = torch.Generator().manual_seed(seed)
        saliency = torch.rand(batch, height, width, generator=generator)
        return Explanation(saliency=saliency, targets=targets, method=self.name)
