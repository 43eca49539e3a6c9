"""FGVis (Wagner et al., "Interpretable and Fine-Grained Visual Explanations for CNNs", CVPR 2019).

A full-resolution, per-channel mask ``m`` (B×3×H×W, no upsampling, no smoothness term) and
the reference ``r`` = the zero image of the classifier's normalised space (its mean colour),
``e = Φ(x, m) = m·x + (1 − m)·r``. Two losses::

    preservation:  λ·‖m‖₁ + CE(p(e), c)          deletion:  λ·‖1 − m‖₁ + p_c(e)

and four games = loss × start: preservation and deletion start at ``m ~ U(0.99, 1)``,
generation (preservation loss) and repression (deletion loss) at ``m ~ U(0, 0.01)``.
SGD with lr 0.1 on the gradient divided by its largest magnitude, 500 iterations, ``m``
clipped to [0, 1] after each step.

λ line search: λ runs through 13 values from 1e-4 down to 1e-10 (log-spaced, inferred);
for each, the masks are optimised from the start, and an image is done at the first λ whose
result meets the game's goal: the target is no longer top-1 (deletion, repression) or is
top-1 (preservation, generation). Done images drop out of the later rounds; an image that
never meets it keeps the last λ's mask. The optimisation is protected by the adversarial
defense (:class:`~maskscope.core.defense.AdversarialDefense`) unless ``defense=False``.

The saliency is the mean over channels of ``m`` (``1 − m`` for deletion and repression).
The explanation also carries ``lambdas`` (the λ each image ended with), ``goal_met`` (per
image) and, as ``history``, the objective of the first λ round.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch

from maskscope.core.defense import AdversarialDefense
from maskscope.core.explanation import Explanation
from maskscope.core.fillers import Constant
from maskscope.core.games import GAMES, MaskProblem, get_game
from maskscope.core.masks import Upsampler
from maskscope.core.optimisation import Gradient, NormalisedSGD, optimise_masks
from maskscope.core.regularisers import l1
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least, positive
from maskscope.methods.registry import register

#: the λ line search of the paper: 13 log-spaced values from 1e-4 to 1e-10
DEFAULT_LAMBDAS = tuple(float(v) for v in np.logspace(-4, -10, 13))


@register
class FGVis(Method):
    """FGVis with the paper's defaults.

    Args:
        game: ``"deletion"``, ``"preservation"``, ``"generation"`` or ``"repression"``.
        lambdas: the λ values tried in order; one value disables the search.
        steps: iterations per λ.
        lr: SGD learning rate (on the max-normalised gradient).
        defense: protect the gradients with the adversarial defense.
        start_width: initial masks are ``U(1 − w, 1)`` (deletion, preservation) or ``U(0, w)``.
        stop_early: stop an image's optimisation as soon as it meets the game's goal (the
            adversarial check uses this); otherwise every λ runs all ``steps``.
        progress: show a progress bar.
    """

    name = "fgvis"
    constraints = {
        "game": OneOf(*GAMES), "lambdas": at_least(0), "steps": at_least(1), "lr": positive(),
        "start_width": Interval(0, 1), "batch_size": at_least(1),
    }
    pixel_level = True

    def __init__(
        self,
        game: str = "deletion",
        lambdas: Sequence[float] = DEFAULT_LAMBDAS,
        steps: int = 500,
        lr: float = 0.1,
        defense: bool = True,
        start_width: float = 0.01,
        stop_early: bool = False,
        progress: bool = False,
    ) -> None:
        if game not in GAMES:
            raise ValueError(f"game must be one of {', '.join(GAMES)}, got {game!r}")
        if len(lambdas) == 0 or any(value < 0 for value in lambdas):
            raise ValueError(f"lambdas must be a non-empty list of values ≥ 0, got {lambdas!r}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.game = game
        self.lambdas = tuple(float(value) for value in lambdas)
        self.steps = steps
        self.lr = lr
        self.defense = defense
        self.start_width = start_width
        self.stop_early = stop_early
        self.progress = progress

    def _initial_masks(self, shape: tuple[int, ...], seed: int, device) -> torch.Tensor:
        """``U(0, w)`` or ``U(1 − w, 1)``, one generator per image (same start alone or in a batch)."""
        draws = torch.stack([torch.rand(shape[1:], generator=torch.Generator().manual_seed(seed)) for _ in range(shape[0])])
        draws = self.start_width * draws
        return (draws if get_game(self.game).start == 0.0 else 1 - draws).to(device)

    @staticmethod
    def goal_met(problem: MaskProblem, masks: torch.Tensor) -> torch.Tensor:
        """Per image: target not top-1 (removal games) or target top-1 (the others)."""
        with torch.no_grad():
            top = problem.classifier.probabilities(problem.perturb(masks, jitter=False)).argmax(1)
        on_target = problem.targets.gather(1, top[:, None])[:, 0] > 0
        return ~on_target if problem.game.removes else on_target

    def _problem(self, classifier, images, weights, weight: float) -> MaskProblem:
        game = get_game(self.game)

        def regulariser(masks: torch.Tensor) -> torch.Tensor:
            return weight * l1(masks, game.l1_towards, "sum")

        class_loss = "probability" if game.removes else "cross_entropy"
        filler = Constant(classifier.mean_colour.flatten())
        return MaskProblem(classifier, images, weights, game, filler, Upsampler("nearest"), regulariser, None, class_loss)

    def _explain(self, classifier, images, targets, weights, seed):
        game = get_game(self.game)
        init = self._initial_masks(tuple(images.shape), seed, images.device)
        masks = init.clone()
        chosen = torch.full((images.shape[0],), float("nan"), dtype=torch.float64)
        todo = torch.arange(images.shape[0], device=images.device)
        history = None
        stop = (lambda problem, current, step: self.goal_met(problem, current)) if self.stop_early else None
        for weight in self.lambdas:
            subset = images[todo]
            problem = self._problem(classifier, subset, weights[todo], weight)
            with AdversarialDefense(classifier, subset) if self.defense else nullcontext():
                result = optimise_masks(
                    problem, init[todo], Gradient(), NormalisedSGD(self.lr), self.steps, stop, self.progress, "FGVis"
                )
            masks[todo] = result.masks
            chosen[todo.cpu()] = weight
            if history is None:
                history = result.objective.cpu()
            met = self.goal_met(problem, result.masks)
            todo = todo[~met]
            if todo.numel() == 0:
                break
        final = self._problem(classifier, images, weights, 0.0)
        with torch.no_grad():
            scores_after = final.class_scores(masks, jitter=False)
        explanation = Explanation(
            saliency=game.saliency(masks).mean(1).cpu(),
            targets=targets,
            method=self.name,
            mask=masks.cpu(),
            scores_after=scores_after.cpu(),
            history=history,
        )
        explanation.lambdas = chosen
        explanation.goal_met = self.goal_met(final, masks).cpu()
        return explanation
