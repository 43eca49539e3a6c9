"""A trained explainer on the synthetic multi-object task: class-specific masks that find the objects.

A small multi-label CNN learns which of four shapes an image holds (one to three on clutter);
an explainer trained against it for a short while (the classifier-features network with a
frozen encoder, the non-target area weighted up so that class-specificity appears within a
few hundred steps) must give masks whose class-specific masking table has a higher diagonal
than off-diagonal, and whose aggregated masks overlap the objects better than the all-0.5 and
all-1 sanity masks.
"""

from __future__ import annotations

import pytest
import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.data.synthetic import make_shapes
from maskscope.methods.explainer import Explainer
from maskscope.metrics.class_masking import class_masking_table
from maskscope.metrics.segmentation import sanity_rows, segmentation_scores
from maskscope.models import train_tiny_classifier
from maskscope.training import TrainingConfig, TrainingImages, train_explainer


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # convolutions this small gain nothing from a second thread, which spins on a busy CPU
    try:
        return trained_task(tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


def trained_task(tmp_path_factory):
    train = make_shapes(800, objects=(1, 3), seed=1)
    classifier = train_tiny_classifier(train.images, train.labels, train.class_names, multilabel=True, epochs=8, seed=0)
    test = make_shapes(60, objects=(1, 3), seed=2)
    with torch.no_grad():
        accuracy = ((classifier.probabilities(test.images) > 0.5) == test.labels.bool()).float().mean()
    assert accuracy > 0.95, f"the multi-label CNN did not learn the shapes (label accuracy {accuracy:.2f})"
    data = TrainingImages(list(train.images[:200]), train.labels[:200], [f"{i}" for i in range(200)], classifier.view)
    config = TrainingConfig(network="classifier-features", network_options={"width": 32, "train_encoder": False},
                            learning_rate=2e-3, batch_size=8, epochs=12, validation=0.1,
                            weights={"area_nontarget": 2.0})  # fmt: skip
    result = train_explainer(classifier, data, tmp_path_factory.mktemp("explainer"), config, progress=False)
    present = [row.nonzero().flatten().tolist() for row in test.labels]
    explanation = Explainer(result.checkpoint)(classifier, test.images, present)
    table = class_masking_table(classifier, test.images, test.labels, explanation.class_masks)
    return table, test, explanation


def test_each_class_mask_keeps_its_own_class_more_than_the_others(task):
    table, _, _ = task
    diagonal, others = table.diagonal(), table.off_diagonal()
    assert (diagonal > others).all(), table.to_markdown()
    assert (diagonal - others).mean() > 0.2, table.to_markdown()


def test_aggregated_masks_find_the_objects_better_than_the_sanity_masks(task):
    _, test, explanation = task
    objects = test.masks.any(1)
    iou = segmentation_scores(explanation.saliency, objects).means()["iou"]
    sanity = sanity_rows(objects)
    assert iou > max(sanity["all-0.5"]["iou"], sanity["all-1"]["iou"]) + 0.1


class HalfDetector(torch.nn.Module):
    """Class 0's logit is 10× the mean of the left half of the red channel, class 1's of the right half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * torch.stack([x[:, 0, :, :2].mean((1, 2)), x[:, 0, :, 2:].mean((1, 2))], 1)


def test_class_masking_table_by_hand():
    classifier = Classifier(HalfDetector(), mean=(0.0,) * 3, std=(1.0,) * 3, output="sigmoid",
                            class_names=["left", "right"], view=ClassifierView(None, 4))  # fmt: skip
    images = torch.ones(2, 3, 4, 4)
    labels = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # the second image contains no class: no row counts it
    masks = torch.zeros(2, 2, 4, 4)
    masks[0, 0, :, :2] = 1.0  # class 0's mask keeps the left half at every threshold
    masks[0, 1, :, 2:] = 0.7  # class 1's keeps the right half at thresholds 0.1…0.6, nothing at 0.7…0.9
    table = class_masking_table(classifier, images, labels, masks)
    sure, even = torch.sigmoid(torch.tensor(10.0)).item(), 0.5  # softmax of (10, 0) and of equal logits
    expected = [
        [sure, (6 * (1 - sure) + 3 * even) / 9, even],
        [1 - sure, (6 * sure + 3 * even) / 9, even],
    ]
    assert torch.allclose(table.values, torch.tensor(expected), atol=1e-6)
    assert table.counts.tolist() == [1, 1]
    assert table.off_diagonal().tolist() == pytest.approx([expected[0][1], expected[1][0]], abs=1e-6)
    assert "| left | " in table.to_markdown()
