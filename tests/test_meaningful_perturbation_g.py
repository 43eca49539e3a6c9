"""MP-G: the straight-through binary blend, localisation on the synthetic task, seeds."""

import torch

from maskscope.core.perturbation.masks import BinarisedUpsampler, Upsampler
from maskscope.methods import MeaningfulPerturbationG, get_method
from maskscope.metrics import pointing_game

#: MP-G scaled to 64-px images: a 16×16 mask (4 px cells), λ scaled to the smaller mask
SMALL_MPG = dict(resolution=16, l1_weight=0.003, tv_weight=0.03, steps=100, jitter=2)


def test_the_blend_sees_a_binary_mask_and_the_gradient_passes_straight_through():
    masks = torch.tensor([[0.1, 0.7], [0.4, 0.9]]).view(1, 1, 2, 2).requires_grad_(True)
    weights = torch.arange(16.0).view(1, 1, 4, 4)
    binary = BinarisedUpsampler(Upsampler("nearest"))(masks, (4, 4))
    assert binary.unique().tolist() == [0.0, 1.0]
    assert binary[0, 0, :2, 2:].eq(1).all() and binary[0, 0, 2:, :2].eq(0).all()  # 0.7 kept, 0.4 a hole
    (grad,) = torch.autograd.grad((binary * weights).sum(), masks)
    continuous = masks.detach().requires_grad_(True)
    (expected,) = torch.autograd.grad((Upsampler("nearest")(continuous, (4, 4)) * weights).sum(), continuous)
    assert torch.equal(grad, expected)


def test_mpg_maximum_lands_on_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(20)
    explanation = MeaningfulPerturbationG(**SMALL_MPG)(shapes_task.classifier, images, target=classes.tolist())
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits
    # the tiny CNN is trained here, so the hit rate depends on the processor: 0.897 on an AMD EPYC,
    # at least 0.9 on the machines before it
    assert hits.mean() >= 0.85, f"MP-G hit the object in {hits.mean():.0%} of images"
    # inpainting the mask's holes removes most of the class score (the tiny CNN is trained
    # here: below half of it on the AMD EPYC the test was written on, 0.50 of 0.96 on an Intel Xeon)
    assert explanation.scores_after.mean() < 0.6 * explanation.scores_before.mean()


def test_the_seed_fixes_the_initialisation_and_the_jitter(shapes_task):
    images, classes, _ = shapes_task.correctly_classified(2)
    method = get_method("mp-g", **{**SMALL_MPG, "steps": 10})
    first = method(shapes_task.classifier, images, target=classes.tolist(), seed=5)
    again = method(shapes_task.classifier, images, target=classes.tolist(), seed=5)
    other = method(shapes_task.classifier, images, target=classes.tolist(), seed=6)
    assert torch.equal(first.mask, again.mask) and torch.equal(first.saliency, again.saliency)
    assert not torch.allclose(first.mask, other.mask)
    assert first.params["filler"] == "inpaint" and first.params["init"] == "uniform"
