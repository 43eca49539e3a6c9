"""How alike two stacks of saliency maps are, as the comparison benchmarks report it: the
Spearman correlation of their pixels, where each map peaks, and how high each map stands
at the other's peak."""

from __future__ import annotations

import torch

from maskscope.metrics import spearman


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """(row, column) of each map's maximum (the first in row-major order on ties), B×2."""
    flat = maps.flatten(1).argmax(1)
    return torch.stack([flat // maps.shape[-1], flat % maps.shape[-1]], 1)


def height_at(maps: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """Each map's value at ``at`` (B×2, row and column) on its own range, 0 at its minimum
    and 1 at its maximum."""
    flat = maps.flatten(1)
    value = flat.gather(1, (at[:, 0] * maps.shape[-1] + at[:, 1])[:, None])[:, 0]
    low, high = flat.min(1).values, flat.max(1).values
    return (value - low) / (high - low).clamp(min=1e-12)


#: the distance between maxima the agreement goals count as the same place, in image pixels
NEAR_PX = 15


def agreement(ours: torch.Tensor, theirs: torch.Tensor, pixels_per_cell: float = 1.0) -> dict:
    """Spearman over pixels, the distance between maxima (in image pixels: a map cell spans
    ``pixels_per_cell``; ``maxima_within_15px`` the share of maps whose maxima lie within
    :data:`NEAR_PX`) and the peak height — the lower of each map's height at the other's
    maximum (1: the other's peak is also this one's top) — of two stacks of maps, B×H×W:
    mean, extreme and per map. Where a map holds two blobs of nearly equal height, its peak
    can jump between them while the peak height stays near 1."""
    correlation = spearman(ours, theirs)
    ours_peaks, theirs_peaks = peaks(ours), peaks(theirs)
    distance = (ours_peaks - theirs_peaks).float().norm(dim=1) * pixels_per_cell
    height = torch.minimum(height_at(ours, theirs_peaks), height_at(theirs, ours_peaks))
    return {
        "spearman": {"mean": float(correlation.mean()), "min": float(correlation.min()),
                     "per_photo": correlation.tolist()},
        "peak_distance_px": {"mean": float(distance.mean()), "max": float(distance.max()),
                             "per_photo": distance.tolist()},
        "maxima_within_15px": float((distance <= NEAR_PX).float().mean()),
        "peak_height": {"mean": float(height.mean()), "min": float(height.min()), "per_photo": height.tolist()},
    }
