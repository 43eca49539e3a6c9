"""I-GOS on the synthetic task, its integrated direction and its Armijo line search."""

import copy

import torch

from maskscope.core.directions import IntegratedGradient
from maskscope.core.fillers import Constant
from maskscope.core.games import MaskProblem, get_game
from maskscope.core.line_search import ArmijoLineSearch
from maskscope.core.masks import Upsampler
from maskscope.metrics import pointing_game
from maskscope.methods import IGOS, get_method

#: I-GOS scaled to 64-px images: an 8×8 mask (8 px cells), λ scaled to the coarse grid, and the
#: mean colour as filler: the heavy blur scaled to 64 px (σ ≈ 14 px) leaves a big square or
#: triangle recognisable to the tiny CNN (class score 0.4-0.6 with the whole image blurred), so
#: no step can pay for its area and 9 of 60 masks never left M = 1
SMALL_IGOS = dict(resolution=8, l1=0.3, tv=0.3, points=5, steps=12, filler="mean")


class CountingModel(torch.nn.Module):
    """Passes through to a model and counts its forward calls."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x)


def test_igos_maximum_lands_on_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(20)
    explanation = get_method("igos", **SMALL_IGOS)(shapes_task.classifier, images, target=classes.tolist())
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits
    random_maps = torch.rand(explanation.saliency.shape, generator=torch.Generator().manual_seed(0))
    random_hits = pointing_game(random_maps, objects, tolerance=3).hits
    # measured 0.95 on these 20 images (0.885 on the first 60 the model gets right)
    assert hits.mean() >= 0.9, f"I-GOS hit the object in {hits.mean():.0%} of images"
    assert random_hits.mean() <= 0.5, f"a random map hit the object in {random_hits.mean():.0%}"
    # the deletion objective never rises (up to rounding between batch sizes) and falls for most images;
    # deleting the found region lowers the class score
    history = explanation.history
    assert (history[:, -1] <= history[:, 0] + 1e-4).all()
    assert (history[:, -1] < history[:, 0] - 1e-3).float().mean() >= 0.7
    assert explanation.scores_after.mean() < explanation.scores_before.mean()


def test_batched_and_one_by_one_give_the_same_masks(shapes_task):
    images, classes, _ = shapes_task.correctly_classified(2)
    method = IGOS(**{**SMALL_IGOS, "steps": 3, "points": 4})
    together = method(shapes_task.classifier, images, target=classes.tolist(), seed=5)
    alone = torch.cat(
        [method(shapes_task.classifier, images[i : i + 1], target=[int(classes[i])], seed=5).mask for i in range(2)]
    )
    assert (alone - together.mask).abs().max() < 1e-3


def test_integrated_direction_is_one_classifier_call(shapes_task):
    images, classes, _ = shapes_task.correctly_classified(2)
    classifier = copy.copy(shapes_task.classifier)
    counter = CountingModel(classifier.model)
    classifier.model = counter
    weights = torch.nn.functional.one_hot(classes, classifier.num_classes).float()
    deletion, regulariser = get_game("deletion"), lambda m: m.mean((1, 2, 3))
    problem = MaskProblem(classifier, images, weights, deletion, Constant(), Upsampler("bilinear"), regulariser)
    direction = IntegratedGradient(points=20, noise=0.2)
    loss, grad = direction(problem, torch.full((2, 1, 8, 8), 0.5))
    assert counter.calls == 1
    assert loss.shape == (2,) and grad.shape == (2, 1, 8, 8) and grad.abs().sum() > 0
    # the objective it reports is the problem's own, at the mask itself
    assert torch.allclose(loss, problem.objective(torch.full((2, 1, 8, 8), 0.5)), atol=1e-6)


class Quadratic:
    """``F(m) = Σ (m − t)²`` per image, a problem with a known minimiser inside [0, 1]."""

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target

    def objective(self, masks: torch.Tensor) -> torch.Tensor:
        return (masks - self.target).pow(2).flatten(1).sum(1)


def test_armijo_step_satisfies_sufficient_decrease():
    target = torch.rand(4, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    problem = Quadratic(target)
    masks = torch.ones_like(target)
    masks[1] = 0.0
    rule = ArmijoLineSearch()
    rule.reset(masks)
    loss = problem.objective(masks)
    grad = 2 * (masks - target)
    updated = rule.step(problem, masks, grad, loss)
    alpha = rule.last_step
    decrease = problem.objective(updated.clamp(0, 1)) - loss
    assert (decrease <= -rule.decrease * alpha * grad.flatten(1).pow(2).sum(1)).all()
    # backtracking: α is on the grid 200·0.2^k, and wherever it is below 200 the previous one failed
    tries = torch.log(alpha / 200) / torch.log(torch.tensor(0.2))
    assert torch.allclose(tries, tries.round(), atol=1e-4)
    previous = alpha / 0.2
    before = (masks - previous.view(-1, 1, 1, 1) * grad).clamp(0, 1)
    failed = problem.objective(before) - loss > -rule.decrease * previous * grad.flatten(1).pow(2).sum(1)
    assert (failed | (alpha == 200)).all() and (alpha < 200).any()
    assert (updated.clamp(0, 1) - target).abs().max() < (masks - target).abs().max()
