"""The classifier wrapper: output checks, targets, class names, forward-only models."""

import numpy as np
import pytest
import torch

from maskscope.core.model.classifier import Classifier, ModelOutputError, TargetError, imagenet_class_names
from maskscope.core.model.targets import resolve_targets
from maskscope.core.model.view import ClassifierView
from maskscope.methods import MeaningfulPerturbation


def tiny_classifier(forward, classes=("cat", "dog", "bird")):
    class Model(torch.nn.Module):
        def forward(self, x):
            return forward(x)

    return Classifier(Model(), class_names=list(classes), view=ClassifierView(None, 16), name="toy")


def test_imagenet_names_are_complete_and_ordered():
    names = imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby" and names[999] == "toilet tissue"


def test_wrong_shape_and_nan_outputs_are_reported():
    images = torch.rand(2, 3, 16, 16)
    with pytest.raises(ModelOutputError, match="shape"):
        tiny_classifier(lambda x: x.mean((2, 3)).unsqueeze(1)).logits(images)
    with pytest.raises(ModelOutputError, match="NaN"):
        tiny_classifier(lambda x: torch.full((x.shape[0], 3), float("nan"))).logits(images)
    with pytest.raises(ModelOutputError):  # a class count that disagrees with the names
        tiny_classifier(lambda x: torch.zeros(x.shape[0], 5)).logits(images)


def test_targets_by_index_name_and_rank():
    classifier = tiny_classifier(lambda x: torch.tensor([[0.0, 2.0, 1.0]]).expand(x.shape[0], 3))
    scores = classifier.probabilities(torch.rand(2, 3, 16, 16))
    assert resolve_targets("top1", classifier, scores) == [[1], [1]]
    assert resolve_targets("topk:2", classifier, scores) == [[1, 2], [1, 2]]
    assert resolve_targets("Bird", classifier, scores) == [[2], [2]]
    assert resolve_targets([0, "dog"], classifier, scores) == [[0], [1]]
    with pytest.raises(TargetError, match="out of range"):
        resolve_targets(7, classifier, scores)
    with pytest.raises(TargetError, match="unknown class name 'zebra'"):
        resolve_targets("zebra", classifier, scores)


def test_forward_only_callable_scores_but_refuses_gradients():
    classifier = Classifier.from_callable(
        lambda batch: np.stack([batch.mean((1, 2, 3)), -batch.mean((1, 2, 3))], 1),
        mean=(0, 0, 0), std=(1, 1, 1), class_names=["bright", "dark"], view=ClassifierView(None, 16),
    )  # fmt: skip
    scores = classifier.probabilities(torch.ones(1, 3, 16, 16))
    assert scores[0, 0] > scores[0, 1]
    with pytest.raises(TypeError, match="gradients"):
        MeaningfulPerturbation(steps=2)(classifier, torch.rand(1, 3, 16, 16))


def test_sigmoid_output_for_multi_label():
    classifier = tiny_classifier(lambda x: torch.tensor([[3.0, 3.0, -3.0]]).expand(x.shape[0], 3))
    classifier.output = "sigmoid"
    probabilities = classifier.probabilities(torch.rand(1, 3, 16, 16))
    assert probabilities[0, 0] > 0.9 and probabilities[0, 1] > 0.9 and probabilities[0, 2] < 0.1


class ConvNet(torch.nn.Module):
    """A small convolutional classifier that remembers the type its features were computed in."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.head = torch.nn.Linear(8, 3)
        self.feature_dtype = None

    def forward(self, x):
        features = torch.relu(self.conv(x))
        self.feature_dtype = features.dtype
        return self.head(features.mean((2, 3)))


def test_bfloat16_precision_runs_the_model_in_bfloat16_and_keeps_its_decisions():
    images = torch.rand(8, 3, 16, 16)
    exact = Classifier(ConvNet(), view=ClassifierView(None, 16))
    reduced = Classifier(ConvNet(), view=ClassifierView(None, 16), precision="bfloat16")
    full_scores = exact.probabilities(images)
    assert exact.model.feature_dtype == torch.float32
    reduced_scores = reduced.probabilities(images)
    assert reduced.model.feature_dtype == torch.bfloat16
    assert reduced_scores.dtype == torch.float32
    assert 0 < (reduced_scores - full_scores).abs().max() < 0.02
    assert torch.equal(reduced_scores.argmax(1), full_scores.argmax(1))


def test_reduced_precision_needs_a_module_and_a_known_type():
    with pytest.raises(ValueError, match="nn.Module"):
        Classifier.from_callable(lambda batch: batch.mean((2, 3)), precision="bfloat16")
    with pytest.raises(ValueError, match="precision must be one of"):
        Classifier(ConvNet(), precision="int4")
    with pytest.raises(ValueError, match="not available on engine torch"):
        Classifier(ConvNet(), precision="int8")
