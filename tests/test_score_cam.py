"""Score-CAM: its equation computed directly on a tiny CNN, batching that changes nothing, the
constant channels, the layer checks, and the object found on the synthetic shapes task."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeValueError
from maskscope.methods import METHODS, RandomMap, ScoreCAM, get_method
from maskscope.metrics.pointing import pointing_game


class TinyCNN(nn.Module):
    """Random weights; channel 0 of ``features`` is dead (always 0), channel 1 is constant 1: their
    masks are empty, the fully filled image."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))
        self.head = nn.Linear(6, 4)
        with torch.no_grad():
            self.features[0].weight[:2] = 0
            self.features[0].bias[0] = -1.0
            self.features[0].bias[1] = 1.0

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


@pytest.fixture(scope="module")
def tiny() -> tuple[Classifier, torch.Tensor]:
    classifier = Classifier(TinyCNN(), mean=(0.5,) * 3, std=(0.25,) * 3, view=ClassifierView(None, 16))
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return classifier, images


def direct_score_cam(classifier: Classifier, image: torch.Tensor, target: int, score: str, softmax: bool) -> torch.Tensor:
    """The module docstring's equation, one masked image at a time (H×W)."""
    model = classifier.model
    with torch.no_grad():
        activations = model.features(classifier.normalise(image[None]))[0]  # K×h×w
        mean = classifier.mean_colour.view(3, 1, 1)
        scores = []
        for feature_map in activations:
            up = F.interpolate(feature_map[None, None], size=image.shape[-2:], mode="bilinear", align_corners=True)[0, 0]
            mask = (up - up.min()) / (up.max() - up.min() + 1e-8)
            if feature_map.max() == feature_map.min():  # upsampling may round a constant map unevenly
                mask = torch.zeros_like(up)
            masked = image * mask + mean * (1 - mask)
            scores.append(classifier.class_scores(masked[None], score)[0, target])
        alpha = torch.stack(scores)
        alpha = alpha.softmax(0) if softmax else alpha
        cam = F.relu((alpha[:, None, None] * activations).sum(0))
        return F.interpolate(cam[None, None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]


def test_score_cam_is_registered_with_its_alias():
    assert METHODS["scorecam"] is ScoreCAM
    assert isinstance(get_method("score-cam"), ScoreCAM)
    assert get_method("Score-CAM", channel_softmax=True).channel_softmax


@pytest.mark.parametrize("score, softmax", [("probability", False), ("logit", True)])
def test_score_cam_is_its_equation_whatever_the_batch_size(tiny, score, softmax):
    classifier, images = tiny
    targets = [0, 2, 3]
    with torch.no_grad():
        activations = classifier.model.features(classifier.normalise(images))
    assert activations[:, 0].abs().max() == 0 and torch.all(activations[:, 1] == 1)  # a dead and a constant channel
    expected = torch.stack(
        [direct_score_cam(classifier, image, target, score, softmax) for image, target in zip(images, targets)]
    )
    assert expected.amax((1, 2)).min() > 0  # the maps are not all zero
    for batch_size in (1, 2, 5, None):
        method = ScoreCAM(layer="features", score=score, channel_softmax=softmax, batch_size=batch_size)
        explanation = method(classifier, images, target=targets)
        assert torch.allclose(explanation.saliency, expected, atol=1e-5), batch_size
        assert explanation.coarse_map.shape == (3, 1, 4, 4)


def test_score_cam_checks_its_layer_and_removes_its_hook(tiny):
    classifier, images = tiny
    with pytest.raises(MaskscopeValueError, match="B×C×H×W"):
        ScoreCAM(layer="head")(classifier, images[:1], target=0)
    with pytest.raises(ValueError, match="no layer"):
        ScoreCAM(layer="nonexistent")(classifier, images[:1], target=0)
    assert all(not m._forward_hooks for m in classifier.model.modules())


def test_forward_only_classifier_is_refused(tiny):
    classifier, images = tiny

    def run(batch):
        with torch.no_grad():
            return classifier.model(torch.from_numpy(batch)).numpy()

    black_box = Classifier.from_callable(run, mean=(0.5,) * 3, std=(0.25,) * 3, class_names=classifier.class_names)
    with pytest.raises(TypeError, match="needs gradients"):
        ScoreCAM()(black_box, images[:1], target=0)


def test_score_cam_points_at_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(12)
    classifier, targets = shapes_task.classifier, classes.tolist()
    chance = pointing_game(RandomMap()(classifier, images, targets).saliency, objects, tolerance=3).hits.mean()
    for method in (ScoreCAM(), ScoreCAM(score="logit", channel_softmax=True)):
        hits = pointing_game(method(classifier, images, target=targets).saliency, objects, tolerance=3).hits.mean()
        assert hits >= 0.9 and hits >= chance + 0.6, f"{method} hit the object in {hits:.0%} of images"
