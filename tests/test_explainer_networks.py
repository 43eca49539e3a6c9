"""The explainer networks: C mask logits at the input's size, built by name."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.methods.explainer.networks import build_network
from maskscope.models import TinyCNN

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


@pytest.fixture
def classifier() -> Classifier:
    torch.manual_seed(0)
    return Classifier(TinyCNN(3, width=4), mean=(0.5,) * 3, std=(0.5,) * 3, view=ClassifierView(None, 32))


def test_the_light_network_answers_at_the_input_size_whatever_it_is():
    network = build_network("light", 5, width=4, levels=2).eval()
    assert network(torch.rand(2, 3, 37, 50)).shape == (2, 5, 37, 50)
    assert network(torch.rand(1, 3, 64, 64)).shape == (1, 5, 64, 64)


def test_the_classifier_features_network_copies_the_features_and_leaves_the_classifier_alone(classifier):
    network = build_network("classifier-features", 3, classifier, width=8)
    assert network(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    copied = dict(network.encoder.named_parameters())
    original = dict(classifier.model.features.named_parameters())
    assert all(torch.equal(copied[name], original[name]) for name in original)
    assert all(p.requires_grad for p in network.encoder.parameters())
    assert not any(p.requires_grad for p in classifier.model.parameters())
    frozen = build_network("classifier-features", 3, classifier, width=8, train_encoder=False).train()
    assert not any(p.requires_grad for p in frozen.encoder.parameters()) and not frozen.encoder.training


def test_networks_by_name_and_clear_errors(classifier):
    with pytest.raises(ValueError, match="unknown explainer network"):
        build_network("unet++", 3)
    with pytest.raises(ValueError, match="pass classifier="):
        build_network("classifier-features", 3)
    with pytest.raises(ValueError, match="unexpected keyword"):
        build_network("light", 3, depth=4)
    callable_classifier = Classifier.from_callable(lambda batch: batch.mean((2, 3)), class_names=["r", "g", "b"])
    with pytest.raises(TypeError, match="needs a torch model"):
        build_network("classifier-features", 3, callable_classifier)
    no_features = Classifier(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 3)))
    with pytest.raises(TypeError, match="'features' module or an 'extract_features'"):
        build_network("classifier-features", 3, no_features)


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision is installed")
def test_deeplab_without_torchvision_names_the_vision_extra():
    with pytest.raises(ImportError, match=r"maskscope\[vision\]"):
        build_network("deeplabv3-resnet50", 3)


@pytest.mark.skipif(not HAS_TORCHVISION, reason="the deeplabv3-resnet50 network needs torchvision (the vision extra)")
def test_deeplab_gives_mask_logits_at_the_input_size():
    network = build_network("deeplabv3-resnet50", 4).eval()
    with torch.no_grad():
        assert network(torch.rand(1, 3, 64, 64)).shape == (1, 4, 64, 64)
