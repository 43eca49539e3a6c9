"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das, Saenko, BMVC 2018).

The saliency of pixel ``λ`` is the expected score of the target over random masks that keep
it, estimated by Monte Carlo:

    S(λ) ≈ 1/(N·p) · Σ_{i=1..N} f_c(x ⊙ M_i) · M_i(λ)

Each mask ``M_i`` is a random binary ``s×s`` grid (each cell kept with probability ``p``),
upsampled bilinearly to ``(s+1)·C_H × (s+1)·C_W`` with the cell size ``C = ⌈H/s⌉`` and
cropped to H×W at a random offset in ``[0, C)``. Removed pixels take the filler's content;
the default, the classifier's mean colour, is the paper's zero in normalised space.
Defaults: N = ``samples`` = 4000, s = ``resolution`` = 7, p = ``keep`` = 0.5 (the paper used
N = 8000 for ResNet50). Masks are drawn by a generator seeded with ``seed`` and scored with the batched engine ``batch_size`` at a
time, so the map depends on the seed only.

Convergence stop (``stop_tolerance``, off by default; :mod:`maskscope.methods.sampling_stop`):
every ``stop_interval`` masks the running estimate ``S_n`` (the sum above over the first n
masks) is compared with the previous one, and an image stops once ``stop_checks`` comparisons
in a row reach Spearman ``ρ ≥ stop_tolerance``; its map is then ``S_n`` with ``N = n``.
``Explanation.samples_used`` records n.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Filler
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least
from maskscope.methods.registry import register
from maskscope.methods.sampling_stop import SamplingStop, stream_until_stable


def rise_masks(grids: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Shifted smooth masks N×H×W from binary grids N×s×s and offsets N×2 (rows, columns)."""
    height, width = size
    cells = grids.shape[-1]
    cell_h, cell_w = math.ceil(height / cells), math.ceil(width / cells)
    large = F.interpolate(
        grids[:, None], size=((cells + 1) * cell_h, (cells + 1) * cell_w), mode="bilinear", align_corners=False
    )[:, 0]
    rows = shifts[:, :1, None] + torch.arange(height, device=grids.device)[None, :, None]
    cols = shifts[:, None, 1:] + torch.arange(width, device=grids.device)[None, None, :]
    index = torch.arange(len(grids), device=grids.device)[:, None, None]
    return large[index, rows, cols]


@register
class RISE(Method):
    """RISE with the paper's defaults.

    Args:
        samples: number of random masks N.
        resolution: grid side s (cells).
        keep: probability p that a grid cell is kept.
        filler: content of removed pixels (``"mean"``: the classifier's mean colour).
        score: the class score explained, ``"probability"`` or ``"logit"``.
        batch_size: perturbed images per forward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
        stop_tolerance: stop an image's sampling once successive estimates agree to this
            Spearman ρ (``None``: always draw ``samples`` masks).
        stop_interval: masks between two estimates.
        stop_checks: successive agreeing estimates needed to stop.
    """

    name = "rise"
    needs_gradients = False
    constraints = {
        "samples": at_least(1), "resolution": at_least(1), "keep": Interval(0, 1, low_open=True),
        "score": OneOf(*SCORES), "batch_size": at_least(1), "stop_tolerance": Interval(-1, 1),
        "stop_interval": at_least(1), "stop_checks": at_least(1),
    }

    def __init__(
        self,
        samples: int = 4000,
        resolution: int = 7,
        keep: float = 0.5,
        filler: str | Filler = "mean",
        score: str = DEFAULT_SCORE,
        batch_size: int | None = None,
        progress: bool = False,
        stop_tolerance: float | None = None,
        stop_interval: int = 500,
        stop_checks: int = 2,
    ) -> None:
        self.samples = samples
        self.resolution = resolution
        self.keep = keep
        self.filler = filler
        self.score = score
        self.batch_size = batch_size
        self.progress = progress
        self.stop_tolerance = stop_tolerance
        self.stop_interval = stop_interval
        self.stop_checks = stop_checks

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        batch, _, height, width = images.shape
        generator = torch.Generator().manual_seed(seed)
        grids = (torch.rand(self.samples, self.resolution, self.resolution, generator=generator) < self.keep).float()
        limits = torch.tensor([math.ceil(height / self.resolution), math.ceil(width / self.resolution)])
        shifts = (torch.rand(self.samples, 2, generator=generator) * limits).long()
        filler = resolve_filler(self.filler, classifier.mean_colour)
        sums = torch.zeros(batch, height * width, device=images.device)
        device = images.device
        stop = SamplingStop(batch, self.samples, self.stop_tolerance, self.stop_interval, self.stop_checks)

        def masks_of(chunk: slice, _active: torch.Tensor) -> torch.Tensor:
            return rise_masks(grids[chunk].to(device), shifts[chunk].to(device), (height, width))

        stream = stream_until_stable(
            classifier, images, stop, masks_of, filler, target_weights, self.batch_size, self.progress, "RISE", self.score
        )
        for chunk, active, masks, scores in stream:
            sums.index_add_(0, active.to(device), scores @ masks.flatten(1))
            if stop.due(chunk.stop):
                stop.update(chunk.stop, sums[active.to(device)])
        used = stop.finish()
        saliency = sums / (used.to(sums)[:, None] * self.keep)
        return Explanation(
            saliency=saliency.view(batch, height, width).cpu(), targets=targets, method=self.name, samples_used=used
        )
