"""Segmentation scores of masks against ground truth (Stalder et al., 2022).

For a mask ``m`` in [0, 1] and a ground-truth object mask ``g`` (B×H×W, ``Z = H·W``),
per image then averaged over images:

* ``Acc = (Σ m·g + Σ (1 − m)(1 − g)) / Z``
* ``IoU = Σ min(m, g) / Σ max(m, g)`` (1 when both are empty)
* ``Sal = log(max(mean m, 0.05)) − log Σ_{c∈Y} p_c(F(m·x))`` — the masked image ``m·x`` is
  taken in the classifier's normalised space, i.e. removed pixels become its mean colour;
  lower is better (small masks that keep the classes confident).
* ``MAE = mean |m − g|``

The masks are scored soft, as defined; ``threshold`` binarises them first (``m > t``).
:func:`sanity_rows` scores the reference masks all-0, all-0.5, all-1 and the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.targets import TargetSpec, resolve_targets
from maskscope.core.model.targets import target_weights as multi_hot
from maskscope.core.perturbation.fillers import Constant
from maskscope.core.scoring.perturbations import score_perturbations

#: The smallest mask area Sal's area term counts.
SAL_MIN_AREA = 0.05


@dataclass
class SegmentationScores:
    """Per-image scores (each of shape B); ``sal`` is None when no classifier was given."""

    acc: torch.Tensor
    iou: torch.Tensor
    mae: torch.Tensor
    sal: torch.Tensor | None = None

    def means(self) -> dict[str, float]:
        """Each score averaged over images."""
        scores = {"acc": self.acc, "iou": self.iou, "sal": self.sal, "mae": self.mae}
        return {name: float(value.mean()) for name, value in scores.items() if value is not None}


def segmentation_scores(
    masks: torch.Tensor,
    ground_truth: torch.Tensor,
    threshold: float | None = None,
    classifier: Classifier | None = None,
    images: torch.Tensor | None = None,
    target: TargetSpec | None = None,
    batch_size: int | None = None,
) -> SegmentationScores:
    """Acc, IoU, MAE (and Sal when a classifier, images and a target are given) per image.

    Args:
        masks: B×H×W in [0, 1], 1 = the object.
        ground_truth: B×H×W boolean (or 0/1) object masks of the target classes.
        threshold: binarise the masks at ``m > threshold`` first; None scores them soft.
        classifier, images, target: for Sal — the model, the images B×3×H×W in [0, 1] and
            the classes Y present in each image (a class, or a set of classes per image).
        batch_size: images per forward pass for Sal (default: 8 on a CPU, 64 on a GPU).
    """
    _check(masks, ground_truth)
    m = (masks > threshold).float() if threshold is not None else masks.float()
    g = ground_truth.to(m.device).float()
    pixels = m[0].numel()
    acc = ((m * g).flatten(1).sum(1) + ((1 - m) * (1 - g)).flatten(1).sum(1)) / pixels
    union = torch.maximum(m, g).flatten(1).sum(1)
    overlap = torch.minimum(m, g).flatten(1).sum(1)
    iou = torch.where(union > 0, overlap / union.clamp_min(1e-12), torch.ones_like(union))
    mae = (m - g).abs().flatten(1).mean(1)
    sal = None
    if classifier is not None:
        if images is None or target is None:
            raise ValueError("Sal needs the images and the target as well as the classifier")
        sal = _saliency_score(m, classifier, images, target, batch_size)
    return SegmentationScores(acc.cpu(), iou.cpu(), mae.cpu(), sal)


def sanity_masks(ground_truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """The reference masks to report beside a method: all-0, all-0.5, all-1 and the ground truth."""
    g = ground_truth.float()
    return {
        "all-0": torch.zeros_like(g),
        "all-0.5": torch.full_like(g, 0.5),
        "all-1": torch.ones_like(g),
        "ground truth": g,
    }


def sanity_rows(
    ground_truth: torch.Tensor,
    classifier: Classifier | None = None,
    images: torch.Tensor | None = None,
    target: TargetSpec | None = None,
    batch_size: int | None = None,
) -> dict[str, dict[str, float]]:
    """Mean scores of each of :func:`sanity_masks` (with Sal when a classifier is given)."""
    return {
        name: segmentation_scores(mask, ground_truth, None, classifier, images, target, batch_size).means()
        for name, mask in sanity_masks(ground_truth).items()
    }


def _saliency_score(
    masks: torch.Tensor, classifier: Classifier, images: torch.Tensor, target: TargetSpec, batch_size: int | None
) -> torch.Tensor:
    with torch.no_grad():
        clean = classifier.probabilities(images)
    target_weights = multi_hot(resolve_targets(target, classifier, clean), clean.shape[1], device=images.device)
    kept = score_perturbations(
        classifier,
        images,
        masks.to(images.device)[:, None],
        Constant(classifier.mean_colour),
        target_weights,
        batch_size=batch_size,
    )[:, 0]
    area = masks.flatten(1).mean(1).clamp_min(SAL_MIN_AREA).to(kept)
    return (area.log() - kept.clamp_min(1e-12).log()).cpu()


def _check(masks: torch.Tensor, ground_truth: torch.Tensor) -> None:
    if masks.dim() != 3 or masks.shape != ground_truth.shape:
        raise ValueError(
            f"masks {tuple(masks.shape)} and ground truth {tuple(ground_truth.shape)} must both be B×H×W"
        )
    if torch.isnan(masks).any():
        raise ValueError("masks contain NaN")
    if masks.min() < 0 or masks.max() > 1:
        raise ValueError(f"masks must lie in [0, 1], got values in [{float(masks.min())}, {float(masks.max())}]")
