"""Mask regularisers, each returning one value per mask (shape B).

* L1 towards a value ``v``: ``Σ_u |m(u) − v|`` (``reduction="sum"``, MP) or its mean
  (I-GOS). Deletion games pull masks to 1 (remove little), preservation games to 0.
* Total variation with exponent β: isotropic ``Σ_u ‖∇m(u)‖₂^β`` (MP, forward differences)
  or anisotropic ``Σ_u |∂_x m|^β + Σ_u |∂_y m|^β`` (I-GOS: each sum a mean over its
  differences, ``mean|∂_y m|^β + mean|∂_x m|^β``, as the I-GOS authors' code computes it).
* Area bounds: with each mask's values sorted in descending order ``q``, penalise
  ``relu(q_min − q) + relu(q − q_max)`` where ``q_min`` has ones in the first ``⌊Z·a⌋``
  places and ``q_max`` in the first ``⌊Z·b⌋`` (Explainer, a = 0.05, b = 0.3).
* Area target: with ``q`` sorted as above, ``mean (q − r_a)²`` where ``r_a`` has ones in the
  first ``Z − ⌊Z·(1 − a)⌋`` places — zero exactly when the mask is binary with area ``a``
  (Extremal Perturbation).
"""

from __future__ import annotations

import torch

#: how :func:`area_target` ranks tied values
AREA_TIES = ("sort", "average")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    flat = values.flatten(1)
    if reduction == "sum":
        return flat.sum(1)
    if reduction == "mean":
        return flat.mean(1)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def l1(masks: torch.Tensor, towards: float = 0.0, reduction: str = "sum") -> torch.Tensor:
    """``Σ |m − towards|`` (or the mean) per mask."""
    return _reduce((masks - towards).abs(), reduction)


def total_variation(
    masks: torch.Tensor, beta: float = 3.0, isotropic: bool = True, reduction: str = "sum"
) -> torch.Tensor:
    """TV_β of masks B×C×H×W with forward differences (the last row/column has none)."""
    dy = masks[..., 1:, :] - masks[..., :-1, :]
    dx = masks[..., :, 1:] - masks[..., :, :-1]
    if isotropic:
        squared = dy[..., :, :-1] ** 2 + dx[..., :-1, :] ** 2
        # (ε keeps the gradient finite where the mask is flat)
        return _reduce((squared + 1e-12) ** (beta / 2), reduction)
    if reduction == "sum":
        return _reduce(dy.abs() ** beta, "sum") + _reduce(dx.abs() ** beta, "sum")
    return _reduce(dy.abs() ** beta, "mean") + _reduce(dx.abs() ** beta, "mean")


def area_bounds(masks: torch.Tensor, lower: float = 0.05, upper: float = 0.3) -> torch.Tensor:
    """Mean penalty for a mask's area lying outside ``[lower, upper]`` of its pixels."""
    flat = masks.flatten(1)
    count = flat.shape[1]
    ordered = flat.sort(dim=1, descending=True).values
    positions = torch.arange(count, device=masks.device)
    q_min = (positions < int(count * lower)).to(flat)
    q_max = (positions < int(count * upper)).to(flat)
    return (torch.relu(q_min - ordered) + torch.relu(ordered - q_max)).mean(1)


def area_outside(count: int, areas: torch.Tensor | float, device: torch.device | str = "cpu") -> torch.Tensor:
    """``⌊(1 − a)·n⌋`` per mask (B×1, on ``device``): the places of ``n`` outside the area ``a``.

    Counted in float64 on the host, as the authors' code counts in Python floats; compute it
    once and pass it to :func:`area_target` so that a step neither waits for the device nor
    copies a new tensor to it.
    """
    fractions = torch.as_tensor(areas).detach().to("cpu", torch.float64).reshape(-1, 1)
    return (count * (1 - fractions)).floor().long().to(device)


