"""FGVis on the synthetic task, and its adversarial defense."""

import pytest
import torch
from torch import nn

from maskscope.core.model.defense import AdversarialDefense, DefenseError, covered_modules
from maskscope.methods import FGVis, get_method
from maskscope.metrics import pointing_game, spearman

#: FGVis scaled for speed on 64-px images: one λ, 20 steps
SMALL_FGVIS = dict(l1_weights=(1e-4,), steps=20)


def test_fgvis_deletion_maximum_lands_on_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(30)
    explanation = get_method("fgvis", **SMALL_FGVIS)(shapes_task.classifier, images, target=classes.tolist())
    assert explanation.mask.shape == images.shape  # full resolution, one value per channel
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits
    random_maps = torch.rand(explanation.saliency.shape, generator=torch.Generator().manual_seed(0))
    random_hits = pointing_game(random_maps, objects, tolerance=3).hits
    # measured 1.0 here
    assert hits.mean() >= 0.9, f"FGVis hit the object in {hits.mean():.0%} of images"
    assert random_hits.mean() <= 0.5
    # the deletion removed the class for most images
    assert explanation.decision_changed.float().mean() >= 0.5
    assert explanation.scores_after.mean() < 0.5 * explanation.scores_before.mean()


def test_lambda_search_stops_per_image(shapes_task):
    images, classes, _ = shapes_task.correctly_classified(6)
    targets = classes.tolist()
    # λ = 10 deletes nothing, so every image goes on to λ = 1e-4
    explanation = FGVis(l1_weights=(10.0, 1e-4), steps=20)(shapes_task.classifier, images, target=targets)
    assert (explanation.chosen_l1_weight == 1e-4).all()
    assert explanation.decision_changed.float().mean() >= 0.5
    # the paper's sequential rule in the other order: images done at 1e-4 keep it, the others
    # end at 10 with the goal unmet (a bisection would try 10 first and stop there)
    explanation = FGVis(l1_weights=(1e-4, 10.0), steps=20, search="sequential")(
        shapes_task.classifier, images, target=targets
    )
    met = explanation.decision_changed
    assert met.any()
    assert (explanation.chosen_l1_weight[met] == 1e-4).all() and (explanation.chosen_l1_weight[~met] == 10.0).all()


def test_bisection_finds_the_sequential_rules_lambda_in_fewer_rounds(shapes_task, monkeypatch):
    images, classes, _ = shapes_task.correctly_classified(4)
    targets = classes.tolist()
    # 10 and 1 delete nothing, the small values do: the first λ meeting the rule is 1e-4
    lambdas = (10.0, 1.0, 1e-4, 1e-5, 1e-6)
    rounds = []
    original = FGVis._round

    def counting(self, *args):
        rounds.append(1)
        return original(self, *args)

    monkeypatch.setattr(FGVis, "_round", counting)
    sequential = FGVis(l1_weights=lambdas, steps=20, search="sequential")(shapes_task.classifier, images, target=targets)
    sequential_rounds, rounds[:] = len(rounds), []
    bisection = FGVis(l1_weights=lambdas, steps=20)(shapes_task.classifier, images, target=targets)
    assert len(rounds) <= FGVis(l1_weights=lambdas).rounds() == 3 <= sequential_rounds  # ⌈log₂ 6⌉ rounds
    assert torch.equal(bisection.chosen_l1_weight, sequential.chosen_l1_weight)
    # the same λ gives the same masks up to rounding: the two searches batch each image with
    # different companions, whose convolutions round differently (~1e-7), and 20 normalised
    # steps can amplify that on an image (measured: 3 of 4 masks identical, the fourth at
    # Spearman 0.968, mean difference over all 5e-4); the masks of the next λ, 1e-5, differ by
    # 0.009 on average, at Spearman 0.21-0.63
    assert (bisection.mask - sequential.mask).abs().mean() < 2e-3
    assert (spearman(bisection.mask[:, 0], sequential.mask[:, 0]) > 0.95).all()
    assert sequential.decision_changed.any() and (sequential.chosen_l1_weight <= 1e-4).all()


def test_defense_blocks_generation_from_a_flat_image(shapes_task):
    # the black-image protocol on the shapes task. Its flat image is white (and light grey): the tiny
    # CNN calls a flat black image "square" but can reach "cross" from it by removing evidence, so it
    # is no empty image for this model. The protocol leaves out the flat image's own class and the
    # start's (the mean colour, "square" or "disc"); the target is the triangle, which a flat image
    # can only reach if evidence is generated. (The cross is left out too: on some trainings of the
    # tiny CNN a light flat image also reaches it by removal, which the defense does not block —
    # measured on an AMD EPYC, seed 0: defended p 0.27.) Measured there: undefended p 0.29 and 0.28,
    # defended 0.026 and 0.031; on models trained with seeds 0-3 on another machine, defended at most 0.09.
    images = torch.cat([torch.ones(2, 3, 64, 64), torch.full((2, 3, 64, 64), 0.8)])
    targets = [2, 2, 2, 2]  # triangle
    common = dict(game="generation", l1_weights=(0.0,), steps=40, stop_early=True)
    undefended = FGVis(defense=False, **common)(shapes_task.classifier, images, target=targets)
    defended = FGVis(defense=True, **common)(shapes_task.classifier, images, target=targets)
    assert undefended.decision_changed.float().mean() >= 0.75, "the undefended run should create the absent class"
    assert not defended.decision_changed.any(), "the defense let an absent class become top-1"
    assert defended.scores_after.max() < 0.25 and undefended.scores_after.min() > 0.2


