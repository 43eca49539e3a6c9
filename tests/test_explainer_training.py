"""The explainer's training workflow on tiny models: resume, early stopping, logs, pseudo-labels, bad input."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.engines import OnnxRuntimeEngine, installed
from maskscope.core.model.view import ClassifierView
from maskscope.data.dataset import DatasetError
from maskscope.methods.explainer import CheckpointMismatch, Explainer, load_checkpoint
from maskscope.models import TinyCNN
from maskscope.training import TrainingConfig, open_training_images, train_explainer

SHAPES = "synthetic-shapes:n=24,size=32,classes=3,objects=1-2,seed=3"
NAMES = ["square", "disc", "triangle"]


def tiny_classifier(seed: int = 0, names: list[str] = NAMES) -> Classifier:
    torch.manual_seed(seed)
    model = TinyCNN(len(names), width=4)
    return Classifier(model, mean=(0.5,) * 3, std=(0.5,) * 3, output="sigmoid", class_names=names,
                      view=ClassifierView(None, 32), name="tiny")  # fmt: skip


def small_config(**changes) -> TrainingConfig:
    settings = dict(batch_size=8, epochs=2, learning_rate=1e-3, network_options={"width": 4, "levels": 2})
    return TrainingConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return tiny_classifier()


@pytest.fixture(scope="module")
def shapes(classifier):
    return open_training_images(SHAPES, classifier)


@pytest.fixture(scope="module")
def trained(classifier, shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train_explainer(classifier, shapes, out, small_config(), progress=False)


def test_synthetic_data_carry_their_labels(shapes):
    assert len(shapes) == 24 and shapes.targets.shape == (24, 3)
    assert (shapes.targets.sum(1) >= 1).all() and (shapes.targets.sum(1) <= 2).all()
    image, target = shapes[0]
    assert image.shape == (3, 32, 32) and torch.equal(target, shapes.targets[0])


def test_a_run_writes_checkpoints_and_a_log_of_every_term(trained):
    out = trained.checkpoint.parent
    assert trained.epochs == 2 and (out / "last.pt").is_file() and trained.checkpoint.is_file()
    assert trained.plot.stat().st_size > 0
    rows = list(csv.DictReader(trained.log.open()))
    assert [(r["epoch"], r["split"]) for r in rows] == [("1", "train"), ("1", "validation"), ("2", "train"), ("2", "validation")]
    for term in ("classification", "entropy", "area_target", "area_nontarget", "bounds", "tv", "total"):
        assert all(np.isfinite(float(row[term])) for row in rows)
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["epoch"] == 2 and checkpoint["classifier"]["class_names"] == NAMES
    assert checkpoint["config"]["learning_rate"] == 1e-3 and "state" in checkpoint["optimiser"]


def test_the_method_gives_every_class_mask_and_their_max_over_the_targets(classifier, shapes, trained):
    images, _ = shapes.batch([0, 1, 2])
    explanation = Explainer(trained.checkpoint)(classifier, images, [[0], [1, 2], "disc"])
    masks = explanation.class_masks
    assert masks.shape == (3, 3, 32, 32) and 0 <= masks.min() and masks.max() <= 1
    assert torch.equal(explanation.saliency[0], masks[0, 0])
    assert torch.equal(explanation.saliency[1], torch.maximum(masks[1, 1], masks[1, 2]))
    assert torch.equal(explanation.saliency[2], masks[2, 1])
    assert explanation.scores_after.shape == (3,) and explanation.target_names[1] == ["disc", "triangle"]


@pytest.mark.skipif(not installed("onnxruntime"), reason="onnxruntime is not installed")
def test_on_a_compiled_engine_the_network_runs_there_and_gives_the_torch_masks(classifier, shapes, trained):
    images, _ = shapes.batch([0, 1, 2])
    on_torch = Explainer(trained.checkpoint)(classifier, images, [0, 1, 2])
    compiled = copy.copy(classifier)
    compiled.set_engine("onnxruntime")
    method = Explainer(trained.checkpoint)
    on_engine = method(compiled, images, [0, 1, 2])
    assert isinstance(method._compiled[1].engine, OnnxRuntimeEngine)  # opened, and no fallback
    torch.testing.assert_close(on_engine.mask, on_torch.mask, atol=1e-4, rtol=0)
    torch.testing.assert_close(on_engine.scores_after, on_torch.scores_after, atol=1e-4, rtol=0)


def test_an_interrupted_run_resumes_where_it_stopped(classifier, shapes, tmp_path):
    whole = train_explainer(classifier, shapes, tmp_path / "whole", small_config(epochs=3), progress=False)
    train_explainer(classifier, shapes, tmp_path / "cut", small_config(epochs=1), progress=False)
    resumed = train_explainer(classifier, shapes, tmp_path / "cut", small_config(epochs=3), resume=True, progress=False)
    assert resumed.epochs == whole.epochs == 3
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    for name, tensor in a["network"]["state"].items():
        assert torch.equal(tensor, b["network"]["state"][name]), name
    assert a["optimiser"]["state"][0]["step"] == b["optimiser"]["state"][0]["step"] == 9  # 3 epochs × 3 batches
    drop_time = [{k: v for k, v in row.items() if k != "seconds"} for row in a["history"]]
    assert drop_time == [{k: v for k, v in row.items() if k != "seconds"} for row in b["history"]]


def test_early_stopping_waits_patience_epochs_without_improvement(classifier, shapes, tmp_path):
    result = train_explainer(classifier, shapes, tmp_path, small_config(epochs=6, patience=2, min_delta=10.0),
                             progress=False)  # fmt: skip
    assert (result.epochs, result.best_epoch, result.stopped_early) == (3, 1, True)


def test_a_run_is_not_overwritten_or_resumed_with_another_configuration(classifier, shapes, trained):
    out = trained.checkpoint.parent
    with pytest.raises(ValueError, match="already holds a training run"):
        train_explainer(classifier, shapes, out, small_config(), progress=False)
    with pytest.raises(ValueError, match="learning_rate"):
        train_explainer(classifier, shapes, out, small_config(learning_rate=0.1), resume=True, progress=False)
    with pytest.raises(CheckpointMismatch, match="probe image"):
        train_explainer(tiny_classifier(seed=1), shapes, out, small_config(), resume=True, progress=False)


def test_a_checkpoint_refuses_another_classifier_or_class_list(shapes, trained):
    images, _ = shapes.batch([0])
    with pytest.raises(CheckpointMismatch, match="probe image"):
        Explainer(trained.checkpoint)(tiny_classifier(seed=1), images, 0)
    with pytest.raises(CheckpointMismatch, match="class list"):
        Explainer(trained.checkpoint)(tiny_classifier(names=["square", "disc", "star"]), images, 0)
    with pytest.raises(ValueError, match="needs checkpoint"):
        Explainer()(tiny_classifier(), images, 0)


def test_no_images_is_an_error(classifier, tmp_path):
    with pytest.raises(DatasetError, match="no images"):
        open_training_images("synthetic-shapes:n=0", classifier)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        open_training_images(tmp_path / "empty", classifier)


def write_photos(folder, count: int = 2) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        Image.fromarray(np.full((40, 40, 3), 60 * index, np.uint8)).save(folder / f"photo{index}.png")


def test_labels_outside_the_class_list_are_an_error_unless_dropped(classifier, tmp_path):
    write_photos(tmp_path / "disc")
    write_photos(tmp_path / "zebra")
    with pytest.raises(DatasetError, match="'zebra'"):
        open_training_images(tmp_path, classifier)
    kept = open_training_images(tmp_path, classifier, unknown_labels="drop")
    assert len(kept) == 2 and kept.targets[:, 1].all() and kept.targets.sum() == 2


def test_datasets_joined_by_plus_train_together(classifier, tmp_path):
    write_photos(tmp_path / "one" / "disc")
    write_photos(tmp_path / "two" / "square", count=3)
    joined = open_training_images(f"{tmp_path / 'one'}+{tmp_path / 'two'}+{SHAPES}", classifier)
    assert len(joined) == 2 + 3 + 24
    assert joined.targets[:2, 1].all() and joined.targets[2:5, 0].all() and joined.targets[:5].sum() == 5


class FixedLogits(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([3.0, -3.0, 0.1]).expand(len(x), -1) + 0 * x.mean((1, 2, 3))[:, None]


def test_unlabelled_images_take_the_classifiers_confident_predictions(tmp_path):
    write_photos(tmp_path / "photos", count=3)
    classifier = Classifier(FixedLogits(), output="sigmoid", class_names=NAMES, view=ClassifierView(None, 32))
    # probabilities σ(3) = 0.95, σ(−3) = 0.05, σ(0.1) = 0.52
    assert open_training_images(tmp_path / "photos", classifier).targets.tolist() == [[1.0, 0.0, 1.0]] * 3
    assert open_training_images(tmp_path / "photos", classifier, threshold=0.9).targets.tolist() == [[1.0, 0.0, 0.0]] * 3
    with pytest.raises(DatasetError, match="no image has a target"):
        open_training_images(tmp_path / "photos", classifier, threshold=0.99)
    relabelled = open_training_images(SHAPES, classifier, labels="pseudo")
    assert (relabelled.targets == torch.tensor([1.0, 0.0, 1.0])).all()


def test_bad_synthetic_specs_and_settings_are_clear_errors(classifier):
    with pytest.raises(DatasetError, match="cannot read"):
        open_training_images("synthetic-shapes:colour=red", classifier)
    with pytest.raises(DatasetError, match="num_classes"):
        open_training_images("synthetic-shapes:classes=9", classifier)
    with pytest.raises(ValueError, match="validation fraction"):
        TrainingConfig(validation=1.5)
    with pytest.raises(ValueError, match="unknown explainer network"):
        train_explainer(classifier, open_training_images(SHAPES, classifier), "unused", small_config(network="vit"))
