"""Shared fixtures: the synthetic shapes task with a tiny CNN trained on it, and data paths."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import torch

from maskscope.core.model.classifier import Classifier
from maskscope.data.synthetic import ShapesDataset, make_shapes
from maskscope.models import train_tiny_classifier

SHARED_DATA = Path(os.environ.get("MASKSCOPE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@dataclass
class ShapesTask:
    """A tiny CNN trained on shapes-on-clutter, and held-out images it classifies correctly."""

    classifier: Classifier
    test: ShapesDataset

    def correctly_classified(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images, classes, object masks) of the first ``count`` test images the model gets right."""
        with torch.no_grad():
            predicted = self.classifier.probabilities(self.test.images).argmax(1)
        right = (predicted == self.test.single_labels).nonzero().flatten()[:count]
        masks = torch.stack([self.test.object_mask(int(i)) for i in right])
        return self.test.images[right], self.test.single_labels[right], masks


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory) -> Path:
    """A fresh cache folder for exported models, so no test depends on (or fills) the user's cache."""
    folder = tmp_path_factory.mktemp("maskscope-cache")
    previous = os.environ.get("MASKSCOPE_CACHE")
    os.environ["MASKSCOPE_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("MASKSCOPE_CACHE", None)
    else:
        os.environ["MASKSCOPE_CACHE"] = previous


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block at ``count`` torch threads: kernels split their work by the thread count, so
    a claim of bit-identical arithmetic (or a trained model's exact weights) holds at a fixed one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


#: torch threads the tiny CNN is trained with, whatever the machine's cores: its sums, and so its
#: weights and every test's thresholds on them, depend on the thread count
TRAINING_THREADS = 2


@pytest.fixture(scope="session")
def shapes_task() -> ShapesTask:
    train = make_shapes(1000, objects=(0, 1), seed=1)
    labels, names = train.with_background()
    with torch_threads(TRAINING_THREADS):  # the same weights on any machine (rounding follows the thread count)
        classifier = train_tiny_classifier(train.images, labels, names, seed=0)
    test = make_shapes(120, seed=2)
    with torch.no_grad():
        accuracy = (classifier.probabilities(test.images).argmax(1) == test.single_labels).float().mean()
    assert accuracy > 0.9, f"the tiny CNN did not learn the shapes task (accuracy {accuracy:.2f})"
    return ShapesTask(classifier, test)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$MASKSCOPE_DATA``); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-photo data not found at {SHARED_DATA} (set MASKSCOPE_DATA to its folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def default_classifier() -> Classifier:
    return Classifier.default()
