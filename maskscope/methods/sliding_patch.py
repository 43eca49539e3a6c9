"""Sliding patch (SP) and SP-G (Zeiler & Fergus' occlusion as used by Agarwal & Nguyen, 2020).

A p×p patch slides over the image with stride s, at *valid* positions only (the patch never
leaves the image). For the patch whose top-left corner is ``(r_i, c_j)`` the pixels under it
are replaced by the filler, ``x̃_ij = Φ(x, m_ij)``, and the attribution of that position is
the fall of the target's probability:

    A_ij = p_c(x) − p_c(x̃_ij),   i = 0 … ⌊(H − p)/s⌋,  j = 0 … ⌊(W − p)/s⌋

(66×66 positions for p = 29, s = 3 on a 224 image). The map of positions is brought to the
image bilinearly: ``A_ij`` sits at its patch's centre ``(r_i + (p − 1)/2, c_j + (p − 1)/2)``
(pixels 14, 17, …, 209 for the defaults), pixels between centres are interpolated and the
border strips beyond the outermost centres (14 px wide for the defaults) repeat the nearest
value. The paper's default: p = 29, s = 3, filler = mean colour (SP) or an inpainter
(SP-G: ``filler="inpaint"``, whose content is computed for every patch's hole).

Convergence stop (``stop_tolerance``, off by default; :mod:`maskscope.methods.sampling_stop`):
the samples are the patch positions, taken coarse to fine (every 2^L-th row and column for
the largest L first, row-major within a level), and every ``stop_interval`` positions the grid
``A`` is estimated with each position not yet scored given the drop of its nearest scored one.
An image stops once ``stop_checks`` successive estimates in a row agree with the one before by
Spearman ``ρ ≥ stop_tolerance``; its ``window_drops`` and map are then that estimate.
``Explanation.samples_used`` records the positions scored.
"""

from __future__ import annotations

import torch
from scipy.ndimage import distance_transform_edt

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Filler
from maskscope.core.scoring.windows import WindowGrid, score_windows, square_stamp
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least
from maskscope.methods.registry import register
from maskscope.methods.sampling_stop import SamplingStop, stream_until_stable


def coarse_to_fine(shape: tuple[int, int]) -> torch.Tensor:
    """Row-major indices of a rows×cols grid, coarsest lattice first: position (i, j) belongs to
    level L when 2^L divides both i and j (2^L below the grid's longer side); higher levels come
    first, row-major within a level, so every prefix is spread over the whole grid."""
    rows, cols = shape
    i, j = torch.arange(rows)[:, None], torch.arange(cols)[None, :]
    level = torch.zeros(rows, cols, dtype=torch.long)
    step = 2
    while step < max(rows, cols):
        level += ((i % step == 0) & (j % step == 0)).long()
        step *= 2
    return torch.argsort(-level.flatten(), stable=True)


def nearest_filled(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Values B×rows×cols where ``known`` (rows×cols), elsewhere the nearest known position's value."""
    _, (rows, cols) = distance_transform_edt(~known.numpy(), return_indices=True)
    return values[:, torch.from_numpy(rows), torch.from_numpy(cols)]


@register
class SlidingPatch(Method):
    """SP / SP-G: the fall of the target probability with a p×p patch filled in.

    Args:
        window: side p of the square patch, in pixels.
        stride: step s between patch positions.
        filler: content of the patch: ``"mean"`` (the classifier's mean colour; SP), an
            inpainter such as ``"inpaint"`` (SP-G), any spec ``resolve_filler`` accepts, or a
            :class:`~maskscope.core.perturbation.fillers.Filler`.
        score: the class score explained, ``"probability"`` or ``"logit"``.
        batch_size: perturbed images per forward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
        stop_tolerance: stop an image once successive estimates of its position grid agree to
            this Spearman ρ (``None``: score every position).
        stop_interval: positions between two estimates.
        stop_checks: successive agreeing estimates needed to stop.

    The explanation's ``window_drops`` holds the attributions at the patch positions, B×rows×cols.
    """

    name = "sliding_patch"
    needs_gradients = False
    constraints = {
        "window": at_least(1), "stride": at_least(1), "score": OneOf(*SCORES), "batch_size": at_least(1),
        "stop_tolerance": Interval(-1, 1), "stop_interval": at_least(1), "stop_checks": at_least(1),
    }

    def __init__(
        self,
        window: int = 29,
        stride: int = 3,
        filler: str | Filler = "mean",
        score: str = DEFAULT_SCORE,
        batch_size: int | None = None,
        progress: bool = False,
        stop_tolerance: float | None = None,
        stop_interval: int = 500,
        stop_checks: int = 2,
    ) -> None:
        self.window = window
        self.stride = stride
        self.filler = filler
        self.score = score
        self.batch_size = batch_size
        self.progress = progress
        self.stop_tolerance = stop_tolerance
        self.stop_interval = stop_interval
        self.stop_checks = stop_checks

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        grid = WindowGrid(square_stamp(self.window), self.window, self.stride, tuple(images.shape[-2:]), "valid")
        filler = resolve_filler(self.filler, classifier.mean_colour)
        original = target_scores
        if self.stop_tolerance is None:
            perturbed = score_windows(
                classifier, images, grid, filler, target_weights, self.batch_size, self.progress, self.score
            )
            drops = original[:, None, None] - perturbed
            used = torch.full((len(images),), len(grid))
        else:
            drops, used = self._drops_until_stable(classifier, images, grid, filler, target_weights, original)
        return Explanation(
            saliency=grid.interpolate(drops).cpu(), targets=targets, method=self.name, window_drops=drops.cpu(),
            samples_used=used,
        )

    def _drops_until_stable(self, classifier, images, grid, filler, target_weights, original):
        """Drops B×rows×cols scored coarse to fine until each image's estimate is stable, and the positions used (B)."""
        order = coarse_to_fine(grid.shape)
        drops = torch.zeros(len(images), len(grid))
        stop = SamplingStop(len(images), len(grid), self.stop_tolerance, self.stop_interval, self.stop_checks)

        def masks_of(chunk: slice, _active: torch.Tensor) -> torch.Tensor:
            return grid.masks(order[chunk]).to(images.device)

        def estimate(rows: torch.Tensor, scored: int) -> torch.Tensor:
            known = torch.zeros(len(grid), dtype=torch.bool)
            known[order[:scored]] = True
            return nearest_filled(drops[rows].view(-1, *grid.shape), known.view(grid.shape))

        stream = stream_until_stable(
            classifier, images, stop, masks_of, filler, target_weights, self.batch_size, self.progress, "windows", self.score
        )
        for chunk, active, _, scores in stream:
            drops[active[:, None], order[chunk][None]] = (original[active.to(images.device), None] - scores).cpu()
            if stop.due(chunk.stop):
                stop.update(chunk.stop, estimate(active, chunk.stop))
        used = stop.finish()
        return torch.cat([estimate(torch.tensor([b]), int(n)) for b, n in enumerate(used)]), used
