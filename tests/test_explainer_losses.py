"""The explainer's loss terms computed by hand on small tensors, and the presets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.grouped_classifier import GroupedClassifier
from maskscope.core.model.view import ClassifierView
from maskscope.training.losses import (
    PRESETS,
    ExplainerLoss,
    ExplainerWeights,
    RTISLoss,
    build_loss,
    class_log_probabilities,
    present_class_bounds,
    reflect_total_variation,
    target_masks,
)


class FixedLogits(nn.Module):
    """Returns the same logits for every image, whatever it shows."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1) + 0 * x.mean((1, 2, 3))[:, None]


def fixed_classifier(logits: list[float], output: str = "softmax", names: list[str] | None = None) -> Classifier:
    return Classifier(FixedLogits(logits), output=output, class_names=names, view=ClassifierView(None, 4))


def test_reflect_total_variation_counts_the_border_difference_once_more():
    mask = torch.tensor([[[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    # right differences per row: |0-1|, |1-1|, and at the border |1 - m(0,1)| = 0; rows 1, 2: zeros
    # down differences per column: |0-0|, |1-0|, |1-0| in row 0; rows 1, 2 (border reflects row 1): zeros
    expected = (1 + 0 + 0 + 0 + 1 + 1) / 9
    assert reflect_total_variation(mask).item() == pytest.approx(expected)
    half = torch.tensor([[[0.0, 0.5], [0.5, 0.5]]])
    # right: |0-0.5| twice (the border reflects back to the first column), 0, 0; down: the same
    assert reflect_total_variation(half, power=2).item() == pytest.approx((0.25 * 2 + 0.25 * 2) / 4)


def test_target_masks_are_the_max_over_present_and_absent_classes():
    masks = torch.tensor([0.1, 0.7, 0.4]).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    target, nontarget = target_masks(masks, targets)
    assert torch.allclose(target[0], torch.full((2, 2), 0.4))
    assert torch.allclose(nontarget[0], torch.full((2, 2), 0.7))
    assert torch.allclose(target[1], torch.full((2, 2), 0.7))
    assert torch.equal(nontarget[1], torch.zeros(2, 2))  # every class present: no non-target mask


def test_area_bounds_penalise_only_present_masks_outside_five_to_thirty_percent():
    pixels = 20  # ⌊20·0.05⌋ = 1 pixel must be on, at most ⌊20·0.3⌋ = 6 may be
    inside = torch.zeros(pixels)
    inside[:4] = 1
    empty = torch.zeros(pixels)
    full = torch.ones(pixels)
    masks = torch.stack([torch.stack([inside, empty, full]), torch.stack([full, full, inside])]).view(2, 3, 4, 5)
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # image 0: inside → 0, empty → 1 missing pixel of 20 (absent 'full' is not counted); image 1: inside → 0
    assert present_class_bounds(masks, targets, 0.05, 0.3).item() == pytest.approx((1 / 20 + 0) / 2)
    targets = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    # full masks: 14 pixels beyond the 6 allowed, in each image
    assert present_class_bounds(masks, targets, 0.05, 0.3).item() == pytest.approx(14 / 20)


def test_explainer_loss_terms_by_hand_with_a_fixed_classifier():
    logits = [2.0, 0.0, -1.0]
    classifier = fixed_classifier(logits, output="sigmoid")
    images = torch.rand(2, 3, 4, 4)
    mask_logits = torch.full((2, 3, 4, 4), -2.0)
    mask_logits[:, 0] = 1.0  # class 0's mask is σ(1) everywhere, the others σ(−2)
    targets = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    weights = ExplainerWeights(entropy=2.0, area_target=0.5, area_nontarget=0.25, bounds=3.0, tv=7.0)
    terms = ExplainerLoss(weights, multilabel=True)(classifier, images, mask_logits, targets)
    p = torch.tensor(logits).sigmoid()
    bce = -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()
    softmax = torch.tensor(logits).softmax(0)
    s1, s2 = torch.sigmoid(torch.tensor(1.0)), torch.sigmoid(torch.tensor(-2.0))
    # bounds: each present mask is constant s; no pixel must be on (⌊16·0.05⌋ = 0), 12 lie beyond ⌊16·0.3⌋ = 4
    def bound(s):
        return 12 * s / 16

    assert terms["classification"].item() == pytest.approx(bce.item(), rel=1e-5)
    assert terms["entropy"].item() == pytest.approx((softmax * softmax.log()).mean().item(), rel=1e-5)
    assert terms["area_target"].item() == pytest.approx(s1.item(), rel=1e-5)
    assert terms["area_nontarget"].item() == pytest.approx(s2.item(), rel=1e-5)
    assert terms["bounds"].item() == pytest.approx(((bound(s1)) + (bound(s1) + bound(s2))).item() / 2, rel=1e-5)
    assert terms["tv"].item() == pytest.approx(0.0, abs=1e-7)
    expected = bce + 2.0 * terms["entropy"] + 0.5 * s1 + 0.25 * s2 + 3.0 * terms["bounds"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_single_label_data_uses_cross_entropy_of_the_class():
    classifier = fixed_classifier([1.0, 3.0, 0.0])
    mask_logits = torch.zeros(1, 3, 4, 4)
    terms = ExplainerLoss(multilabel=False)(classifier, torch.rand(1, 3, 4, 4), mask_logits, torch.tensor([[0.0, 1.0, 0.0]]))
    assert terms["classification"].item() == pytest.approx(-math.log(torch.tensor([1.0, 3.0, 0.0]).softmax(0)[1].item()))
    both = ExplainerLoss(multilabel=False)(classifier, torch.rand(1, 3, 4, 4), mask_logits, torch.tensor([[1.0, 1.0, 0.0]]))
    p = torch.tensor([1.0, 3.0, 0.0]).softmax(0)
    assert both["classification"].item() == pytest.approx(-(math.log(p[0].item()) + math.log(p[1].item())) / 2)


def test_rtis_loss_by_hand():
    logits = [1.0, -1.0]
    classifier = fixed_classifier(logits, output="sigmoid")
    mask_logits = torch.zeros(1, 2, 4, 4)
    terms = RTISLoss()(classifier, torch.rand(1, 3, 4, 4), mask_logits, torch.tensor([[1.0, 1.0]]))
    p = torch.tensor(logits).sigmoid()
    assert terms["area"].item() == pytest.approx(0.5)
    assert terms["tv"].item() == pytest.approx(0.0)
    assert terms["preserver"].item() == pytest.approx(-p.log().mean().item(), rel=1e-5)
    assert terms["destroyer"].item() == pytest.approx(p.mean().item(), rel=1e-5)
    expected = 0.5 + terms["preserver"] + 5 * terms["destroyer"] ** 0.3
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_group_log_probabilities_are_the_logs_of_summed_probabilities():
    base = fixed_classifier([0.0, 1.0, 2.0, -30.0], names=["a", "b", "c", "d"])
    grouped = GroupedClassifier(base, {"ab": ["a", "b"], "c": [2], "d": [3]})
    images = torch.rand(1, 3, 4, 4)
    p = torch.tensor([0.0, 1.0, 2.0, -30.0]).softmax(0)
    log_p, log_not_p = class_log_probabilities(grouped, grouped.logits(images))
    groups = torch.stack([p[0] + p[1], p[2], p[3]])
    assert torch.allclose(log_p[0], groups.log(), rtol=1e-5)
    assert torch.allclose(log_not_p[0], (1 - groups).log(), rtol=1e-5)
    assert torch.isfinite(log_p).all()  # a probability of 1e-14 still has a finite log


def test_gradients_stay_finite_when_a_group_holds_all_the_probability():
    base = fixed_classifier([40.0, 0.0], names=["a", "b"])
    grouped = GroupedClassifier(base, {"a": [0], "b": [1]})
    mask_logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
    terms = build_loss("explainer")(grouped, torch.rand(1, 3, 4, 4), mask_logits, torch.tensor([[1.0, 0.0]]))
    terms["total"].backward()
    assert torch.isfinite(mask_logits.grad).all() and mask_logits.grad.abs().sum() > 0


def test_presets_hold_the_papers_settings_and_weights_can_be_overridden():
    vgg = PRESETS["vgg16-voc"]
    assert (vgg.weights.entropy, vgg.weights.tv, vgg.weights.bounds) == (1.0, 1.0, 1.0)
    assert (vgg.weights.area_target, vgg.weights.area_nontarget, vgg.learning_rate, vgg.patience) == (0.1, 0.3, 1e-5, 5)
    resnet = PRESETS["resnet50-voc"]
    assert (resnet.weights.entropy, resnet.weights.bounds, resnet.weights.area_target) == (3.0, 0.8, 0.01)
    assert (resnet.weights.area_nontarget, resnet.learning_rate) == (0.3, 1e-4)
    assert (vgg.weights.min_area, vgg.weights.max_area) == (0.05, 0.3)
    loss = build_loss("explainer", "resnet50-voc", {"tv": 0.5})
    assert loss.weights.tv == 0.5 and loss.weights.entropy == 3.0
    with pytest.raises(ValueError, match="unknown loss weight"):
        build_loss("explainer", weights={"smoothness": 1.0})
    with pytest.raises(ValueError, match="unknown loss preset"):
        build_loss("explainer", "vgg19-voc")
    with pytest.raises(ValueError, match="unknown explainer loss"):
        build_loss("gan")
