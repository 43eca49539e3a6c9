"""The explainer's training examples: images in the classifier's view and their target classes.

Data come from a dataset of the registry (``coco128``, ``imagenet-samples``, a folder, VOC, a
COCO JSON: :func:`maskscope.data.registry.open_dataset`) or from the synthetic shapes task
(``synthetic-shapes``, optionally ``synthetic-shapes:n=600,size=64,classes=4,objects=1-3,seed=0``,
see :func:`synthetic_arguments`).

Targets are multi-hot rows over the explained classes. A dataset label names a class of the
classifier (case-insensitive); with class groups it names a group, or a class of the
underlying classifier, which then stands for its group. A label that names no class is an
error, or is dropped with ``unknown_labels="drop"``.

**Pseudo-labels.** An image with no label (or every image, with ``labels="pseudo"``) takes the
classifier's own confident predictions on it: ``Y = {c : p_c(x) ≥ threshold}`` with ``p`` the
classifier's probabilities (sigmoid, softmax or summed group probabilities). Images whose
target set is empty (no confident class, or only dropped labels) are left out of training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from maskscope.core.model.classifier import Classifier, TargetError
from maskscope.core.model.grouped_classifier import GroupedClassifier
from maskscope.core.model.view import ClassifierView
from maskscope.core.progress import progress_bar
from maskscope.data.dataset import DatasetError
from maskscope.data.images import load_image
from maskscope.data.registry import open_dataset
from maskscope.data.synthetic import make_shapes

SYNTHETIC = "synthetic-shapes"
#: make_shapes arguments of ``synthetic-shapes`` when the spec does not give them
SYNTHETIC_DEFAULTS = {"n": 600, "size": 64, "classes": 4, "objects": (1, 3), "object_size": None, "seed": 0}
LABEL_SOURCES = ("auto", "pseudo")


@dataclass
class TrainingImages(torch.utils.data.Dataset):
    """Examples for the trainer: ``(image 3×S×S in [0, 1], target row C)`` pairs.

    Attributes:
        sources: per image, a tensor 3×H×W in [0, 1] or an image file.
        targets: N×C multi-hot target classes.
        names: a name per image.
        view: the classifier's view, applied to every image.
    """

    sources: list[torch.Tensor | Path]
    targets: torch.Tensor
    names: list[str]
    view: ClassifierView

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image(index), self.targets[index]

    def image(self, index: int) -> torch.Tensor:
        source = self.sources[index]
        return self.view(source if isinstance(source, torch.Tensor) else load_image(source))

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images B×3×S×S and targets B×C of the examples ``indices``."""
        return torch.stack([self.image(i) for i in indices]), self.targets[indices]


