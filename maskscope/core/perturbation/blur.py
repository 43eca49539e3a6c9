"""Separable Gaussian blur as a pure, batched, differentiable tensor operation.

``G_σ * x`` with the kernel ``k(t) ∝ exp(−t² / 2σ²)``, ``t ∈ [−r, r]``, applied along rows
then columns. The default radius is ``⌈3σ⌉``; the kernel may be given as an odd size to
match a paper's setting (I-GOS: 51 px with σ = 50).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, size: int | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma`` and odd length ``size``."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if size % 2 == 0:
        raise ValueError(f"kernel size must be odd, got {size}")
    t = torch.arange(size, device=device, dtype=dtype) - size // 2
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(
    images: torch.Tensor, sigma: float, kernel_size: int | None = None, border: torch.Tensor | None = None
) -> torch.Tensor:
    """Blur a batch B×C×H×W with a Gaussian of ``sigma`` pixels.

    The image is extended by reflection (where the kernel is larger than the image allows,
    the border is replicated instead), or, given a ``border`` colour (C values), by that
    constant colour. ``sigma = 0`` returns the input unchanged.
    """
    if sigma == 0:
        return images
    kernel = gaussian_kernel1d(sigma, kernel_size, images.device, images.dtype)
    channels = images.shape[1]
    radius = kernel.numel() // 2
    height, width = images.shape[-2:]
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    if border is not None:
        # the kernel sums to 1, so blurring x − c with zero padding and adding c back pads with c
        colour = torch.as_tensor(border, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        out = F.conv2d(images - colour, horizontal, padding=(0, radius), groups=channels)
        return F.conv2d(out, vertical, padding=(radius, 0), groups=channels) + colour
    mode = "reflect" if radius < min(height, width) else "replicate"
    out = F.pad(images, (radius, radius, 0, 0), mode=mode)
    out = F.conv2d(out, horizontal, groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode=mode)
    return F.conv2d(out, vertical, groups=channels)
