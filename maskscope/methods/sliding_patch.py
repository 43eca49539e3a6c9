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
"""

from __future__ import annotations

import torch

from maskscope.core.classifier import DEFAULT_SCORE, SCORES
from maskscope.core.explanation import Explanation
from maskscope.core.filler_specs import resolve_filler
from maskscope.core.fillers import Filler
from maskscope.core.windows import WindowGrid, score_windows, square_stamp
from maskscope.methods.base import Method
from maskscope.methods.parameters import OneOf, at_least
from maskscope.methods.registry import register


@register
class SlidingPatch(Method):
    """SP / SP-G: the fall of the target probability with a p×p patch filled in.

    Args:
        window: side p of the square patch, in pixels.
        stride: step s between patch positions.
        filler: content of the patch: ``"mean"`` (the classifier's mean colour; SP), an
            inpainter such as ``"inpaint"`` (SP-G), any spec ``resolve_filler`` accepts, or a
            :class:`~maskscope.core.fillers.Filler`.
        score: the class score explained, ``"probability"`` or ``"logit"``.
        batch_size: perturbed images per forward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.

    The explanation's ``window_drops`` holds the attributions at the patch positions, B×rows×cols.
    """

    name = "sliding_patch"
    needs_gradients = False
    constraints = {"window": at_least(1), "stride": at_least(1), "score": OneOf(*SCORES), "batch_size": at_least(1)}

    def __init__(
        self,
        window: int = 29,
        stride: int = 3,
        filler: str | Filler = "mean",
        score: str = DEFAULT_SCORE,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        self.window = window
        self.stride = stride
        self.filler = filler
        self.score = score
        self.batch_size = batch_size
        self.progress = progress

    def _explain(self, classifier, images, targets, weights, seed):
        grid = WindowGrid(square_stamp(self.window), self.window, self.stride, tuple(images.shape[-2:]), "valid")
        filler = resolve_filler(self.filler, classifier.mean_colour)
        with torch.no_grad():
            original = (classifier.class_scores(images, self.score) * weights).sum(1)
        perturbed = score_windows(classifier, images, grid, filler, weights, self.batch_size, self.progress, self.score)
        drops = original[:, None, None] - perturbed
        return Explanation(
            saliency=grid.interpolate(drops).cpu(), targets=targets, method=self.name, window_drops=drops.cpu()
        )
