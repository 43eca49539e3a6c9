"""What a new user meets: ``topk:K`` gives a map per class, ``topk-sum:K`` one map of their
sum, and :meth:`Explanation.load` reads one photo's record or map as well as a folder."""

from __future__ import annotations

import pytest
import torch

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import TargetError
from maskscope.core.model.targets import map_names, map_rows, maps_per_class
from maskscope.methods.registry import get_method


def test_topk_splits_into_a_map_per_class_and_topk_sum_keeps_one_summed_map():
    ranked = [[5, 2, 7], [1, 0, 3]]
    assert maps_per_class("topk:3", ranked) == ([0, 0, 0, 1, 1, 1], [[5], [2], [7], [1], [0], [3]])
    assert maps_per_class("top3", ranked)[1][:3] == [[5], [2], [7]]
    assert maps_per_class("topk-sum:3", ranked) == ([0, 1], ranked)
    assert maps_per_class(["topk:3", [1, 2, 3]], ranked) == ([0, 0, 0, 1], [[5], [2], [7], [1, 0, 3]])
    assert map_names(["chelsea", "dog"], [0, 0, 1]) == ["chelsea_top1", "chelsea_top2", "dog"]
    assert map_rows("topk:2", 2) == [0, 0, 1, 1] and map_rows("topk-sum:2", 2) == [0, 1]  # without the scores


def test_a_method_explains_each_of_the_top_classes_alone(shapes_task):
    images, _, _ = shapes_task.correctly_classified(2)
    classifier = shapes_task.classifier
    method = get_method("occlusion", window=16, stride=8)
    per_class = method(classifier, images, target="topk:2")
    summed = method(classifier, images, target="topk-sum:2")
    ranked = classifier.probabilities(images).topk(2, 1).indices.tolist()
    assert per_class.targets == [[ranked[0][0]], [ranked[0][1]], [ranked[1][0]], [ranked[1][1]]]
    assert per_class.names == ["image_0_top1", "image_0_top2", "image_1_top1", "image_1_top2"]
    assert per_class.scores_before[0] > per_class.scores_before[1]
    assert torch.equal(per_class.images[1], images[0].cpu())
    alone = method(classifier, images[:1], target=ranked[0][1])  # the second class, asked for by itself
    torch.testing.assert_close(per_class.saliency[1], alone.saliency[0])
    assert summed.targets == ranked and len(summed) == 2
    torch.testing.assert_close(summed.scores_before, per_class.scores_before.view(2, 2).sum(1))
    with pytest.raises(TargetError, match="cannot read target"):
        method(classifier, images, target="topk-sum:x")


def test_load_reads_one_photos_record_or_map_as_well_as_the_folder(tmp_path):
    explanation = Explanation(saliency=torch.rand(2, 8, 8), targets=[[1], [2]], method="rise", names=["cat", "dog"])
    explanation.save(tmp_path)
    for path in (tmp_path / "dog.json", tmp_path / "dog.npy", str(tmp_path / "dog.json")):
        loaded = Explanation.load(path)
        assert loaded.names == ["dog"] and torch.equal(loaded.saliency[0], explanation.saliency[1])
    assert Explanation.load(tmp_path).names == ["cat", "dog"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        Explanation.load(tmp_path / "bird.json")
