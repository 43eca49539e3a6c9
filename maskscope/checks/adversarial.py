"""The adversarial-evidence check (FGVis, supplement Table A1).

Start from a black image ``x = 0`` (pixel space) and play the generation game with λ = 0:
``min_m CE(p(Φ(x, m)), c)``, ``Φ(x, m) = m·x + (1 − m)·r`` with the reference ``r`` the
classifier's mean colour and ``m ~ U(0, 0.01)`` at the start. The black image holds no
evidence for any class, so a faithful explanation method must not be able to make a class
top-1 from it; an undefended gradient method makes every class top-1 (adversarial
evidence). Every class is tried except the black image's predicted class and the class
predicted at the start (``Φ(x, m₀)``). Reported by FGVis: 100% without the defense,
0.0–0.1% with it (GoogLeNet, VGG16, AlexNet, ResNet50).

The classes are batched: a batch holds copies of the black image with different targets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.errors import MaskscopeValueError
from maskscope.methods.fgvis import FGVis


@dataclass
class BlackImageResult:
    """Per tried class whether it became top-1, and the success rate."""

    classes: list[int]
    became_top1: list[bool]
    defense: bool
    steps: int
    excluded: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def success_rate(self) -> float:
        return sum(self.became_top1) / max(len(self.became_top1), 1)

    def to_dict(self) -> dict:
        return {
            "defense": self.defense,
            "steps": self.steps,
            "classes_tried": len(self.classes),
            "successes": sum(self.became_top1),
            "success_rate": self.success_rate,
            "excluded_classes": self.excluded,
            "seconds": self.seconds,
            "classes": self.classes,
            "became_top1": self.became_top1,
        }


def _choose_classes(candidates: list[int], classes: int | Sequence[int] | None, num_classes: int) -> list[int]:
    if classes is None:
        return candidates
    if isinstance(classes, int):
        if classes < 1:
            raise ValueError(f"classes must be a positive count, got {classes}")
        if classes >= len(candidates):
            return candidates
        picks = torch.linspace(0, len(candidates) - 1, classes).round().long().tolist()
        return [candidates[i] for i in picks]
    chosen = [int(c) for c in classes]
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"classes {bad} are out of range: the classifier has {num_classes} classes")
    return [c for c in chosen if c in candidates]


def black_image_test(
    classifier: Classifier,
    classes: int | Sequence[int] | None = None,
    defense: bool = True,
    steps: int = 500,
    images_per_batch: int = 8,
    lr: float = 0.1,
    seed: int = 0,
    progress: bool = False,
) -> BlackImageResult:
    """Run the black-image check.

    Args:
        classifier: the model wrapper (differentiable).
        classes: ``None`` for every class, a count ``N`` (evenly spaced over the class
            indices), or a list of class indices.
        defense: use FGVis's adversarial defense.
        steps: the most SGD steps per class; a class stops once it is top-1.
        images_per_batch: black images (targets) optimised together.
        lr: SGD learning rate on the max-normalised gradient.
        seed: seed of the initial masks.
        progress: print one line per batch.
    """
    classifier.require_gradients("the black-image check")
    if images_per_batch < 1:
        raise MaskscopeValueError(f"images_per_batch must be at least 1, got {images_per_batch}")
    start = time.perf_counter()
    height, width = classifier.view.size
    black = torch.zeros(1, 3, height, width, device=classifier.device)
    method = FGVis(game="generation", l1_weights=(0.0,), steps=steps, lr=lr, defense=defense, stop_early=True)
    initial = method._initial_masks((1, 3, height, width), seed, black.device)
    reference = classifier.mean_colour.to(black)
    with torch.no_grad():
        black_class = int(classifier.probabilities(black).argmax(1))
        start_class = int(classifier.probabilities((1 - initial) * reference).argmax(1))
    excluded = sorted({black_class, start_class})
    candidates = [c for c in range(classifier.num_classes) if c not in excluded]
    chosen = _choose_classes(candidates, classes, classifier.num_classes)
    became: list[bool] = []
    for first in range(0, len(chosen), images_per_batch):
        targets = chosen[first : first + images_per_batch]
        images = black.expand(len(targets), -1, -1, -1)
        explanation = method(classifier, images, target=targets, seed=seed)
        changed = explanation.decision_changed
        assert changed is not None  # FGVis records it for every explanation
        became += changed.tolist()
        if progress:
            print(f"classes {first + len(targets)}/{len(chosen)}: {sum(became)} top-1 so far", flush=True)
    return BlackImageResult(chosen, became, defense, steps, excluded, time.perf_counter() - start)
