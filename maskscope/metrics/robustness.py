"""Similarity between saliency maps: how stable an explanation is (G-removal §5 robustness).

Maps are compared with three measures, each batched over B×H×W pairs of maps:

- :func:`ssim` — structural similarity (Wang et al. 2004) of the maps min-max normalised to
  [0, 1];
- :func:`hog_pearson` — Pearson correlation of the maps' HOG features (shape of the map's
  edges, insensitive to small shifts);
- :func:`spearman` — Spearman rank correlation of the flattened maps (order of importance).

:func:`pairwise_robustness` compares all k·(k − 1)/2 pairs of k maps of the same image (runs with
different seeds, initialisations or patch sizes) and reports the mean, as in the G-removal
paper's protocol (5 runs, 10 pairs).

A constant map has no structure: it normalises to all zeros for SSIM, and its correlation
(HOG-Pearson, Spearman) with any map is defined as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from maskscope.core.explanation import Explanation
from maskscope.metrics.ssim_terms import K1, K2, WINDOW, WINDOW_SIGMA, ssim_terms

#: SSIM window: Gaussian σ = 1.5 on an 11×11 support; constants for a data range of 1 (:mod:`.ssim_terms`)
SSIM_SIGMA, SSIM_WINDOW, SSIM_K1, SSIM_K2 = WINDOW_SIGMA, WINDOW, K1, K2

#: HOG parameters (scikit-image's defaults): 9 orientations, 8×8-pixel cells, 3×3-cell blocks, L2-Hys
HOG_PARAMS: dict[str, Any] = {"orientations": 9, "pixels_per_cell": (8, 8), "cells_per_block": (3, 3), "block_norm": "L2-Hys"}


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as float64 B×H×W (a single H×W map becomes a batch of one), same shape, finite."""
    a = torch.as_tensor(a).detach().cpu().to(torch.float64)
    b = torch.as_tensor(b).detach().cpu().to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps a and b differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() == 2:
        a, b = a[None], b[None]
    if a.dim() != 3:
        raise ValueError(f"maps must be B×H×W or H×W, got shape {tuple(a.shape)}")
    for name, maps in (("a", a), ("b", b)):
        if not torch.isfinite(maps).all():
            raise ValueError(f"maps {name} contain NaN or infinite values")
    return a, b


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Each map of B×H×W scaled to [0, 1]; a constant map becomes all zeros."""
    low = maps.amin((1, 2), keepdim=True)
    span = maps.amax((1, 2), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny), 0.0)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity of each pair of maps (B), after min-max normalisation.

    With Gaussian-weighted local means μ, variances σ² and covariance σ_ab (window σ = 1.5,
    11×11, population statistics),

        SSIM(a, b) = (2 μ_a μ_b + C1)(2 σ_ab + C2) / ((μ_a² + μ_b² + C1)(σ_a² + σ_b² + C2)),

    C1 = (0.01·L)², C2 = (0.03·L)², L = 1 (Wang et al. 2004), averaged over the positions where
    the window lies inside the map. This equals scikit-image's ``structural_similarity(a, b,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``.
    Maps must be at least 11×11.
    """
    a, b = _check_pair(a, b)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs maps of at least {SSIM_WINDOW}×{SSIM_WINDOW}, got {tuple(a.shape[-2:])}")
    luminance, contrast_structure = ssim_terms(minmax(a)[:, None], minmax(b)[:, None])
    index = (luminance * contrast_structure)[:, 0]
    return index.mean((1, 2)).float()


