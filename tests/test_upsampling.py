"""``up(M)`` as two matrix products gives what resizing then blurring the masks gives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from maskscope.core.perturbation.blur import gaussian_blur
from maskscope.core.perturbation.masks import Upsampler


def resized_then_blurred(masks: torch.Tensor, size: tuple[int, int], mode: str, sigma: float) -> torch.Tensor:
    """The upsampling written as interpolation followed by the blur, image by image."""
    out = masks
    if tuple(masks.shape[-2:]) != size:
        out = F.interpolate(masks, size=size, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
    if sigma > 0:
        out = gaussian_blur(out, sigma)
    return out.clamp(0, 1) if mode == "bicubic" else out


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("sigma", [0.0, 5.0, 2.5, 40.0])
@pytest.mark.parametrize("shapes", [((28, 28), (224, 224)), ((7, 9), (100, 150)), ((5, 5), (12, 12)), ((16, 16), (16, 16))])
def test_the_matrices_resize_and_smooth_like_interpolation_and_blur(mode, sigma, shapes):
    (rows, cols), size = shapes
    masks = torch.rand(3, 2, rows, cols, generator=torch.Generator().manual_seed(rows + cols))
    expected = resized_then_blurred(masks, size, mode, sigma)
    assert torch.allclose(Upsampler(mode, sigma)(masks, size), expected, atol=1e-5)


def test_the_gradient_reaches_every_cell_as_through_interpolation_and_blur():
    masks = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    weights = torch.rand(2, 1, 224, 224, generator=torch.Generator().manual_seed(4))
    gradients = []
    for upsample in (Upsampler("nearest", 5.0), lambda m, s: resized_then_blurred(m, s, "nearest", 5.0)):
        variable = masks.clone().requires_grad_(True)
        (upsample(variable, (224, 224)) * weights).sum().backward()
        gradients.append(variable.grad)
    assert torch.allclose(gradients[0], gradients[1], atol=1e-4)
