"""The smooth maximum of Extremal Perturbation's mask generator, a few canvas rows at a time.

For every canvas pixel ``u`` and the ``K`` cells of its window, with ``v_k = κ_k(u)·c_k``
(the kernel times the cell's mask value)::

    out(u) = Σ_k v_k·s_k,   s = softmax(a·v)   (a: the coldness, 20)
    ∂out/∂v_j = s_j·(1 + a·(v_j − out))

Computed on the whole canvas at once, every step holds a few B×K×H×W tensors (66 MB each
for three 260-px masks of 81 cells) and autograd keeps them for the backward pass: the
generator then costs more than the model. Here the canvas is made a band of rows at a time,
so each band's temporaries stay in the processor's cache, nothing but the output is kept,
and the backward pass recomputes a band's ``v`` and ``s`` and applies the derivative above.
At one thread the forward values are bit for bit those of the whole-canvas computation: the
same products and the same softmax, and every band holds a multiple of :data:`LANES` values, so
each value keeps its place in the vector kernels' lanes (checked in ``tests/test_smooth_max.py``);
ties in the area term therefore meet the same canvas. At more threads the whole-canvas
computation itself changes in the last bit with where the threads split it, and the bands
stay within 1e-6 of it.
"""

from __future__ import annotations

import math

import torch

#: values the vector kernels of the softmax and the sum handle together (a multiple of the widest
#: lanes, AVX-512's 16 floats, unrolled); a band holds a multiple of it
LANES = 64
#: the fewest canvas rows in a band, so that a band's Python work stays small beside its arithmetic
MIN_BAND_ROWS = 8


def smooth_max(windows: torch.Tensor, kernel: torch.Tensor, step: int, coldness: float) -> torch.Tensor:
    """``out(u) = Σ_k v_k·softmax_k(a·v)``, ``v_k = κ_k(u)·c_k``, for every canvas pixel.

    Args:
        windows: B×K×R×C, the ``K`` cell values of each window anchor (cell row, cell column).
        kernel: K×H×W, ``κ`` of every window slot at every canvas pixel; pixel ``(y, x)``
            reads the window of anchor ``(y // step, x // step)``.
        step: canvas pixels per cell.
        coldness: ``a``.
    Returns: B×1×H×W.
    """
    return _SmoothMax.apply(windows, kernel, step, coldness)


def _band_values(windows: torch.Tensor, kernel: torch.Tensor, step: int, rows: slice) -> torch.Tensor:
    """``v`` of the canvas rows ``rows``: B×K×h×W."""
    width = kernel.shape[-1]
    anchors = torch.arange(rows.start, rows.stop, device=windows.device) // step
    cells = windows.index_select(2, anchors).repeat_interleave(step, 3)[..., :width]
    return kernel[:, rows] * cells


def band_rows(width: int) -> int:
    """Canvas rows per band for a canvas ``width`` pixels wide: a band holds a multiple of
    :data:`LANES` values and at least :data:`MIN_BAND_ROWS` rows (16 for EP's 260-px canvas)."""
    rows = LANES // math.gcd(width, LANES)
    return rows * math.ceil(MIN_BAND_ROWS / rows)


def _bands(height: int, width: int):
    rows = band_rows(width)
    return (slice(top, min(top + rows, height)) for top in range(0, height, rows))


class _SmoothMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, windows, kernel, step, coldness):
        height, width = kernel.shape[-2:]
        out = windows.new_empty(windows.shape[0], 1, height, width)
        for rows in _bands(height, width):
            values = _band_values(windows, kernel, step, rows)
            out[:, :, rows] = (values * torch.softmax(coldness * values, dim=1)).sum(1, keepdim=True)
        ctx.save_for_backward(windows, kernel, out)
        ctx.step, ctx.coldness = step, coldness
        return out

    @staticmethod
    def backward(ctx, grad_out):
        windows, kernel, out = ctx.saved_tensors
        step, coldness = ctx.step, ctx.coldness
        count, slots, cell_rows, cell_cols = windows.shape
        height, width = kernel.shape[-2:]
        grad_windows = torch.zeros_like(windows)
        for rows in _bands(height, width):
            values = _band_values(windows, kernel, step, rows)
            weights = torch.softmax(coldness * values, dim=1)
            grad_values = grad_out[:, :, rows] * weights * (1 + coldness * (values - out[:, :, rows]))
            grad_cells = grad_values * kernel[:, rows]  # B×K×h×W, then summed over each cell's pixels
            band = grad_cells.new_zeros(count, slots, grad_cells.shape[2], cell_cols * step)
            band[..., :width] = grad_cells
            per_cell = band.view(count, slots, -1, cell_cols, step).sum(-1)
            anchors = torch.arange(rows.start, rows.stop, device=windows.device) // step
            grad_windows.index_add_(2, anchors, per_cell)
        return grad_windows, None, None, None
