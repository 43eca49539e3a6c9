"""Weak localisation: a box from a thresholded saliency map, right when it overlaps the object.

A map ``h`` (H×W) is thresholded at ``α`` by one of

* ``mean``:   keep ``h ≥ α·mean(h)``;
* ``value``:  keep ``h − min(h) ≥ α·(max(h) − min(h))``;
* ``energy``: keep the most salient pixels, in descending order, until their sum first
  reaches ``α`` of the total (negative values carry no energy; ties in row-major order);
* ``max``:    keep ``h ≥ α·max(h)`` (the G-removal protocol, α = 0, 0.05, …, 0.95).

The predicted box is the tight box around *all* surviving pixels (the whole image if none
survive). It is correct when its IoU with a ground-truth box of the class is at least 0.5;
the error is the share of images not correct. MP's reported α*: value 0.25, energy 0.90,
mean 1.0. :func:`select_alpha` sweeps α, picks α* on held-out images and reports the error
of the others at α*.

Boxes are ``(x0, y0, x1, y1)`` in inclusive pixel coordinates: a single pixel is 1×1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

THRESHOLDS = ("mean", "value", "energy", "max")

#: The α values of the G-removal sweep: 0, 0.05, …, 0.95.
DEFAULT_ALPHAS = tuple(round(0.05 * i, 2) for i in range(20))

#: A box is correct at this IoU or above.
IOU_CORRECT = 0.5


def threshold_map(saliency: torch.Tensor, rule: str, alpha: float) -> torch.Tensor:
    """Surviving pixels (B×H×W, bool) of maps B×H×W thresholded by ``rule`` at ``alpha``."""
    _check_saliency(saliency)
    flat = saliency.flatten(1).float()
    if rule == "mean":
        keep = flat >= alpha * flat.mean(1, keepdim=True)
    elif rule == "value":
        low = flat.min(1, keepdim=True).values
        keep = flat - low >= alpha * (flat.max(1, keepdim=True).values - low)
    elif rule == "max":
        keep = flat >= alpha * flat.max(1, keepdim=True).values
    elif rule == "energy":
        energy = flat.clamp_min(0)
        values, order = energy.sort(dim=1, descending=True, stable=True)
        before = values.cumsum(1) - values
        kept_sorted = before < alpha * energy.sum(1, keepdim=True)
        keep = torch.zeros_like(kept_sorted).scatter(1, order, kept_sorted)
    else:
        raise ValueError(f"unknown threshold rule {rule!r}; use one of {', '.join(THRESHOLDS)}")
    return keep.view_as(saliency)


def bounding_boxes(keep: torch.Tensor) -> torch.Tensor:
    """Tight inclusive boxes B×4 ``(x0, y0, x1, y1)`` around True pixels of B×H×W; whole image if none."""
    batch, height, width = keep.shape
    rows, columns = keep.any(2), keep.any(1)
    ys = torch.arange(height, device=keep.device).expand(batch, height)
    xs = torch.arange(width, device=keep.device).expand(batch, width)
    y0 = torch.where(rows, ys, height).min(1).values
    y1 = torch.where(rows, ys, -1).max(1).values
    x0 = torch.where(columns, xs, width).min(1).values
    x1 = torch.where(columns, xs, -1).max(1).values
    empty = ~rows.any(1)
    whole = torch.tensor([0, 0, width - 1, height - 1], device=keep.device)
    boxes = torch.stack([x0, y0, x1, y1], 1)
    return torch.where(empty[:, None], whole, boxes)


def box_iou(boxes: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """IoU N×M between inclusive boxes N×4 and M×4."""
    boxes, others = boxes.float(), others.float()
    x0 = torch.maximum(boxes[:, None, 0], others[None, :, 0])
    y0 = torch.maximum(boxes[:, None, 1], others[None, :, 1])
    x1 = torch.minimum(boxes[:, None, 2], others[None, :, 2])
    y1 = torch.minimum(boxes[:, None, 3], others[None, :, 3])
    overlap = (x1 - x0 + 1).clamp_min(0) * (y1 - y0 + 1).clamp_min(0)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    other_area = (others[:, 2] - others[:, 0] + 1) * (others[:, 3] - others[:, 1] + 1)
    return overlap / (area[:, None] + other_area[None, :] - overlap)


@dataclass
class LocalisationResult:
    """Predicted boxes B×4, each image's best IoU with its ground-truth boxes, and correctness."""

    boxes: torch.Tensor
    iou: torch.Tensor

    @property
    def correct(self) -> torch.Tensor:
        return self.iou >= IOU_CORRECT

    @property
    def error(self) -> float:
        """Share of images whose box is not correct."""
        return 1.0 - float(self.correct.float().mean())


