"""The iGOS++ objective: a deletion mask and an insertion mask optimised together.

The mask parameter is B×2×h×w: channel 0 is the deletion mask ``M_d``, channel 1 the
insertion mask ``M_i`` (both 1 = keep the image, start at 1); their product ``M = M_d·M_i`` is
the explanation. With the filler ``B`` (a heavy blur) and ``up`` bilinear::

    del(M) = p_C(up(M)·x + (1 − up(M))·B)            the image where M = 1, blur elsewhere
    ins(M) = p_C(up(M)·B + (1 − up(M))·x)            the image revealed where M = 0

    F = del(M_d) − ins(M_i) + del(M) − ins(M) + λ1·mean|1 − M| + λ2·BTV(M)

The descent direction (:class:`IntegratedDeletionInsertion`) replaces each class term by its
average over the path ``(s/S)·M``, s = 1…S, with fresh noise at each point, exactly as the
I-GOS integrated gradient does for its one term; all ``4·S`` path points and the four
noiseless terms of every image go through the classifier as one batch.
"""

from __future__ import annotations

from typing import Callable

import torch

from maskscope.core.classifier import Classifier
from maskscope.core.directions import IntegratedGradient
from maskscope.core.fillers import Filler, blend
from maskscope.core.masks import Upsampler


class DeletionInsertionProblem:
    """``F`` above on a batch of paired masks B×2×h×w, one value per image.

    Args:
        classifier: the model wrapper.
        images: B×3×H×W in [0, 1].
        targets: B×C target weights.
        filler: the removal content ``B`` (must not depend on the mask).
        upsampler: mask → image size.
        regulariser: combined masks B×1×h×w → B penalty.
    """

    def __init__(
        self,
        classifier: Classifier,
        images: torch.Tensor,
        targets: torch.Tensor,
        filler: Filler,
        upsampler: Upsampler,
        regulariser: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        if filler.depends_on_mask:
            raise ValueError("iGOS++ needs a filler that does not depend on the mask (a blur or a colour)")
        self.classifier = classifier
        self.images = images
        self.targets = targets.to(images)
        self.upsampler = upsampler
        self.regulariser = regulariser
        self.size = tuple(images.shape[-2:])
        self.filled = filler(images).detach()

    @staticmethod
    def combined(masks: torch.Tensor) -> torch.Tensor:
        """``M = M_d·M_i``, B×1×h×w."""
        return masks[:, :1] * masks[:, 1:]

    def term_inputs(self, masks: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
        """Inputs of the four class terms at path fractions ``t``: 4×T×B×3×H×W.

        Order: del(t·M_d), ins(t·M_i), del(t·M), ins(t·M).
        """
        deletion_mask = self.upsampler(masks[:, :1], self.size)
        insertion_mask = self.upsampler(masks[:, 1:], self.size)
        combined = self.upsampler(self.combined(masks), self.size)
        t = fractions.view(-1, 1, 1, 1, 1)
        return torch.stack(
            [
                blend(self.images, t * deletion_mask, self.filled),
                blend(self.filled, t * insertion_mask, self.images),
                blend(self.images, t * combined, self.filled),
                blend(self.filled, t * combined, self.images),
            ]
        )

    def class_terms(self, scores: torch.Tensor) -> torch.Tensor:
        """Signed sum of the four terms' scores (4×…×B → …×B): deletions count +, insertions −."""
        signs = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=scores.dtype, device=scores.device)
        return (signs.view(-1, *([1] * (scores.dim() - 1))) * scores).sum(0)

    def target_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Summed target probability of inputs …×B×3×H×W, shape …×B."""
        flat = inputs.flatten(0, -5)
        batch = self.images.shape[0]
        scores = self.classifier.probabilities(flat.flatten(0, 1))
        scores = (scores.view(-1, batch, scores.shape[-1]) * self.targets).sum(-1)
        return scores.view(inputs.shape[:-3])

    def objective(self, masks: torch.Tensor) -> torch.Tensor:
        """``F`` with the noiseless end point of each term (t = 1), per image."""
        one = torch.ones(1, dtype=masks.dtype, device=masks.device)
        scores = self.target_scores(self.term_inputs(masks, one))[:, 0]
        return self.class_terms(scores) + self.regulariser(self.combined(masks))

    def deletion_score(self, masks: torch.Tensor) -> torch.Tensor:
        """``del(M)`` of the combined mask, per image."""
        return self.target_scores(blend(self.images, self.upsampler(self.combined(masks), self.size), self.filled)[None])[0]


class IntegratedDeletionInsertion(IntegratedGradient):
    """The integrated gradient of the four iGOS++ terms plus the regulariser's gradient.

    Arguments as for :class:`~maskscope.core.directions.IntegratedGradient`; each term draws
    its own noise.
    """

    def __call__(self, problem: DeletionInsertionProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = problem.images
        variable = masks.detach().requires_grad_(True)
        fractions = torch.arange(1, self.points + 1, dtype=images.dtype, device=images.device) / self.points
        fractions = torch.cat([fractions, fractions.new_ones(1)])  # S path points, then the noiseless end
        inputs = problem.term_inputs(variable, fractions)  # 4×(S+1)×B×3×H×W
        if self.noise > 0:
            noise = torch.stack([self._noise(images, problem.classifier.std) for _ in range(4)])
            inputs = torch.cat([inputs[:, : self.points] + noise, inputs[:, self.points :]], dim=1)
        scores = problem.target_scores(inputs)  # 4×(S+1)×B
        path_terms = problem.class_terms(scores[:, : self.points]).mean(0)
        regulariser = problem.regulariser(problem.combined(variable))
        (grad,) = torch.autograd.grad((path_terms + regulariser).sum(), variable)
        objective = problem.class_terms(scores[:, self.points]) + regulariser
        return objective.detach(), grad
