"""Sliding windows: where a patch sits, the masks that remove it, and how per-window values
go back to the pixels. The primitive of sliding-patch (SP) and occlusion methods.

A window is a *stamp* ``w`` (k×k, values in [0, 1], 1 = removed) whose p×p *core* has its
top-left corner at ``(r_i, c_j)`` on a regular grid of stride ``s``; a stamp larger than its
core (a soft disc whose blurred rim reaches past the p×p square) overhangs the core by
``(k − p)/2`` pixels on each side. The removal mask of window ``(i, j)`` is

    m_ij(u) = 1 − w(u − (r_i, c_j) + margin)       (1 = keep; parts outside the image are dropped)

Corners along an axis of length L:

- ``"valid"``: ``r = 0, s, 2s, …, ≤ L − p``: every core lies inside the image,
  ``⌊(L − p)/s⌋ + 1`` positions (66 for p = 29, s = 3, L = 224; 24 for p = 35, s = 8);
- ``"edge"``: ``r = 0, s, 2s, …`` up to the first window that reaches the far border, clipped
  there when the stride overshoots it, ``⌈(L − p)/s⌉ + 1`` positions (25 for p = 35, s = 8;
  Captum's ``Occlusion`` grid), so every pixel is covered;
- ``"cover"``: ``r = 0, s, 2s, …, < L``: windows hanging over the bottom and right borders are
  clipped there, ``⌈L/s⌉`` positions (28 for s = 8, L = 224) and every pixel is covered.

Masks are built on demand for a chunk of windows, so memory never holds all N at full size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from maskscope.core.model.classifier import DEFAULT_SCORE, Classifier
from maskscope.core.perturbation.fillers import Filler
from maskscope.core.perturbation.masks import disc_masks
from maskscope.core.scoring.perturbations import score_mask_stream

PLACEMENTS = ("valid", "edge", "cover")


def square_stamp(size: int) -> torch.Tensor:
    """A p×p patch that removes every pixel it covers."""
    return torch.ones(size, size)


def soft_disc_stamp(size: int, edge_sigma: float) -> torch.Tensor:
    """A disc of diameter ``size`` whose edge is blurred by a Gaussian of ``edge_sigma`` px.

    The stamp is ``size + 2·⌈3σ⌉`` pixels wide so the blurred rim is kept whole.
    """
    margin = math.ceil(3 * edge_sigma)
    side = size + 2 * margin
    return disc_masks(torch.tensor([size / 2]), (side, side), edge_sigma)[0, 0]


def window_starts(length: int, size: int, stride: int, placement: str) -> torch.Tensor:
    """Top-left corners of the windows' cores along one axis (see the module docstring)."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if size < 1 or stride < 1:
        raise ValueError(f"window size and stride must be positive, got {size} and {stride}")
    if placement != "cover" and size > length:
        raise ValueError(f"a window of {size} px does not fit in an image side of {length} px")
    end = {"valid": length - size + 1, "edge": length - size + stride, "cover": length}[placement]
    return torch.arange(0, end, stride)


