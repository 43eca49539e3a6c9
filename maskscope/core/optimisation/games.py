"""The four perturbation games and the objective they define on a batch of masks.

For target classes ``c`` (a set is scored by the sum of its probabilities ``p_C``):

* **deletion** — remove as little as possible so that the score drops:
  ``min_m λ1·Σ|1 − m| + R(m) + p_C(Φ(x, m))``, starting from ``m = 1``.
* **preservation** — keep as little as possible so that the score stays:
  ``min_m λ1·Σ|m| + R(m) − p_C(Φ(x, m))`` (or ``+ CE``), starting from ``m = 1``.
* **generation** — the preservation loss started from ``m = 0``.
* **repression** — the deletion loss started from ``m = 0``.

``R`` holds the smoothness terms (TV). The saliency of a deletion-style mask is ``1 − m``,
of a preservation-style mask ``m``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.perturbation.fillers import Filler, blend
from maskscope.core.perturbation.jitter import AlternateFlip, Jitter, Transform
from maskscope.core.perturbation.masks import Upsampler


@dataclass(frozen=True)
class Game:
    """A game: which way the class score is pushed, where L1 pulls, where masks start."""

    name: str
    removes: bool  # True: the score is minimised (deletion, repression)
    start: float  # initial mask value (1 = everything kept)

    @property
    def l1_towards(self) -> float:
        """Deletion-style masks are pulled to 1 (remove little), preservation-style to 0."""
        return 1.0 if self.removes else 0.0

    def saliency(self, masks: torch.Tensor) -> torch.Tensor:
        """Higher = more important: ``1 − m`` for removal games, ``m`` otherwise."""
        return 1 - masks if self.removes else masks


GAMES = {
    "deletion": Game("deletion", removes=True, start=1.0),
    "preservation": Game("preservation", removes=False, start=1.0),
    "generation": Game("generation", removes=False, start=0.0),
    "repression": Game("repression", removes=True, start=0.0),
}

#: removal games (deletion, repression) meet their goal when the target's probability under the
#: final mask is at most this share of the probability before
REMOVAL_GOAL = 0.2
#: keeping games (preservation, generation) meet theirs when at least this share is kept …
KEEPING_GOAL = 0.5
#: … by a mask that keeps at most this share of the image
KEEPING_AREA = 0.5


def goal_met(game: Game, before: torch.Tensor, after: torch.Tensor, kept_area: torch.Tensor) -> torch.Tensor:
    """Whether each image's optimisation did its game's job (B bool).

    Removal games: ``p_C(Φ(x, m)) ≤ 0.2·p_C(x)`` (the evidence is gone). Keeping games:
    ``p_C(Φ(x, m)) ≥ 0.5·p_C(x)`` with a mask keeping at most half of the image (the class
    survives on a small part). A mask that did not move meets neither.
    """
    if game.removes:
        return after <= REMOVAL_GOAL * before
    return (after >= KEEPING_GOAL * before) & (kept_area <= KEEPING_AREA)


CLASS_LOSSES = ("probability", "cross_entropy", "logit")


def get_game(name: str | Game) -> Game:
    if isinstance(name, Game):
        return name
    if name not in GAMES:
        raise ValueError(f"unknown game {name!r}; choose from {', '.join(GAMES)}")
    return GAMES[name]


def subset_regulariser(regulariser: Callable, index: torch.Tensor) -> Callable:
    """The regulariser of the images ``index``: its own ``subset(index)`` where it holds
    per-image values, else itself (it depends on the masks alone)."""
    narrow = getattr(regulariser, "subset", None)
    return narrow(index) if narrow is not None else regulariser


class MaskProblem:
    """The objective ``F(m)`` of a game on a batch, one value per image.

    ``F(m) = s·ℓ(p_C(Φ(x, up(m)))) + regulariser(m)``, with ``s = +1`` for removal games and
    ``−1`` otherwise, and ``ℓ`` the probability itself or, with
    ``class_loss="cross_entropy"``, ``−log p_C`` for preservation (``s`` then +1), or with
    ``class_loss="logit"`` the summed logits ``z_C`` in place of ``p_C`` (EP's reward).

    Args:
        classifier: the model wrapper.
        images: B×3×H×W in [0, 1].
        target_weights: B×C target weights (multi-hot, :func:`~maskscope.core.model.targets.target_weights`).
        game: the game.
        filler: removal content.
        upsampler: mask parameter → image-size mask.
        regulariser: masks → B penalty (the L1 and TV terms, weighted); one that holds a
            value per image has a ``subset(index)`` giving the regulariser of those images.
        jitter: optional random transformation drawn for each perturbed batch.

    :meth:`subset` gives the problem of some of the images (the optimisation narrows its
    batch to the images still running); ``image_index`` holds their places in the batch the
    problem was made for.
    """

    def __init__(
        self,
        classifier: Classifier,
        images: torch.Tensor,
        target_weights: torch.Tensor,
        game: Game,
        filler: Filler,
        upsampler: Upsampler,
        regulariser: Callable[[torch.Tensor], torch.Tensor],
        jitter: Jitter | AlternateFlip | None = None,
        class_loss: str = "probability",
    ) -> None:
        if class_loss not in CLASS_LOSSES:
            raise ValueError(f"class_loss must be one of {CLASS_LOSSES}, got {class_loss!r}")
        self.classifier = classifier
        self.images = images
        self.target_weights = target_weights.to(images)
        self.game = game
        self.filler = filler
        self.upsampler = upsampler
        self.regulariser = regulariser
        self.jitter = jitter
        self.class_loss = class_loss
        self.size = (images.shape[-2], images.shape[-1])
        self.filled = None if filler.depends_on_mask else filler(images).detach()
        self.image_index = torch.arange(images.shape[0], device=images.device)

    def subset(self, index: torch.Tensor) -> "MaskProblem":
        """The same problem on the images ``index`` (places in this problem's batch): the images,
        target weights, filler content and per-image regulariser narrowed; jitter and upsampler shared."""
        narrowed = copy.copy(self)
        narrowed.images = self.images[index]
        narrowed.target_weights = self.target_weights[index]
        narrowed.filled = None if self.filled is None else self.filled[index]
        narrowed.regulariser = subset_regulariser(self.regulariser, index)
        narrowed.image_index = self.image_index[index]
        return narrowed

    def perturb(self, masks: torch.Tensor, jitter: bool = True) -> torch.Tensor:
        """``Φ(x, up(m))``, jittered when the problem has jitter and ``jitter`` is true: a
        jitter that moves the image does so under the fixed mask, ``Φ(x(· − τ), up(m))``
        (the filler moves with the image); any other transforms the blended image."""
        upsampled = self.upsampler(masks, self.size)
        before: Transform | None = None  # moves the image and its filler under the mask
        after: Transform | None = None  # transforms the blended image
        if jitter and self.jitter is not None:
            if self.jitter.moves_image:
                before = self.jitter.draw()
            else:
                after = self.jitter.draw()
        images = before(self.images) if before is not None else self.images
        if self.filled is None:
            filled = self.filler(images, upsampled)
        else:
            filled = before(self.filled) if before is not None else self.filled
        perturbed = blend(images, upsampled, filled) if self.filler.blended else filled
        return after(perturbed) if after is not None else perturbed

    def class_scores(self, masks: torch.Tensor, jitter: bool = True) -> torch.Tensor:
        """``p_C(Φ(x, up(m)))`` per image (B); the summed logits with ``class_loss="logit"``."""
        perturbed = self.perturb(masks, jitter)
        if self.class_loss == "logit":
            return (self.classifier.logits(perturbed) * self.target_weights).sum(1)
        return (self.classifier.probabilities(perturbed) * self.target_weights).sum(1)

    def probabilities(self, masks: torch.Tensor) -> torch.Tensor:
        """``p_C(Φ(x, up(m)))`` per image (B), without jitter, whatever the class loss."""
        with torch.no_grad():
            return (self.classifier.probabilities(self.perturb(masks, jitter=False)) * self.target_weights).sum(1)

    def class_term(self, scores: torch.Tensor) -> torch.Tensor:
        if self.class_loss == "cross_entropy":
            if self.game.removes:
                return -torch.log1p(-scores.clamp(max=1 - 1e-6))
            return -torch.log(scores.clamp(min=1e-12))
        return scores if self.game.removes else -scores  # probability or logit

    def objective(self, masks: torch.Tensor) -> torch.Tensor:
        """``F(m)`` per image (B); sum it for a batch gradient, images stay independent."""
        return self.class_term(self.class_scores(masks)) + self.regulariser(masks)

    # ------------------------------------------- the path of the integrated gradient (I-GOS)
    #: one class term along the path
    terms = 1

    def path_inputs(
        self, masks: torch.Tensor, image_index: torch.Tensor, term_index: torch.Tensor, fractions: torch.Tensor
    ) -> torch.Tensor:
        """``Φ(x_b, t·up(m))`` for masks N×1×h×w of images ``image_index`` at fractions ``t`` (no jitter)."""
        path_masks = fractions.view(-1, 1, 1, 1) * self.upsampler(masks, self.size)
        images = self.images[image_index]
        filled = self.filled[image_index] if self.filled is not None else self.filler(images, path_masks)
        return blend(images, path_masks, filled)

    def path_values(self, scores: torch.Tensor, term_index: torch.Tensor) -> torch.Tensor:
        """The signed class term of target scores along the path."""
        return self.class_term(scores)

    def penalty(self, masks: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
        """The regulariser of masks of the images ``image_index`` (it depends on the masks alone)."""
        return self.regulariser(masks)
