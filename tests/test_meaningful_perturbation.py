"""Meaningful Perturbation on the synthetic task with known ground truth, and batching."""

import pytest
import torch

from maskscope.methods import MeaningfulPerturbation
from maskscope.metrics import pointing_game

#: MP scaled to 64-px images: a 16×16 mask (4 px cells) and a blur filler of σ = 8 px
SMALL_MP = dict(resolution=16, smooth_sigma=1.0, filler="blur:8", l1_weight=0.03, tv_weight=0.1, steps=100, jitter=0)


def test_mp_maximum_lands_on_the_object(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(40)
    explanation = MeaningfulPerturbation(game="preservation", **SMALL_MP)(
        shapes_task.classifier, images, target=classes.tolist()
    )
    hits = pointing_game(explanation.saliency, objects, tolerance=3).hits
    random_maps = torch.rand(explanation.saliency.shape, generator=torch.Generator().manual_seed(0))
    random_hits = pointing_game(random_maps, objects, tolerance=3).hits
    # 36 of 40 before batch norms were folded into the gradient passes, 35 after: float rounding
    # that 100 Adam steps amplify moves a map or two across the object's edge
    assert hits.mean() >= 0.85, f"MP hit the object in {hits.mean():.0%} of images"
    assert random_hits.mean() <= 0.5, f"a random map hit the object in {random_hits.mean():.0%}"
    # the preserved region alone keeps the class
    assert explanation.scores_after.mean() > 0.5


def test_deletion_game_removes_the_class(shapes_task):
    images, classes, _ = shapes_task.correctly_classified(8)
    explanation = MeaningfulPerturbation(**SMALL_MP)(shapes_task.classifier, images, target=classes.tolist())
    assert explanation.scores_before.mean() > 0.9
    assert explanation.scores_after.mean() < 0.5 * explanation.scores_before.mean()
    # history: the loss per image × step
    assert explanation.history is not None and (explanation.history[:, -1] < explanation.history[:, 0]).all()


def test_batched_and_one_by_one_give_the_same_masks(shapes_task):
    images, classes, _ = shapes_task.correctly_classified(8)
    method = MeaningfulPerturbation(**{**SMALL_MP, "steps": 40, "jitter": 2})
    together = method(shapes_task.classifier, images, target=classes.tolist(), seed=3)
    alone = torch.cat(
        [method(shapes_task.classifier, images[i : i + 1], target=[int(classes[i])], seed=3).mask for i in range(8)]
    )
    # Convolutions of different batch sizes round differently (~1e-7); Adam's normalised steps
    # can carry that into a few cells, so the masks agree to within rounding, not bit for bit
    # (largest difference measured: 0.02 on two threads, 0.06 on one).
    difference = (alone - together.mask).abs()
    assert difference.mean() < 1e-3 and difference.max() < 0.15


def test_top5_targets_and_layer_masks(shapes_task):
    images, _, _ = shapes_task.correctly_classified(2)
    explanation = MeaningfulPerturbation(**{**SMALL_MP, "steps": 20})(shapes_task.classifier, images, target="topk-sum:2")
    assert all(len(t) == 2 for t in explanation.targets)
    layered = MeaningfulPerturbation(layer="features.3", steps=30, init="ones", l1_weight=1e-2, tv_weight=0.0)(
        shapes_task.classifier, images
    )
    assert layered.mask.shape[-2:] == (32, 32)  # the layer's spatial size
    assert layered.saliency.shape[1:] == (64, 64)
    assert layered.scores_after.max() < layered.scores_before.min()
    module = shapes_task.classifier.model.features[3]  # the same layer, given as the module
    by_module = MeaningfulPerturbation(layer=module, steps=30, init="ones", l1_weight=1e-2, tv_weight=0.0)(
        shapes_task.classifier, images
    )
    assert torch.allclose(by_module.mask, layered.mask, atol=1e-6)
    with pytest.raises(ValueError, match="not part of the model"):
        MeaningfulPerturbation(layer=torch.nn.Conv2d(3, 3, 1), steps=2)(shapes_task.classifier, images)


def test_explanation_round_trip(shapes_task, tmp_path):
    images, _, _ = shapes_task.correctly_classified(2)
    explanation = MeaningfulPerturbation(**{**SMALL_MP, "steps": 5})(shapes_task.classifier, images)
    explanation.names = ["a", "b"]
    explanation.save(tmp_path, images=list(images), view=shapes_task.classifier.view)
    loaded = type(explanation).load(tmp_path, ["a", "b"])
    assert torch.allclose(loaded.saliency, explanation.saliency)
    assert loaded.targets == explanation.targets and loaded.params["steps"] == 5
    assert (tmp_path / "a.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError):
        type(explanation).load(tmp_path, ["c"])
