"""Random translation jitter (MP): the perturbed image is enlarged by ``τ_max`` pixels and
cropped back at a random offset ``τ ∈ {0..τ_max}²``, so the mask cannot exploit the exact
pixel grid of the network (``E_τ[p_c(Φ(x(· − τ), m))]``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Jitter:
    """Random shift of up to ``max_shift`` pixels, drawn from ``generator`` each call.

    One offset is drawn per call and shared by the batch, so explaining images together or
    one by one with the same seed sees the same sequence of offsets.
    """

    def __init__(self, max_shift: int = 4, generator: torch.Generator | None = None) -> None:
        self.max_shift = max_shift
        self.generator = generator

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.max_shift <= 0:
            return images
        height, width = images.shape[-2:]
        offsets = torch.randint(0, self.max_shift + 1, (2,), generator=self.generator)
        top, left = int(offsets[0]), int(offsets[1])
        enlarged = F.interpolate(
            images, size=(height + self.max_shift, width + self.max_shift), mode="bilinear", align_corners=False
        )
        return enlarged[..., top : top + height, left : left + width]
