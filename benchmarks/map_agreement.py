"""How alike two stacks of saliency maps are, as the comparison benchmarks report it: the
Spearman correlation of their pixels and where each map peaks."""

from __future__ import annotations

import torch

from maskscope.metrics import spearman


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """(row, column) of each map's maximum (the first in row-major order on ties), B×2."""
    flat = maps.flatten(1).argmax(1)
    return torch.stack([flat // maps.shape[-1], flat % maps.shape[-1]], 1)


def agreement(ours: torch.Tensor, theirs: torch.Tensor, pixels_per_cell: float = 1.0) -> dict:
    """Spearman over pixels and the distance between maxima (in image pixels: a map cell
    spans ``pixels_per_cell``) of two stacks of maps, B×H×W: mean, extreme and per map."""
    correlation = spearman(ours, theirs)
    distance = (peaks(ours) - peaks(theirs)).float().norm(dim=1) * pixels_per_cell
    return {
        "spearman": {"mean": float(correlation.mean()), "min": float(correlation.min()),
                     "per_photo": correlation.tolist()},
        "peak_distance_px": {"mean": float(distance.mean()), "max": float(distance.max()),
                             "per_photo": distance.tolist()},
    }
