"""I-GOS (Qi, Khorram, Li, AAAI 2020): masks optimised along integrated gradients.

Deletion game on a low-resolution mask ``M`` (1 = keep), starting from ``M = 1``::

    min_M  p_C(Φ(x, up(M))) + λ1·mean|1 − M| + λ2·TV_β(M)

with ``up`` bilinear, ``TV_β`` the anisotropic mean of ``|ΔM|^β`` (β = 2) and the filler a
heavy blur (kernel 51, σ = 50 for a 224-px image, scaled with the image side). The descent
direction replaces the class term's gradient by its integral along the path to the fully
removed image, with fresh noise ``n_s ~ N(0, 0.2)`` (normalised space) at each point::

    TG = (1/S)·Σ_{s=1..S} ∂p_C(Φ(x, (s/S)·up(M)) + n_s)/∂M + ∇(λ1·mean|1 − M| + λ2·TV_β(M)),  S = 20

and the step is the revised Armijo backtracking with projection (start 200, factor 0.2,
β = 1e-4, smallest 1e-5), at most 15 iterations. λ per mask resolution (authors' code):
224: λ1 = 10, λ2 = 20; 112: λ1 = 3, λ2 = 60; 28: λ1 = 1, λ2 = 20. Other resolutions take
the values of the nearest of these (14 and 7 → the 28 values, *inferred*). The saliency is
``1 − up(M)``.
"""

from __future__ import annotations

import math

import torch

from maskscope.core.directions import IntegratedGradient, end_point_scores
from maskscope.core.filler_specs import resolve_filler
from maskscope.core.fillers import Blur, Filler
from maskscope.core.games import MaskProblem, get_game
from maskscope.core.line_search import ArmijoLineSearch
from maskscope.core.masks import Upsampler
from maskscope.core.optimisation import optimise_masks
from maskscope.core.regularisers import l1, total_variation
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, at_least, positive
from maskscope.methods.registry import register

#: (λ1, λ2) by mask resolution, from the authors' code
WEIGHTS_BY_RESOLUTION = {224: (10.0, 20.0), 112: (3.0, 60.0), 28: (1.0, 20.0)}


def default_weights(resolution: int) -> tuple[float, float]:
    """(λ1, λ2) of the listed resolution nearest to ``resolution`` on a log scale."""
    nearest = min(WEIGHTS_BY_RESOLUTION, key=lambda listed: abs(math.log(listed / resolution)))
    return WEIGHTS_BY_RESOLUTION[nearest]


def heavy_blur(side: int) -> Blur:
    """The I-GOS filler scaled to an image side: kernel 51 and σ = 50 at 224 px."""
    scale = side / 224
    kernel = max(3, round(51 * scale))
    return Blur(sigma=50 * scale, kernel_size=kernel if kernel % 2 else kernel + 1)


@register
class IGOS(Method):
    """I-GOS with the paper's defaults (224-px input, 28×28 mask).

    Args:
        resolution: side of the square mask ``M``.
        l1_weight: λ1, weight of ``mean|1 − M|``; ``None`` takes the per-resolution default.
        tv_weight: λ2, weight of the anisotropic ``TV_β``; ``None`` takes the per-resolution default.
        tv_beta: β of the TV term.
        filler: removal content; ``None`` is the heavy blur scaled to the image.
        points: path points ``S`` of the integrated gradient.
        noise: standard deviation of the noise at each path point (normalised space).
        steps: the most iterations.
        initial_step: ``α_u`` of the line search.
        shrink: ``η`` of the line search.
        decrease: ``β`` of the sufficient-decrease condition.
        smallest_step: ``α_l`` of the line search.
        batch_size: perturbed images per classifier pass (path points of all images, chunked;
            default 8 on a CPU, 64 on a GPU): peak memory follows it, not the number of
            images or points.
        progress: show a progress bar.
    """

    name = "igos"
    constraints = {
        "resolution": at_least(1), "l1_weight": at_least(0), "tv_weight": at_least(0), "tv_beta": positive(),
        "points": at_least(1), "noise": at_least(0), "steps": at_least(1), "initial_step": positive(),
        "shrink": Interval(0, 1, True, True), "decrease": at_least(0), "smallest_step": positive(), "batch_size": at_least(1),
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
        batch_size: int | None = None,
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
        self.batch_size = batch_size
        self.progress = progress

    @property
    def weights(self) -> tuple[float, float]:
        """(λ1, λ2) in effect."""
        default_l1, default_tv = default_weights(self.resolution)
        return (
            default_l1 if self.l1_weight is None else self.l1_weight,
            default_tv if self.tv_weight is None else self.tv_weight,
        )

    def regulariser(self, masks: torch.Tensor) -> torch.Tensor:
        """``λ1·mean|1 − M| + λ2·TV_β(M)`` per mask."""
        weight_l1, weight_tv = self.weights
        return weight_l1 * l1(masks, 1.0, "mean") + weight_tv * total_variation(masks, self.tv_beta, False, "mean")

    def _filler(self, classifier, images: torch.Tensor) -> Filler:
        if self.filler is None:
            return heavy_blur(min(images.shape[-2:]))
        return resolve_filler(self.filler, classifier.mean_colour)

    def _direction(self, seed: int, class_weight: float = 1.0) -> IntegratedGradient:
        return IntegratedGradient(self.points, self.noise, seed, self.batch_size, class_weight)

    def _line_search(self, direction: IntegratedGradient) -> ArmijoLineSearch:
        """The revised Armijo rule on the integrated objective of ``direction``."""
        return ArmijoLineSearch(self.initial_step, self.shrink, self.decrease, self.smallest_step, direction.objective)

    def _explain(self, classifier, images, targets, weights, seed):
        game = get_game("deletion")
        problem = MaskProblem(
            classifier, images, weights, game, self._filler(classifier, images), Upsampler("bilinear"), self.regulariser
        )
        init = torch.ones(images.shape[0], 1, self.resolution, self.resolution, device=images.device)
        direction = self._direction(seed)
        search = self._line_search(direction)
        result = optimise_masks(
            problem, init, direction, search, self.steps, progress=self.progress, description="I-GOS"
        )
        scores_after = end_point_scores(problem, result.masks, batch_size=self.batch_size)
        with torch.no_grad():
            full = problem.upsampler(result.masks, problem.size)
        return self._optimised(targets, game.saliency(full)[:, 0], result, scores_after)
