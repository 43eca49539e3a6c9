"""Mask parametrisations: masks at any resolution, upsampled to the image.

A mask parameter ``M`` lives at its own resolution (for example 28×28 for a 224 image) and
is mapped to the image by ``up(M)``: nearest-neighbour enlargement followed by Gaussian
smoothing (MP: ×8 then σ_m = 5), or bilinear interpolation (I-GOS, RISE).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from maskscope.core.perturbation.blur import gaussian_blur, gaussian_kernel1d
from maskscope.core.perturbation.smooth_max import smooth_max

UPSAMPLE_MODES = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Upsampler:
    """``up(M)``: resize masks B×1×h×w to ``size`` and optionally smooth them.

    Args:
        mode: ``"nearest"``, ``"bilinear"`` or ``"bicubic"``.
        smooth_sigma: σ (in output pixels) of a Gaussian applied after resizing; 0 for none.
    """

    mode: str = "nearest"
    smooth_sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in UPSAMPLE_MODES:
            raise ValueError(f"mode must be one of {UPSAMPLE_MODES}, got {self.mode!r}")

    def __call__(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``up(M) = A_rows · M · A_colsᵀ``: resizing and smoothing are both linear and separable,
        so each axis is one small matrix (:func:`upsampling_matrix`) and the whole map two matrix
        products, forward and backward (far cheaper than an interpolation and two convolutions)."""
        rows, cols = masks.shape[-2:]
        if (rows, cols) == tuple(size) and self.smooth_sigma <= 0:
            return masks
        height, width = size
        padding = "reflect" if blur_radius(self.smooth_sigma) < min(height, width) else "replicate"
        along_rows, along_cols = (
            upsampling_matrix(source, target, self.mode, self.smooth_sigma, padding, masks.device, masks.dtype)
            for source, target in ((rows, height), (cols, width))
        )
        out = along_rows @ masks @ along_cols.T
        return out.clamp(0, 1) if self.mode == "bicubic" else out


def blur_radius(sigma: float) -> int:
    """The radius of :func:`~maskscope.core.perturbation.blur.gaussian_blur`'s default kernel (0 for no blur)."""
    return math.ceil(3 * sigma) if sigma > 0 else 0


