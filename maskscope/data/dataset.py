"""The common shape of every dataset: samples with image-level labels, boxes and object masks.

A :class:`Dataset` is a sequence of :class:`Sample` s. Labels are the dataset's own class
names (``"dog"`` in COCO, ``"tiger cat"`` in ImageNet); ``Dataset.label_of`` says which of
them a classifier's class index denotes, so an ImageNet classifier can be scored against the
objects annotated in a COCO or VOC photo. Boxes are in pixels of the original photo; object
masks are read only when asked for. :func:`ground_truth` rasterises the objects of one label
and puts them in the classifier's view, so metrics compare maps and ground truth of the same
size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, overload

import numpy as np
import torch

from maskscope.core.model.view import ClassifierView
from maskscope.data.images import image_size, load_image
from maskscope.errors import MaskscopeValueError


class DatasetError(MaskscopeValueError):
    """A dataset could not be read (missing folder, no images, bad annotation); the message names it."""


@dataclass(frozen=True)
class ObjectBox:
    """One annotated object: its label and box ``(x0, y0, x1, y1)`` in pixels of the photo."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    difficult: bool = False


@dataclass
class Sample:
    """One photo and its annotations.

    Attributes:
        name: a name unique within the dataset (the file stem, or a relative path).
        path: the image file.
        labels: the class names present in the photo (image-level labels).
        boxes: annotated objects (may be empty).
        size: (H, W) of the photo when the annotations know it, else ``None``.
        read_masks: reads ``{label: H×W bool array}`` of the photo's objects at the photo's
            size, or ``None`` when the dataset has no masks for this photo.
    """

    name: str
    path: Path
    labels: list[str]
    boxes: list[ObjectBox] = field(default_factory=list)
    size: tuple[int, int] | None = None
    read_masks: Callable[[], dict[str, np.ndarray]] | None = None

    @property
    def has_masks(self) -> bool:
        return self.read_masks is not None

    def load(self, min_side: int | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """The photo (3×H×W in [0, 1]) and its full size (H, W).

        With ``min_side`` (``ClassifierView.decode_side``) the photo is reduced while it is
        decoded, as :func:`~maskscope.data.images.load_image` does, so a huge photo costs what
        the classifier's view needs; the view of the reduced photo equals that of the full one
        within rounding. The size is the full photo's, which the boxes and masks refer to: give
        it, not the reduced photo's shape, to :func:`ground_truth` and :func:`boxes_in_view`.
        Raises :class:`~maskscope.data.images.ImageLoadError` for an unreadable photo.
        """
        photo = load_image(self.path, name=self.name, min_side=min_side)
        return photo, image_size(self.path)


class Dataset(Sequence[Sample]):
    """Base class: subclasses fill ``samples`` and ``class_names`` and may override :meth:`label_of`.

    Attributes:
        name: a short name used in records and tables.
        class_names: the dataset's class names.
        samples: the photos, in a fixed order.
    """

    name: str = "dataset"
    #: classifier class index → dataset label, from a label-map file; ``None``: match by name.
    classifier_labels: dict[int, str] | None = None

    def __init__(self, samples: list[Sample], class_names: list[str]) -> None:
        if not samples:
            raise DatasetError(f"{self.name}: the dataset has no images")
        names = [sample.name for sample in samples]
        if len(set(names)) != len(names):
            raise DatasetError(f"{self.name}: sample names are not unique")
        self.samples = samples
        self.class_names = class_names

    def __len__(self) -> int:
        return len(self.samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def label_of(self, class_index: int, classifier_names: Sequence[str]) -> str | None:
        """The dataset label a classifier class denotes, or ``None``.

        With a label map (``classifier_labels``) the class denotes the label it is mapped to;
        otherwise it denotes the dataset label of the same name.
        """
        if self.classifier_labels is not None:
            return self.classifier_labels.get(class_index)
        name = classifier_names[class_index]
        return name if name in self.class_names else None

    def limit(self, count: int | None) -> "Dataset":
        """The first ``count`` samples as a dataset of the same kind (all of them for ``None``)."""
        if count is None or count >= len(self):
            return self
        limited = object.__new__(type(self))
        limited.__dict__.update(self.__dict__)
        limited.samples = self.samples[:count]
        return limited


def ground_truth(
    sample: Sample, label: str, view: ClassifierView, size: tuple[int, int], kind: str = "auto"
) -> torch.Tensor:
    """Where the objects of ``label`` are, in the classifier's view: a bool crop×crop map.

    Args:
        sample: the photo's annotations.
        label: the dataset label.
        view: the classifier's resize-and-crop policy.
        size: (H, W) of the photo as loaded.
        kind: ``"mask"`` (object masks), ``"box"`` (union of boxes) or ``"auto"`` (masks when
            the sample has them, else boxes).

    Raises:
        DatasetError: when the sample has no object of ``label``, or no masks for ``"mask"``.
    """
    if kind not in ("auto", "mask", "box"):
        raise ValueError(f"kind must be 'auto', 'mask' or 'box', got {kind!r}")
    if kind == "mask" or (kind == "auto" and sample.has_masks):
        if sample.read_masks is None:
            raise DatasetError(f"{sample.name}: no object masks")
        masks = sample.read_masks()
        if label not in masks or not masks[label].any():
            raise DatasetError(f"{sample.name}: no {label!r} object in its masks")
        area = torch.from_numpy(np.asarray(masks[label], dtype=np.float32))[None]
        if tuple(area.shape[1:]) != tuple(size):
            area = torch.nn.functional.interpolate(area[None], size=size, mode="nearest")[0]
    else:
        area = box_area(sample.boxes, label, size)
    return view(area)[0] > 0.5


def box_area(boxes: list[ObjectBox], label: str, size: tuple[int, int]) -> torch.Tensor:
    """The union of the (non-difficult) boxes of ``label`` on a 1×H×W float map."""
    height, width = size
    chosen = [box for box in boxes if box.label == label and not box.difficult]
    if not chosen:
        raise DatasetError(f"no (non-difficult) box of {label!r}")
    area = torch.zeros(1, height, width)
    for box in chosen:
        x0, y0 = max(0, round(box.x0)), max(0, round(box.y0))
        x1, y1 = min(width, max(round(box.x1), x0 + 1)), min(height, max(round(box.y1), y0 + 1))
        area[:, y0:y1, x0:x1] = 1
    return area


def boxes_in_view(boxes: list[ObjectBox], label: str, view: ClassifierView, size: tuple[int, int]) -> torch.Tensor:
    """Boxes of ``label`` mapped into the classifier's view, N×4 ``(x0, y0, x1, y1)``.

    Coordinates are inclusive pixel indices, as :func:`~maskscope.metrics.bounding_boxes`
    gives them; boxes are clipped to the crop and those entirely outside it are dropped.
    """
    height, width = size
    crop_h, crop_w = view.size
    if view.resize is None:
        scale_x, scale_y, left, top = crop_w / width, crop_h / height, 0.0, 0.0
    else:
        new_h, new_w = view.resized_size(height, width)
        scale_x, scale_y = new_w / width, new_h / height
        top, left = (new_h - crop_h) // 2, (new_w - crop_w) // 2
    result = []
    for box in boxes:
        if box.label != label or box.difficult:
            continue
        x0, x1 = box.x0 * scale_x - left, box.x1 * scale_x - left
        y0, y1 = box.y0 * scale_y - top, box.y1 * scale_y - top
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(crop_w), x1), min(float(crop_h), y1)
        if x1 > x0 and y1 > y0:
            result.append([x0, y0, x1 - 1, y1 - 1])
    return torch.tensor(result, dtype=torch.float32).view(-1, 4)
