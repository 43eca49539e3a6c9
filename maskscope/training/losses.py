"""The explainer's training losses: the paper's (Stalder et al., 2022) and RTIS's (Dabkowski & Gal, 2017).

Both read the explainer's class-mask logits ``E(x)`` (B×C×H×W), with ``s_c = σ(E(x)_c)``, and
the multi-hot targets ``y`` (B×C, the classes Y present in each image). The target mask is
``m = max_{c∈Y} s_c``, the non-target mask ``n = max_{c∉Y} s_c`` (0 when every class is
present), and the classifier ``F`` is frozen.

**Explainer loss** (paper, §4 of METHODS.md)::

    L = CLS(F(x·m), y) + λe·mean_c p̃_c log p̃_c + λ_Am·A(m) + λ_An·A(n) + λ_B·B(s) + λtv·[TV(m) + TV(n)]

* ``x·m`` is the masked image in the classifier's normalised space, so a removed pixel takes
  the classifier's mean colour; ``x·m̃`` with ``m̃ = 1 − m`` is the complement.
* CLS is binary cross-entropy averaged over classes for a multi-label (sigmoid) classifier, as
  in the paper; for a single-label (softmax) classifier it is the cross-entropy of the image's
  classes, ``−(1/|Y|)·Σ_{c∈Y} log p_c`` (the image's class when there is one). ``p`` is the
  classifier's own probability (sigmoid, softmax, or a class group's summed softmax). BCE
  averaged over the C classes of a softmax model gives the present classes a weight of about
  1/C against the area terms, and the masks shrink to nothing (57 COCO groups: every mask
  below 0.08 after 12 epochs on 344 photos).
* ``p̃`` is the softmax of ``F(x·m̃)`` (for class groups: the groups' probabilities and the
  mass of the classes in no group), so the entropy term pushes the complement towards an
  uninformative prediction; it is averaged over classes and images.
* ``A`` is the mean mask value; ``B`` the area bounds of :func:`maskscope.core.optimisation.regularisers.area_bounds`
  on each present class mask (sorted descending, ``relu(q_min − q) + relu(q − q_max)`` averaged
  over pixels, ``a = 0.05``, ``b = 0.3``), summed over an image's present classes and averaged
  over images, as the authors' code does; ``TV`` the anisotropic total variation with
  reflect padding, :func:`reflect_total_variation`.

Presets (:data:`PRESETS`): ``vgg16-voc`` and ``resnet50-voc`` as METHODS.md gives them;
``vgg16-coco`` and ``resnet50-coco`` are not in METHODS.md or the paper's text — their numbers
are those of the authors' public training configurations. Each preset holds the loss weights,
Adam's learning rate and the early-stopping patience (batch 16 throughout).

**RTIS loss** (Dabkowski & Gal as adapted by the paper; same network, target mask ``m``)::

    L = 10·TV²(m) + 1.0·A(m) − mean_{c∈Y} log p_c(Φ(x, m)) + 5·(mean_{c∈Y} p_c(Φ(x, 1 − m)))^0.3

with ``Φ(x, m) = m·x + (1 − m)·f(x)`` and the filler ``f`` a blur of σ = 10 px (or noise),
``TV²`` the reflect-padded TV of squared differences, the means over (image, present class) pairs.

Every loss returns its terms separately (unweighted) and their weighted sum as ``"total"``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.grouped_classifier import GroupedClassifier
from maskscope.core.optimisation.regularisers import area_bounds
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Constant, Filler, blend
from maskscope.errors import MaskscopeValueError


@dataclass(frozen=True)
class ExplainerWeights:
    """Weights of the explainer loss and the area bounds ``(a, b)`` of each present class mask."""

    entropy: float = 1.0
    area_target: float = 0.1
    area_nontarget: float = 0.3
    bounds: float = 1.0
    tv: float = 1.0
    min_area: float = 0.05
    max_area: float = 0.3


@dataclass(frozen=True)
class RTISWeights:
    """Weights of the RTIS loss (Dabkowski & Gal's, with the area weight 1.0 the paper tuned)."""

    tv: float = 10.0
    area: float = 1.0
    preserver: float = 1.0
    destroyer: float = 5.0
    destroyer_power: float = 0.3


@dataclass(frozen=True)
class Preset:
    """A paper setting: the explainer loss weights, Adam's learning rate and early-stopping patience."""

    weights: ExplainerWeights
    learning_rate: float
    patience: int


PRESETS: dict[str, Preset] = {
    "vgg16-voc": Preset(ExplainerWeights(entropy=1.0, area_target=0.1, area_nontarget=0.3, bounds=1.0, tv=1.0), 1e-5, 5),
    "resnet50-voc": Preset(ExplainerWeights(entropy=3.0, area_target=0.01, area_nontarget=0.3, bounds=0.8, tv=1.0), 1e-4, 5),
    "vgg16-coco": Preset(ExplainerWeights(entropy=1.0, area_target=0.03, area_nontarget=0.1, bounds=0.3, tv=0.3), 1e-5, 2),
    "resnet50-coco": Preset(ExplainerWeights(entropy=3.0, area_target=0.01, area_nontarget=0.03, bounds=0.1, tv=0.05), 1e-5, 2),
}

LOSSES = ("explainer", "rtis")
#: the least probability the entropy term sees (the authors' code clamps at the same value)
PROBABILITY_FLOOR = 1e-16


def reflect_total_variation(masks: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """``mean_u |m(u) − m(u + e_x)|^p + |m(u) − m(u + e_y)|^p`` per mask (B×H×W → B).

    The mask is reflect-padded by one pixel at the right and bottom, so the last column and row
    have a difference too (with their inner neighbour), as a 3×3 difference filter with
    ``padding_mode="reflect"`` computes it.
    """
    padded = F.pad(masks[:, None], (0, 1, 0, 1), mode="reflect")[:, 0]
    right = masks - padded[:, :-1, 1:]
    down = masks - padded[:, 1:, :-1]
    return (right.abs() ** power + down.abs() ** power).flatten(1).mean(1)


def target_masks(class_masks: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``m = max_{c∈Y} s_c`` and ``n = max_{c∉Y} s_c`` (each B×H×W; 0 where the set is empty)."""
    weights = targets.to(class_masks)[:, :, None, None]
    return (class_masks * weights).amax(1), (class_masks * (1 - weights)).amax(1)


def kept_and_removed(
    classifier: Classifier, images: torch.Tensor, target: torch.Tensor, filler: Filler
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's logits on ``Φ(x, m)`` and on the complement ``Φ(x, 1 − m)`` (target masks B×H×W)."""
    filled = filler(images)
    mask = target[:, None].to(images)
    return classifier.logits(blend(images, mask, filled)), classifier.logits(blend(images, 1 - mask, filled))


def present_class_bounds(class_masks: torch.Tensor, targets: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    """``B(s)``: area-bound penalties of the present class masks, summed per image, averaged over images."""
    image, cls = targets.nonzero(as_tuple=True)
    per_mask = area_bounds(class_masks[image, cls], lower, upper)
    per_image = torch.zeros(len(targets), dtype=per_mask.dtype, device=per_mask.device).index_add_(0, image, per_mask)
    return per_image.mean()


def class_log_probabilities(classifier: Classifier, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p_c, log(1 − p_c))`` per class from the classifier's raw outputs ``logits`` (B×C)."""
    logits = logits.float()
    if classifier.output == "sigmoid":
        return F.logsigmoid(logits), F.logsigmoid(-logits)
    log_p = logits if isinstance(classifier, GroupedClassifier) else logits.log_softmax(1)
    return log_p, _log_one_minus_exp(log_p)


def prediction_distribution(classifier: Classifier, logits: torch.Tensor) -> torch.Tensor:
    """The softmax distribution ``p̃`` of the classifier's raw outputs (groups: plus the ungrouped
    mass), floored at :data:`PROBABILITY_FLOOR` so that ``p̃·log p̃`` has a finite gradient."""
    logits = logits.float()
    if isinstance(classifier, GroupedClassifier):
        groups = logits.exp()
        distribution = torch.cat([groups, 1 - groups.sum(1, keepdim=True)], 1)
    else:
        distribution = logits.softmax(1)
    return distribution.clamp_min(PROBABILITY_FLOOR)


def classification_loss(log_p: torch.Tensor, log_not_p: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Binary cross-entropy averaged over classes (multi-label) or the cross-entropy of each
    image's classes, ``−(1/|Y|)·Σ_{c∈Y} log p_c``, averaged over images (single-label)."""
    if multilabel:
        return -(targets * log_p + (1 - targets) * log_not_p).mean()
    return (-(targets * log_p).sum(1) / targets.sum(1).clamp_min(1)).mean()


class ExplainerLoss:
    """The paper's loss (see the module doc); ``weights`` from a preset or given.

    Args:
        weights: the loss weights and area bounds.
        multilabel: binary cross-entropy over classes (True) or cross-entropy (False).
    """

    terms = ("classification", "entropy", "area_target", "area_nontarget", "bounds", "tv")

    def __init__(self, weights: ExplainerWeights = ExplainerWeights(), multilabel: bool = True) -> None:
        self.weights = weights
        self.multilabel = multilabel

    def __call__(
        self, classifier: Classifier, images: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Terms for pixel-space ``images`` (B×3×H×W), mask logits B×C×H×W and targets B×C."""
        w = self.weights
        class_masks, targets = mask_logits.float().sigmoid(), targets.float()
        target, nontarget = target_masks(class_masks, targets)
        kept, removed = kept_and_removed(classifier, images, target, Constant(classifier.mean_colour))
        log_p, log_not_p = class_log_probabilities(classifier, kept)
        distribution = prediction_distribution(classifier, removed)
        terms = {
            "classification": classification_loss(log_p, log_not_p, targets, self.multilabel),
            "entropy": (distribution * distribution.log()).mean(),
            "area_target": target.mean(),
            "area_nontarget": nontarget.mean(),
            "bounds": present_class_bounds(class_masks, targets, w.min_area, w.max_area),
            "tv": (reflect_total_variation(target) + reflect_total_variation(nontarget)).mean(),
        }
        terms["total"] = (
            terms["classification"]
            + w.entropy * terms["entropy"]
            + w.area_target * terms["area_target"]
            + w.area_nontarget * terms["area_nontarget"]
            + w.bounds * terms["bounds"]
            + w.tv * terms["tv"]
        )
        return terms


class RTISLoss:
    """Dabkowski & Gal's saliency loss on the explainer network (see the module doc).

    Args:
        weights: the loss weights.
        filler: the removal content of both games (``"blur:10"`` or ``"noise"``, see
            :func:`maskscope.core.perturbation.filler_specs.resolve_filler`).
    """

    terms = ("tv", "area", "preserver", "destroyer")

    def __init__(self, weights: RTISWeights = RTISWeights(), filler: str | Filler = "blur:10") -> None:
        self.weights = weights
        self.filler = filler

    def __call__(
        self, classifier: Classifier, images: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        w = self.weights
        class_masks, targets = mask_logits.float().sigmoid(), targets.float()
        target, _ = target_masks(class_masks, targets)
        kept, removed = kept_and_removed(classifier, images, target, resolve_filler(self.filler, classifier.mean_colour))
        present = targets.bool()
        log_p_kept, _ = class_log_probabilities(classifier, kept)
        log_p_removed, _ = class_log_probabilities(classifier, removed)
        terms = {
            "tv": reflect_total_variation(target, power=2).mean(),
            "area": target.mean(),
            "preserver": -log_p_kept[present].mean(),
            "destroyer": log_p_removed[present].exp().mean(),
        }
        terms["total"] = (
            w.tv * terms["tv"]
            + w.area * terms["area"]
            + w.preserver * terms["preserver"]
            + w.destroyer * terms["destroyer"].clamp_min(1e-12) ** w.destroyer_power
        )
        return terms


def build_loss(
    name: str = "explainer",
    preset: str = "vgg16-voc",
    weights: dict[str, Any] | None = None,
    multilabel: bool = True,
    filler: str = "blur:10",
) -> ExplainerLoss | RTISLoss:
    """A loss by name: ``"explainer"`` with a preset's weights, or ``"rtis"`` with ``filler``;
    ``weights`` overrides some fields of :class:`ExplainerWeights` or :class:`RTISWeights`."""
    if name == "explainer":
        return ExplainerLoss(_override(preset_named(preset).weights, weights or {}), multilabel=multilabel)
    if name == "rtis":
        return RTISLoss(_override(RTISWeights(), weights or {}), filler=filler)
    raise MaskscopeValueError(f"unknown explainer loss {name!r}; choose from {', '.join(LOSSES)}")


def preset_named(name: str) -> Preset:
    """The preset called ``name``."""
    if name not in PRESETS:
        raise MaskscopeValueError(f"unknown loss preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def _override(weights, changes: dict[str, Any]):
    known = {field.name for field in fields(weights)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise MaskscopeValueError(f"unknown loss weight(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(weights, **{key: float(value) for key, value in changes.items()})


def _log_one_minus_exp(log_p: torch.Tensor) -> torch.Tensor:
    """``log(1 − e^x)`` for ``x ≤ 0``, accurate near 0 and for very negative ``x``."""
    x = log_p.clamp(max=-1e-7)
    near_zero = x > -0.6931
    # each branch sees only the inputs it is accurate for, so neither sends back an infinite gradient
    close = torch.log(-torch.expm1(torch.where(near_zero, x, -1.0)))
    far = torch.log1p(-torch.exp(torch.where(near_zero, -1.0, x)))
    return torch.where(near_zero, close, far)