def open_training_images(
    data: str | os.PathLike,
    classifier: Classifier,
    labels: str = "auto",
    unknown_labels: str = "error",
    threshold: float = 0.5,
    batch_size: int = 32,
    progress: bool = False,
) -> TrainingImages:
    """The training examples of ``data`` for ``classifier``'s classes (see the module doc).

    Args:
        data: a dataset name or path (see :func:`open_dataset`), ``synthetic-shapes[:k=v,…]``, or
            several of them joined by ``+`` (``imagenet-samples+coco128:train2017``).
        classifier: the frozen classifier (a :class:`GroupedClassifier` to explain class groups).
        labels: ``"auto"`` (the dataset's labels, pseudo-labels for unlabelled images) or
            ``"pseudo"`` (pseudo-labels for every image).
        unknown_labels: ``"error"`` or ``"drop"`` for labels that name no explained class.
        threshold: the probability a class needs to become a pseudo-label.
        batch_size: images per classifier pass when pseudo-labelling.
    Raises:
        DatasetError: no images, labels outside the class list, no image with a target.
    """
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {LABEL_SOURCES}, got {labels!r}")
    if unknown_labels not in ("error", "drop"):
        raise ValueError(f"unknown_labels must be 'error' or 'drop', got {unknown_labels!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"the pseudo-label threshold must be in (0, 1], got {threshold}")
    sources, names, label_lists = _read(data)
    if not sources:
        raise DatasetError(f"{data}: no images to train on")
    view = classifier.view
    count = classifier.num_classes
    targets = torch.zeros(len(sources), count)
    unlabelled = []
    for row, (name, image_labels) in enumerate(zip(names, label_lists)):
        if labels == "pseudo" or not image_labels:
            unlabelled.append(row)
            continue
        for label in image_labels:
            index = label_index(classifier, label)
            if index is None and unknown_labels == "error":
                raise DatasetError(
                    f"{data}: image {name} has label {label!r}, which is not among the classifier's "
                    f"{count} classes (drop such labels with unknown_labels='drop')"
                )
            if index is not None:
                targets[row, index] = 1
    if unlabelled:
        examples = TrainingImages([sources[i] for i in unlabelled], targets[unlabelled], [names[i] for i in unlabelled], view)
        targets[unlabelled] = pseudo_labels(classifier, examples, threshold, batch_size, progress)
    kept = targets.any(1).nonzero().flatten().tolist()
    if not kept:
        raise DatasetError(
            f"{data}: no image has a target class among the classifier's classes "
            f"(pseudo-labels need a probability of at least {threshold})"
        )
    return TrainingImages([sources[i] for i in kept], targets[kept], [names[i] for i in kept], view)


def label_index(classifier: Classifier, label: str) -> int | None:
    """The explained class a dataset label names, or ``None``."""
    try:
        return classifier.class_index(label)
    except TargetError:
        pass
    if isinstance(classifier, GroupedClassifier):
        try:
            return classifier.group_of(classifier.base.class_index(label))
        except TargetError:
            return None
    return None


@torch.no_grad()
def pseudo_labels(
    classifier: Classifier, examples: TrainingImages, threshold: float, batch_size: int = 32, progress: bool = False
) -> torch.Tensor:
    """Multi-hot rows ``[p_c(x) ≥ threshold]`` of the classifier's probabilities on each image."""
    rows = []
    chunks = [list(range(start, min(start + batch_size, len(examples)))) for start in range(0, len(examples), batch_size)]
    for chunk in progress_bar(chunks, desc="pseudo-labels", unit="batch", disable=not progress, leave=False):
        images, _ = examples.batch(chunk)
        rows.append((classifier.probabilities(images.to(classifier.device)) >= threshold).float().cpu())
    return torch.cat(rows)


def _read(data: str | os.PathLike) -> tuple[list[torch.Tensor | Path], list[str], list[list[str]]]:
    text = str(data)
    if text == SYNTHETIC or text.startswith(SYNTHETIC + ":"):
        shapes = make_shapes(**synthetic_arguments(text))
        label_lists = [[shapes.class_names[c] for c in row.nonzero().flatten().tolist()] for row in shapes.labels]
        return list(shapes.images), [f"shapes_{i:05d}" for i in range(len(shapes))], label_lists
    if "+" in text and not Path(text).exists():
        parts = [_read(part) for part in text.split("+")]
        return [item for part in parts for item in part[0]], [n for part in parts for n in part[1]], [
            labels for part in parts for labels in part[2]
        ]
    dataset = open_dataset(data)
    return [s.path for s in dataset], [s.name for s in dataset], [list(s.labels) for s in dataset]


def synthetic_arguments(spec: str) -> dict[str, Any]:
    """``make_shapes`` arguments of a ``synthetic-shapes:k=v,…`` spec: n, size, classes, objects=A-B,
    object_size=A-B (default: 14-20 px scaled by size/64) and seed."""
    options: dict[str, Any] = dict(SYNTHETIC_DEFAULTS)
    _, _, text = spec.partition(":")
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or key not in options:
            raise DatasetError(f"{spec}: cannot read {pair!r}; use {', '.join(SYNTHETIC_DEFAULTS)} as key=value")
        ranged = key in ("objects", "object_size")
        try:
            options[key] = tuple(int(v) for v in value.split("-")) if ranged else int(value)
        except ValueError:
            raise DatasetError(f"{spec}: {key} must be an integer{' range A-B' if ranged else ''}") from None
    size = options["size"]
    object_size = options["object_size"] or (round(14 * size / 64), round(20 * size / 64))
    arguments: dict[str, Any] = {
        "n": options["n"],
        "size": size,
        "num_classes": options["classes"],
        "objects": (options["objects"][0], options["objects"][-1]),
        "object_size": (object_size[0], object_size[-1]),
        "seed": options["seed"],
    }
    if arguments["n"] < 1:
        raise DatasetError(f"{spec}: no images to train on (n = {arguments['n']})")
    try:
        make_shapes(0, **{k: v for k, v in arguments.items() if k != "n"})
    except ValueError as error:
        raise DatasetError(f"{spec}: {error}") from None
    return arguments
