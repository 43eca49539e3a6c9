"""Fillers: what a removed pixel is replaced with.

A filler maps images ``x`` (B×3×H×W, pixel space) — and, for fillers that depend on the
mask such as inpainters, the upsampled mask ``m`` (B×1×H×W, 1 = keep) — to the removal
content ``f(x, m)``. The perturbed image is then ``Φ(x, m) = m·x + (1 − m)·f(x, m)``.

Fillers that ignore the mask are computed once per image; a filler whose
``depends_on_mask`` is true (an inpainter) is called again whenever the mask changes.
Inpainters live in :mod:`maskscope.core.perturbation.inpainters`; the short specs (``"blur:10"``,
``"mean"``, ``"inpaint"``, …) are parsed by :mod:`maskscope.core.perturbation.filler_specs`, which imports
both. This module imports neither.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from maskscope.core.perturbation.blur import gaussian_blur


class Filler:
    """Base class. Subclasses implement :meth:`fill`."""

    #: True when the content depends on which pixels are removed (inpainting).
    depends_on_mask: bool = False
    #: False when the content already is the perturbed image ``Φ(x, m)`` (kept pixels
    #: included), so it is used as it is instead of being blended with the image by the mask
    blended: bool = True

    def fill(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        return self.fill(images, masks)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Blur(Filler):
    """Gaussian blur ``G_σ * x`` (MP: σ = 10 px; I-GOS: kernel 51, σ = 50)."""

    def __init__(self, sigma: float = 10.0, kernel_size: int | None = None) -> None:
        self.sigma = sigma
        self.kernel_size = kernel_size

    def fill(self, images, masks=None):
        return gaussian_blur(images, self.sigma, self.kernel_size)


class Constant(Filler):
    """A constant colour (RGB in [0, 1]); the classifier's mean colour is the "zero" image."""

    def __init__(self, colour: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0)) -> None:
        self.colour = torch.as_tensor(colour, dtype=torch.float32).flatten().tolist()

    def fill(self, images, masks=None):
        colour = torch.tensor(self.colour, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return colour.expand_as(images)


class Noise(Filler):
    """Gaussian noise of standard deviation ``std`` around ``centre`` (a colour, or the image).

    With ``centre="image"`` the filler is ``x + σ·ε``; with a colour it is ``c + σ·ε``;
    values are clipped to [0, 1]. ``seed`` makes the noise repeatable.
    """

    def __init__(self, std: float = 0.2, centre: str | Sequence[float] = "image", seed: int | None = 0) -> None:
        self.std = std
        self.centre = centre if isinstance(centre, str) else list(centre)
        self.seed = seed

    def fill(self, images, masks=None):
        generator = torch.Generator(device=images.device)
        if self.seed is not None:
            generator.manual_seed(self.seed)
        else:
            generator.seed()
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        if self.centre == "image":
            base = images
        else:
            base = torch.tensor(self.centre, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (base + self.std * noise).clamp(0, 1)


class Reference(Filler):
    """A given reference image (3×H×W or B×3×H×W), resized to the input if needed."""

    def __init__(self, image: torch.Tensor) -> None:
        self.image = image if image.dim() == 4 else image[None]

    def fill(self, images, masks=None):
        reference = self.image.to(images)
        if reference.shape[-2:] != images.shape[-2:]:
            reference = torch.nn.functional.interpolate(
                reference, size=images.shape[-2:], mode="bilinear", align_corners=False
            )
        return reference.expand_as(images)


class BlurPyramid(Filler):
    """A blur chosen per pixel by the mask (Extremal Perturbation's blur pyramid).

    Levels ``P_k = G_{σ_k} * x`` with ``σ_k = σ_max·k/(L − 1)``, ``k = 0 … L − 1`` (``P_0 = x``).
    A pixel of mask value ``m`` takes the level ``t = (1 − m)·(L − 1)``, linearly
    interpolated between the two nearest levels: kept pixels stay sharp, removed pixels get
    the strongest blur. The interpolation is indexed from the strongest level,
    ``w = m·(L − 1)``, ``k = ⌊w⌋``, ``(1 − (w − k))·P_{L−1−k} + (w − k)·P_{L−2−k}``, as the
    authors' code computes it: the value is the same either way, but where ``w`` is a whole
    number the gradient is the one-sided slope towards the sharper level (so a pixel at
    ``m = 0`` can still grow back), and which side a value within rounding of a level takes
    decides which slope it gets. Depends on the mask, so it is recomputed whenever the mask changes;
    the levels themselves are kept for the last images seen (the same tensor at every step).
    Without a mask the filler is the strongest level. With ``blended=False`` the level mix is
    itself the perturbed image, ``Φ(x, m)(u) = (G_{σ_max·(1 − m(u))} * x)(u)`` (the paper's
    definition); otherwise it is blended as any filler, ``m·x + (1 − m)·P(x, m)``.

    Args:
        max_sigma: σ of the strongest level, in pixels.
        levels: L, the number of levels.
        border: a colour (3 values) the blur extends the image with, or ``None`` to reflect it.
        truncate: the kernels reach ``⌈truncate·σ⌉`` pixels either side.
        blended: blend the level mix with the image by the mask.
    """

    depends_on_mask = True

    def __init__(
        self,
        max_sigma: float = 20.0,
        levels: int = 8,
        border: torch.Tensor | None = None,
        truncate: float = 3.0,
        blended: bool = True,
    ) -> None:
        if levels < 2:
            raise ValueError(f"a blur pyramid needs at least 2 levels, got {levels}")
        self.max_sigma = max_sigma
        self.levels = levels
        self.border = border
        self.truncate = truncate
        self.blended = blended
        self._source: torch.Tensor | None = None
        self._pyramid: torch.Tensor | None = None

    def blur(self, images: torch.Tensor, sigma: float) -> torch.Tensor:
        size = 2 * math.ceil(self.truncate * sigma) + 1
        return gaussian_blur(images, sigma, size, self.border) if sigma > 0 else images

    def pyramid(self, images: torch.Tensor) -> torch.Tensor:
        """The levels stacked along a new first dimension, L×B×3×H×W."""
        pyramid = self._pyramid
        if pyramid is None or images is not self._source:
            sigmas = [self.max_sigma * k / (self.levels - 1) for k in range(self.levels)]
            pyramid = torch.stack([self.blur(images, sigma) for sigma in sigmas]).detach()
            self._pyramid, self._source = pyramid, images
        return pyramid

    def fill(self, images, masks=None):
        if masks is None:
            return self.blur(images, self.max_sigma)
        top = self.levels - 1
        position = masks * top  # B×1×H×W, counted from the strongest blur
        lower = position.floor().clamp(0, top)
        fraction = position - lower
        index = (top - lower).long().expand(-1, images.shape[1], -1, -1)[None]  # 1×B×3×H×W
        pyramid = self.pyramid(images)
        blurrier = pyramid.gather(0, index)[0]
        sharper = pyramid.gather(0, (index - 1).clamp(min=0))[0]
        return (1 - fraction) * blurrier + fraction * sharper


def blend(images: torch.Tensor, masks: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """``Φ(x, m) = m·x + (1 − m)·f`` with masks B×1×H×W (1 = keep) broadcast over channels."""
    return masks * images + (1 - masks) * filled
