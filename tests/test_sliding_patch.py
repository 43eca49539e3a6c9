"""Sliding patch (SP / SP-G): the window grid, the drop at each position, the synthetic task,
and the plumbing of a mask-dependent filler (SP-G's inpainter)."""

import torch
from known_models import RecordingFiller, counted_images, linear_classifier

from maskscope.core.scoring.windows import WindowGrid, square_stamp, window_starts
from maskscope.methods import METHODS, SlidingPatch, get_method
from maskscope.methods.random_map import RandomMap
from maskscope.metrics import pointing_game


def test_sp_is_registered():
    assert METHODS["sliding_patch"] is SlidingPatch
    assert get_method("sliding_patch", window=5).window == 5


def test_the_paper_grid_has_66_positions_centred_on_the_patches():
    grid = WindowGrid(square_stamp(29), 29, 3, (224, 224), "valid")
    assert grid.shape == (66, 66)
    rows, _ = grid.centres()
    assert rows[0] == 14 and rows[-1] == 209
    assert len(window_starts(224, 35, 8, "valid")) == 24 and len(window_starts(224, 35, 8, "cover")) == 28
    assert window_starts(224, 35, 8, "edge")[-1] == 192  # 25 corners, the last window clipped to 32 px
    assert torch.equal(window_starts(224, 29, 3, "edge"), window_starts(224, 29, 3, "valid"))
    # values sit at the patch centres, bilinear between them, constant beyond the outermost ones
    ramp = torch.arange(66.0)[None, :, None].expand(1, 66, 66)
    image = grid.interpolate(ramp)[0, :, 0]
    assert torch.allclose(image[14::3][:66], torch.arange(66.0), atol=1e-4)
    assert torch.allclose(image[15], torch.tensor(1 / 3), atol=1e-4)
    assert torch.allclose(image[:15], torch.tensor(0.0), atol=1e-4) and torch.allclose(image[209:], torch.tensor(65.0), atol=1e-4)


def test_sp_attribution_is_the_drop_at_each_valid_position():
    classifier = linear_classifier(12)
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    explanation = SlidingPatch(score="logit", window=4, stride=3, batch_size=7)(classifier, images, target=0)
    # valid corners 0, 3, 6: a 4-px patch at 9 would leave the 12-px image
    assert explanation.window_drops.shape == (2, 3, 3)
    for b in range(2):
        for i, r in enumerate((0, 3, 6)):
            for j, c in enumerate((0, 3, 6)):
                expected = images[b, 0, r : r + 4, c : c + 4].sum() / 100
                assert torch.isclose(explanation.window_drops[b, i, j], expected, atol=1e-5)
    alone = SlidingPatch(score="logit", window=4, stride=3)(classifier, images[1:], target=0)
    assert torch.allclose(alone.saliency, explanation.saliency[1:], atol=1e-6)


def test_a_mask_dependent_filler_gets_each_patch_hole():
    classifier = linear_classifier(9)
    images = torch.ones(1, 3, 9, 9)
    filler = RecordingFiller()
    explanation = SlidingPatch(score="logit", window=3, stride=3, filler=filler, batch_size=4)(classifier, images, target=0)
    masks = torch.cat(filler.masks)[:, 0]
    assert masks.shape == (9, 9, 9)  # one call per chunk of 4, 9 patches in row-major order
    for index, mask in enumerate(masks):
        r, c = 3 * (index // 3), 3 * (index % 3)
        expected = torch.ones(9, 9)
        expected[r : r + 3, c : c + 3] = 0
        assert torch.equal(mask, expected)
    # the hole holds the filler's 0.25: the red sum falls by 9 · 0.75 / 100
    assert torch.allclose(explanation.window_drops, torch.full((1, 3, 3), 0.0675), atol=1e-6)


def test_sp_maximum_lands_on_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(20)
    explanation = SlidingPatch(window=15, stride=4)(shapes_task.classifier, images, target=classes.tolist())
    assert explanation.saliency.shape == (20, 64, 64) and explanation.window_drops.shape == (20, 13, 13)
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits.mean()
    random_maps = RandomMap()(shapes_task.classifier, images, classes.tolist(), seed=0)
    random_hits = pointing_game(random_maps.saliency, objects, tolerance=3).hits.mean()
    assert hits >= 0.9, f"SP hit the object in {hits:.0%} of images"
    assert random_hits <= 0.5


def test_the_unperturbed_images_are_scored_once(monkeypatch):
    # the drops are taken from the scores Method.explain computed before the patches, with and
    # without the convergence stop: one pass over the images, then one per patch position
    classifier = linear_classifier(12)
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    sizes = counted_images(monkeypatch, classifier)
    whole = SlidingPatch(score="logit", window=4, stride=3)(classifier, images, target=0)
    assert sum(sizes) == 2 + 2 * 9
    sizes.clear()
    stopped = SlidingPatch(score="logit", window=4, stride=3, stop_tolerance=0.99, stop_interval=9)(
        classifier, images, target=0
    )
    assert sum(sizes) == 2 + 2 * 9  # one estimate, at the last position: every position scored
    torch.testing.assert_close(stopped.window_drops, whole.window_drops, atol=1e-6, rtol=0)