def _pearson_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of matching rows of B×N (0 where a row is constant)."""
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    norm = x.norm(dim=1) * y.norm(dim=1)
    return torch.where(norm > 0, (x * y).sum(1) / norm.clamp_min(torch.finfo(x.dtype).tiny), 0.0)


def hog_features(maps: torch.Tensor) -> torch.Tensor:
    """HOG descriptors (:data:`HOG_PARAMS`) of min-max normalised maps, B×F."""
    from skimage.feature import hog

    if min(maps.shape[-2:]) < HOG_PARAMS["pixels_per_cell"][0] * HOG_PARAMS["cells_per_block"][0]:
        raise ValueError(f"HOG needs maps of at least 24×24, got {tuple(maps.shape[-2:])}")
    return torch.from_numpy(np.stack([hog(m, **HOG_PARAMS) for m in minmax(maps).numpy()]))


def hog_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the HOG features of each pair of maps (B).

    ``r = Σ (h_a − h̄_a)(h_b − h̄_b) / (‖h_a − h̄_a‖ ‖h_b − h̄_b‖)`` with ``h`` =
    ``skimage.feature.hog`` of the map min-max normalised to [0, 1], 9 orientations, 8×8-pixel
    cells, 3×3-cell blocks, L2-Hys block normalisation (scikit-image's defaults, which the
    G-removal paper's scikit-image protocol used). Maps must be at least 24×24.
    """
    a, b = _check_pair(a, b)
    return _pearson_rows(hog_features(a), hog_features(b)).float()


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1…N of each row of B×N, ties sharing the average of their ranks."""
    ordered, order = values.sort(dim=1)
    first = torch.searchsorted(ordered, ordered, side="left")
    last = torch.searchsorted(ordered, ordered, side="right")
    ranks = torch.empty_like(values)
    return ranks.scatter_(1, order, (first + last + 1).to(values.dtype) / 2)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of flattened maps (B).

    ``ρ = Pearson(rank(a), rank(b))`` over the H·W pixels, tied values given their average rank
    (as ``scipy.stats.spearmanr``).
    """
    a, b = _check_pair(a, b)
    return _pearson_rows(average_ranks(a.flatten(1)), average_ranks(b.flatten(1))).float()


SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ssim": ssim,
    "hog_pearson": hog_pearson,
    "spearman": spearman,
}


@dataclass
class PairwiseScores:
    """One similarity over all pairs of runs.

    Attributes:
        metric: the similarity's name.
        mean: the mean over all pairs and images.
        values: P×B, one row per pair of runs, one column per image.
        pairs: the P pairs ``(i, j)``, ``i < j``, of run indices.
    """

    metric: str
    mean: float
    values: torch.Tensor
    pairs: list[tuple[int, int]]


MapsLike = torch.Tensor | Sequence[torch.Tensor] | Sequence[Explanation]


def _stack_runs(maps: MapsLike) -> torch.Tensor:
    """k×B×H×W from k×H×W, k×B×H×W, or a sequence of k tensors or Explanations."""
    if isinstance(maps, torch.Tensor):
        runs = maps
    else:
        items = [m.saliency if isinstance(m, Explanation) else torch.as_tensor(m) for m in maps]
        shapes = {tuple(item.shape) for item in items}
        if len(shapes) > 1:
            raise ValueError(f"the runs' maps differ in shape: {sorted(shapes)}")
        if not items:
            raise ValueError("maps is empty: robustness needs at least 2 runs")
        runs = torch.stack([item.detach().cpu() for item in items])
    if runs.dim() == 3:
        runs = runs[:, None]
    if runs.dim() != 4:
        raise ValueError(f"maps must be k×H×W or k×B×H×W, got shape {tuple(runs.shape)}")
    if len(runs) < 2:
        raise ValueError(f"robustness needs at least 2 runs to compare, got {len(runs)}")
    return runs


def pairwise_robustness(
    maps: MapsLike, metrics: Sequence[str] = ("ssim", "hog_pearson", "spearman")
) -> dict[str, PairwiseScores]:
    """Similarity of every pair among k runs' maps of the same images.

    Args:
        maps: k×H×W (k runs on one image), k×B×H×W, or a sequence of k Explanations (or
            B×H×W tensors) of the same images, one per run (seed, initialisation, …).
        metrics: names in :data:`SIMILARITIES`.

    Returns:
        metric name → :class:`PairwiseScores` over the k·(k − 1)/2 pairs.
    """
    unknown = [name for name in metrics if name not in SIMILARITIES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {', '.join(SIMILARITIES)}")
    runs = _stack_runs(maps)
    pairs = [(i, j) for i in range(len(runs)) for j in range(i + 1, len(runs))]
    first = torch.cat([runs[i] for i, _ in pairs])
    second = torch.cat([runs[j] for _, j in pairs])
    results = {}
    for name in metrics:
        values = SIMILARITIES[name](first, second).view(len(pairs), runs.shape[1])
        results[name] = PairwiseScores(name, float(values.mean()), values, pairs)
    return results
