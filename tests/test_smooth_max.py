"""EP's smooth maximum made a band of canvas rows at a time equals the whole-canvas formula:
the same canvas bit for bit at one thread (the area term's ties depend on it) and the same gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from maskscope.core.perturbation.masks import SmoothMaxUpsampler
from maskscope.core.perturbation.smooth_max import LANES, band_rows
from tests.conftest import torch_threads


def whole_canvas(upsampler: SmoothMaxUpsampler, masks: torch.Tensor) -> torch.Tensor:
    """``clamp(Σ_k v_k·softmax_k(a·v), 0, 1)`` on the whole canvas at once, through autograd."""
    cells = masks.shape[-2:]
    width = 2 * upsampler.radius + 1
    rows, cols = (upsampler._window_rows(side) for side in cells)
    windows = F.unfold(masks, (width, width), padding=upsampler.padding).view(masks.shape[0], -1, rows, cols)
    canvas = windows.repeat_interleave(upsampler.step, 2).repeat_interleave(upsampler.step, 3)
    kernel = upsampler._kernel(tuple(cells), masks.device, masks.dtype)
    values = kernel * canvas[..., : kernel.shape[-2], : kernel.shape[-1]]
    return (values * torch.softmax(upsampler.coldness * values, dim=1)).sum(1, keepdim=True).clamp(0, 1)


@pytest.mark.parametrize("start", ["random", "ones", "half"])
def test_the_banded_canvas_is_the_whole_canvas_bit_for_bit(start):
    torch.manual_seed(0)
    upsampler = SmoothMaxUpsampler(step=7, sigma=21.0)  # EP's defaults for a 224-px photo: a 260-px canvas
    masks = {"random": torch.rand(3, 1, 32, 32), "ones": torch.ones(3, 1, 32, 32),
             "half": torch.full((3, 1, 32, 32), 0.5)}[start]  # fmt: skip
    with torch_threads(1):  # at more threads the whole canvas itself changes with where they split it
        assert torch.equal(upsampler.full(masks), whole_canvas(upsampler, masks))
    upsampler._last = None
    torch.testing.assert_close(upsampler.full(masks), whole_canvas(upsampler, masks), rtol=0, atol=1e-6)


def test_a_band_keeps_every_value_in_its_vector_lane():
    for width in (260, 225, 97, 64):
        rows = band_rows(width)
        assert rows * width % LANES == 0 and rows >= 8


@pytest.mark.parametrize("cells", [(32, 32), (9, 13)])
def test_the_gradient_is_the_whole_canvas_gradient(cells):
    torch.manual_seed(1)
    upsampler = SmoothMaxUpsampler(step=5, sigma=9.0)
    masks = torch.rand(2, 1, *cells, requires_grad=True)
    banded = upsampler.full(masks)
    upsampler._last = None
    reference = whole_canvas(upsampler, masks)
    torch.testing.assert_close(banded, reference, rtol=0, atol=1e-6)
    weights = torch.rand_like(reference)
    (ours,) = torch.autograd.grad((banded * weights).sum(), masks)
    (theirs,) = torch.autograd.grad((reference * weights).sum(), masks)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))


def test_the_gradient_passes_gradcheck_in_float64():
    torch.manual_seed(2)
    masks = (0.1 + 0.8 * torch.rand(1, 1, 4, 5, dtype=torch.float64)).requires_grad_()
    # a fresh generator per call: gradcheck changes the masks in place, and a generator keeps
    # the canvas of the last masks object it saw
    assert torch.autograd.gradcheck(lambda m: SmoothMaxUpsampler(step=3, sigma=3.0).full(m), (masks,))


@pytest.mark.parametrize("step, sigma", [(4, 2.0), (8, 2.0), (7, 21.0)])
def test_the_canvas_covers_the_image_and_a_cell_sits_at_its_pixel(step, sigma):
    """A σ small beside the step (4 and 2 px on a 32-px image) once gave a canvas shorter than the image."""
    upsampler = SmoothMaxUpsampler(step, sigma)
    size = (8 * step, 8 * step)
    for cell in (0, 5, 7):
        masks = torch.zeros(1, 1, 8, 8)
        masks[0, 0, cell, cell] = 1
        image = upsampler(masks, size)[0, 0]
        assert image.shape == size
        assert float(image[step * cell, step * cell]) == pytest.approx(1.0, abs=1e-5)  # the cell's centre
        corners = [(row, col) for row in (0, size[0] - 1) for col in (0, size[1] - 1)]
        farthest = max(corners, key=lambda corner: (corner[0] - step * cell) ** 2 + (corner[1] - step * cell) ** 2)
        assert float(image.max()) <= 1 and float(image[farthest]) < 0.5  # a blob, not a filled canvas
