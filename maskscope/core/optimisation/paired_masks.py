"""The iGOS++ objective: a deletion mask and an insertion mask optimised together.

The mask parameter is B×2×h×w: channel 0 is the deletion mask ``M_d``, channel 1 the
insertion mask ``M_i`` (both 1 = keep the image, start at 1); their product ``M = M_d·M_i`` is
the explanation. With the filler ``B`` (a heavy blur) and ``up`` bilinear::

    del(M) = p_C(up(M)·x + (1 − up(M))·B)            the image where M = 1, blur elsewhere
    ins(M) = p_C(up(M)·B + (1 − up(M))·x)            the image revealed where M = 0

    F = del(M_d) − ins(M_i) + del(M) − ins(M) + λ1·mean|1 − M| + λ2·BTV(M)

Each class term is integrated along the path ``(s/S)·M``, s = 1…S, with fresh noise at each
point, exactly as the I-GOS integrated gradient does for its one term
(:class:`~maskscope.core.optimisation.directions.IntegratedGradient` with this problem's four terms, and
``class_weight = ½`` as in the authors' code, which halves the four terms' gradient to
balance them against the regulariser's).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.perturbation.fillers import Filler, blend
from maskscope.core.perturbation.masks import Upsampler

#: order of the four class terms and their signs: del(M_d), ins(M_i), del(M), ins(M)
TERM_SIGNS = (1.0, -1.0, 1.0, -1.0)
#: the term whose end-point score is the deletion score of the explanation ``M``
COMBINED_DELETION = 2


class DeletionInsertionProblem:
    """``F`` above on a batch of paired masks B×2×h×w, as a path problem for the integrated gradient.

    Args:
        classifier: the model wrapper.
        images: B×3×H×W in [0, 1].
        target_weights: B×C target weights (multi-hot).
        filler: the removal content ``B`` (must not depend on the mask).
        upsampler: mask → image size.
        regulariser: ``regulariser(M, image_index)``: combined masks N×1×h×w of the images
            ``image_index`` → N penalties.
    """

    terms = len(TERM_SIGNS)

    def __init__(
        self,
        classifier: Classifier,
        images: torch.Tensor,
        target_weights: torch.Tensor,
        filler: Filler,
        upsampler: Upsampler,
        regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> None:
        if filler.depends_on_mask:
            raise ValueError("iGOS++ needs a filler that does not depend on the mask (a blur or a colour)")
        self.classifier = classifier
        self.images = images
        self.target_weights = target_weights.to(images)
        self.upsampler = upsampler
        self.regulariser = regulariser
        self.size = (images.shape[-2], images.shape[-1])
        self.filled = filler(images).detach()
        self.image_index = torch.arange(images.shape[0], device=images.device)

    def subset(self, index: torch.Tensor) -> "DeletionInsertionProblem":
        """The problem of the images ``index`` (places in this batch); the regulariser is asked
        for the images' places in the original batch."""
        narrowed = copy.copy(self)
        narrowed.images, narrowed.filled = self.images[index], self.filled[index]
        narrowed.target_weights = self.target_weights[index]
        regulariser = self.regulariser
        narrowed.image_index = self.image_index[index]
        narrowed.regulariser = lambda masks, image_index: regulariser(masks, index[image_index])
        return narrowed

    @staticmethod
    def combined(masks: torch.Tensor) -> torch.Tensor:
        """``M = M_d·M_i``, B×1×h×w."""
        return masks[:, :1] * masks[:, 1:]

    def path_inputs(
        self, masks: torch.Tensor, image_index: torch.Tensor, term_index: torch.Tensor, fractions: torch.Tensor
    ) -> torch.Tensor:
        """Inputs of the terms ``term_index`` at ``t·M_d``, ``t·M_i`` or ``t·M`` (masks N×2×h×w)."""
        choices = torch.stack([masks[:, :1], masks[:, 1:], self.combined(masks), self.combined(masks)], 1)
        chosen = choices[torch.arange(len(masks), device=masks.device), term_index]
        path_masks = fractions.view(-1, 1, 1, 1) * self.upsampler(chosen, self.size)
        images, filled = self.images[image_index], self.filled[image_index]
        deleting = (term_index % 2 == 0).view(-1, 1, 1, 1)
        return torch.where(deleting, blend(images, path_masks, filled), blend(filled, path_masks, images))

    def path_values(self, scores: torch.Tensor, term_index: torch.Tensor) -> torch.Tensor:
        """Deletion terms count +, insertion terms −."""
        return torch.tensor(TERM_SIGNS, dtype=scores.dtype, device=scores.device)[term_index] * scores

    def penalty(self, masks: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
        """The regulariser of the combined masks."""
        return self.regulariser(self.combined(masks), image_index)