@functools.lru_cache(maxsize=64)
def upsampling_matrix(
    source: int, target: int, mode: str, sigma: float, padding: str, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """The ``target × source`` matrix of one axis of :class:`Upsampler`: ``F.interpolate``'s
    resizing (``align_corners=False``), then :func:`~maskscope.core.perturbation.blur.gaussian_blur`'s
    Gaussian of ``sigma`` with its ``padding`` (``reflect`` or ``replicate``) at the border.
    Made once per shape, device and type."""
    basis = torch.eye(source, dtype=torch.float64).view(source, 1, source, 1)
    if source == target:
        resized = basis
    elif mode == "nearest":
        resized = F.interpolate(basis, size=(target, 1), mode="nearest")
    else:
        resized = F.interpolate(basis, size=(target, 1), mode=mode, align_corners=False)
    matrix = resized[:, 0, :, 0].T  # target × source
    if sigma > 0:
        kernel = gaussian_kernel1d(sigma, dtype=torch.float64)
        radius = kernel.numel() // 2
        taps = torch.arange(target)[:, None] + torch.arange(-radius, radius + 1)[None]
        if padding == "reflect":
            taps = torch.where(taps < 0, -taps, taps)
            taps = torch.where(taps >= target, 2 * (target - 1) - taps, taps)
        else:
            taps = taps.clamp(0, target - 1)
        blur = torch.zeros(target, target, dtype=torch.float64)
        blur.scatter_add_(1, taps, kernel.expand(target, -1).contiguous())
        matrix = blur @ matrix
    return matrix.to(device=device, dtype=dtype)


def binarise(masks: torch.Tensor) -> torch.Tensor:
    """The kept pixels of masks B×1×H×W as a bool tensor (G-removal's rule, METHODS.md §5).

    A pixel is kept where its value reaches ``max(0.5, (max + min)/2)`` of its own mask and
    is a hole below that, so an all-ones mask keeps everything and a mask that stays below
    0.5 is all hole.
    """
    values = masks.flatten(1)
    middle = (values.amax(1) + values.amin(1)) / 2
    threshold = middle.clamp(min=0.5).view(-1, *([1] * (masks.dim() - 1)))
    return masks >= threshold


@dataclass(frozen=True)
class BinarisedUpsampler:
    """``up(M)`` binarised by :func:`binarise` in the forward pass, with the gradient of the
    continuous ``up(M)`` (a straight-through estimator): the blend sees a hard 0/1 mask while
    the optimiser still learns from every cell (MP-G)."""

    upsampler: Upsampler

    def __call__(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        soft = self.upsampler(masks, size)
        hard = binarise(soft.detach()).to(soft.dtype)
        return hard + (soft - soft.detach())


def downsample(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average masks B×1×H×W down to ``size`` (used to bring image-size masks to a mask grid)."""
    return F.adaptive_avg_pool2d(masks, size)


def disc_masks(radii: torch.Tensor, size: tuple[int, int], edge_sigma: float = 0.0) -> torch.Tensor:
    """Centred discs (1 inside) of the given radii in pixels, R×1×H×W, optionally blurred."""
    height, width = size
    ys = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    distance = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    discs = (distance[None] <= radii.float().view(-1, 1, 1)).float()[:, None]
    return gaussian_blur(discs, edge_sigma) if edge_sigma > 0 else discs


class SmoothMaxUpsampler:
    """Extremal Perturbation's smooth masks: each pixel is a smooth maximum of the nearby
    mask-parameter cells, each weighted by a flat-topped kernel of its distance.

    Cell ``j`` of the parameter ``M`` (one cell per ``step`` pixels) sits at
    ``c_j = margin + step·j`` on a canvas that extends the image by ``margin = σ`` pixels on
    every side. A canvas pixel ``u`` looks at the ``(2r + 1)²`` cells of a window anchored at
    ``⌊u/step⌋ − p`` (``r = 1 + ⌈σ/step⌉``, ``p = 1 + ⌈(margin + σ)/step⌉``; cells off the
    grid count as 0) and takes::

        up(M)(u) = clamp(Σ_j v_j·softmax_j(20·v), 0, 1),   v_j = κ(‖u − c_j‖/σ)·M_j,
        κ(z) = exp(−2·max(z − ½, 0)²)

    — the softmax-weighted mean, a smooth maximum of the ``v_j``
    (:func:`~maskscope.core.perturbation.smooth_max.smooth_max`, a band of canvas rows at a time). A cell is a flat disc of
    radius σ/2 that fades out beyond it, so masks are smooth at every scale of ``M`` and a
    single cell set to 1 keeps a round blob. :meth:`full` is the whole canvas (the image plus
    its margin); calling the upsampler crops the image out of it. Defaults of the paper:
    ``step`` 7 and ``σ`` 21 px for a 224-px image (a 32×32 parameter, a 260×260 canvas).
    """

    coldness = 20.0

    def __init__(self, step: int = 7, sigma: float = 21.0) -> None:
        if int(step) != step or step < 1:
            raise ValueError(f"step must be a positive whole number of pixels, got {step!r}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}")
        self.step = int(step)
        self.sigma = float(sigma)
        self.margin = self.sigma
        self.radius = 1 + math.ceil(self.sigma / self.step)
        self.padding = 1 + math.ceil((self.margin + self.sigma) / self.step)
        self._weights: dict = {}
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def parameter_shape(self, size: tuple[int, int]) -> tuple[int, int]:
        """The grid of ``M`` for an image of ``size``: ``⌈H/step⌉ × ⌈W/step⌉``."""
        return (math.ceil(size[0] / self.step), math.ceil(size[1] / self.step))

    def _window_rows(self, cells: int) -> int:
        """Window anchors along one side: the padded grid less the window width, and more where
        the canvas would not reach past the image's far side (a σ small beside ``step``)."""
        covering = math.ceil((self.margin + self.step * cells - 1) / self.step) + 1
        return max(cells + 2 * self.padding - 2 * self.radius, covering)

    def _canvas_side(self, cells: int) -> int:
        return self.step * self._window_rows(cells) - self.step + 1

    def _kernel(self, cells: tuple[int, int], device, dtype) -> torch.Tensor:
        """κ(‖u − c_j‖/σ) for every canvas pixel and window slot, K×H'×W' (cached).

        Computed in float32 and stored contiguously, as the authors' code does: the canvas then
        equals theirs to the last bit, so the area term's sort meets the same ties.
        """
        key = (cells, str(device), dtype)
        if key not in self._weights:
            width = 2 * self.radius + 1
            offsets = []
            for side in cells:
                u = torch.arange(self._canvas_side(side), dtype=torch.float32)
                slots = torch.arange(width, dtype=torch.float32)
                cell = torch.div(u, self.step, rounding_mode="floor")[:, None] + slots[None] - self.padding
                offsets.append(u[:, None] - (self.margin + self.step * cell))  # side × slots
            dy, dx = offsets
            distance = torch.sqrt(dy.T[:, None, :, None] ** 2 + dx.T[None, :, None, :] ** 2)  # ky×kx×H'×W'
            z = distance / self.sigma
            kernel = torch.exp(-2 * (z - 0.5).clamp(min=0) ** 2)
            flat = kernel.reshape(width * width, *kernel.shape[2:]).contiguous()
            self._weights[key] = flat.to(device=device, dtype=dtype)
        return self._weights[key]

    def full(self, masks: torch.Tensor) -> torch.Tensor:
        """The whole canvas ``up(M)`` for parameters B×1×h×w: B×1×H'×W' with the margin.

        The canvas of the last parameter tensor is kept, so the blend and the area term of one
        step (which see the same tensor) share one evaluation.
        """
        if self._last is not None and self._last[0] is masks:
            return self._last[1]
        cells = (masks.shape[-2], masks.shape[-1])
        width = 2 * self.radius + 1
        rows, cols = (self._window_rows(side) for side in cells)
        # cells off the grid count as 0: ``padding`` before it, and after it as many as the windows reach
        after = [count + width - 1 - self.padding - side for count, side in zip((rows, cols), cells)]
        windows = F.unfold(F.pad(masks, (self.padding, after[1], self.padding, after[0])), (width, width))
        windows = windows.view(masks.shape[0], width * width, rows, cols)
        kernel = self._kernel(cells, masks.device, masks.dtype)
        canvas = smooth_max(windows, kernel, self.step, self.coldness).clamp(0, 1)
        self._last = (masks, canvas)
        return canvas

    def __call__(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The image part of the canvas, B×1×H×W (``size`` must be the image the grid was made for)."""
        if self.parameter_shape(size) != tuple(masks.shape[-2:]):
            raise ValueError(
                f"a {tuple(masks.shape[-2:])} mask parameter does not fit a {tuple(size)} image at step {self.step}"
            )
        start = round(self.margin)
        return self.full(masks)[..., start : start + size[0], start : start + size[1]]
