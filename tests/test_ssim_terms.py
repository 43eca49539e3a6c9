"""The SSIM terms shared by SSIM and MS-SSIM, against the formulas written out position by position.

SSIM (the mean of l·cs) and single-scale MS-SSIM (the mean of l times the mean of cs) are not
one number in general, so each is checked against its own direct formula.
"""

import numpy as np
import pytest
import torch

from maskscope.metrics.ms_ssim import ms_ssim
from maskscope.metrics.robustness import ssim
from maskscope.metrics.ssim_terms import ssim_terms


def direct_terms(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """l and cs of two H×W images at every position where the 11×11 window (σ 1.5) fits."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    rows, cols = x.shape[0] - 10, x.shape[1] - 10
    luminance, contrast_structure = np.empty((rows, cols)), np.empty((rows, cols))
    for i in range(rows):
        for j in range(cols):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (window * px).sum(), (window * py).sum()
            vx, vy = (window * (px - mx) ** 2).sum(), (window * (py - my) ** 2).sum()
            cov = (window * (px - mx) * (py - my)).sum()
            luminance[i, j] = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
            contrast_structure[i, j] = (2 * cov + c2) / (vx + vy + c2)
    return luminance, contrast_structure


@pytest.fixture
def pair():
    generator = np.random.default_rng(0)
    x = generator.random((2, 3, 15, 17))
    y = np.clip(0.6 * x + 0.4 * generator.random(x.shape), 0, 1)
    for image in (x, y):  # each channel spans [0, 1], so SSIM's min-max normalisation keeps it
        image -= image.min((2, 3), keepdims=True)
        image /= image.max((2, 3), keepdims=True)
    return x, y


def test_the_shared_terms_are_the_direct_formulas(pair):
    x, y = pair
    luminance, contrast_structure = ssim_terms(torch.from_numpy(x), torch.from_numpy(y))
    assert luminance.shape == contrast_structure.shape == (2, 3, 5, 7)
    for b in range(2):
        for c in range(3):
            expected = direct_terms(x[b, c], y[b, c])
            assert np.allclose(luminance[b, c].numpy(), expected[0], atol=1e-12)
            assert np.allclose(contrast_structure[b, c].numpy(), expected[1], atol=1e-12)


def test_ssim_and_single_scale_ms_ssim_are_means_of_the_product(pair):
    x, y = pair
    maps_x, maps_y = torch.from_numpy(x[:, 0]), torch.from_numpy(y[:, 0])
    expected_ssim = [np.mean(np.prod(direct_terms(x[b, 0], y[b, 0]), axis=0)) for b in range(2)]
    assert ssim(maps_x, maps_y).numpy() == pytest.approx(expected_ssim, abs=1e-6)
    expected_ms = [
        np.mean([max(np.mean(np.prod(direct_terms(x[b, c], y[b, c]), axis=0)), 0) for c in range(3)])  # Wang's code
        for b in range(2)
    ]
    assert ms_ssim(torch.from_numpy(x), torch.from_numpy(y), scales=1).numpy() == pytest.approx(expected_ms, abs=1e-6)
    assert not np.allclose(expected_ssim, [np.prod([t.mean() for t in direct_terms(x[b, 0], y[b, 0])]) for b in range(2)])
