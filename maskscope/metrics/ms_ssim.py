"""Multi-scale structural similarity of images (Wang, Simoncelli & Bovik, 2003).

The images are compared at M scales, the first the images themselves, each next one halved
by 2×2 average pooling. With Gaussian-weighted local means μ, variances σ² and covariance
σ_xy (11×11 window, σ = 1.5, population statistics) at scale j
(:func:`maskscope.metrics.ssim_terms.ssim_terms`),

    l_j = (2 μ_x μ_y + C1) / (μ_x² + μ_y² + C1),    cs_j = (2 σ_xy + C2) / (σ_x² + σ_y² + C2),

C1 = (0.01·L)², C2 = (0.03·L)², L = 1 (images in [0, 1]). The index is

    MS-SSIM = mean(l_M·cs_M)^{w_M} · Π_{j=1..M−1} mean(cs_j)^{w_j},

each mean over the positions where the window lies inside the image (at the coarsest scale
the mean of the SSIM map, as in Wang's own code and ``pytorch_msssim``), M = 5,
w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) (the weights Wang et al. fitted to human
judgements, used as published), computed per colour channel and averaged over channels. A
negative mean (anti-correlated structure) is clipped to 0 before the power, so the index
lies in [0, 1] and is 1 only for identical images. Five scales need images of at least
11·2⁴ = 176 px; smaller images use the first scales that fit, with their weights rescaled to
sum to 1. Odd sides are halved by dropping the last row or column.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskscope.metrics.ssim_terms import K1, K2, WINDOW, WINDOW_SIGMA, ssim_terms  # noqa: F401 (K1, K2, WINDOW_SIGMA: re-exported)

#: Weights of the five scales, finest first (Wang, Simoncelli & Bovik 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def scales_that_fit(height: int, width: int, most: int = len(MS_SSIM_WEIGHTS)) -> int:
    """How many scales (up to ``most``) keep the smallest image at least as large as the window."""
    count = 0
    while count < most and min(height, width) // 2**count >= WINDOW:
        count += 1
    return count


def ms_ssim(a: torch.Tensor, b: torch.Tensor, scales: int | None = None) -> torch.Tensor:
    """MS-SSIM of each pair of images (B), images B×C×H×W (or C×H×W) in [0, 1].

    Args:
        a, b: the images, same shape.
        scales: how many scales (1–5); ``None`` takes the most that fit, up to 5.

    Raises:
        ValueError: shapes differ, values are not finite, or the images are too small for
            ``scales`` (each scale halves them; the smallest must hold an 11×11 window).
    """
    a = torch.as_tensor(a).detach().to(torch.float64)
    b = torch.as_tensor(b).detach().to(a)
    if a.shape != b.shape:
        raise ValueError(f"images a and b differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() == 3:
        a, b = a[None], b[None]
    if a.dim() != 4:
        raise ValueError(f"images must be B×C×H×W or C×H×W, got shape {tuple(a.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("images contain NaN or infinite values")
    fit = scales_that_fit(*a.shape[-2:])
    scales = fit if scales is None else scales
    if not 1 <= scales <= len(MS_SSIM_WEIGHTS) or scales > fit:
        raise ValueError(
            f"MS-SSIM at {scales} scale(s) needs images of at least {WINDOW * 2 ** max(scales - 1, 0)} px; "
            f"images of {tuple(a.shape[-2:])} allow {fit}"
        )
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=a.dtype, device=a.device)
    if scales < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()
    index = torch.ones(a.shape[:2], dtype=a.dtype, device=a.device)
    for scale in range(scales):
        luminance, contrast_structure = ssim_terms(a, b)
        if scale < scales - 1:
            index = index * contrast_structure.mean((-2, -1)).clamp_min(0) ** weights[scale]
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        else:
            index = index * (luminance * contrast_structure).mean((-2, -1)).clamp_min(0) ** weights[scale]
    return index.mean(1).float()