def test_defense_masks_the_gradient_outside_the_bounds():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Identity(), relu)
    x = torch.tensor([[1.0, 0.0, 2.0, -1.0]])
    with AdversarialDefense(model, x) as defense:
        assert defense.activations == 1 and defense.calls == 1
        e = torch.tensor([[0.5, 1.0, 3.0, -2.0]], requires_grad=True)
        (grad,) = torch.autograd.grad(model(e).sum(), e)
    # h(x) = (1, 0, 2, 0): bounds [0, 1], [0, 0], [0, 2], [0, 0]; h(e) = (0.5, 1, 3, 0)
    assert grad.tolist() == [[1.0, 0.0, 0.0, 0.0]]
    with AdversarialDefense(model, x) as defense:
        # the units it zeroes: h(e) = 1 > 0 and 3 > 2 are outside, 2 of 4; on x itself none
        assert defense.outside_share(e.detach()).tolist() == [0.5]
        assert defense.outside_share(x).tolist() == [0.0]
    assert not model._forward_hooks and not relu._forward_hooks and not model._forward_pre_hooks

def test_offsets_decide_whether_dimming_the_image_crosses_the_bounds():
    # the docs' reading of the deletion shortfall: without offsets a ReLU network is positively
    # homogeneous, so x·0.995 scales every unit down and stays inside [0, h(x)]; with offsets
    # (batch normalisation's shifts) some units rise above what x gave them
    torch.manual_seed(0)

    def network(bias: bool) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, bias=bias), nn.ReLU6(), nn.Conv2d(8, 8, 3, bias=bias), nn.ReLU6(),
            nn.Flatten(), nn.LazyLinear(4, bias=bias),
        )

    x = torch.randn(2, 3, 12, 12)
    for bias, expect_outside in ((False, False), (True, True)):
        model = network(bias)
        if bias:
            for layer in model:
                if isinstance(layer, nn.Conv2d):
                    nn.init.uniform_(layer.bias, 0.5, 1.0)
        model(x)  # materialise the lazy layer
        with AdversarialDefense(model, x) as defense:
            share = defense.outside_share(0.995 * x)
        assert bool((share > 0.05).all()) == expect_outside, share



def test_defense_keys_bounds_per_call_of_a_reused_module():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.act(x) - 1.0)

    model = Reuse()
    x = torch.tensor([[3.0, 0.5]])  # first call h = (3, 0.5), second h = (2, 0)
    with AdversarialDefense(model, x) as defense:
        assert defense.activations == 1 and defense.calls == 2
        e = torch.tensor([[2.5, 0.5]], requires_grad=True)  # first (2.5, 0.5) inside; second (1.5, 0) inside
        (inside,) = torch.autograd.grad(model(e).sum(), e)
        e = torch.tensor([[3.5, 0.5]], requires_grad=True)  # first 3.5 > 3: blocked
        (outside,) = torch.autograd.grad(model(e).sum(), e)
    assert inside.tolist() == [[1.0, 0.0]]
    assert outside.tolist() == [[0.0, 0.0]]


def test_defense_keeps_per_image_bounds_and_checks_shapes():
    model = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0], [3.0]])
    with AdversarialDefense(model, x):
        e = torch.tensor([[2.0], [2.0]], requires_grad=True)
        (grad,) = torch.autograd.grad(model(e).sum(), e)
        assert grad.flatten().tolist() == [0.0, 1.0]
        with pytest.raises(DefenseError, match="shape"):
            model(torch.ones(3, 1))
    assert not model._forward_hooks


def test_hooks_are_removed_when_the_body_fails(shapes_task):
    classifier = shapes_task.classifier
    images = shapes_task.test.images[:2]
    with torch.no_grad():
        before = classifier.logits(images)
    with pytest.raises(RuntimeError, match="inside"):
        with AdversarialDefense(classifier, images):
            raise RuntimeError("failure inside the defended block")
    modules = [module for module in classifier.model.modules()]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in modules)
    with torch.no_grad():
        assert torch.equal(classifier.logits(images), before)
    # a failing FGVis call (wrong batch for the recorded bounds) leaves no hooks either
    with pytest.raises(DefenseError):
        with AdversarialDefense(classifier, images):
            classifier.logits(shapes_task.test.images[:3])
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in modules)


def test_model_without_nonlinearities_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(DefenseError, match="Sequential"):
        with AdversarialDefense(model, torch.zeros(1, 3, 2, 2)):
            pass
    assert not model._forward_pre_hooks and not model._forward_hooks


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="game"):
        FGVis(game="insertion")
    with pytest.raises(ValueError, match="l1_weights"):
        FGVis(l1_weights=(-1.0,))


def test_defense_finds_the_default_models_activations(default_classifier):
    model = default_classifier.model
    assert len(covered_modules(model)) > 0
    images = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = default_classifier.logits(images)
    with AdversarialDefense(default_classifier, images) as defense:
        # each ReLU6 module serves two places (stem and head, expansion and depthwise conv)
        assert defense.activations > 0 and defense.calls > defense.activations
        with torch.no_grad():
            # the hooks are on the folded copy the gradient passes run: this pass runs on the inference engine
            torch.testing.assert_close(default_classifier.logits(images), before, atol=1e-4, rtol=0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