def area_target(
    masks: torch.Tensor,
    areas: torch.Tensor | float,
    ties: str = "average",
    tie_resolution: float = 1e-4,
    outside: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared distance of each mask's sorted values from a binary mask of area ``a``::

        (1/n)·Σ_u (sort↓(m)_u − r_a(u))²,   r_a(u) = [u < n − ⌊(1 − a)·n⌋]

    Values that tie have no order of their own, so ``ties`` says which of them count as inside
    the area:

    * ``"average"``: ``r_a`` is averaged over each run of sorted values equal to within
      ``tie_resolution`` (the average-rank rule): tied values share the reference and get the
      same pull, whichever way rounding falls.
    * ``"sort"``: the authors' code — a plain ascending sort: values apart only by rounding are
      ranked by that rounding, and exactly tied values in whatever order the sort leaves them
      (torch's sort is not stable; the order is fixed for a given input and build).

    ``areas`` is one fraction for all masks or one per mask (B); ``outside``, when given, is
    :func:`area_outside` of them, already on the masks' device.
    """
    if ties not in AREA_TIES:
        raise ValueError(f"ties must be one of {AREA_TIES}, got {ties!r}")
    flat = masks.flatten(1)
    count = flat.shape[1]
    if outside is None:
        outside = area_outside(count, areas, masks.device)
    positions = torch.arange(count, device=masks.device)
    if ties == "sort":
        ordered = flat.sort(dim=1).values
        inside = (positions[None] >= outside).to(flat).expand_as(ordered)
        return ((ordered - inside) ** 2).mean(1)
    ordered = flat.sort(dim=1, descending=True).values
    inside = (positions[None] < count - outside).to(flat).expand_as(ordered)
    reference = _average_over_ties(inside, ordered.detach(), tie_resolution)
    return ((ordered - reference) ** 2).mean(1)


def _average_over_ties(values: torch.Tensor, ordered: torch.Tensor, resolution: float) -> torch.Tensor:
    """``values`` (B×n) averaged over each row's runs of ``ordered`` entries equal to within ``resolution``."""
    levels = torch.round(ordered / resolution)
    starts = torch.ones_like(levels, dtype=torch.bool)
    starts[:, 1:] = levels[:, 1:] != levels[:, :-1]
    runs = starts.flatten().cumsum(0) - 1  # every row begins a run, so runs never span rows
    sums = torch.zeros(values.numel(), dtype=values.dtype, device=values.device).index_add_(0, runs, values.flatten())
    sizes = torch.zeros_like(sums).index_add_(0, runs, torch.ones_like(sums))
    return (sums[runs] / sizes[runs]).view_as(values)


def bilateral_total_variation(
    masks: torch.Tensor, guide: torch.Tensor, size: tuple[int, int], beta: float = 2.0, sigma: float = 0.01
) -> torch.Tensor:
    """iGOS++'s bilateral TV: ``½·[TV_β(M) + Σ_axes mean exp(−(ΔI)²/σ)·|Δ up(M)|^β]`` per mask.

    The first term is the anisotropic mean TV of the mask at its own resolution; the second
    weighs the differences of the bilinearly upsampled mask by how similar neighbouring
    pixels of the guide image ``I`` are (``guide``: B×1×H×W, the channel mean of the
    normalised image), so mask edges are cheap where the image has edges.
    """
    upsampled = torch.nn.functional.interpolate(masks, size=size, mode="bilinear", align_corners=False)
    weight_y = torch.exp(-((guide[..., 1:, :] - guide[..., :-1, :]) ** 2) / sigma)
    weight_x = torch.exp(-((guide[..., :, 1:] - guide[..., :, :-1]) ** 2) / sigma)
    dy = (upsampled[..., 1:, :] - upsampled[..., :-1, :]).abs() ** beta
    dx = (upsampled[..., :, 1:] - upsampled[..., :, :-1]).abs() ** beta
    edge_aware = _reduce(weight_y * dy, "mean") + _reduce(weight_x * dx, "mean")
    return 0.5 * (total_variation(masks, beta, False, "mean") + edge_aware)
