"""I-GOS (Qi, Khorram, Li, AAAI 2020): masks optimised along integrated gradients.

Deletion game on a low-resolution mask ``M`` (1 = keep), starting from ``M = 1``::

    min_M  F(M) = p_C(Φ(x, up(M))) + λ1·mean|1 − M| + λ2·TV_β(M)

with ``up`` bilinear, ``TV_β`` the anisotropic mean of ``|ΔM|^β`` (β = 2) and the filler a
heavy blur (kernel 51, σ = 50 for a 224-px image, scaled with the image side). The descent
direction replaces the class term's gradient by its integral along the path to the fully
removed image, with fresh noise ``n_s ~ N(0, 0.2)`` (ImageNet-normalised units, 0.045 in
pixel values) at each point::

    TG = (1/S)·Σ_{s=1..S} ∂p_C(Φ(x, (s/S)·up(M)) + n_s)/∂M + ∇(λ1·mean|1 − M| + λ2·TV_β(M)),  S = 20

and the step is the revised Armijo backtracking with projection on the paper's ``F``,
``F(P[M − α·TG]) − F(M) ≤ −β·α·‖TG‖²`` (start 200, factor 0.2, β = 1e-4, smallest 1e-5), at
most 15 iterations. The saliency is ``1 − up(M)``.

λ per mask resolution. The authors' code: 224: λ1 = 10, λ2 = 20; 112: λ1 = 3, λ2 = 60;
28: λ1 = 1, λ2 = 20 (:data:`AUTHORS_WEIGHTS_BY_RESOLUTION`, chosen for VGG19). maskscope's
defaults keep λ1 and divide λ2 by 40 (:data:`WEIGHTS_BY_RESOLUTION`): on the default model
the integrated gradient is a sparse, mixed-sign field, so a step long enough to lower ``p_C``
roughens the mask, and at the authors' λ2 the TV term rises by more than ``p_C`` falls on
every trial; the line search then takes no step and the mask stays at 1 (p 0.934 → 0.934 and
0.941 → 0.938 on two real photos). Other resolutions take the values of the nearest listed
one (14 and 7 → the 28 values, *inferred*).

λ1 schedule (``relax_l1``, on by default), as in the original I-GOS code: an image whose
probability at the mask is within 0.001 of its start after iteration ⌊T/2⌋ gets λ1/10, and
within 0.01 after iteration ⌊T/1.25⌋ a further /5 (:class:`L1Relaxation`). Without it an
electric-ray photo at p = 0.976 keeps ``M = 1``; with it p falls to 0.310.

At these defaults, on the first 8 imagenet-samples photos the default model is at least
50 % sure of, p under the final mask goes from 0.80 to 0.24 (mean), below half on each, with
66 % of the cells kept (``benchmarks/investigations/igos_real_photos.py``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, cast

import torch

from maskscope.core.optimisation.descent import ConvergenceStop, optimise_masks
from maskscope.core.optimisation.directions import IntegratedGradient, end_point_objective, end_point_scores
from maskscope.core.optimisation.games import MaskProblem, get_game
from maskscope.core.optimisation.line_search import ArmijoLineSearch
from maskscope.core.optimisation.regularisers import l1, total_variation
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Blur, Filler
from maskscope.core.perturbation.masks import Upsampler
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least, positive
from maskscope.methods.registry import register

#: (λ1, λ2) by mask resolution in the authors' code (tuned on VGG19)
AUTHORS_WEIGHTS_BY_RESOLUTION = {224: (10.0, 20.0), 112: (3.0, 60.0), 28: (1.0, 20.0)}

#: maskscope's defaults: the authors' λ1, their λ2 / 40 (see the module's docstring)
WEIGHTS_BY_RESOLUTION = {
    resolution: (weight_l1, weight_tv / 40) for resolution, (weight_l1, weight_tv) in AUTHORS_WEIGHTS_BY_RESOLUTION.items()
}

#: what the line search judges a step by: the paper's objective at the mask, or the noisy path objective
SEARCH_OBJECTIVES = ("end_point", "path")


def default_weights(resolution: int) -> tuple[float, float]:
    """(λ1, λ2) of the resolution in :data:`WEIGHTS_BY_RESOLUTION` nearest to ``resolution`` on a log scale."""
    nearest = min(WEIGHTS_BY_RESOLUTION, key=lambda listed: abs(math.log(listed / resolution)))
    return WEIGHTS_BY_RESOLUTION[nearest]


def heavy_blur(side: int) -> Blur:
    """The I-GOS filler scaled to an image side: kernel 51 and σ = 50 at 224 px."""
    scale = side / 224
    kernel = max(3, round(51 * scale))
    return Blur(sigma=50 * scale, kernel_size=kernel if kernel % 2 else kernel + 1)


class ScaledL1Problem(MaskProblem):
    """I-GOS's deletion problem (bilinear upsampling), with a factor on λ1 per image, ``l1_factor`` (B, start 1)."""

    def __init__(
        self, regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], classifier, images, target_weights, filler
    ):
        super().__init__(
            classifier, images, target_weights, get_game("deletion"), filler, Upsampler("bilinear"),
            lambda masks: self.penalty(masks, torch.arange(masks.shape[0], device=masks.device)),
        )
        self.scaled_regulariser = regulariser
        self.l1_factor = torch.ones(images.shape[0], device=images.device)

    def subset(self, index: torch.Tensor) -> "ScaledL1Problem":
        """The problem of the images ``index``, each with its λ1 factor."""
        narrowed = cast(ScaledL1Problem, super().subset(index))
        narrowed.l1_factor = self.l1_factor[index]
        narrowed.regulariser = lambda masks: narrowed.penalty(masks, torch.arange(masks.shape[0], device=masks.device))
        return narrowed

    def penalty(self, masks: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
        """``f_b·λ1·mean|1 − M| + λ2·TV_β(M)`` of masks of the images ``image_index``."""
        return self.scaled_regulariser(masks, self.l1_factor[image_index])


class L1Relaxation:
    """The λ1 schedule of the original I-GOS code (zhongangqi/IGOS), per image.

    With ``T`` iterations (``T > 3``): after iteration ⌊T/2⌋ (0-based), λ1 is divided by 10 for
    every image whose probability at the mask, ``p_C(Φ(x, up(M)))``, is within 0.001 of its
    value at ``M = 1``; after iteration ⌊T/1.25⌋, by 5 for every image still within 0.01. At
    T = 15 that is iterations 7 and 12. It acts on :attr:`ScaledL1Problem.l1_factor`, and
    costs one forward pass per image at each check.
    """

    def __init__(self, steps: int) -> None:
        #: iteration → (the largest move of p that counts as still, the divisor of λ1)
        self.checks = {} if steps <= 3 else {steps // 2: (1e-3, 10.0), int(steps / 1.25): (1e-2, 5.0)}
        #: p at M = 1 of the images in ``problem.image_index`` at the first check
        self.start: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, problem: ScaledL1Problem, masks: torch.Tensor, step: int) -> None:
        if step not in self.checks:
            return
        if self.start is None:
            self.start = (problem.image_index, problem.probabilities(torch.ones_like(masks)))
        places, probabilities = self.start  # the batch only narrows, in order
        start = probabilities[torch.searchsorted(places, problem.image_index)]
        largest_move, divisor = self.checks[step]
        still = (problem.probabilities(masks) - start).abs() <= largest_move
        problem.l1_factor.div_(torch.where(still, divisor, 1.0))


@register
class IGOS(Method):
    """I-GOS with the paper's defaults (224-px input, 28×28 mask).

    Args:
        resolution: side of the square mask ``M``.
        l1_weight: λ1, weight of ``mean|1 − M|``; ``None`` takes the per-resolution default.
        tv_weight: λ2, weight of the anisotropic ``TV_β``; ``None`` takes the per-resolution
            default (the authors' value / 40; pass 20 for theirs at 28×28).
        tv_beta: β of the TV term.
        filler: removal content; ``None`` is the heavy blur scaled to the image.
        points: path points ``S`` of the integrated gradient.
        noise: standard deviation of the noise at each path point, in ImageNet-normalised
            units whatever the classifier's normalisation (0.2: 0.045 in pixel values).
        steps: the most iterations.
        initial_step: ``α_u`` of the line search.
        shrink: ``η`` of the line search.
        decrease: ``β`` of the sufficient-decrease condition.
        smallest_step: ``α_l`` of the line search.
        search_objective: what the line search judges a step by: ``"end_point"``, the
            paper's ``F`` at the mask itself (the paper and its original code), or
            ``"path"``, the integrated objective with the iteration's noise (the iGOS++
            authors' code, for I-GOS too).
        relax_l1: the original I-GOS code's λ1 schedule (:class:`L1Relaxation`): an image
            whose probability at the mask has not moved by mid-way gets a smaller λ1.
        batch_size: perturbed images per classifier pass (path points of all images, chunked;
            default 8 on a CPU, 64 on a GPU): peak memory follows it, not the number of
            images or points.
        stop_tolerance: the convergence stop: an image stops once its mask has moved by less
            than this (the largest ``|ΔM|`` of a step) for ``stop_checks`` successive steps
            (``None``: off, the default; at 0.01 it saved 3 % of the steps and changed one map
            of 16, see docs/optimisation-speed.md).
        stop_checks: the successive still steps the convergence stop waits for.
        progress: show a progress bar.
    """

    name = "igos"
    constraints = {
        "resolution": at_least(1), "l1_weight": at_least(0), "tv_weight": at_least(0), "tv_beta": positive(),
        "points": at_least(1), "noise": at_least(0), "steps": at_least(1), "initial_step": positive(),
        "shrink": Interval(0, 1, True, True), "decrease": at_least(0), "smallest_step": positive(),
        "search_objective": OneOf(*SEARCH_OBJECTIVES), "batch_size": at_least(1), "stop_tolerance": at_least(0),
        "stop_checks": at_least(1),
    }
    game = "deletion"

    def __init__(
        self,
        resolution: int = 28,
        l1_weight: float | None = None,
        tv_weight: float | None = None,
        tv_beta: float = 2.0,
        filler: str | Filler | None = None,
        points: int = 20,
        noise: float = 0.2,
        steps: int = 15,
        initial_step: float = 200.0,
        shrink: float = 0.2,
        decrease: float = 1e-4,
        smallest_step: float = 1e-5,
        search_objective: str = "end_point",
        relax_l1: bool = True,
        batch_size: int | None = None,
        stop_tolerance: float | None = None,
        stop_checks: int = 3,
        progress: bool = False,
    ) -> None:
        self.resolution = resolution
        self.l1_weight = l1_weight
        self.tv_weight = tv_weight
        self.tv_beta = tv_beta
        self.filler = filler
        self.points = points
        self.noise = noise
        self.steps = steps
        self.initial_step = initial_step
        self.shrink = shrink
        self.decrease = decrease
        self.smallest_step = smallest_step
        self.search_objective = search_objective
        self.relax_l1 = relax_l1
        self.batch_size = batch_size
        self.stop_tolerance = stop_tolerance
        self.stop_checks = stop_checks
        self.progress = progress

    def _converge(self) -> ConvergenceStop | None:
        return None if self.stop_tolerance is None else ConvergenceStop(self.stop_tolerance, self.stop_checks)

    @property
    def weights(self) -> tuple[float, float]:
        """(λ1, λ2) in effect."""
        default_l1, default_tv = default_weights(self.resolution)
        return (
            default_l1 if self.l1_weight is None else self.l1_weight,
            default_tv if self.tv_weight is None else self.tv_weight,
        )

    def regulariser(self, masks: torch.Tensor, l1_factor: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``f·λ1·mean|1 − M| + λ2·TV_β(M)`` per mask, ``f`` = ``l1_factor`` (one per mask, or one for all)."""
        weight_l1, weight_tv = self.weights
        smoothness = total_variation(masks, self.tv_beta, False, "mean")
        return l1_factor * weight_l1 * l1(masks, 1.0, "mean") + weight_tv * smoothness

    def _filler(self, classifier, images: torch.Tensor) -> Filler:
        if self.filler is None:
            return heavy_blur(min(images.shape[-2:]))
        return resolve_filler(self.filler, classifier.mean_colour)

    def _direction(self, seed: int, class_weight: float = 1.0) -> IntegratedGradient:
        return IntegratedGradient(self.points, self.noise, seed, self.batch_size, class_weight)

    def _line_search(self, direction: IntegratedGradient) -> ArmijoLineSearch:
        """The revised Armijo rule on the objective ``search_objective`` names."""
        constants = (self.initial_step, self.shrink, self.decrease, self.smallest_step)
        if self.search_objective == "path":  # the direction's loss is F_IG(M) with this noise
            return ArmijoLineSearch(*constants, direction.objective)
        return ArmijoLineSearch(*constants, partial(end_point_objective, batch_size=self.batch_size), evaluate_start=True)

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        game = get_game("deletion")
        problem = ScaledL1Problem(self.regulariser, classifier, images, target_weights, self._filler(classifier, images))
        init = torch.ones(images.shape[0], 1, self.resolution, self.resolution, device=images.device)
        direction = self._direction(seed)
        search = self._line_search(direction)
        relaxation = L1Relaxation(self.steps) if self.relax_l1 else None
        result = optimise_masks(
            problem, init, direction, search, self.steps, progress=self.progress, description="I-GOS",
            after_step=relaxation, converge=self._converge(),
        )
        scores_after = end_point_scores(problem, result.masks, batch_size=self.batch_size)
        with torch.no_grad():
            full = problem.upsampler(result.masks, problem.size)
        return self._optimised(targets, game.saliency(full)[:, 0], result, scores_after)
