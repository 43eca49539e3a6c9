"""The pointing game (Zhang et al., 2016) with the centre-point baseline beside it.

A saliency map *hits* when its maximum lies within ``tolerance`` pixels of the object's
ground-truth mask (or box). Ties are averaged: when several pixels share the maximum, the
hit is the fraction of them within tolerance. Accuracy is averaged per class, then over
classes; the centre-point baseline always points at the image centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt


@dataclass
class PointingResult:
    """Hits of the method and of the centre baseline per image, and the per-class mean accuracy."""

    hits: torch.Tensor
    centre_hits: torch.Tensor
    classes: list[int]

    @property
    def accuracy(self) -> float:
        return per_class_mean(self.hits, self.classes)

    @property
    def centre_accuracy(self) -> float:
        return per_class_mean(self.centre_hits, self.classes)


def pointing_game(
    saliency: torch.Tensor, ground_truth: torch.Tensor, classes: list[int] | None = None, tolerance: float = 15.0
) -> PointingResult:
    """Score saliency maps B×H×W against boolean object masks B×H×W of the same size.

    Args:
        saliency: higher means more important; NaN is an error.
        ground_truth: where the target class's objects are (boxes rasterised, or masks).
        classes: each image's target class, for the per-class average (default: one class).
        tolerance: pixels around the ground truth that still count as a hit.
    """
    if saliency.shape != ground_truth.shape or saliency.dim() != 3:
        raise ValueError(f"saliency {tuple(saliency.shape)} and ground truth {tuple(ground_truth.shape)} must both be B×H×W")
    if torch.isnan(saliency).any():
        raise ValueError("saliency contains NaN")
    near = near_object(ground_truth, tolerance)
    flat = saliency.flatten(1)
    maxima = (flat >= flat.max(1, keepdim=True).values).float()
    hits = (maxima * near.flatten(1)).sum(1) / maxima.sum(1)
    height, width = saliency.shape[1:]
    centre_hits = near[:, (height - 1) // 2, (width - 1) // 2].float()
    return PointingResult(hits.cpu(), centre_hits.cpu(), list(classes) if classes is not None else [0] * len(hits))


def near_object(ground_truth: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Pixels within Euclidean distance ``tolerance`` of a True pixel, per image (B×H×W, bool)."""
    masks = ground_truth.bool().cpu().numpy()
    if not masks.reshape(len(masks), -1).any(1).all():
        raise ValueError("a ground-truth mask is empty: the image has no object of its target class")
    near = np.stack([distance_transform_edt(~mask) <= tolerance for mask in masks])
    return torch.from_numpy(near)


def per_class_mean(values, classes) -> float:
    """The mean of ``values`` within each class, then over the classes (each class counts once).

    ``values`` and ``classes`` are matching 1-D sequences (numpy arrays, CPU tensors or lists);
    the pointing game's accuracy and the bench summary's pointing rows (and their bootstrap
    resamples) are this mean of the per-image hits.
    """
    values, classes = np.asarray(values), np.asarray(classes)
    return float(np.mean([values[classes == c].mean() for c in np.unique(classes)]))
