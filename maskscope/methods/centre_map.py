"""The centre baseline: a Gaussian centred on the image, ``S(u) = exp(−‖u − c‖² / 2σ²)``.

Photos tend to put the object in the middle, so this image- and model-independent map is
the prior a method has to beat (the pointing game's centre-point baseline, as a map).
``σ = sigma · min(H, W)``.
"""

from __future__ import annotations

import torch

from maskscope.core.explanation import Explanation
from maskscope.methods.base import Method
from maskscope.methods.parameters import positive
from maskscope.methods.registry import register


@register
class CentreMap(Method):
    """A centred Gaussian map.

    Args:
        sigma: the Gaussian's standard deviation as a fraction of the image's shorter side.
    """

    name = "centre"
    needs_gradients = False
    constraints = {"sigma": positive()}

    def __init__(self, sigma: float = 0.25) -> None:
        self.sigma = sigma

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        batch, _, height, width = images.shape
        ys = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
        xs = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
        spread = self.sigma * min(height, width)
        gaussian = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * spread**2))
        return Explanation(saliency=gaussian.expand(batch, height, width).clone(), targets=targets, method=self.name)
