"""PASCAL VOC (2007–2012 layout): photos, XML boxes with ``difficult`` flags, class-index PNG masks.

* ``JPEGImages/<id>.jpg``;
* ``Annotations/<id>.xml`` — PASCAL XML with 1-based inclusive pixel coordinates, so a box
  covers ``[xmin − 1, xmax) × [ymin − 1, ymax)`` here; objects flagged ``difficult`` keep the
  flag (ground truth ignores them) and give the photo no image-level label;
* ``ImageSets/Main/<split>.txt`` or ``ImageSets/Segmentation/<split>.txt`` — the photo ids;
* ``SegmentationClass/<id>.png`` — palette PNG, pixel = class index 1…20 (:data:`VOC_CLASSES`
  order), 0 background, 255 void (the object outlines); read as one mask per class, void
  excluded. Photos without a PNG have no masks.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from maskscope.data.dataset import Dataset, DatasetError, ObjectBox, Sample
from maskscope.data.label_map import read_label_map
from maskscope.data.pascal_xml import read_xml_annotation

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


class VOC(Dataset):
    """Read a VOC folder (``VOC2012`` itself, or a ``VOCdevkit`` holding one ``VOC20xx``).

    Args:
        root: the folder.
        split: the id list to read (``"train"``, ``"val"``, …); ``None``: every annotation.
        image_set: ``"Main"`` or ``"Segmentation"`` — which ``ImageSets`` folder ``split`` is in.
        label_map: a JSON ``{VOC label: [classifier class indices]}`` used by ``label_of``;
            by default a classifier class denotes the VOC label of the same name.
    """

    name = "voc"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        image_set: str = "Main",
        label_map: str | os.PathLike | None = None,
    ) -> None:
        self.root = find_voc_root(Path(root))
        if image_set not in ("Main", "Segmentation"):
            raise ValueError(f"image_set must be 'Main' or 'Segmentation', got {image_set!r}")
        annotations = self.root / "Annotations"
        if split is None:
            ids = sorted(path.stem for path in annotations.glob("*.xml"))
        else:
            listing = self.root / "ImageSets" / image_set / f"{split}.txt"
            if not listing.is_file():
                raise DatasetError(f"{listing}: split {split!r} not found")
            ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if not ids:
            raise DatasetError(f"{self.root}: no photos in {'Annotations' if split is None else split!r}")
        super().__init__([self._sample(image_id) for image_id in ids], list(VOC_CLASSES))
        if label_map is not None:
            self.classifier_labels = read_label_map(label_map, self.class_names)

    def _sample(self, image_id: str) -> Sample:
        xml = self.root / "Annotations" / f"{image_id}.xml"
        if not xml.is_file():
            raise DatasetError(f"{xml}: annotation not found")
        size, objects = read_xml_annotation(xml)
        boxes = []
        for item in objects:
            if item.name not in VOC_CLASSES:
                raise DatasetError(f"{xml}: {item.name!r} is not a VOC class")
            boxes.append(ObjectBox(item.name, item.xmin - 1, item.ymin - 1, item.xmax, item.ymax, item.difficult))
        png = self.root / "SegmentationClass" / f"{image_id}.png"
        read_masks = partial(class_index_masks, png) if png.is_file() else None
        photo = self.root / "JPEGImages" / f"{image_id}.jpg"
        if not photo.is_file():
            raise DatasetError(f"{photo}: image not found")
        labels = sorted({box.label for box in boxes if not box.difficult}, key=VOC_CLASSES.index)
        return Sample(image_id, photo, labels, boxes, size, read_masks)


def find_voc_root(root: Path) -> Path:
    """``root`` if it has ``Annotations`` and ``JPEGImages``, else its one ``VOC*`` sub-folder that has."""
    if (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir():
        return root
    inside = sorted(p for p in root.glob("VOC*") if (p / "Annotations").is_dir() and (p / "JPEGImages").is_dir())
    if len(inside) == 1:
        return inside[0]
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    raise DatasetError(f"{root}: not a VOC folder (needs Annotations/ and JPEGImages/, or one VOC20xx/ holding them)")


def class_index_masks(path: Path) -> dict[str, np.ndarray]:
    """Split a VOC class-index PNG into ``{class name: H×W bool}`` (0 background and 255 void left out)."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise DatasetError(f"{path}: expected a palette or grayscale PNG of class indices, got mode {image.mode}")
        index = np.array(image)
    return {VOC_CLASSES[i - 1]: index == i for i in np.unique(index).tolist() if 1 <= i <= len(VOC_CLASSES)}
