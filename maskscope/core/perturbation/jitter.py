"""Jitter: a random transformation drawn anew at every step of a mask optimisation, so the
mask cannot exploit the exact pixel grid of the network.

* :class:`Jitter` (MP) translates the image under a fixed mask, ``E_τ[p_c(Φ(x(· − τ), m))]``:
  the image and its filler move by ``τ ∈ {0..τ_max}²`` whole pixels, the mask stays put.
* :class:`AlternateFlip` (EP) mirrors the whole perturbed image left to right at every other
  step (the first, third, …).

Both hand out one transformation per :meth:`draw`, shared by every image of the batch, so
explaining images together or one by one with the same seed sees the same sequence.
``moves_image`` says where the problem applies it: to the image and filler before the
blend (True) or to the blended image (False).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor], torch.Tensor]


def translate(images: torch.Tensor, down: int, right: int) -> torch.Tensor:
    """``x(u − τ)`` for ``τ = (down, right) ≥ 0``: the content moves down and right by whole
    pixels; the rows and columns it uncovers repeat the image's edge."""
    height, width = images.shape[-2:]
    if down == 0 and right == 0:
        return images
    return F.pad(images, (right, 0, down, 0), mode="replicate")[..., :height, :width]


class Jitter:
    """Random translation of up to ``max_shift`` pixels along each axis, drawn from ``generator``."""

    moves_image = True

    def __init__(self, max_shift: int = 4, generator: torch.Generator | None = None) -> None:
        if max_shift < 0:
            raise ValueError(f"max_shift must be at least 0, got {max_shift}")
        self.max_shift = max_shift
        self.generator = generator

    def draw_offset(self) -> tuple[int, int]:
        """The next ``τ = (down, right)``, each uniform in ``{0..max_shift}``."""
        if self.max_shift <= 0:
            return (0, 0)
        offsets = torch.randint(0, self.max_shift + 1, (2,), generator=self.generator)
        return int(offsets[0]), int(offsets[1])

    def draw(self) -> Transform:
        down, right = self.draw_offset()
        return lambda images: translate(images, down, right)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` translated by a newly drawn offset."""
        return self.draw()(images)


class AlternateFlip:
    """A left–right mirror at draws 0, 2, 4, … and the identity at the others."""

    moves_image = False

    def __init__(self) -> None:
        self.draws = 0

    def draw(self) -> Transform:
        flip = self.draws % 2 == 0
        self.draws += 1
        return (lambda images: torch.flip(images, dims=(-1,))) if flip else (lambda images: images)
