"""``../shared/data/coco128``: COCO photos with boxes, instance polygons and the ImageNet mapping.

* ``boxes/<split>/<stem>.txt`` — YOLO boxes, ``class cx cy w h`` relative to the photo;
* ``polygons/<split>/<stem>.txt`` — YOLO segmentation, ``class x1 y1 x2 y2 …`` relative,
  one instance a line, rasterised here into one mask per class; its class numbers are COCO
  category ids (as in ``semantic.yaml``), not the box file's 0…79;
* ``semantic/<split>/<stem>.png`` — for 200 photos, pixel = COCO panoptic category id;
* ``boxes.yaml`` — the 80 class names of the boxes; ``semantic.yaml`` — category id → name;
* ``imagenet_to_coco.json`` — COCO class name → the ImageNet class indices that denote it,
  so an ImageNet classifier's prediction can be checked against the objects in a photo.
"""

from __future__ import annotations

import json
import os
import re
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from maskscope.data.dataset import Dataset, DatasetError, ObjectBox, Sample


class Coco128(Dataset):
    """Read the coco128 folder at ``root``.

    Args:
        root: the folder.
        masks: where object masks come from: ``"polygons"`` (every photo with objects) or
            ``"semantic"`` (the 200 photos with a semantic PNG; the others get none).
        split: ``"train2017"`` or ``"val2017"`` for the photos of one split, ``None`` for both.
    """

    name = "coco128"

    def __init__(self, root: str | os.PathLike, masks: str = "polygons", split: str | None = None) -> None:
        self.root = Path(root)
        if masks not in ("polygons", "semantic"):
            raise ValueError(f"masks must be 'polygons' or 'semantic', got {masks!r}")
        splits = sorted(folder.name for folder in (self.root / "images").glob("*") if folder.is_dir())
        if split is not None and split not in splits:
            raise DatasetError(f"{self.root}: no split {split!r}; the splits are {', '.join(splits)}")
        if not (self.root / "boxes.yaml").is_file():
            raise DatasetError(f"{self.root}: not a coco128 folder (no boxes.yaml)")
        self.masks = masks
        names = read_yaml_classes(self.root / "boxes.yaml")
        self.category_names = read_yaml_classes(self.root / "semantic.yaml")
        class_names = [names[index] for index in sorted(names)]
        mapping = json.loads((self.root / "imagenet_to_coco.json").read_text())
        self.imagenet_to_coco = {index: name for name, indices in mapping.items() for index in indices}
        photos = sorted((self.root / "images").glob(f"{split or '*'}/*.jpg"))
        samples = [self._sample(path, names) for path in photos]
        super().__init__(samples, class_names)

    def label_of(self, class_index: int, classifier_names: Sequence[str]) -> str | None:
        """The COCO class an ImageNet class denotes (``imagenet_to_coco.json``), if any."""
        return self.imagenet_to_coco.get(class_index)

    def _sample(self, path: Path, names: dict[int, str]) -> Sample:
        with Image.open(path) as image:
            width, height = image.size
        boxes = []
        for index, numbers in _rows(self.root / "boxes" / path.parent.name / f"{path.stem}.txt"):
            cx, cy, w, h = numbers
            boxes.append(
                ObjectBox(names[index], (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
            )
        source = self.root / self.masks / path.parent.name / f"{path.stem}.{'txt' if self.masks == 'polygons' else 'png'}"
        reader = polygon_masks if self.masks == "polygons" else semantic_masks
        read_masks = partial(reader, source, self.category_names, (height, width)) if source.is_file() else None
        labels = sorted({box.label for box in boxes})
        return Sample(path.stem, path, labels, boxes, (height, width), read_masks)


def polygon_masks(path: Path, names: dict[int, str], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Rasterise YOLO polygons (relative coordinates, class = category id) into one H×W bool mask per class."""
    height, width = size
    canvases: dict[str, Image.Image] = {}
    for index, numbers in _rows(path):
        points = [(x * width, y * height) for x, y in zip(numbers[0::2], numbers[1::2])]
        if len(points) < 3:
            continue
        canvas = canvases.setdefault(names[index], Image.new("1", (width, height)))
        ImageDraw.Draw(canvas).polygon(points, fill=1)
    return {name: np.array(canvas, dtype=bool) for name, canvas in canvases.items()}


def semantic_masks(path: Path, names: dict[int, str], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Split a semantic PNG (pixel = category id) into one H×W bool mask per category, at ``size``."""
    with Image.open(path) as image:
        ids = np.array(image.resize((size[1], size[0]), Image.Resampling.NEAREST))
    return {names[int(i)]: ids == i for i in np.unique(ids) if i != 0 and int(i) in names}


def read_yaml_classes(path: Path) -> dict[int, str]:
    """``index: name`` lines of a YOLO-style yaml file."""
    names = {int(m[1]): m[2].strip() for m in re.finditer(r"^\s+(\d+):\s*(.+)$", path.read_text(), re.MULTILINE)}
    if not names:
        raise DatasetError(f"{path}: no class names found")
    return names


def _rows(path: Path) -> list[tuple[int, list[float]]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            index, *numbers = line.split()
            rows.append((int(index), [float(n) for n in numbers]))
    return rows