def weak_localisation(
    saliency: torch.Tensor, ground_truth_boxes: Sequence[torch.Tensor], threshold_rule: str = "value", alpha: float = 0.25
) -> LocalisationResult:
    """Box each map B×H×W thresholded at ``alpha`` and score it against the image's boxes.

    Args:
        saliency: higher = more important; NaN is an error.
        ground_truth_boxes: per image, a K×4 (or 4) tensor of the target class's boxes.
        threshold_rule: ``"mean"``, ``"value"``, ``"energy"`` or ``"max"``.
        alpha: the threshold parameter.
    """
    if len(ground_truth_boxes) != saliency.shape[0]:
        raise ValueError(f"got {len(ground_truth_boxes)} sets of boxes for {saliency.shape[0]} maps")
    boxes = bounding_boxes(threshold_map(saliency, threshold_rule, alpha)).cpu()
    best = []
    for box, truth in zip(boxes, ground_truth_boxes):
        truth = torch.as_tensor(truth).cpu().reshape(-1, 4)
        if len(truth) == 0:
            raise ValueError("an image has no ground-truth box of its class")
        best.append(box_iou(box[None], truth).max())
    return LocalisationResult(boxes, torch.stack(best))


@dataclass
class AlphaSelection:
    """α* chosen on held-out images, the sweep's errors there, and the other images' error at α*."""

    alpha: float
    alphas: list[float]
    held_out_errors: list[float]
    error: float


def select_alpha(
    saliency: torch.Tensor,
    ground_truth_boxes: Sequence[torch.Tensor],
    held_out: torch.Tensor,
    threshold_rule: str = "value",
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> AlphaSelection:
    """Sweep ``alphas`` on the ``held_out`` images (boolean B), pick the lowest error (the
    first on ties) and report the error of the remaining images at that α."""
    held_out = torch.as_tensor(held_out, dtype=torch.bool).cpu()
    if held_out.shape != (saliency.shape[0],) or held_out.all() or not held_out.any():
        raise ValueError("held_out must be a boolean per image, with images on both sides of the split")
    chosen = held_out.nonzero().flatten().tolist()
    rest = (~held_out).nonzero().flatten().tolist()
    tuning_maps = saliency[held_out.to(saliency.device)]
    tuning_boxes = [ground_truth_boxes[i] for i in chosen]
    errors = [weak_localisation(tuning_maps, tuning_boxes, threshold_rule, alpha).error for alpha in alphas]
    best = min(range(len(alphas)), key=errors.__getitem__)
    test_maps = saliency[~held_out.to(saliency.device)]
    test = weak_localisation(test_maps, [ground_truth_boxes[i] for i in rest], threshold_rule, alphas[best])
    return AlphaSelection(float(alphas[best]), [float(a) for a in alphas], errors, test.error)


def _check_saliency(saliency: torch.Tensor) -> None:
    if saliency.dim() != 3:
        raise ValueError(f"saliency must be B×H×W, got {tuple(saliency.shape)}")
    if torch.isnan(saliency).any():
        raise ValueError("saliency contains NaN")
