"""Extremal Perturbation (Fong, Patrick & Vedaldi, ICCV 2019), preservation variant.

For each requested area ``a`` an independent smooth mask ``m_a`` solves::

    min_m  −p_C(Φ(x, up(m))) + λ_t · mean_u (sort↓(up(m))_u − r_a(u))²

where ``r_a`` has ones in its first ``⌊a·HW⌋`` places (the area constraint as a ranking
loss: zero exactly when ``up(m)`` is a binary mask of area ``a``), and λ grows
geometrically, ``λ_t = λ₀·g^t``, so the class term shapes the mask first and the area
constraint is enforced by the end. ``Φ(x, m) = m·x + (1 − m)·P(x, m)`` where ``P`` is a blur
pyramid (8 levels up to σ = 20 px) whose level is selected per pixel by ``m``.

Defaults (224-px input): areas (0.05, 0.1, 0.2), a mask parameter of one cell per 7 px,
``up`` = bilinear enlargement then a Gaussian of σ = 21 px, λ₀ = 300, g = 1.0035, Adam with
lr 0.05, 800 steps, masks starting at 0.5 and clipped to [0, 1] after every step.

Deviations from the paper: the smooth masks use the project's ``Upsampler`` (bilinear then
Gaussian smoothing) instead of the smooth-max convolution; the class term is the target
probability (or ``−log p_C``) instead of the logit; the step rule is Adam instead of SGD with
momentum; there is no flip jitter.

All (image, area) pairs are optimised together as independent rows of one batch. The
explanation's ``saliency`` is the sum over areas of ``up(m_a)`` (the paper's summary map:
pixels in every mask score highest); ``mask`` holds every area's mask parameter, B×A×h×w,
areas in the order given; ``scores_after`` is the target probability under the first
area's mask. Nothing is random, so the ``seed`` has no effect.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from maskscope.core.explanation import Explanation
from maskscope.core.fillers import BlurPyramid
from maskscope.core.games import MaskProblem, get_game
from maskscope.core.masks import Upsampler
from maskscope.core.optimisation import Adam, Gradient, optimise_masks
from maskscope.core.regularisers import area_target
from maskscope.methods.base import Method
from maskscope.core.games import CLASS_LOSSES
from maskscope.methods.parameters import Interval, OneOf, at_least, positive
from maskscope.methods.registry import register


class AreaConstraint:
    """The growing area term ``λ_t·mean (sort↓(up(m)) − r_a)²`` per mask row.

    ``weight`` is set by :class:`GrowingAreaWeight` before every step.
    """

    def __init__(self, areas: torch.Tensor, upsampler: Upsampler, size: tuple[int, int], weight: float) -> None:
        self.areas = areas
        self.upsampler = upsampler
        self.size = size
        self.weight = weight

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        return self.weight * area_target(self.upsampler(masks, self.size), self.areas)


class GrowingAreaWeight:
    """The plain gradient, with the area weight raised to ``λ₀·g^t`` before step ``t``."""

    def __init__(self, constraint: AreaConstraint, initial: float, growth: float) -> None:
        self.constraint = constraint
        self.initial = initial
        self.growth = growth
        self.step = 0
        self.gradient = Gradient()

    def __call__(self, problem: MaskProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.constraint.weight = self.initial * self.growth**self.step
        self.step += 1
        return self.gradient(problem, masks)


@register
class ExtremalPerturbation(Method):
    """Extremal Perturbation: smooth masks of fixed areas that best preserve the class.

    Args:
        areas: target areas as fractions of the image; one mask each.
        mask_step: image pixels per mask-parameter cell (the mask is ``⌈H/step⌉×⌈W/step⌉``).
        smooth_sigma: σ in image pixels of the Gaussian applied after bilinear enlargement.
        max_blur: σ of the strongest blur-pyramid level, in pixels.
        blur_levels: number of pyramid levels (the first is the image itself).
        area_weight: λ₀, the area term's initial weight.
        area_growth: g, the factor λ grows by at every step.
        class_loss: ``"probability"`` (maximise ``p_C``) or ``"cross_entropy"`` (minimise ``−log p_C``).
        lr: Adam learning rate.
        steps: optimisation steps.
        progress: show a progress bar.
    """

    name = "ep"
    constraints = {
        "areas": Interval(0, 1, True, True), "mask_step": at_least(1), "smooth_sigma": at_least(0),
        "max_blur": at_least(0), "blur_levels": at_least(1), "area_weight": at_least(0), "area_growth": positive(),
        "class_loss": OneOf(*CLASS_LOSSES), "lr": positive(), "steps": at_least(1), "batch_size": at_least(1),
    }

    def __init__(
        self,
        areas: Sequence[float] = (0.05, 0.1, 0.2),
        mask_step: int = 7,
        smooth_sigma: float = 21.0,
        max_blur: float = 20.0,
        blur_levels: int = 8,
        area_weight: float = 300.0,
        area_growth: float = 1.0035,
        class_loss: str = "probability",
        lr: float = 0.05,
        steps: int = 800,
        progress: bool = False,
    ) -> None:
        if not areas or not all(0 < a < 1 for a in areas):
            raise ValueError(f"areas must be fractions in (0, 1), got {areas!r}")
        self.areas = tuple(float(a) for a in areas)
        self.mask_step = mask_step
        self.smooth_sigma = smooth_sigma
        self.max_blur = max_blur
        self.blur_levels = blur_levels
        self.area_weight = area_weight
        self.area_growth = area_growth
        self.class_loss = class_loss
        self.lr = lr
        self.steps = steps
        self.progress = progress

    def _explain(self, classifier, images, targets, weights, seed):
        count, height, width = images.shape[0], *images.shape[-2:]
        per_image = len(self.areas)
        # row i·A + j is image i with area j
        rows = images.repeat_interleave(per_image, 0)
        row_weights = weights.repeat_interleave(per_image, 0)
        row_areas = torch.tensor(self.areas, device=images.device).repeat(count)
        upsampler = Upsampler("bilinear", self.smooth_sigma)
        constraint = AreaConstraint(row_areas, upsampler, (height, width), self.area_weight)
        problem = MaskProblem(
            classifier,
            rows,
            row_weights,
            get_game("preservation"),
            BlurPyramid(self.max_blur, self.blur_levels),
            upsampler,
            constraint,
            class_loss=self.class_loss,
        )
        shape = (math.ceil(height / self.mask_step), math.ceil(width / self.mask_step))
        init = torch.full((rows.shape[0], 1, *shape), 0.5, device=images.device)
        result = optimise_masks(
            problem,
            init,
            GrowingAreaWeight(constraint, self.area_weight, self.area_growth),
            Adam(self.lr),
            self.steps,
            progress=self.progress,
            description="EP",
        )
        with torch.no_grad():
            scores_after = problem.class_scores(result.masks).view(count, per_image)[:, 0]
            full = upsampler(result.masks, (height, width)).view(count, per_image, height, width)
        return Explanation(
            saliency=full.sum(1).cpu(),
            targets=targets,
            method=self.name,
            mask=result.masks.view(count, per_image, *shape).cpu(),
            scores_after=scores_after.cpu(),
            history=result.objective.view(count, per_image, -1).sum(1).cpu(),
        )
