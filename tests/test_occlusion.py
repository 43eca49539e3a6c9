"""Occlusion variants: coverage normalisation checked by hand, soft discs, variable sizes,
and the synthetic task with known ground truth."""

import pytest
import torch
from known_models import RecordingFiller, counted_images, linear_classifier

from maskscope.core.scoring.windows import WindowGrid, soft_disc_stamp
from maskscope.methods import METHODS, Occlusion, get_method
from maskscope.metrics import pointing_game


def test_occlusion_is_registered_with_its_variants():
    assert METHODS["occlusion"] is Occlusion
    assert get_method("occlusion", variant="variable").variant == "variable"
    with pytest.raises(ValueError, match="parameter .variant. for occlusion must be one of"):
        Occlusion(variant="grey")
    with pytest.raises(ValueError, match="placement"):
        Occlusion(placement="same")


def test_coverage_normalisation_by_hand():
    # red = 1 everywhere, so removing a pixel costs 1/100 (counted here in hundredths): the 3×3
    # windows at corners 0, 2, 4 (clipped by the border to 3×1 or 1×1 at the far ones) cost 9, 3 or 1
    classifier = linear_classifier(5)
    images = torch.zeros(1, 3, 5, 5)
    images[:, 0] = 1.0
    explanation = Occlusion(score="logit", window=3, stride=2)(classifier, images, target=0)
    saliency = 100 * explanation.saliency[0]
    assert saliency[0, 0] == pytest.approx(9.0)  # only the window at (0, 0) covers it
    assert saliency[2, 2] == pytest.approx(9.0)  # four whole windows
    assert saliency[1, 4] == pytest.approx((9 + 3) / 2)  # windows at (0, 2) and (0, 4)
    assert saliency[4, 4] == pytest.approx((9 + 3 + 3 + 1) / 4)
    # the same average written out window by window
    drops = {(r, c): float(images[0, 0, r : r + 3, c : c + 3].sum()) for r in (0, 2, 4) for c in (0, 2, 4)}
    for y in range(5):
        for x in range(5):
            covering = [d for (r, c), d in drops.items() if r <= y < r + 3 and c <= x < c + 3]
            assert saliency[y, x] == pytest.approx(sum(covering) / len(covering))


def test_soft_discs_weight_both_the_perturbation_and_the_coverage():
    stamp = soft_disc_stamp(7, edge_sigma=1.0)
    assert stamp.shape == (13, 13) and stamp[6, 6] > 0.99 and stamp[0, 0] < 1e-3
    assert torch.allclose(stamp, stamp.flip(0)) and torch.allclose(stamp, stamp.T)
    classifier = linear_classifier(16)
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    method = Occlusion(score="logit", variant="blur", window=7, stride=3, edge_sigma=1.0, filler="black")
    saliency = method(classifier, images, target=0).saliency[0]
    (grid,) = method.grids((16, 16))
    removed = 1 - grid.masks(torch.arange(len(grid)))  # w_k(u), N×H×W
    drops = (removed * images[0, 0]).sum((1, 2)) / 100  # black fill: the red the soft disc takes away
    expected = (removed * drops[:, None, None]).sum(0) / removed.sum(0)
    assert torch.allclose(saliency, expected, atol=1e-5)


def test_variable_occlusion_averages_the_maps_of_its_sizes():
    classifier = linear_classifier(12)
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    explanation = Occlusion(score="logit", variant="variable", window=(3, 5), stride=2)(classifier, images, target=0)
    assert explanation.window_maps.shape == (2, 2, 12, 12)
    for channel, size in enumerate((3, 5)):
        single = Occlusion(score="logit", window=size, stride=2)(classifier, images, target=0).saliency
        assert torch.allclose(explanation.window_maps[:, channel], single, atol=1e-6)
    assert torch.allclose(explanation.saliency, explanation.window_maps.mean(1))


def test_window_spread_matches_the_masks():
    grid = WindowGrid(soft_disc_stamp(5, 1.0), 5, 4, (11, 13), "cover")
    values = torch.rand(2, *grid.shape)
    removed = 1 - grid.masks(torch.arange(len(grid)))
    expected = torch.einsum("bk,khw->bhw", values.flatten(1), removed)
    assert torch.allclose(grid.spread(values), expected, atol=1e-5)


def test_a_mask_dependent_filler_gets_each_window():
    filler = RecordingFiller()
    Occlusion(score="logit", window=4, stride=4, filler=filler)(linear_classifier(8), torch.rand(1, 3, 8, 8), target=0)
    holes = 1 - torch.cat(filler.masks)[:, 0]
    assert holes.shape == (4, 8, 8) and (holes.sum((1, 2)) == 16).all()
    assert torch.equal(holes.sum(0), torch.ones(8, 8))  # the four windows tile the image


def test_mean_occlusion_maximum_lands_on_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(20)
    explanation = Occlusion(window=11, stride=4)(shapes_task.classifier, images, target=classes.tolist())
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits.mean()
    assert hits >= 0.9, f"occlusion hit the object in {hits:.0%} of images"


def test_the_unperturbed_images_are_scored_once(monkeypatch):
    # Method.explain scores the images to resolve the target; occlusion takes its drops from those
    # scores instead of a second pass, and the drops stay exact (the red sum of each window)
    classifier = linear_classifier(8)
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    sizes = counted_images(monkeypatch, classifier)
    method = Occlusion(score="logit", window=4, stride=4)
    explanation = method(classifier, images, target=0)
    (grid,) = method.grids((8, 8))
    assert len(grid) == 4 and sum(sizes) == 2 + 2 * 4
    for b in range(2):
        for r in (0, 4):
            for c in (0, 4):
                expected = images[b, 0, r : r + 4, c : c + 4].sum() / 100
                assert torch.isclose(explanation.saliency[b, r + 1, c + 2], expected, atol=1e-6)
