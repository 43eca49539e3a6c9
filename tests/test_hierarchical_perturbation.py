"""Hierarchical perturbation (HiPe): exhaustive occlusion when it refines everything, its
refinement rule written out, fewer passes at its defaults, and the object found on the
synthetic shapes task."""

from __future__ import annotations

import pytest
import torch
from known_models import counted_images
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.scoring.windows import score_windows
from maskscope.methods import METHODS, HierarchicalPerturbation, Occlusion, RandomMap, get_method
from maskscope.methods.hierarchical_perturbation import refined_windows
from maskscope.metrics.pointing import pointing_game


@pytest.fixture(scope="module")
def tiny() -> tuple[Classifier, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 3))
    classifier = Classifier(model, mean=(0.5,) * 3, std=(0.25,) * 3, view=ClassifierView(None, 32))
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return classifier, images


def test_hipe_is_registered_with_its_alias():
    assert METHODS["hipe"] is HierarchicalPerturbation
    assert isinstance(get_method("hierarchical-perturbation"), HierarchicalPerturbation)
    with pytest.raises(ValueError, match="divisible by 2\\^levels = 16"):
        HierarchicalPerturbation(window=40, levels=4).grids((224, 224))


def test_refining_everything_is_exhaustive_occlusion_at_every_level(tiny):
    classifier, images = tiny
    method = HierarchicalPerturbation(window=16, levels=3, threshold=0, relu=False, score="logit")
    explanation = method(classifier, images, target=[0, 2])
    for level, side in enumerate((16, 8, 4)):
        occlusion = Occlusion(window=side, stride=side // 2, score="logit")(classifier, images, target=[0, 2])
        assert torch.allclose(explanation.window_maps[:, level], occlusion.saliency, atol=1e-5), side
    assert torch.allclose(explanation.saliency, explanation.window_maps.sum(1))
    grids = method.grids((32, 32))
    assert method.passes_.tolist() == [[len(grid) for grid in grids]] * 2  # 16, 64, 256 windows
    assert explanation.samples_used.tolist() == [336, 336]
    assert explanation.record(1)["samples_used"] == 336  # saved with each photo's record


def test_the_unperturbed_images_are_scored_once(tiny, monkeypatch):
    # the drops start from the scores Method.explain computed: one pass over the images, then the windows'
    classifier, images = tiny
    sizes = counted_images(monkeypatch, classifier)
    method = HierarchicalPerturbation(window=16, levels=2, score="logit")
    method(classifier, images, target=[0, 2])
    assert sum(sizes) == 2 + int(method.passes_.sum())

def test_relu_keeps_only_the_drops(tiny):
    classifier, images = tiny
    method = HierarchicalPerturbation(window=16, levels=2, threshold=0, score="logit")
    explanation = method(classifier, images[:1], target=1)
    filler = resolve_filler("mean", classifier.mean_colour)
    weights = torch.tensor([[0.0, 1.0, 0.0]])
    original = classifier.class_scores(images[:1], "logit")[0, 1]
    for level, grid in enumerate(method.grids((32, 32))):
        drops = original - score_windows(classifier, images[:1], grid, filler, weights, score="logit")
        assert (drops < 0).any()  # some windows raise the score: ReLU has something to remove
        expected = grid.coverage_average(drops.clamp_min(0))
        assert torch.allclose(explanation.window_maps[:, level], expected, atol=1e-5)


def test_a_window_is_refined_where_the_running_map_reaches_the_threshold():
    (grid,) = HierarchicalPerturbation(window=8, levels=1).grids((12, 12))  # corners 0, 4, 8; 8×8 windows
    running = torch.zeros(12, 12)
    running[10, 1] = 1.0  # only the windows with corner row 4 or 8 and column 0 cover it
    running[5, 5] = 0.4
    chosen = refined_windows(grid, running, threshold=0.5).tolist()
    assert chosen == [3, 6]  # (row 4, col 0), (row 8, col 0): row-major over the 3×3 grid
    # at 0.3 also the four windows covering (5, 5): corners (0, 0), (0, 4), (4, 0), (4, 4)
    assert refined_windows(grid, running, threshold=0.3).tolist() == [0, 1, 3, 4, 6]
    assert len(refined_windows(grid, running, threshold=0.0)) == len(grid)


def test_hipe_points_at_the_object_with_fewer_passes_than_exhaustive(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(12)
    classifier, targets = shapes_task.classifier, classes.tolist()
    method = HierarchicalPerturbation()  # the defaults: 64, 32, 16, 8 px windows on 64×64 images
    explanation = method(classifier, images, target=targets)
    exhaustive = sum(len(grid) for grid in method.grids((64, 64)))  # 4 + 16 + 64 + 256
    passes = explanation.samples_used
    assert (passes < exhaustive).all() and passes.float().mean() < 0.6 * exhaustive
    assert (method.passes_[:, 0] == 4).all()  # the first level is scored whole
    chance = pointing_game(RandomMap()(classifier, images, targets).saliency, objects, tolerance=3).hits.mean()
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits.mean()
    assert hits >= 0.9 and hits >= chance + 0.6, f"HiPe hit the object in {hits:.0%} of images"
