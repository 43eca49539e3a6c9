"""Extremal Perturbation (Fong, Patrick & Vedaldi, ICCV 2019), preservation variant, as the
authors compute it.

For each requested area ``a`` an independent smooth mask ``m_a = up(M_a)`` solves::

    max_M  z_C(Φ(x, up(M))) − λ_t · mean_u (sort↓(up(M))_u − r_a(u))²

where ``z_C`` is the target's logit, ``r_a`` has ones in its first ``⌊a·n⌋`` places (the area
constraint as a ranking loss: zero exactly when ``up(M)`` is a binary mask of area ``a``),
taken over the generator's whole canvas of ``n`` pixels (the image and its margin), and
λ grows geometrically, ``λ_t = λ₀·g^t``, so the class term shapes the mask first and the
area constraint is enforced by the end. The perturbation is a
blur pyramid (8 levels up to σ = 20 px, the image extended by the classifier's mean colour):
``Φ(x, m)(u) = (G_{σ(u)} * x)(u)`` with ``σ(u) = 20·(1 − m(u))``, linearly interpolated between
levels; at every other step (the first, third, …) the
perturbed image is mirrored left to right.

Defaults (224-px input), those of the authors' code: areas (0.05, 0.1, 0.2), ``up`` the
smooth-max generator (:class:`~maskscope.core.perturbation.masks.SmoothMaxUpsampler`, 32 cells along the
longer side, so a cell per 7 px, σ = 21 px), λ₀ = 300, g = 1.0035, SGD with lr 0.01, momentum 0.9 and dampening 0.9,
800 steps, ``M`` starting at 1 and clipped to [0, 1] after every step.

The area term ranks tied values as the authors' code does (``area_ties="sort"``: a plain
sort decides which of the tied values count as inside the area); ``area_ties="average"`` lets
them share the reference instead (the average-rank rule of
:func:`~maskscope.core.optimisation.regularisers.area_target`), so that neither the sort's order nor
rounding decides. The paper leaves ties open, but they steer the masks: the canvas starts
periodic, full of exact ties, and later holds plateaus at exactly 1. All (image, area) pairs are optimised together as
independent rows of a batch, ``batch_size`` rows at a time. :meth:`ExtremalPerturbation.adam_variant`
gives the variant this project used before (bilinear enlargement then a Gaussian, the
probability as reward, Adam lr 0.05, masks starting at 0.5, no flip, the blur level
blended with the image by the mask and the image reflected, the area over the image only).

The explanation's ``saliency`` is the sum over areas of ``up(M_a)`` (the paper's summary
map: pixels in every mask score highest); ``area_masks`` holds every area's mask parameter,
B×A×h×w, areas in the order given; ``scores_after`` is the target probability under the
first area's mask and ``kept_area`` that mask's area. Nothing is random, so the ``seed``
has no effect.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch

from maskscope.core.explanation import Explanation
from maskscope.core.optimisation.descent import Adam, Gradient, MomentumSGD, optimise_masks
from maskscope.core.optimisation.games import CLASS_LOSSES, MaskProblem, get_game
from maskscope.core.optimisation.regularisers import AREA_TIES, area_outside, area_target
from maskscope.core.perturbation.fillers import BlurPyramid
from maskscope.core.perturbation.jitter import AlternateFlip
from maskscope.core.perturbation.masks import SmoothMaxUpsampler, Upsampler
from maskscope.core.progress import Progress, progress_bar
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least, positive
from maskscope.methods.registry import register

MASK_GENERATORS = ("smooth_max", "gaussian")
OPTIMISERS = ("sgd", "adam")
PERTURBATIONS = ("pyramid", "blend")


class AreaConstraint:
    """The growing area term ``λ_t·mean (sort↓(up(m)) − r_a)²`` per mask row, over the
    generator's whole canvas (:meth:`SmoothMaxUpsampler.full`) or, without one, the image.

    ``weight`` is set by :class:`GrowingAreaWeight` before every step.
    """

    def __init__(
        self, areas: torch.Tensor, upsampler, size: tuple[int, int], weight: float, ties: str = "sort"
    ) -> None:
        self.areas = areas
        self.upsampler = upsampler
        self.size = size
        self.weight = weight
        self.ties = ties
        self._outside: torch.Tensor | None = None  # area_outside of the canvas, made at the first step

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        if isinstance(self.upsampler, SmoothMaxUpsampler):
            canvas = self.upsampler.full(masks)
        else:
            canvas = self.upsampler(masks, self.size)
        if self._outside is None:
            self._outside = area_outside(canvas[0].numel(), self.areas, canvas.device)
        return self.weight * area_target(canvas, self.areas, self.ties, outside=self._outside)

    def subset(self, index: torch.Tensor) -> "AreaConstraint":
        """The constraint of the rows ``index`` (its weight is set by :class:`GrowingAreaWeight` on the running problem)."""
        narrowed = copy.copy(self)
        narrowed.areas = self.areas[index.cpu()]
        narrowed._outside = None if self._outside is None else self._outside[index]
        return narrowed


class GrowingAreaWeight:
    """The plain gradient, with the area weight raised to ``λ₀·g^t`` before step ``t`` (on the
    running problem's constraint, ``constraint`` or a narrowed copy of it)."""

    def __init__(self, constraint: AreaConstraint, initial: float, growth: float) -> None:
        self.constraint = constraint
        self.initial = initial
        self.growth = growth
        self.step = 0
        self.gradient = Gradient()

    def __call__(self, problem: MaskProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        constraint = problem.regulariser if isinstance(problem.regulariser, AreaConstraint) else self.constraint
        constraint.weight = self.initial * self.growth**self.step
        self.step += 1
        return self.gradient(problem, masks)


@register
class ExtremalPerturbation(Method):
    """Extremal Perturbation: smooth masks of fixed areas that best preserve the class.

    Args:
        areas: target areas as fractions of the image; one mask each.
        resolution: mask-parameter cells along the image's longer side; a cell covers
            ``step = ⌈max(H, W)/resolution⌉`` pixels and the mask is ``⌈H/step⌉×⌈W/step⌉``
            (32 at 224 px: the authors' 7 px step).
        smooth_sigma: σ in image pixels of the mask generator (the smooth-max kernel's
            scale, or the Gaussian's after bilinear enlargement).
        mask_generator: ``"smooth_max"`` (the authors') or ``"gaussian"`` (bilinear then Gaussian).
        max_blur: σ of the strongest blur-pyramid level, in pixels.
        blur_levels: number of pyramid levels (the first is the image itself).
        perturbation: ``"pyramid"`` (the paper's: each pixel is its blur level, the image
            extended by the classifier's mean colour, kernels to 4σ, as the authors' code) or
            ``"blend"`` (``m·x + (1 − m)·`` the blur level, the image reflected, kernels to 3σ).
        area_weight: λ₀, the area term's initial weight.
        area_growth: g, the factor λ grows by at every step.
        area_ties: how the area term ranks tied mask values: ``"sort"`` (the authors') or
            ``"average"`` (they share the reference).
        class_loss: ``"logit"`` (maximise the logit ``z_C``), ``"probability"`` (maximise
            ``p_C``) or ``"cross_entropy"`` (minimise ``−log p_C``).
        optimiser: ``"sgd"`` (momentum and dampening ``momentum``) or ``"adam"``.
        lr: learning rate.
        momentum: SGD's momentum, also its dampening.
        init: the value every mask parameter starts at.
        flip_jitter: mirror the perturbed image at every other step.
        steps: optimisation steps.
        batch_size: (image, area) rows optimised at a time; bounds the peak memory (default:
            8 on a CPU, 64 on a GPU). Rows are independent, so it does not change the masks.
        progress: show one progress bar over the steps of every chunk of (image, area) rows.
    """

    name = "ep"
    game = "preservation"
    constraints = {
        "areas": Interval(0, 1, True, True), "resolution": at_least(1), "smooth_sigma": at_least(0),
        "mask_generator": OneOf(*MASK_GENERATORS), "max_blur": at_least(0), "blur_levels": at_least(1),
        "perturbation": OneOf(*PERTURBATIONS), "area_weight": at_least(0), "area_growth": positive(),
        "area_ties": OneOf(*AREA_TIES),
        "class_loss": OneOf(*CLASS_LOSSES), "optimiser": OneOf(*OPTIMISERS), "lr": positive(),
        "momentum": Interval(0, 1, high_open=True), "init": Interval(0, 1), "steps": at_least(1),
        "batch_size": at_least(1),
    }

    def __init__(
        self,
        areas: Sequence[float] = (0.05, 0.1, 0.2),
        resolution: int = 32,
        smooth_sigma: float = 21.0,
        mask_generator: str = "smooth_max",
        max_blur: float = 20.0,
        blur_levels: int = 8,
        perturbation: str = "pyramid",
        area_weight: float = 300.0,
        area_growth: float = 1.0035,
        area_ties: str = "sort",
        class_loss: str = "logit",
        optimiser: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        init: float = 1.0,
        flip_jitter: bool = True,
        steps: int = 800,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        self.areas = tuple(float(a) for a in areas)
        self.resolution = resolution
        self.smooth_sigma = smooth_sigma
        self.mask_generator = mask_generator
        self.max_blur = max_blur
        self.blur_levels = blur_levels
        self.perturbation = perturbation
        self.area_weight = area_weight
        self.area_growth = area_growth
        self.area_ties = area_ties
        self.class_loss = class_loss
        self.optimiser = optimiser
        self.lr = lr
        self.momentum = momentum
        self.init = init
        self.flip_jitter = flip_jitter
        self.steps = steps
        self.batch_size = batch_size
        self.progress = progress

    @classmethod
    def adam_variant(cls, **overrides) -> "ExtremalPerturbation":
        """The variant this project used before following the authors' code."""
        earlier = dict(
            mask_generator="gaussian",
            perturbation="blend",
            class_loss="probability",
            optimiser="adam",
            lr=0.05,
            init=0.5,
            flip_jitter=False,
            area_ties="average",
        )
        return cls(**{**earlier, **overrides})

    def cell_step(self, size: tuple[int, int]) -> int:
        """Image pixels per mask cell for an image of ``size`` (H, W)."""
        return math.ceil(max(size) / self.resolution)

    def _upsampler(self, size: tuple[int, int]):
        if self.mask_generator == "smooth_max":
            return SmoothMaxUpsampler(self.cell_step(size), self.smooth_sigma)
        return Upsampler("bilinear", self.smooth_sigma)

    def _optimise_rows(self, classifier, rows, row_weights, row_areas, upsampler, shape, scored, bar: Progress):
        """One batched optimisation of independent (image, area) rows: their masks, canvases,
        objective, and the target probability under the masks of the rows ``scored`` (the first area's)."""
        size = tuple(rows.shape[-2:])
        constraint = AreaConstraint(row_areas, upsampler, size, self.area_weight, self.area_ties)
        if self.perturbation == "pyramid":
            pyramid = BlurPyramid(self.max_blur, self.blur_levels, classifier.mean_colour.flatten(), 4.0, blended=False)
        else:
            pyramid = BlurPyramid(self.max_blur, self.blur_levels)
        problem = MaskProblem(
            classifier,
            rows,
            row_weights,
            get_game("preservation"),
            pyramid,
            upsampler,
            constraint,
            jitter=AlternateFlip() if self.flip_jitter else None,
            class_loss=self.class_loss,
        )
        init = torch.full((rows.shape[0], 1, *shape), float(self.init), device=rows.device)
        step_rule = MomentumSGD(self.lr, self.momentum, self.momentum) if self.optimiser == "sgd" else Adam(self.lr)
        result = optimise_masks(
            problem,
            init,
            GrowingAreaWeight(constraint, self.area_weight, self.area_growth),
            step_rule,
            self.steps,
            progress=bar,
        )
        with torch.no_grad():
            scores = problem.subset(scored).probabilities(result.masks[scored])
            full = upsampler(result.masks, size)
        return result.masks, full, scores, result.objective

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        count, height, width = images.shape[0], images.shape[-2], images.shape[-1]
        per_image = len(self.areas)
        upsampler = self._upsampler((height, width))
        step = self.cell_step((height, width))
        shape = (math.ceil(height / step), math.ceil(width / step))
        # row i·A + j is image i with area j
        rows = images.repeat_interleave(per_image, 0)
        row_weights = target_weights.repeat_interleave(per_image, 0)
        row_areas = torch.tensor(self.areas, dtype=torch.float64).repeat(count)  # on the host: see area_target
        chunk = default_batch_size(self.batch_size, images.device)
        starts = range(0, rows.shape[0], chunk)
        bar = progress_bar(total=len(starts) * self.steps, desc="EP", unit="step", disable=not self.progress)
        parts = []
        for s in starts:
            bar.set_postfix(rows=f"{s + 1}-{min(s + chunk, rows.shape[0])} of {rows.shape[0]}")
            places = torch.arange(s, min(s + chunk, rows.shape[0]))
            scored = (places % per_image == 0).nonzero()[:, 0].to(images.device)  # the first area's rows
            parts.append(self._optimise_rows(
                classifier, rows[s : s + chunk], row_weights[s : s + chunk], row_areas[s : s + chunk], upsampler, shape,
                scored, bar,
            ))
        bar.close()
        masks, full, scores, objective = (torch.cat(values) for values in zip(*parts))
        full = full.view(count, per_image, height, width)
        return Explanation(
            saliency=full.sum(1).cpu(),
            targets=targets,
            method=self.name,
            area_masks=masks.view(count, per_image, *shape).cpu(),
            scores_after=scores.cpu(),
            kept_area=full[:, 0].flatten(1).mean(1).cpu(),
            history=objective.view(count, per_image, -1).sum(1).cpu(),
        )
