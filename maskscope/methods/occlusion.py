"""Occlusion maps normalised by coverage: the variants of the MP paper's supplement (§4.1).

Windows ``w_k`` (a p×p square, or a disc of diameter p with a soft edge) slide over the
image with stride s; each removes what it covers, ``x̃_k = Φ(x, 1 − w_k)``, and costs the
target ``Δ_k = p_c(x) − p_c(x̃_k)``. A pixel's saliency is the average fall over the windows
covering it, weighted by how much of the pixel each removes:

    H_p(u) = Σ_k w_k(u)·Δ_k / Σ_k w_k(u)

and with several window sizes P the maps of the sizes are averaged, ``H = (1/|P|)·Σ_p H_p``.

Variants (``variant``; ``window``, ``filler`` and ``edge_sigma`` override their defaults):

- ``"mean"`` — mean-pixel occlusion: 35×35 squares filled with the classifier's mean colour,
  stride 8. The windows' corners are 0, 8, …, 216 on a 224 image (28 per side, the MP
  authors' grid), those at the bottom and right clipped by the border, so every pixel is
  covered (``placement="cover"``; ``"valid"`` keeps only windows inside the image, and
  ``"edge"`` stops at the first window that reaches the far border, Captum's grid).
- ``"blur"`` — blur occlusion with soft discs: discs of diameter 35 whose edge is blurred by a
  Gaussian of σ = 5 px (MP's mask smoothing, *inferred*) on the same grid, the disc's content
  replaced by the image blurred with σ = 10 px (MP's blur filler); ``w_k`` is the soft disc,
  so the rim counts partly in both the perturbation and the coverage.
- ``"variable"`` — variable occlusion: mean-pixel squares of sides 17, 35 and 53 px
  (*inferred*: the supplement varies the window size; these bracket its 35 px by ±18),
  stride 8, their coverage-normalised maps averaged.

Any filler works in place of the default, including an inpainter (``filler="inpaint"``).
The explanation's ``window_maps`` holds the map of each window size, B×|P|×H×W.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Filler
from maskscope.core.scoring.windows import PLACEMENTS, WindowGrid, score_windows, soft_disc_stamp, square_stamp
from maskscope.methods.base import Method
from maskscope.methods.parameters import OneOf, at_least
from maskscope.methods.registry import register


@dataclass(frozen=True)
class OcclusionVariant:
    """A window shape with its default sizes and filler."""

    shape: str
    sizes: tuple[int, ...]
    filler: str


VARIANTS = {
    "mean": OcclusionVariant("square", (35,), "mean"),
    "blur": OcclusionVariant("disc", (35,), "blur:10"),
    "variable": OcclusionVariant("square", (17, 35, 53), "mean"),
}


@register
class Occlusion(Method):
    """Coverage-normalised occlusion (mean-pixel, blur with soft discs, or variable sizes).

    Args:
        variant: ``"mean"``, ``"blur"`` or ``"variable"`` (see the module docstring).
        window: window side(s) p in pixels (one, or several whose maps are averaged);
            ``None`` takes the variant's.
        stride: step s between windows.
        filler: removal content; ``None`` takes the variant's (mean colour, or blur σ = 10).
        score: the class score explained, ``"probability"`` or ``"logit"``.
        edge_sigma: σ of the soft discs' edge (``"blur"`` only).
        placement: ``"cover"`` (the MP grid, clipped windows at the far borders),
            ``"valid"`` (only windows inside the image) or ``"edge"`` (up to the first window
            that reaches the far border, clipped there; Captum's grid).
        batch_size: perturbed images per forward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
    """

    name = "occlusion"
    needs_gradients = False
    constraints = {
        "variant": OneOf(*VARIANTS), "window": at_least(1), "stride": at_least(1), "edge_sigma": at_least(0),
        "placement": OneOf(*PLACEMENTS), "score": OneOf(*SCORES), "batch_size": at_least(1),
    }

    def __init__(
        self,
        variant: str = "mean",
        window: int | Sequence[int] | None = None,
        stride: int = 8,
        filler: str | Filler | None = None,
        score: str = DEFAULT_SCORE,
        edge_sigma: float = 5.0,
        placement: str = "cover",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        self.variant = variant
        self.window = window
        self.stride = stride
        self.filler = filler
        self.score = score
        self.edge_sigma = edge_sigma
        self.placement = placement
        self.batch_size = batch_size
        self.progress = progress

    def grids(self, size: tuple[int, int]) -> list[WindowGrid]:
        """The window grid of each window size for an image of ``size`` (H, W)."""
        variant = VARIANTS[self.variant]
        sizes = variant.sizes if self.window is None else _as_tuple(self.window)
        return [WindowGrid(self._stamp(side), side, self.stride, size, self.placement) for side in sizes]

    def _stamp(self, side: int) -> torch.Tensor:
        if VARIANTS[self.variant].shape == "disc":
            return soft_disc_stamp(side, self.edge_sigma)
        return square_stamp(side)

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        spec = VARIANTS[self.variant].filler if self.filler is None else self.filler
        filler = resolve_filler(spec, classifier.mean_colour)
        original = target_scores
        maps = []
        for grid in self.grids(tuple(images.shape[-2:])):
            perturbed = score_windows(
                classifier, images, grid, filler, target_weights, self.batch_size, self.progress, self.score
            )
            maps.append(grid.coverage_average(original[:, None, None] - perturbed))
        per_size = torch.stack(maps, 1)
        return Explanation(saliency=per_size.mean(1).cpu(), targets=targets, method=self.name, window_maps=per_size.cpu())


def _as_tuple(sizes: int | Sequence[int]) -> tuple[int, ...]:
    return (int(sizes),) if isinstance(sizes, (int, float)) else tuple(int(size) for size in sizes)
