"""FGVis (Wagner et al., "Interpretable and Fine-Grained Visual Explanations for CNNs", CVPR 2019).

A full-resolution, per-channel mask ``m`` (B×3×H×W, no upsampling, no smoothness term) and
the reference ``r`` = the zero image of the classifier's normalised space (its mean colour),
``e = Φ(x, m) = m·x + (1 − m)·r``. Two losses::

    preservation:  λ·‖m‖₁ + CE(p(e), c)          deletion:  λ·‖1 − m‖₁ + p_c(e)

and four games = loss × start: preservation and deletion start at ``m ~ U(0.99, 1)``,
generation (preservation loss) and repression (deletion loss) at ``m ~ U(0, 0.01)``.
SGD with lr 0.1 on the gradient divided by its largest magnitude, 500 iterations, ``m``
clipped to [0, 1] after each step.

λ line search: λ runs through 13 values from 1e-4 down to 1e-10 (log-spaced, inferred); the
paper takes, per image, the first (largest) λ whose result meets the game's goal: the
target is no longer top-1 (deletion, repression) or is top-1 (preservation, generation).
``search="sequential"`` does just that, optimising from the start for each λ in turn (up
to 13 rounds of 500 steps). The default, ``search="bisection"``, finds the same λ when
meeting the goal is monotone in λ (a smaller L1 weight never makes the goal harder): it
tests the middle of each image's remaining interval, so ⌈log₂(n + 1)⌉ rounds — 4 for 13
values — settle every image, each image at its own λ in the same batch. An image that
meets the goal at no λ keeps the smallest λ's mask in both. The optimisation is protected
by the adversarial defense (:class:`~maskscope.core.model.defense.AdversarialDefense`) unless
``defense=False``.

The saliency is the mean over channels of ``m`` (``1 − m`` for deletion and repression).
The explanation also carries ``chosen_l1_weight`` (the λ each image ended with),
``decision_changed`` (per image, whether the search's top-1 rule was met) and, as ``history``, the objective of
the first round.
"""

from __future__ import annotations

import itertools
import math
from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch

from maskscope.core.explanation import Explanation
from maskscope.core.model.defense import AdversarialDefense
from maskscope.core.optimisation.descent import Gradient, NormalisedSGD, optimise_masks
from maskscope.core.optimisation.games import GAMES, MaskProblem, get_game
from maskscope.core.optimisation.regularisers import l1
from maskscope.core.perturbation.fillers import Constant
from maskscope.core.perturbation.masks import Upsampler
from maskscope.core.progress import progress_bar
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least, positive
from maskscope.methods.registry import register

#: the λ line search of the paper: 13 log-spaced values from 1e-4 to 1e-10
DEFAULT_L1_WEIGHTS = tuple(float(v) for v in np.logspace(-4, -10, 13))
SEARCHES = ("bisection", "sequential")


class WeightedL1:
    """``λ·Σ|m − v|`` per mask, with one λ for all or one per image (B)."""

    def __init__(self, weight: float | torch.Tensor, towards: float) -> None:
        self.weight, self.towards = weight, towards

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        return self.weight * l1(masks, self.towards, "sum")

    def subset(self, index: torch.Tensor) -> "WeightedL1":
        """The regulariser of the images ``index``."""
        weight = self.weight[index] if isinstance(self.weight, torch.Tensor) else self.weight
        return WeightedL1(weight, self.towards)


