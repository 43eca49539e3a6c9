"""A float32 gradient pass on a CPU runs the module on pieces of a few images a thread (cheaper an
image than one large pass), with the same logits and gradients as one pass; never where a hook
may hold per-batch state, at reduced precision, or without a gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskscope import Classifier
from maskscope.core.model.classifier import CPU_GRADIENT_IMAGES_PER_THREAD


class BatchRecorder(nn.Module):
    """A tiny CNN that notes the images of every call."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                    nn.Linear(4, 3))
        self.calls: list[int] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(inputs))
        return self.layers(inputs)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gradient_pass(classifier: Classifier, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = images.clone().requires_grad_(True)
    logits = classifier.logits(inputs)
    (logits * torch.arange(1.0, 4.0)).sum().backward()
    return logits.detach(), inputs.grad


def test_a_float32_gradient_pass_runs_in_pieces_with_the_same_logits_and_gradients(one_thread):
    model = BatchRecorder()
    classifier = Classifier(model, engine="torch")
    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    logits, gradient = gradient_pass(classifier, images)
    piece = CPU_GRADIENT_IMAGES_PER_THREAD
    assert model.calls == [piece, piece, 5 - 2 * piece]
    # each image on its own: what a pass of the whole batch computes, image by image
    model.calls.clear()
    alone = [gradient_pass(classifier, images[i:i + 1]) for i in range(5)]
    torch.testing.assert_close(logits, torch.cat([one[0] for one in alone]))
    torch.testing.assert_close(gradient, torch.cat([one[1] for one in alone]))


def test_the_pieces_grow_with_the_threads():
    model = BatchRecorder()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gradient_pass(Classifier(model, engine="torch"), torch.rand(9, 3, 16, 16))
    finally:
        torch.set_num_threads(threads)
    assert model.calls == [4, 4, 1]


def test_a_hooked_module_reduced_precision_and_plain_passes_take_the_whole_batch(one_thread):
    images = torch.rand(5, 3, 16, 16)
    hooked = BatchRecorder()
    hooked.layers[0].register_forward_hook(lambda module, inputs, output: None)
    gradient_pass(Classifier(hooked, engine="torch"), images)
    assert hooked.calls == [5]

    reduced = BatchRecorder()
    gradient_pass(Classifier(reduced, engine="torch", precision="bfloat16"), images)
    assert reduced.calls == [5]

    plain = BatchRecorder()
    Classifier(plain, engine="torch").logits(images)
    assert plain.calls == [5]


def test_a_hook_on_the_folded_copy_that_runs_keeps_the_whole_batch(one_thread):
    """The adversarial defense hooks the batch-norm-folded copy, not the module, and holds the
    bounds of the batch it recorded: its passes must see that batch whole."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3)).eval()
    classifier = Classifier(model, engine="torch")
    folded = classifier.torch_engine.model
    assert folded is not model
    seen: list[int] = []
    folded.get_submodule("2").register_forward_hook(lambda module, inputs, output: seen.append(len(output)))
    gradient_pass(classifier, torch.rand(5, 3, 16, 16))
    assert seen == [5]
