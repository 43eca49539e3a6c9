"""Batch norms folded into convolutions: the same function, fewer layers, kept up to date."""

from __future__ import annotations

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.engines.folding import FoldedModule, fold_batch_norms
from maskscope.models.tiny_cnn import TinyCNN


def _with_statistics(module: nn.Module, seed: int = 0) -> nn.Module:
    """``module`` in eval mode with batch-norm statistics and affine terms far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            channels = layer.num_features
            layer.running_mean.copy_(torch.randn(channels, generator=generator))
            layer.running_var.copy_(torch.rand(channels, generator=generator) * 3 + 0.1)
            layer.weight.data.copy_(torch.randn(channels, generator=generator))
            layer.bias.data.copy_(torch.randn(channels, generator=generator))
    return module.eval()


class Residual(nn.Module):
    """A convolution whose output is read twice: by its batch norm and by a skip connection."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.shared = nn.Conv2d(6, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.stem(images)
        shared = self.shared(features)
        mixed = torch.relu(self.norm(shared)) + shared
        return self.head(mixed.mean((2, 3)))


class Branching(nn.Module):
    """Control flow that depends on the data: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.convolution = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.norm(self.convolution(images))
        if features.mean() > 0:
            features = features * 2
        return features.mean((2, 3))


def _outputs_and_input_gradient(model, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    variable = images.clone().requires_grad_(True)
    out = model(variable)
    (gradient,) = torch.autograd.grad(out[:, 1].sum(), variable)
    return out.detach(), gradient


def test_the_folded_network_computes_the_same_scores_and_gradients_without_batch_norms(shapes_task):
    module = _with_statistics(TinyCNN(num_classes=3))
    images = shapes_task.test.images[:4]
    folded = fold_batch_norms(module)
    assert folded is not None
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in folded.modules())
    assert any(isinstance(layer, nn.BatchNorm2d) for layer in module.modules()), "the module itself was changed"
    out, gradient = _outputs_and_input_gradient(module, images)
    folded_out, folded_gradient = _outputs_and_input_gradient(folded, images)
    assert torch.allclose(folded_out, out, atol=1e-4, rtol=1e-4)
    assert torch.allclose(folded_gradient, gradient, atol=1e-4 * gradient.abs().max().item())


def test_a_convolution_read_twice_keeps_its_batch_norm():
    module = _with_statistics(Residual())
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    assert fold_batch_norms(module) is None, "folding the norm would change the skip connection"
    assert torch.allclose(FoldedModule(module)(images), module(images))


def test_a_module_that_cannot_be_traced_runs_as_it_is():
    module = _with_statistics(Branching())
    assert fold_batch_norms(module) is None
    assert FoldedModule(module).current() is module


def test_gradient_passes_follow_weights_changed_in_place(shapes_task):
    classifier = Classifier(_with_statistics(TinyCNN(num_classes=3)), name="tiny")
    images = shapes_task.test.images[:3]

    def gradient_pass() -> torch.Tensor:
        variable = images.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(classifier.probabilities(variable)[:, 0].sum(), variable)
        return gradient

    before = gradient_pass()
    assert classifier._folded is not None and classifier._folded.current() is not classifier.module
    with torch.no_grad():  # what a weight-randomisation check does to its copy
        for layer in classifier.module.modules():
            if isinstance(layer, nn.Conv2d):
                layer.weight.mul_(-1.5)
            if isinstance(layer, nn.BatchNorm2d):
                layer.running_mean.add_(0.3)
    after = gradient_pass()
    hook = classifier.module.register_forward_hook(lambda *_: None)  # a hooked module runs unfolded
    try:
        unfolded = gradient_pass()
    finally:
        hook.remove()
    assert not torch.allclose(after, before, atol=1e-6)
    assert torch.allclose(after, unfolded, atol=1e-4 * unfolded.abs().max().item())


def test_hooks_on_the_module_see_every_gradient_pass(shapes_task):
    classifier = shapes_task.classifier
    seen: list[torch.Size] = []
    first = next(layer for layer in classifier.module.modules() if isinstance(layer, nn.BatchNorm2d))
    handle = first.register_forward_hook(lambda _layer, _inputs, out: seen.append(out.shape))
    try:
        images = shapes_task.test.images[:2].clone().requires_grad_(True)
        classifier.probabilities(images)[:, 0].sum().backward()
    finally:
        handle.remove()
    assert len(seen) == 1, "a hooked layer must run in the module as it is, not in its folded copy"
