"""Mask parametrisations: masks at any resolution, upsampled to the image.

A mask parameter ``M`` lives at its own resolution (for example 28×28 for a 224 image) and
is mapped to the image by ``up(M)``: nearest-neighbour enlargement followed by Gaussian
smoothing (MP: ×8 then σ_m = 5), or bilinear interpolation (I-GOS, RISE).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from maskscope.core.blur import gaussian_blur

UPSAMPLE_MODES = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Upsampler:
    """``up(M)``: resize masks B×1×h×w to ``size`` and optionally smooth them.

    Args:
        mode: ``"nearest"``, ``"bilinear"`` or ``"bicubic"``.
        smooth_sigma: σ (in output pixels) of a Gaussian applied after resizing; 0 for none.
    """

    mode: str = "nearest"
    smooth_sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in UPSAMPLE_MODES:
            raise ValueError(f"mode must be one of {UPSAMPLE_MODES}, got {self.mode!r}")

    def __call__(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out = masks
        if tuple(masks.shape[-2:]) != tuple(size):
            if self.mode == "nearest":
                out = F.interpolate(masks, size=size, mode="nearest")
            else:
                out = F.interpolate(masks, size=size, mode=self.mode, align_corners=False)
        if self.smooth_sigma > 0:
            out = gaussian_blur(out, self.smooth_sigma)
        return out.clamp(0, 1) if self.mode == "bicubic" else out


def binarise(masks: torch.Tensor) -> torch.Tensor:
    """The kept pixels of masks B×1×H×W as a bool tensor (G-removal's rule, METHODS.md §5).

    A pixel is kept where its value reaches ``max(0.5, (max + min)/2)`` of its own mask and
    is a hole below that, so an all-ones mask keeps everything and a mask that stays below
    0.5 is all hole.
    """
    values = masks.flatten(1)
    middle = (values.amax(1) + values.amin(1)) / 2
    threshold = middle.clamp(min=0.5).view(-1, *([1] * (masks.dim() - 1)))
    return masks >= threshold


@dataclass(frozen=True)
class BinarisedUpsampler:
    """``up(M)`` binarised by :func:`binarise` in the forward pass, with the gradient of the
    continuous ``up(M)`` (a straight-through estimator): the blend sees a hard 0/1 mask while
    the optimiser still learns from every cell (MP-G)."""

    upsampler: Upsampler

    def __call__(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        soft = self.upsampler(masks, size)
        hard = binarise(soft.detach()).to(soft.dtype)
        return hard + (soft - soft.detach())


def downsample(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average masks B×1×H×W down to ``size`` (used to bring image-size masks to a mask grid)."""
    return F.adaptive_avg_pool2d(masks, size)


def disc_masks(radii: torch.Tensor, size: tuple[int, int], edge_sigma: float = 0.0) -> torch.Tensor:
    """Centred discs (1 inside) of the given radii in pixels, R×1×H×W, optionally blurred."""
    height, width = size
    ys = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    distance = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    discs = (distance[None] <= radii.float().view(-1, 1, 1)).float()[:, None]
    return gaussian_blur(discs, edge_sigma) if edge_sigma > 0 else discs
