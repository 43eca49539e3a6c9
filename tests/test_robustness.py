"""Similarity of saliency maps: SSIM, HOG-Pearson, Spearman and the pairwise protocol."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from maskscope.core.explanation import Explanation
from maskscope.metrics.robustness import hog_pearson, minmax, pairwise_robustness, spearman, ssim


def random_maps(count, height=48, width=40, seed=0):
    return torch.rand(count, height, width, generator=torch.Generator().manual_seed(seed))


def test_ssim_of_identical_maps_is_one_and_of_negated_maps_is_low():
    maps = random_maps(3)
    assert torch.allclose(ssim(maps, maps), torch.ones(3), atol=1e-6)
    assert torch.allclose(ssim(maps, 5 * maps + 2), torch.ones(3), atol=1e-6)  # min-max normalised
    assert (ssim(maps, -maps) < -0.9).all()


def test_ssim_matches_scikit_image():
    a = random_maps(4)
    b = a + 0.7 * random_maps(4, seed=1)
    expected = [
        structural_similarity(
            x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1
        )
        for x, y in zip(minmax(a.double()).numpy(), minmax(b.double()).numpy())
    ]
    assert np.allclose(ssim(a, b).numpy(), expected, atol=1e-4)
    assert 0.3 < min(expected) < 0.95  # a case that tells a wrong formula from a right one


def test_spearman_is_one_for_monotone_transforms_and_matches_scipy_with_ties():
    maps = random_maps(2)
    assert torch.allclose(spearman(maps, torch.exp(3 * maps)), torch.ones(2), atol=1e-6)
    assert torch.allclose(spearman(maps, -maps), -torch.ones(2), atol=1e-6)
    a = torch.randint(0, 4, (2, 30, 30), generator=torch.Generator().manual_seed(2)).float()
    b = (a + torch.randint(0, 3, (2, 30, 30), generator=torch.Generator().manual_seed(3))).float()
    expected = [spearmanr(x.flatten(), y.flatten())[0] for x, y in zip(a.numpy(), b.numpy())]
    assert np.allclose(spearman(a, b).numpy(), expected, atol=1e-6)


def blob(shift=0, size=64):
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.exp(-(((x - 24 - shift) ** 2) + (y - 30) ** 2) / (2 * 6.0**2))


def test_hog_pearson_prefers_a_shifted_copy_to_an_unrelated_map():
    shifted = hog_pearson(blob()[None], blob(shift=2)[None])
    unrelated = hog_pearson(blob()[None], random_maps(1, 64, 64))
    assert shifted > 0.5
    assert shifted > unrelated + 0.3


def test_constant_maps_have_no_correlation():
    flat = torch.zeros(1, 32, 32)
    assert spearman(flat, random_maps(1, 32, 32)) == 0
    assert hog_pearson(flat, random_maps(1, 32, 32)) == 0


def test_pairwise_counts_all_pairs_and_averages_them():
    base = blob()
    runs = torch.stack([base, base, base + 0.01 * random_maps(1, 64, 64)[0], random_maps(1, 64, 64, seed=4)[0]])
    results = pairwise_robustness(runs)
    assert set(results) == {"ssim", "hog_pearson", "spearman"}
    scores = results["spearman"]
    assert scores.pairs == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert scores.values.shape == (6, 1)
    assert scores.values[0, 0] == pytest.approx(1.0)
    assert scores.mean == pytest.approx(float(scores.values.mean()))
    explanations = [
        Explanation(saliency=runs[i][None].repeat(2, 1, 1), targets=[[0], [0]], method="x") for i in range(3)
    ]
    from_explanations = pairwise_robustness(explanations, metrics=("ssim",))["ssim"]
    assert from_explanations.values.shape == (3, 2)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        ssim(random_maps(1), random_maps(1, 40, 48))
    bad = random_maps(1)
    bad[0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        spearman(bad, random_maps(1))
    with pytest.raises(ValueError, match="at least 2 runs"):
        pairwise_robustness(random_maps(1))
    with pytest.raises(ValueError, match="unknown metric"):
        pairwise_robustness(random_maps(2), metrics=("psnr",))
    with pytest.raises(ValueError, match="differ in shape"):
        pairwise_robustness([random_maps(1), random_maps(1, 40, 48)])
