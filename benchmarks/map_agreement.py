"""How alike two saliency maps are, as the comparison benchmarks report it (beside
:func:`maskscope.metrics.spearman`): where each map peaks."""

from __future__ import annotations

import torch


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """(row, column) of each map's maximum (the first in row-major order on ties), B×2."""
    flat = maps.flatten(1).argmax(1)
    return torch.stack([flat // maps.shape[-1], flat % maps.shape[-1]], 1)
