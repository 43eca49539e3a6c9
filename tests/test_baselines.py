"""The baseline methods: random and centre maps, gradient, Integrated Gradients, Grad-CAM, RISE.

Localisation is checked on the synthetic shapes task, where the object is known: a method
that looks at the object puts its saliency maximum within 3 px of it far more often than a
random map does (measured on the first 20 correctly classified test images: random 0.05,
gradient 1.00, Integrated Gradients 0.95, Grad-CAM 1.00, RISE with 150 masks 0.94 on 16).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from maskscope.core.model.classifier import Classifier
from maskscope.methods import (
    METHODS,
    RISE,
    CentreMap,
    GradCAM,
    Gradient,
    IntegratedGradients,
    RandomMap,
    get_method,
)
from maskscope.methods.gradcam import last_spatial_layer
from maskscope.methods.rise import rise_masks
from maskscope.metrics.pointing import pointing_game


@pytest.fixture(scope="module")
def shapes(shapes_task):
    images, classes, masks = shapes_task.correctly_classified(20)
    return shapes_task.classifier, images, classes.tolist(), masks


def hit_rate(explanation, masks) -> float:
    return float(pointing_game(explanation.saliency, masks, tolerance=3).hits.mean())


def random_hit_rate(classifier, images, classes, masks) -> float:
    return hit_rate(RandomMap()(classifier, images, classes, seed=0), masks)


def no_hooks(model: torch.nn.Module) -> bool:
    return all(
        not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
        for m in model.modules()
    )


def test_baselines_are_registered():
    for name in ("random", "centre", "gradient", "integrated_gradients", "gradcam", "rise"):
        assert name in METHODS
    assert isinstance(get_method("integrated_gradients", points=8), IntegratedGradients)


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


@pytest.mark.parametrize(
    "method",
    [Gradient(), IntegratedGradients(points=16), GradCAM()],
    ids=["gradient", "integrated_gradients", "gradcam"],
)
def test_gradient_methods_point_at_the_object(shapes, method):
    classifier, images, classes, masks = shapes
    explanation = method(classifier, images, classes)
    assert explanation.saliency.shape == (20, 64, 64)
    hits = hit_rate(explanation, masks)
    assert hits >= 0.85
    assert hits >= random_hit_rate(classifier, images, classes, masks) + 0.6


def test_rise_points_at_the_object(shapes):
    classifier, images, classes, masks = shapes
    images, classes, masks = images[:16], classes[:16], masks[:16]
    hits = hit_rate(RISE(samples=150)(classifier, images, classes, seed=0), masks)
    assert hits >= 0.75
    assert hits >= random_hit_rate(classifier, images, classes, masks) + 0.5


def test_integrated_gradients_completeness(shapes):
    classifier, images, classes, _ = shapes
    images, classes = images[:6], classes[:6]
    explanation = IntegratedGradients(points=64, batch_size=50)(classifier, images, classes)
    with torch.no_grad():
        at_image = classifier.probabilities(images)[range(6), classes]
        at_black = classifier.probabilities(torch.zeros_like(images))[range(6), classes]
    total = explanation.attributions.sum((1, 2, 3))
    assert torch.allclose(total, at_image - at_black, atol=0.03)
    assert torch.allclose(explanation.completeness_gap, total - (at_image - at_black), atol=1e-4)
    assert torch.allclose(explanation.saliency, explanation.attributions.abs().sum(1))


def test_integrated_gradients_mean_colour_baseline_gives_no_credit_to_mean_pixels(shapes):
    classifier, images, classes, _ = shapes
    image = images[:1].clone()
    image[..., :10, :10] = classifier.mean_colour.view(1, 3, 1, 1)
    explanation = IntegratedGradients(points=8, baseline="mean")(classifier, image, classes[:1])
    assert explanation.attributions[..., :10, :10].abs().max() < 1e-6
    assert explanation.attributions[..., 10:, 10:].abs().max() > 0


def test_rise_masks_shift_within_a_cell():
    grids = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]).repeat(3, 1, 1)
    shifts = torch.tensor([[0, 0], [5, 5], [9, 9]])
    masks = rise_masks(grids, shifts, (20, 20))
    assert masks.shape == (3, 20, 20) and 0 <= masks.min() and masks.max() <= 1
    assert masks[0, 2, 2] == 1 and 0 < masks[0, 2, 19] < masks[0, 2, 10] < 1  # smooth between cells
    assert masks[2, 0, 0] < masks[0, 0, 0] == masks[1, 0, 0]  # shifted partly out of view
    assert torch.allclose(masks[1, :15, :15], masks[0, 5:, 5:])  # a shift is a crop of one larger mask


def test_rise_is_seeded_and_independent_of_batch_size(shapes):
    classifier, images, classes, _ = shapes
    images, classes = images[:2], classes[:2]
    first = RISE(samples=24, batch_size=16)(classifier, images, classes, seed=5).saliency
    again = RISE(samples=24, batch_size=5)(classifier, images, classes, seed=5).saliency
    other = RISE(samples=24, batch_size=16)(classifier, images, classes, seed=6).saliency
    assert torch.allclose(first, again, atol=1e-5)
    assert not torch.allclose(first, other, atol=1e-3)


def test_gradcam_finds_the_last_spatial_layer_and_accepts_a_named_one(shapes):
    classifier, images, classes, _ = shapes
    assert last_spatial_layer(classifier, images) == "features"
    explanation = GradCAM(layer="features.4")(classifier, images[:3], classes[:3])
    assert explanation.coarse_map.shape == (3, 1, 32, 32)
    assert explanation.saliency.shape == (3, 64, 64) and explanation.saliency.min() >= 0
    with pytest.raises(ValueError, match="no layer"):
        GradCAM(layer="nonexistent")(classifier, images[:1], classes[:1])
    assert no_hooks(classifier.model)


def test_gradcam_removes_its_hooks_when_the_model_fails(shapes, monkeypatch):
    classifier, images, classes, _ = shapes

    def broken(_features):
        raise RuntimeError("head failed")

    monkeypatch.setattr(classifier.model.classifier, "forward", broken)
    for layer in (None, "features.8"):
        with pytest.raises(RuntimeError, match="head failed"):
            GradCAM(layer=layer)(classifier, images[:2], classes[:2])
        assert no_hooks(classifier.model)


def test_forward_only_classifier_is_refused_by_gradient_methods_but_explained_by_rise(shapes):
    classifier, images, classes, _ = shapes
    model = classifier.model

    def run(batch):
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    black_box = Classifier.from_callable(run, mean=(0.5,) * 3, std=(0.5,) * 3, class_names=classifier.class_names)
    for method in (Gradient(), IntegratedGradients(points=4), GradCAM()):
        with pytest.raises(TypeError, match="needs gradients"):
            method(black_box, images[:2], classes[:2])
    from_black_box = RISE(samples=16)(black_box, images[:2], classes[:2], seed=1).saliency
    from_module = RISE(samples=16)(classifier, images[:2], classes[:2], seed=1).saliency
    assert torch.allclose(from_black_box, from_module, atol=1e-5)


def test_gradcam_on_the_default_model_finds_the_cat(default_classifier):
    skimage_data = pytest.importorskip("skimage.data")
    cat = default_classifier.view(torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1).float() / 255)
    small = F.interpolate(cat[None], size=(112, 112), mode="bilinear", align_corners=False)[0]
    corners = [(0, 0), (112, 112)]
    images = torch.full((2, 3, 224, 224), 0.5)  # the cat in one quadrant of a gray canvas
    for image, (top, left) in zip(images, corners):
        image[:, top : top + 112, left : left + 112] = small
    paper = GradCAM(score="logit")(default_classifier, images, target="tiger cat").saliency  # the paper's y^c
    default = GradCAM()(default_classifier, images, target="tiger cat").saliency  # the probability
    random = RandomMap()(default_classifier, images, target="tiger cat").saliency
    for index, (top, left) in enumerate(corners):
        quadrant = (index, slice(top, top + 112), slice(left, left + 112))
        chance = float(random[quadrant].sum() / random[index].sum())
        paper_share = float(paper[quadrant].sum() / paper[index].sum())
        default_share = float(default[quadrant].sum() / default[index].sum())
        assert paper_share > 0.5 and paper_share > chance + 0.2
        # the probability's gradient also credits the classes it competes with: less focused
        assert default_share > chance + 0.2