@dataclass(frozen=True)
class WindowGrid:
    """One stamp at every corner of a regular grid over an image of ``size`` (H, W).

    Args:
        stamp: k×k removal weights (1 = removed), k ≥ ``core`` and k − core even.
        core: side p of the window the corners refer to.
        stride: grid step s in pixels.
        size: the image's (H, W).
        placement: ``"valid"``, ``"edge"`` or ``"cover"``.
    """

    stamp: torch.Tensor
    core: int
    stride: int
    size: tuple[int, int]
    placement: str = "valid"

    def __post_init__(self) -> None:
        side = self.stamp.shape[-1]
        if self.stamp.dim() != 2 or self.stamp.shape[0] != side or side < self.core or (side - self.core) % 2:
            raise ValueError(f"stamp {tuple(self.stamp.shape)} must be square, at least {self.core} wide, centred")

    @property
    def margin(self) -> int:
        return (self.stamp.shape[-1] - self.core) // 2

    @property
    def rows(self) -> torch.Tensor:
        return window_starts(self.size[0], self.core, self.stride, self.placement)

    @property
    def cols(self) -> torch.Tensor:
        return window_starts(self.size[1], self.core, self.stride, self.placement)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid of windows."""
        return len(self.rows), len(self.cols)

    def __len__(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def masks(self, index: torch.Tensor) -> torch.Tensor:
        """Removal masks n×H×W (1 = keep) of the windows ``index`` (row-major over the grid)."""
        height, width = self.size
        side = self.stamp.shape[-1]
        columns = self.shape[1]
        top = self.rows[index // columns] - self.margin + side  # in a canvas padded by `side`
        left = self.cols[index % columns] - self.margin + side
        canvas = torch.ones(len(index), height + 2 * side, width + 2 * side)
        offsets = torch.arange(side)
        rows = (top[:, None] + offsets)[:, :, None]
        cols = (left[:, None] + offsets)[:, None, :]
        canvas[torch.arange(len(index))[:, None, None], rows, cols] = 1 - self.stamp
        return canvas[:, side : side + height, side : side + width]

    def spread(self, values: torch.Tensor) -> torch.Tensor:
        """``Σ_ij w_ij(u)·v_ij`` for per-window values B×rows×cols: B×H×W.

        A transposed convolution of the value grid with the stamp at the grid's stride.
        """
        height, width = self.size
        stamp = self.stamp.to(values)[None, None]
        out = F.conv_transpose2d(values[:, None], stamp, stride=self.stride)[:, 0]
        # output index t is pixel t − margin (the first corner is 0)
        out = F.pad(out, (0, max(0, self.margin + width - out.shape[-1]), 0, max(0, self.margin + height - out.shape[-2])))
        return out[:, self.margin : self.margin + height, self.margin : self.margin + width]

    def coverage_average(self, values: torch.Tensor) -> torch.Tensor:
        """Each pixel's average of the values of the windows covering it, weighted by the stamp:

        ``H(u) = Σ_ij w_ij(u)·v_ij / Σ_ij w_ij(u)`` (0 where no window reaches), B×H×W.
        """
        coverage = self.spread(torch.ones_like(values[:1]))
        return torch.where(coverage > 0, self.spread(values) / coverage.clamp_min(1e-12), torch.zeros_like(coverage))

    def centres(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel coordinates of the cores' centres, ``r_i + (p − 1)/2`` and ``c_j + (p − 1)/2``."""
        half = (self.core - 1) / 2
        return self.rows.float() + half, self.cols.float() + half

    def interpolate(self, values: torch.Tensor) -> torch.Tensor:
        """Per-window values B×rows×cols as an image B×H×W: each value sits at its window's
        centre, pixels between centres are interpolated bilinearly and pixels beyond the
        outermost centres take the nearest centre's value."""
        height, width = self.size
        row_centres, col_centres = self.centres()
        ys = _normalised(torch.arange(height, dtype=torch.float32), row_centres, self.stride)
        xs = _normalised(torch.arange(width, dtype=torch.float32), col_centres, self.stride)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).to(values)
        grid = grid[None].expand(len(values), height, width, 2)
        out = F.grid_sample(values[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out[:, 0]


def _normalised(pixels: torch.Tensor, centres: torch.Tensor, stride: int) -> torch.Tensor:
    """``grid_sample`` coordinates (−1 … 1 across the centres) of pixel positions."""
    if len(centres) == 1:
        return torch.zeros_like(pixels)
    position = (pixels - centres[0]) / stride  # in units of grid steps
    return 2 * position / (len(centres) - 1) - 1


@torch.no_grad()
def score_windows(
    classifier: Classifier,
    images: torch.Tensor,
    grid: WindowGrid,
    filler: Filler,
    target_weights: torch.Tensor,
    batch_size: int | None = None,
    progress: bool = False,
    score: str = DEFAULT_SCORE,
) -> torch.Tensor:
    """Target scores (``target_weights``: B×C, multi-hot) of every image with every window removed, B×rows×cols.

    Windows are taken ``batch_size // B`` at a time (one forward pass of ``batch_size``
    perturbed images); their masks are built for that chunk only.
    """

    def masks_of(chunk: slice) -> torch.Tensor:
        return grid.masks(torch.arange(chunk.start, chunk.stop)).to(images.device)

    stream = score_mask_stream(
        classifier, images, len(grid), masks_of, filler, target_weights, batch_size, progress, "windows", score
    )
    return torch.cat([scores for _, _, scores in stream], 1).view(len(images), *grid.shape)
