"""Class groups: a classifier's classes explained as groups scored by their summed probability."""

from __future__ import annotations

import pytest
import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.grouped_classifier import GroupedClassifier, read_groups
from maskscope.core.model.view import ClassifierView
from maskscope.models import TinyCNN
from maskscope.training.images import label_index

NAMES = ["tabby", "tiger cat", "beagle", "pug", "car", "bus"]


@pytest.fixture
def base() -> Classifier:
    torch.manual_seed(0)
    return Classifier(TinyCNN(6, width=4), mean=(0.5,) * 3, std=(0.5,) * 3, class_names=NAMES, view=ClassifierView(None, 32))


def test_group_scores_are_summed_softmax_probabilities(base):
    grouped = GroupedClassifier(base, {"cat": ["tabby", "tiger cat"], "dog": [2, 3], "bus": ["bus"]})
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        p = base.probabilities(images)
        groups = grouped.probabilities(images)
    assert grouped.class_names == ["cat", "dog", "bus"] and grouped.num_classes == 3
    assert torch.allclose(groups, torch.stack([p[:, 0] + p[:, 1], p[:, 2] + p[:, 3], p[:, 5]], 1), atol=1e-6)
    assert torch.allclose(grouped.probabilities(images), groups) and torch.allclose(grouped.logits(images).exp(), groups)
    assert (groups.sum(1) < 1).all()  # 'car' is in no group


def test_group_targets_and_gradients_flow_like_a_classifier(base):
    grouped = GroupedClassifier(base, {"cat": [0, 1], "dog": [2, 3]})
    assert grouped.class_index("dog") == 1
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    grouped.logits(images)[:, 0].sum().backward()
    assert images.grad.abs().sum() > 0


def test_dataset_labels_name_a_group_or_a_member_class(base):
    grouped = GroupedClassifier(base, {"cat": [0, 1], "dog": [2, 3]})
    assert label_index(grouped, "dog") == 1
    assert label_index(grouped, "Tiger Cat") == 0  # a member class stands for its group
    assert label_index(grouped, "car") is None  # a class in no group
    assert label_index(grouped, "zebra") is None


def test_bad_groups_are_clear_errors(base, tmp_path):
    with pytest.raises(ValueError, match="no member"):
        GroupedClassifier(base, {"cat": [0], "nothing": []})
    with pytest.raises(ValueError, match="unknown class name"):
        GroupedClassifier(base, {"cat": ["lion"]})
    multilabel = Classifier(TinyCNN(6, width=4), output="sigmoid", class_names=NAMES)
    with pytest.raises(ValueError, match="sigmoid"):
        GroupedClassifier(multilabel, {"cat": [0]})
    (tmp_path / "bad.json").write_text('["cat"]')
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_groups(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_groups(tmp_path / "missing.json")


def test_coco_groups_of_an_imagenet_classifier(shared_data):
    groups = read_groups(shared_data / "coco128" / "imagenet_to_coco.json")
    torch.manual_seed(0)
    imagenet = Classifier(TinyCNN(1000, width=4), view=ClassifierView(None, 32))
    grouped = GroupedClassifier(imagenet, groups)
    assert grouped.num_classes == len(groups) and grouped.class_index("dog") == list(groups).index("dog")
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        p = imagenet.probabilities(image)[0]
        dog = grouped.probabilities(image)[0, grouped.class_index("dog")]
    assert len(groups["dog"]) == 118
    assert dog.item() == pytest.approx(p[groups["dog"]].sum().item(), rel=1e-5)
