"""Hierarchical perturbation, HiPe (Cooper, Arandjelović, Harrison, "Believe the HiPe:
Hierarchical Perturbation for Fast, Robust, and Model-Agnostic Saliency Mapping", 2021).

Occlusion from coarse to fine, spending passes only where the coarser levels found saliency.
Level d = 0 … D−1 slides square windows of side ``p_d = window / 2^d`` with stride
``s_d = p_d / 2`` (two cells of side s_d, overlapping by one cell, as in HiPe) over the
image; removing window k costs the target ``Δ_k = f_c(x) − f_c(Φ(x, 1 − w_k))``, kept as
``ReLU(Δ_k)`` (HiPe's rule; ``relu=False`` keeps the sign). A level's map is the
coverage-normalised average of its windows' drops, as in occlusion
(:mod:`maskscope.methods.occlusion`), with the windows a level does not score counting as 0:

    H_d(u) = Σ_{k scored} w_k(u)·Δ_k / Σ_k w_k(u),        S = Σ_d H_d

Every window of the first level is scored. A window of a later level is scored only if the
running map ``S_{<d} = Σ_{e<d} H_e`` reaches the threshold somewhere under it:

    max_{u ∈ w_k} S_{<d}(u) ≥ min S_{<d} + t·(max S_{<d} − min S_{<d})

HiPe's default is the mid-range, t = ``threshold`` = 0.5 (its code also offers the mean of the
map); t = 0 scores every window, and the map is then that of exhaustive occlusion at each
level's window and stride, summed over the levels. The passes each image took, per level, are
recorded as the explanation's ``samples_used`` (the total per image, saved with each photo's
record, as the sampling methods record theirs) and per level in
:attr:`HierarchicalPerturbation.passes_`.

Where this departs from HiPe's code: its cells are ``⌊L / n⌋`` pixels for ``n = 2·⌊log₄ L⌋``
cells at the first level (37, 18, 9, 4, 2 px on a 224 image, five levels) and its grid adds a
half window before the first corner; here the windows lie on occlusion's pixel grid
(``placement="cover"``: corners 0, s_d, 2s_d, … < L, clipped at the far borders), so the
sides halve exactly (64, 32, 16, 8 px at the defaults, four levels: HiPe's 2-px cells are left
out for their cost). HiPe sums its windows' drops without normalising by coverage (the same
up to a factor of 4 away from the borders). Its default filler is each window's own mean
colour (``"fade"``, its product with the normalised input, is the classifier's mean colour,
the default here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES, Classifier
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Filler
from maskscope.core.scoring.perturbations import score_mask_stream
from maskscope.core.scoring.windows import WindowGrid, square_stamp
from maskscope.errors import MaskscopeValueError
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least
from maskscope.methods.registry import register


def window_maxima(grid: WindowGrid, values: torch.Tensor) -> torch.Tensor:
    """The largest of ``values`` (H×W) under each window of a square-window grid, rows×cols."""
    side, stride = grid.core, grid.stride
    padded = F.pad(values[None, None], (0, side, 0, side), value=float("-inf"))
    pooled = F.max_pool2d(padded, kernel_size=side, stride=stride)[0, 0]
    rows, cols = grid.shape
    return pooled[:rows, :cols]


def refined_windows(grid: WindowGrid, running: torch.Tensor, threshold: float) -> torch.Tensor:
    """Indices (row-major) of the windows under which ``running`` (H×W) reaches
    ``min + threshold·(max − min)``."""
    low, high = running.min(), running.max()
    level = low + threshold * (high - low)
    return (window_maxima(grid, running).flatten() >= level).nonzero().flatten()


@register
class HierarchicalPerturbation(Method):
    """HiPe: occlusion levels from coarse to fine, refining only where the map is high.

    Args:
        window: side of the first (coarsest) level's windows, in pixels; each level halves it.
        levels: number of levels D; ``window`` must be divisible by ``2^D`` (so the finest
            stride is a whole number of pixels).
        threshold: t in ``min + t·(max − min)`` of the running map; a window is refined where
            the map reaches it (0.5: HiPe's mid-range; 0: every window, exhaustive occlusion).
        relu: keep only the score drops (HiPe's ``ReLU``); ``False`` keeps rises as negatives.
        filler: removal content (``"mean"``: the classifier's mean colour).
        score: the class score explained, ``"probability"`` or ``"logit"``.
        batch_size: perturbed images per forward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.

    The explanation's ``window_maps`` holds each level's map ``H_d``, B×D×H×W.

    Attributes:
        passes_: forward passes of the last call, per image and level (B×D), besides the one
            on the original image.
    """

    name = "hipe"
    needs_gradients = False
    passes_: torch.Tensor
    constraints = {
        "window": at_least(2), "levels": at_least(1), "threshold": Interval(0, 1),
        "score": OneOf(*SCORES), "batch_size": at_least(1),
    }

    def __init__(
        self,
        window: int = 64,
        levels: int = 4,
        threshold: float = 0.5,
        relu: bool = True,
        filler: str | Filler = "mean",
        score: str = DEFAULT_SCORE,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        self.window = window
        self.levels = levels
        self.threshold = threshold
        self.relu = relu
        self.filler = filler
        self.score = score
        self.batch_size = batch_size
        self.progress = progress

    def grids(self, size: tuple[int, int]) -> list[WindowGrid]:
        """The window grid of each level, coarse to fine, for an image of ``size`` (H, W)."""
        if self.window % 2**self.levels:
            raise MaskscopeValueError(
                f"HiPe's window ({self.window} px) must be divisible by 2^levels = {2**self.levels}, "
                "so that every level's stride is a whole number of pixels"
            )
        sides = [self.window // 2**level for level in range(self.levels)]
        return [WindowGrid(square_stamp(side), side, side // 2, size, "cover") for side in sides]

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        filler = resolve_filler(self.filler, classifier.mean_colour)
        original = target_scores
        grids = self.grids((images.shape[-2], images.shape[-1]))
        level_maps = torch.zeros(len(images), len(grids), *images.shape[-2:], device=images.device)
        passes = torch.zeros(len(images), len(grids), dtype=torch.long)
        for index in range(len(images)):
            image, weight = images[index : index + 1], target_weights[index : index + 1]
            running = torch.zeros(images.shape[-2:], device=images.device)
            for level, grid in enumerate(grids):
                chosen = torch.arange(len(grid)) if level == 0 else refined_windows(grid, running, self.threshold).cpu()
                drops = torch.zeros(len(grid), device=images.device)
                perturbed = self._scores_of(classifier, image, grid, chosen, filler, weight)
                drops[chosen.to(images.device)] = original[index] - perturbed
                if self.relu:
                    drops = drops.clamp_min(0)
                level_maps[index, level] = grid.coverage_average(drops.view(1, *grid.shape))[0]
                running += level_maps[index, level]
                passes[index, level] = len(chosen)
        self.passes_ = passes
        return Explanation(
            saliency=level_maps.sum(1).cpu(), targets=targets, method=self.name, window_maps=level_maps.cpu(),
            samples_used=passes.sum(1),
        )

    def _scores_of(
        self,
        classifier: Classifier,
        image: torch.Tensor,
        grid: WindowGrid,
        chosen: torch.Tensor,
        filler: Filler,
        target_weights: torch.Tensor,
    ) -> torch.Tensor:
        """Target scores of one image 1×3×H×W with each chosen window of ``grid`` removed."""

        def masks_of(chunk: slice) -> torch.Tensor:
            return grid.masks(chosen[chunk]).to(image.device)

        stream = score_mask_stream(
            classifier, image, len(chosen), masks_of, filler, target_weights, self.batch_size, self.progress, "HiPe", self.score
        )
        scores = [chunk_scores[0] for _, _, chunk_scores in stream]
        return torch.cat(scores) if scores else torch.zeros(0, device=image.device)
