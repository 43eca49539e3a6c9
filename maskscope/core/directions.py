"""Descent directions beyond the plain gradient, for :func:`~maskscope.core.optimisation.optimise_masks`.

The integrated gradient (I-GOS) averages the class term's gradient along the straight path
from the fully removed image (mask 0) to the current mask, with fresh noise at each point::

    ∇IG(M) = (1/S)·Σ_{s=1..S} ∂ℓ(p_C(Φ(x, (s/S)·up(M)) + n_s))/∂M,   n_s ~ N(0, σ²) (normalised space)

and the direction is ``∇IG(M) + ∇R(M)`` with ``R`` the problem's regulariser. All ``S``
path points of every image, together with the noiseless point ``M`` that gives the
objective ``F(M)``, go through the classifier as one batch.
"""

from __future__ import annotations

import torch

from maskscope.core.fillers import blend
from maskscope.core.games import MaskProblem


class IntegratedGradient:
    """The integrated gradient along the mask path, with noise drawn per image.

    Args:
        points: number of path points ``S`` (I-GOS: 20).
        noise: standard deviation ``σ`` of the Gaussian noise added at each path point, in
            the classifier's normalised space (I-GOS: 0.2); 0 disables it.
        seed: seeds one noise generator per image, so an image draws the same noise alone
            or in a batch.

    The problem's jitter is not applied; the path is ``(s/S)·up(M)``, which equals
    ``up((s/S)·M)`` for the linear upsamplers.
    """

    def __init__(self, points: int = 20, noise: float = 0.2, seed: int = 0) -> None:
        if points < 1:
            raise ValueError(f"points must be at least 1, got {points}")
        self.points = points
        self.noise = noise
        self.seed = seed
        self._generators: list[torch.Generator] = []

    def _noise(self, images: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """S×B×3×H×W noise in pixel space, each image's from its own generator."""
        batch = images.shape[0]
        if len(self._generators) != batch:
            self._generators = [torch.Generator().manual_seed(self.seed) for _ in range(batch)]
        shape = (self.points, *images.shape[1:])
        draws = torch.stack([torch.randn(shape, generator=g) for g in self._generators], dim=1)
        return self.noise * draws.to(images) * std.to(images)

    def __call__(self, problem: MaskProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = problem.images
        batch = images.shape[0]
        variable = masks.detach().requires_grad_(True)
        upsampled = problem.upsampler(variable, problem.size)  # B×1×H×W
        fractions = torch.arange(1, self.points + 1, dtype=images.dtype, device=images.device) / self.points
        path_masks = fractions.view(-1, 1, 1, 1, 1) * upsampled[None]  # S×B×1×H×W
        if problem.filled is not None:
            filled = problem.filled[None]
        else:
            repeated = images[None].expand(self.points, *images.shape).flatten(0, 1)
            filled = problem.filler(repeated, path_masks.flatten(0, 1)).view(self.points, *images.shape)
        path = blend(images[None], path_masks, filled)
        if self.noise > 0:
            path = path + self._noise(images, problem.classifier.std)
        clean = problem.perturb(masks.detach(), jitter=False)
        inputs = torch.cat([path.flatten(0, 1), clean])
        scores = (problem.classifier.probabilities(inputs) * problem.targets.repeat(self.points + 1, 1)).sum(1)
        path_terms = problem.class_term(scores[: self.points * batch]).view(self.points, batch).mean(0)
        regulariser = problem.regulariser(variable)
        (grad,) = torch.autograd.grad((path_terms + regulariser).sum(), variable)
        objective = problem.class_term(scores[self.points * batch :]) + regulariser
        return objective.detach(), grad
