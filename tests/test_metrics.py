"""Deletion/insertion curves, segmentation scores and weak localisation, on hand-built cases
and on the shapes task."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_edt
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.perturbation.blur import gaussian_blur
from maskscope.core.perturbation.fillers import Constant
from maskscope.metrics import (
    PROTOCOLS,
    bounding_boxes,
    box_iou,
    deletion,
    fgvis_schedule,
    igos_schedule,
    insertion,
    pointing_game,
    rise_schedule,
    saliency_ranks,
    sanity_rows,
    segmentation_scores,
    select_alpha,
    threshold_map,
    weak_localisation,
)


class LeftHalfBrightness(nn.Module):
    """Two classes; the probability of class 0 is the mean brightness of the image's left half."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        brightness = x[..., : x.shape[-1] // 2].mean((1, 2, 3)).clamp(1e-6, 1 - 1e-6)
        return torch.stack([brightness.log(), (1 - brightness).log()], 1)


def brightness_classifier() -> Classifier:
    return Classifier(
        LeftHalfBrightness(), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), class_names=["bright", "dark"]
    )


def right_first_saliency(height: int, width: int) -> torch.Tensor:
    """Right half more salient than the left, so deletion empties the right half first."""
    saliency = torch.zeros(1, height, width)
    saliency[..., width // 2 :] = 1.0
    return saliency


# --------------------------------------------------------------------------- deletion/insertion
def test_auc_by_hand_on_a_brightness_classifier():
    classifier = brightness_classifier()
    image = torch.ones(1, 3, 4, 4)
    saliency = right_first_saliency(4, 4)
    # Deletion to the mean colour (black here): flat at 1 while the right half goes, then
    # linear to 0 over the second half: AUC = 0.5 + 0.25.
    deleted = deletion(classifier, image, saliency, target=0, protocol="rise")
    assert deleted.auc.item() == pytest.approx(0.75, abs=1e-4)
    # Insertion on black, one pixel per step: 0 for the right half, then linear to 1.
    black = replace(PROTOCOLS["rise"], insertion_filler=Constant((0, 0, 0)), schedule=partial(rise_schedule, steps=16))
    inserted = insertion(classifier, image, saliency, target=0, protocol=black)
    assert inserted.scores.shape == (1, 17)
    assert inserted.auc.item() == pytest.approx(0.25, abs=1e-4)
    assert inserted.scores[0, 8].item() == pytest.approx(0.0, abs=1e-5)
    assert inserted.scores[0, 12].item() == pytest.approx(0.5, abs=1e-5)


def test_ties_are_broken_by_position():
    ranks = saliency_ranks(torch.tensor([[[1.0, 2.0], [2.0, 1.0]]]))
    assert ranks.tolist() == [[[2, 0], [1, 3]]]


def test_curve_is_scored_in_a_few_large_batches():
    classifier = brightness_classifier()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = deletion(classifier, image, torch.rand(1, 32, 32), target=0, protocol="rise", batch_size=64)
    assert result.scores.shape == (1, 225)
    assert classifier.model.calls <= 5


def test_schedules():
    assert rise_schedule(224 * 224).diff().eq(224).all()
    fgvis = fgvis_schedule(40000)
    assert len(fgvis) == 176
    assert fgvis[0] == 0 and fgvis[100] == 10000 and fgvis[-1] == 40000
    assert fgvis[:101].diff().eq(100).all() and fgvis[100:].diff().eq(400).all()
    igos = igos_schedule(28 * 28)
    assert igos[1] == 15 and igos[-1] == 784 and igos.diff().max() == 15


def test_igos_deletes_cells_of_the_saliency_grid():
    classifier = brightness_classifier()
    image = torch.ones(1, 3, 16, 16)
    result = deletion(classifier, image, right_first_saliency(2, 2), target=0, protocol="igos")
    # 4 cells, one per step; blurring a constant image gives the image back, so the score stays 1.
    assert result.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert torch.allclose(result.scores, torch.ones(1, 5), atol=1e-4)


def test_bad_saliency_is_refused():
    classifier = brightness_classifier()
    image = torch.ones(2, 3, 8, 8)
    with pytest.raises(ValueError, match="NaN"):
        deletion(classifier, image, torch.full((2, 8, 8), float("nan")), target=0)
    with pytest.raises(ValueError, match="one map per image"):
        deletion(classifier, image, torch.rand(1, 8, 8), target=0)
    with pytest.raises(ValueError, match="must match the image size"):
        insertion(classifier, image, torch.rand(2, 4, 4), target=0, protocol="fgvis")
    with pytest.raises(ValueError, match="unknown protocol"):
        deletion(classifier, image, torch.rand(2, 8, 8), target=0, protocol="nope")


def test_curve_endpoints_on_the_shapes_task(shapes_task):
    classifier = shapes_task.classifier
    images, classes, _ = shapes_task.correctly_classified(2)
    saliency = torch.rand(2, 64, 64, generator=torch.Generator().manual_seed(0))
    deleted = deletion(classifier, images, saliency, target=classes.tolist(), protocol="rise-batch")
    inserted = insertion(classifier, images, saliency, target=classes.tolist(), protocol="rise-batch")
    with torch.no_grad():
        clean = classifier.probabilities(images)[torch.arange(2), classes]
        grey = classifier.probabilities(classifier.mean_colour.expand_as(images))[torch.arange(2), classes]
        blurred = classifier.probabilities(gaussian_blur(images, 5.0, 11))[torch.arange(2), classes]
    assert deleted.scores.shape == inserted.scores.shape == (2, 29)
    assert torch.allclose(deleted.scores[:, 0], clean, atol=1e-5)
    assert torch.allclose(deleted.scores[:, -1], grey, atol=1e-5)
    assert torch.allclose(inserted.scores[:, 0], blurred, atol=1e-5)
    assert torch.allclose(inserted.scores[:, -1], clean, atol=1e-5)


def test_object_map_beats_other_maps_on_the_shapes_task(shapes_task):
    # Insertion is compared with a random map. Deletion is compared with the inverted map
    # (object last): deleting scattered random pixels to grey wrecks this tiny CNN faster than
    # deleting the object, whose grey silhouette it still recognises (pixel-level deletion AUC:
    # object map 0.42, random 0.12) — the out-of-distribution artefact deletion is criticised
    # for. At cell resolution the object map wins on both curves (next test).
    classifier = shapes_task.classifier
    images, classes, objects = shapes_task.correctly_classified(4)
    perfect = gaussian_blur(objects.float()[:, None], 1.0)[:, 0]
    maps = {
        "perfect": perfect,
        "inverted": 1 - perfect,
        "random": torch.rand(perfect.shape, generator=torch.Generator().manual_seed(0)),
    }
    aucs = {}
    for name, saliency in maps.items():
        for curve in (deletion, insertion):
            result = curve(classifier, images, saliency, target=classes.tolist(), protocol="rise-batch")
            aucs[name, curve.__name__] = result.mean_auc
    assert aucs["perfect", "insertion"] > aucs["random", "insertion"] + 0.2
    assert aucs["perfect", "insertion"] > aucs["inverted", "insertion"] + 0.2
    assert aucs["perfect", "deletion"] < aucs["inverted", "deletion"] - 0.2


def test_object_map_beats_a_random_map_on_both_curves_at_cell_resolution(shapes_task):
    # On an 8×8 grid (igos protocol: blur substrate, cells of the saliency's own grid) a map
    # ranking cells by how much object they hold (ties: nearest to the object first) beats a
    # random grid on deletion and insertion (measured 0.21 vs 0.62 and 0.94 vs 0.56).
    classifier = shapes_task.classifier
    images, classes, objects = shapes_task.correctly_classified(8)
    distance = torch.tensor(np.stack([distance_transform_edt(~o.numpy()) for o in objects])).float()
    cells = lambda maps: torch.nn.functional.avg_pool2d(maps[:, None], 8)[:, 0]  # noqa: E731
    perfect = cells(objects.float()) + 1e-3 * cells(torch.exp(-distance / 8))
    random = torch.rand(perfect.shape, generator=torch.Generator().manual_seed(0))
    targets = classes.tolist()
    auc = {
        (name, curve.__name__): curve(classifier, images, saliency, target=targets, protocol="igos").mean_auc
        for name, saliency in (("perfect", perfect), ("random", random))
        for curve in (deletion, insertion)
    }
    assert auc["perfect", "deletion"] < auc["random", "deletion"] - 0.2
    assert auc["perfect", "insertion"] > auc["random", "insertion"] + 0.2


# --------------------------------------------------------------------------- segmentation
def test_segmentation_sanity_rows_by_hand():
    truth = torch.zeros(1, 4, 4, dtype=torch.bool)
    truth[0, :2, :2] = True
    rows = sanity_rows(truth)
    assert rows["ground truth"] == pytest.approx({"acc": 1.0, "iou": 1.0, "mae": 0.0})
    assert rows["all-0"] == pytest.approx({"acc": 0.75, "iou": 0.0, "mae": 0.25})
    assert rows["all-1"] == pytest.approx({"acc": 0.25, "iou": 0.25, "mae": 0.75})
    assert rows["all-0.5"] == pytest.approx({"acc": 0.5, "iou": 0.2, "mae": 0.5})


def test_segmentation_threshold_and_sal():
    classifier = brightness_classifier()
    images = torch.ones(2, 3, 4, 4)
    truth = torch.zeros(2, 4, 4, dtype=torch.bool)
    truth[:, :, :2] = True
    masks = torch.stack([truth[0].float() * 0.6 + 0.1, torch.zeros(4, 4)])
    soft = segmentation_scores(masks, truth)
    binary = segmentation_scores(masks, truth, threshold=0.5, classifier=classifier, images=images, target=0)
    assert soft.iou[0].item() == pytest.approx(0.7 * 8 / (8 + 0.1 * 8))
    assert binary.iou.tolist() == pytest.approx([1.0, 0.0])
    # Keeping the left half keeps the score at 1 with half the area; an empty mask is
    # charged the least area 0.05 and the score of a black image (1e-6 here).
    assert binary.sal.tolist() == pytest.approx([math.log(0.5), math.log(0.05) - math.log(1e-6)], rel=1e-4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        segmentation_scores(masks + 1, truth)
    with pytest.raises(ValueError, match="NaN"):
        segmentation_scores(torch.full_like(masks, float("nan")), truth)


# --------------------------------------------------------------------------- weak localisation
def test_thresholds_keep_the_expected_pixels():
    heat = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    top_row = [[[True, True], [False, False]]]
    assert threshold_map(heat, "energy", 0.5).tolist() == top_row
    assert threshold_map(heat, "energy", 0.9).tolist() == [[[True, True], [True, False]]]
    assert threshold_map(heat, "energy", 1.0).all()
    assert not threshold_map(heat, "energy", 0.0).any()
    assert threshold_map(heat, "value", 0.5).tolist() == top_row
    assert threshold_map(heat, "mean", 1.0).tolist() == top_row
    assert threshold_map(heat, "max", 0.7).tolist() == top_row
    with pytest.raises(ValueError, match="NaN"):
        threshold_map(torch.full((1, 2, 2), float("nan")), "value", 0.5)
    with pytest.raises(ValueError, match="unknown threshold"):
        threshold_map(heat, "median", 0.5)


def test_pointing_hits_within_15_px_and_misses_beyond():
    truth = torch.zeros(5, 64, 64, dtype=torch.bool)
    truth[:, 10:20, 10:20] = True  # the object: rows and columns 10-19
    saliency = torch.zeros(5, 64, 64)
    saliency[0, 15, 34] = 1.0  # 15 px right of column 19: a hit
    saliency[1, 15, 35] = 1.0  # 16 px: a miss
    saliency[2, 30, 29] = 1.0  # diagonal, √(11² + 10²) = 14.9 px: a hit
    saliency[3, 30, 30] = 1.0  # diagonal, √(11² + 11²) = 15.6 px: a miss
    saliency[4, 15, 15] = saliency[4, 30, 30] = 1.0  # a tie of a hit and a miss counts one half
    result = pointing_game(saliency, truth, classes=[0, 0, 1, 1, 2])
    assert result.hits.tolist() == [1.0, 0.0, 1.0, 0.0, 0.5]
    assert result.accuracy == pytest.approx((0.5 + 0.5 + 0.5) / 3)  # per-class mean, then over classes
    # the centre point (31, 31) lies √(12² + 12²) = 17 px from the object; 20 px tolerance reaches it
    assert not result.centre_hits.any()
    assert pointing_game(saliency, truth, tolerance=20).centre_hits.all()
    with pytest.raises(ValueError, match="empty"):
        pointing_game(saliency[:1], torch.zeros(1, 64, 64, dtype=torch.bool))


def test_boxes_and_iou_by_hand():
    keep = torch.zeros(2, 5, 6, dtype=torch.bool)
    keep[0, 1, 2] = keep[0, 3, 4] = True
    assert bounding_boxes(keep).tolist() == [[2, 1, 4, 3], [0, 0, 5, 4]]
    iou = box_iou(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[1, 1, 2, 2], [0, 0, 1, 1]]))
    assert iou[0].tolist() == pytest.approx([1 / 7, 1.0])


def test_weak_localisation_on_the_shapes_task(shapes_task):
    _, _, objects = shapes_task.correctly_classified(8)
    truth = list(bounding_boxes(objects)[:, None])
    perfect = gaussian_blur(objects.float()[:, None], 1.0)[:, 0]
    random = torch.rand(perfect.shape, generator=torch.Generator().manual_seed(0))
    assert weak_localisation(perfect, truth, "value", 0.25).error == 0.0
    assert weak_localisation(perfect, truth, "energy", 0.9).error == 0.0
    assert weak_localisation(random, truth, "value", 0.25).error == 1.0
    held_out = torch.arange(8) < 4
    selection = select_alpha(perfect, truth, held_out, "max")
    assert selection.held_out_errors[0] == 1.0  # α = 0 keeps everything: the whole image
    assert selection.alpha > 0 and selection.error == 0.0
