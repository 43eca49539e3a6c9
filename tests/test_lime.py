"""LIME / LIME-G: known weights of a linear classifier over superpixels are recovered, the
seed fixes everything, the kernel, a mask-dependent filler's masks, the synthetic task."""

import math

import pytest
import torch
from known_models import RecordingFiller, WeightedRed, logit_classifier

from maskscope.data.synthetic import make_shapes
from maskscope.methods import LIME, METHODS, get_method
from maskscope.methods.lime import kernel_weights, superpixels
from maskscope.metrics import pointing_game


@pytest.fixture(scope="module")
def picture():
    """A 48×48 shapes image (red ≥ 0.1 everywhere), its SLIC superpixels and their count."""
    image = 0.1 + 0.8 * make_shapes(1, size=48, seed=5).images
    labels = superpixels(image[0])
    return image, labels, int(labels.max()) + 1


def superpixel_linear_classifier(image, labels, weights):
    """Class 0's logit is exactly Σ_j β_j·z_j when superpixel j is kept (z_j = 1) or blackened (0)."""
    red = image[0, 0]
    per_pixel = weights[labels] / torch.zeros(len(weights)).index_add(0, labels.flatten(), red.flatten())[labels]
    return logit_classifier(WeightedRed(per_pixel), image.shape[-1])


def test_lime_is_registered_and_checks_its_parameters():
    assert METHODS["lime"] is LIME
    assert get_method("lime", samples=10).samples == 10
    with pytest.raises(ValueError, match="regression"):
        LIME(regression="elastic")


def test_superpixels_are_deterministic_and_numbered_from_zero(picture):
    image, labels, count = picture
    assert torch.equal(labels, superpixels(image[0]))
    assert 20 <= count <= 60 and torch.equal(labels.unique(), torch.arange(count))


def test_lime_recovers_the_weights_of_a_linear_classifier(picture):
    image, labels, count = picture
    weights = torch.randn(count, generator=torch.Generator().manual_seed(0))
    classifier = superpixel_linear_classifier(image, labels, weights)
    exact = LIME(score="logit", samples=300, alpha=0.0)(classifier, image, target=0)
    assert torch.allclose(exact.superpixel_weights[0, :count], weights, atol=1e-4)
    assert torch.allclose(exact.saliency[0], weights[labels], atol=1e-4)
    shrunk = LIME(score="logit", samples=300)(classifier, image, target=0).superpixel_weights[0, :count]  # ridge α = 1
    assert torch.allclose(shrunk, weights, rtol=0.1, atol=0.02) and shrunk.norm() < weights.norm()


def test_lasso_finds_the_few_superpixels_that_matter(picture):
    image, labels, count = picture
    weights = torch.zeros(count)
    weights[[1, 5, 9]] = torch.tensor([1.0, -0.5, 0.8])
    classifier = superpixel_linear_classifier(image, labels, weights)
    lasso = LIME(score="logit", samples=300, regression="lasso", alpha=0.01)
    found = lasso(classifier, image, target=0).superpixel_weights[0, :count]
    assert torch.equal(found != 0, weights != 0)
    assert torch.allclose(found, weights, atol=0.05)


def test_the_seed_fixes_the_map_and_batches_agree(shapes_task):
    images, classes, _ = shapes_task.correctly_classified(3)
    method = LIME(samples=40, batch_size=16)
    first = method(shapes_task.classifier, images, classes.tolist(), seed=1)
    again = method(shapes_task.classifier, images, classes.tolist(), seed=1)
    other = method(shapes_task.classifier, images, classes.tolist(), seed=2)
    alone = method(shapes_task.classifier, images[2:], classes[2:].tolist(), seed=1)
    assert torch.equal(first.saliency, again.saliency)
    assert not torch.allclose(first.saliency, other.saliency)
    assert torch.allclose(alone.saliency[0], first.saliency[2], atol=1e-5)
    counts = [int(superpixels(image).max()) + 1 for image in images]
    for index, count in enumerate(counts):  # the weights, then NaN past the image's own superpixels
        row = first.superpixel_weights[index]
        assert not row[:count].isnan().any() and row[count:].isnan().all()


def test_kernel_of_the_cosine_distance():
    samples = torch.tensor([[[1.0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]])
    weights = kernel_weights(samples, torch.tensor([4]), 0.25)[0]
    assert weights[0] == 1  # distance 0
    assert weights[1] == pytest.approx(math.sqrt(math.exp(-(0.5**2) / 0.25**2)))  # cos = √(1/4)
    assert weights[2] == pytest.approx(math.sqrt(math.exp(-1 / 0.25**2)))  # the empty sample: d = 1


def test_a_mask_dependent_filler_gets_the_sampled_superpixels(picture):
    image, labels, count = picture
    filler = RecordingFiller()
    method = LIME(score="logit", samples=20, filler=filler, batch_size=8)
    method(superpixel_linear_classifier(image, labels, torch.ones(count)), image, target=0, seed=4)
    masks = torch.cat(filler.masks)[:, 0]
    samples = method.draw_samples(torch.tensor([count]), seed=4)[0]
    assert masks.shape == (20, 48, 48)
    assert torch.equal(masks, samples[:, labels])  # sample i's kept superpixels, painted on the pixels
    assert torch.equal(masks[0], torch.ones(48, 48))  # the first sample keeps everything


def test_lime_maximum_lands_on_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(20)
    explanation = LIME(samples=300)(shapes_task.classifier, images, target=classes.tolist())
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits.mean()
    assert hits >= 0.9, f"LIME hit the object in {hits:.0%} of images"