class DefendedProblem(MaskProblem):
    """FGVis's problem whose adversarial defense holds the bounds of its images: narrowed with them."""

    def __init__(self, defense: AdversarialDefense, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.defense = defense

    def subset(self, index: torch.Tensor) -> MaskProblem:
        self.defense.narrow(index)
        return super().subset(index)


@register
class FGVis(Method):
    """FGVis with the paper's defaults.

    Args:
        game: ``"deletion"``, ``"preservation"``, ``"generation"`` or ``"repression"``.
        l1_weights: the λ values tried in order; one value disables the search.
        steps: iterations per λ.
        lr: SGD learning rate (on the max-normalised gradient).
        defense: protect the gradients with the adversarial defense.
        start_width: initial masks are ``U(1 − w, 1)`` (deletion, preservation) or ``U(0, w)``.
        stop_early: stop an image's optimisation as soon as it meets the search's rule (the
            adversarial check uses this); otherwise every λ runs all ``steps``.
        search: ``"bisection"`` (at most ⌈log₂(n + 1)⌉ rounds) or ``"sequential"`` (the
            paper's: every λ in turn until the rule is met, up to n rounds).
        batch_size: images optimised at a time; bounds the peak memory (default: 8 on a CPU,
            64 on a GPU). Images are independent, so it does not change the masks.
        progress: show one progress bar over the steps of every λ round (the round in its postfix).
    """

    name = "fgvis"
    constraints = {
        "game": OneOf(*GAMES), "l1_weights": at_least(0), "steps": at_least(1), "lr": positive(),
        "start_width": Interval(0, 1), "search": OneOf(*SEARCHES), "batch_size": at_least(1),
    }
    pixel_level = True
    #: the game played: always set (the base class's is optional)
    game: str

    def __init__(
        self,
        game: str = "deletion",
        l1_weights: Sequence[float] = DEFAULT_L1_WEIGHTS,
        steps: int = 500,
        lr: float = 0.1,
        defense: bool = True,
        start_width: float = 0.01,
        stop_early: bool = False,
        search: str = "bisection",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        self.game = game
        self.l1_weights = tuple(float(value) for value in l1_weights)
        self.steps = steps
        self.lr = lr
        self.defense = defense
        self.start_width = start_width
        self.stop_early = stop_early
        self.search = search
        self.batch_size = batch_size
        self.progress = progress

    def rounds(self) -> int:
        """The most rounds of ``steps`` the λ search can take."""
        if self.search == "sequential":
            return len(self.l1_weights)
        return math.ceil(math.log2(len(self.l1_weights) + 1))

    def _initial_masks(self, shape: tuple[int, ...], seed: int, device) -> torch.Tensor:
        """``U(0, w)`` or ``U(1 − w, 1)``, one generator per image (same start alone or in a batch)."""
        draws = torch.stack([torch.rand(shape[1:], generator=torch.Generator().manual_seed(seed)) for _ in range(shape[0])])
        draws = self.start_width * draws
        return (draws if get_game(self.game).start == 0.0 else 1 - draws).to(device)

    @staticmethod
    def decision_changed(problem: MaskProblem, masks: torch.Tensor) -> torch.Tensor:
        """The search's rule per image: target not top-1 (removal games) or target top-1 (the others)."""
        return FGVis.judge(problem, masks)[0]

    @staticmethod
    def judge(problem: MaskProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decision_changed` and the target scores ``p_C(Φ(x, m))`` per image, from one pass."""
        with torch.no_grad():
            probabilities = problem.classifier.probabilities(problem.perturb(masks, jitter=False))
        on_target = problem.target_weights.gather(1, probabilities.argmax(1)[:, None])[:, 0] > 0
        changed = ~on_target if problem.game.removes else on_target
        return changed, (probabilities * problem.target_weights).sum(1)

    def _problem(self, classifier, images, target_weights, weight: float | torch.Tensor, defense=None) -> MaskProblem:
        """The game's problem with L1 weight λ (one value, or one per image), its defended
        gradients narrowed with it when ``defense`` is given."""
        game = get_game(self.game)
        regulariser = WeightedL1(weight, game.l1_towards)
        class_loss = "probability" if game.removes else "cross_entropy"
        filler = Constant(classifier.mean_colour.flatten())
        arguments = (classifier, images, target_weights, game, filler, Upsampler("nearest"), regulariser, None, class_loss)
        return MaskProblem(*arguments) if defense is None else DefendedProblem(defense, *arguments)

    def _round(self, classifier, images, target_weights, init, lambdas: torch.Tensor, bar):
        """Optimise every image at its own λ, ``batch_size`` images at a time: masks, met, the
        target scores under the masks (``None`` with ``stop_early``, whose rule judged ``met``) and objective."""
        chunk = default_batch_size(self.batch_size, images.device)
        stop = (lambda problem, current, step: self.decision_changed(problem, current)) if self.stop_early else None
        masks, met, scores, objective = [], [], [], []
        for start in range(0, images.shape[0], chunk):
            part = slice(start, start + chunk)
            subset = images[part]
            with AdversarialDefense(classifier, subset) if self.defense else nullcontext() as defense:
                problem = self._problem(classifier, subset, target_weights[part], lambdas[part].to(subset), defense)
                result = optimise_masks(problem, init[part], Gradient(), NormalisedSGD(self.lr), self.steps, stop, bar)
            masks.append(result.masks)
            if self.stop_early:  # the stop rule judged every image at its final masks already
                met.append(result.stopped)
            else:
                changed, after = self.judge(problem, result.masks)
                met.append(changed)
                scores.append(after)
            objective.append(result.objective.cpu())
        width = max(values.shape[1] for values in objective)
        objective = [torch.nn.functional.pad(values, (0, width - values.shape[1]), value=float("nan")) for values in objective]
        return torch.cat(masks), torch.cat(met), torch.cat(scores) if scores else None, torch.cat(objective)

    @property
    def needs_hooks(self) -> bool:
        return self.defense

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        game = get_game(self.game)
        count = images.shape[0]
        init = self._initial_masks(tuple(images.shape), seed, images.device)
        masks = init.clone()
        values = torch.tensor(self.l1_weights, dtype=torch.float64)
        # per image, the search interval [low, high) of λ indices; high = n means "none met yet"
        low = torch.zeros(count, dtype=torch.long)
        high = torch.full((count,), len(self.l1_weights), dtype=torch.long)
        met_any = torch.zeros(count, dtype=torch.bool)
        # the rule and the target scores at each image's kept mask, as its round judged them
        changed = torch.zeros(count, dtype=torch.bool)
        scores_after: torch.Tensor | None = torch.zeros(count)
        history = None
        # one bar over the steps of every round, as if every round ran every image: a round
        # with fewer images left, or no round left, advances it by what it leaves out
        chunk = default_batch_size(self.batch_size, images.device)
        total = self.rounds() * math.ceil(count / chunk) * self.steps
        bar = progress_bar(total=total, desc="FGVis", unit="step", disable=not self.progress)
        advanced = 0
        for round_number in itertools.count(1):
            todo = torch.nonzero(low < high)[:, 0]
            if todo.numel() == 0:
                break
            bar.set_postfix(λ_round=f"{round_number}/{self.rounds()}")
            skipped = (math.ceil(count / chunk) - math.ceil(todo.numel() / chunk)) * self.steps
            if skipped:
                bar.update(skipped)
            advanced += skipped + math.ceil(todo.numel() / chunk) * self.steps
            tried = low[todo] if self.search == "sequential" else (low[todo] + high[todo]) // 2
            found, met, scores, objective = self._round(
                classifier, images[todo], target_weights[todo], init[todo], values[tried].float(), bar
            )
            history = objective if history is None else history
            met = met.cpu()
            last = tried == len(self.l1_weights) - 1
            # a met λ is kept; so is the smallest λ's mask while nothing better has been met
            keep = met | (last & ~met_any[todo])
            masks[todo[keep]] = found[keep.to(found.device)]
            changed[todo[keep]] = met[keep]
            if scores is not None and scores_after is not None:
                scores_after[todo[keep]] = scores.cpu()[keep]
            else:
                scores_after = None
            met_any[todo[met]] = True
            # met: no larger λ left to try above it; not met: the answer lies below it
            high[todo[met]] = tried[met]
            low[todo[~met]] = tried[~met] + 1
        if total > advanced:
            bar.update(total - advanced)
        bar.close()
        chosen = values[high.clamp(max=len(self.l1_weights) - 1)]
        if scores_after is None:  # stop_early: the stop rule judged the masks, it did not score them
            final = self._problem(classifier, images, target_weights, 0.0)
            with torch.no_grad():
                scores_after = final.class_scores(masks, jitter=False).cpu()
        return Explanation(
            saliency=game.saliency(masks).mean(1).cpu(),
            targets=targets,
            method=self.name,
            mask=masks.cpu(),
            scores_after=scores_after,
            history=history,
            chosen_l1_weight=chosen,
            decision_changed=changed,
        )
