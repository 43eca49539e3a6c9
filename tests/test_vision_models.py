"""Explaining models from torchvision and timm as they come (optional extras: these tests skip
where the packages are not installed). The weights are random (nothing is downloaded), so the
tests check the plumbing against a direct computation, not what the maps show."""

from __future__ import annotations

import pytest
import torch

from maskscope import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.methods import RISE, GradCAM, Occlusion
from maskscope.methods.gradcam import TokenGrid


def direct_gradcam(classifier: Classifier, image: torch.Tensor, target: int, layer, reshape=None) -> torch.Tensor:
    """ReLU(Σ_k mean(∂p_c/∂A^k)·A^k) on the layer's grid, computed by hand with a hook, 1×h×w."""
    captured = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("a", out))
    try:
        probability = classifier.model(classifier.normalise(image).requires_grad_(True)).softmax(1)[0, target]
    finally:
        handle.remove()
    activations = captured["a"]
    (gradients,) = torch.autograd.grad(probability, activations)
    if reshape is not None:
        activations, gradients = reshape(activations), reshape(gradients)
    return torch.relu((gradients.mean((2, 3), keepdim=True) * activations).sum(1))[0].detach()


def check_explains(classifier: Classifier, layer, reshape=None) -> None:
    image = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    target = int(classifier.probabilities(image).argmax())
    explanation = GradCAM(layer=layer, reshape=reshape)(classifier, image, target=target)
    expected = direct_gradcam(classifier, image, target, layer, reshape)
    assert expected.max() > 0
    assert torch.allclose(explanation.coarse_map[0, 0], expected, rtol=1e-3, atol=1e-6 * float(expected.max()))
    for method in (RISE(samples=32, batch_size=16), Occlusion(window=56, stride=56)):
        saliency = method(classifier, image, target=target).saliency
        assert saliency.shape == (1, 224, 224) and saliency.std() > 0


def test_a_torchvision_resnet_with_its_layer_given_as_a_module():
    models = pytest.importorskip("torchvision.models", reason="torchvision is the optional extra .[vision]")
    model = models.resnet18(weights=None)
    classifier = Classifier(model, view=ClassifierView(256, 224), name="resnet18")
    check_explains(classifier, model.layer4)


def test_a_timm_vision_transformer_through_its_tokens():
    timm = pytest.importorskip("timm", reason="timm is the optional extra .[vision]")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    classifier = Classifier(model, mean=(0.5,) * 3, std=(0.5,) * 3, view=ClassifierView(256, 224), name="vit_tiny")
    check_explains(classifier, model.blocks[-1].norm1, TokenGrid(prefix_tokens=1))
