"""The local terms of structural similarity (Wang et al. 2004), shared by SSIM and MS-SSIM.

With Gaussian-weighted local means μ, variances σ² and covariance σ_xy (11×11 window,
σ = 1.5, population statistics) at every position where the window lies inside the image,

    l = (2 μ_x μ_y + C1) / (μ_x² + μ_y² + C1),    cs = (2 σ_xy + C2) / (σ_x² + σ_y² + C2),

C1 = (K1·L)², C2 = (K2·L)², K1 = 0.01, K2 = 0.03, L = 1 (values in [0, 1]). SSIM is the mean of
``l·cs`` over the positions (:func:`maskscope.metrics.robustness.ssim`); MS-SSIM combines the
means of ``l`` and ``cs`` over scales (:func:`maskscope.metrics.ms_ssim.ms_ssim`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskscope.core.perturbation.blur import gaussian_kernel1d

#: the window: Gaussian σ = 1.5 on an 11×11 support
WINDOW = 11
WINDOW_SIGMA = 1.5
#: the stabilising constants' factors, for a data range L = 1
K1, K2 = 0.01, 0.03


def ssim_terms(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Luminance ``l`` and contrast-structure ``cs`` of images B×C×H×W, each B×C×(H − 10)×(W − 10).

    Every channel is compared on its own; the images must be at least 11×11.
    """
    batch, channels = x.shape[:2]
    kernel = gaussian_kernel1d(WINDOW_SIGMA, WINDOW, device=x.device, dtype=x.dtype)
    planes = torch.stack([x, y, x * x, y * y, x * y], 2).flatten(0, 2)[:, None]
    means = F.conv2d(F.conv2d(planes, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))  # valid positions
    mu_x, mu_y, xx, yy, xy = means.view(batch, channels, 5, *means.shape[-2:]).unbind(2)
    var_x, var_y, covariance = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = K1**2, K2**2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * covariance + c2) / (var_x + var_y + c2)
    return luminance, contrast_structure
