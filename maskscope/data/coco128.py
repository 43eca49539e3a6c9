"""The coco128 sample (``../shared/data/coco128``): photos, YOLO boxes and the ImageNet mapping.

Boxes are ``class cx cy w h`` relative to the image (``boxes/<split>/<stem>.txt``); class
names are in ``boxes.yaml``; ``imagenet_to_coco.json`` maps a COCO class name to the
ImageNet class indices that denote it, so an ImageNet classifier's prediction can be checked
against the objects annotated in a photo.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from maskscope.core.view import ClassifierView


@dataclass
class Box:
    """One object: its COCO class name and relative centre/size."""

    name: str
    cx: float
    cy: float
    w: float
    h: float


class Coco128:
    """Read the coco128 folder at ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not (self.root / "boxes.yaml").is_file():
            raise FileNotFoundError(f"{self.root}: not a coco128 folder (no boxes.yaml)")
        self.class_names = _yaml_names(self.root / "boxes.yaml")

    def image_paths(self) -> list[Path]:
        return sorted((self.root / "images").glob("*/*.jpg"))

    def boxes(self, image: Path) -> list[Box]:
        """The objects in ``image`` (an empty list for the few photos without any)."""
        path = self.root / "boxes" / image.parent.name / f"{image.stem}.txt"
        if not path.is_file():
            return []
        boxes = []
        for line in path.read_text().split("\n"):
            if line.strip():
                index, *numbers = line.split()
                boxes.append(Box(self.class_names[int(index)], *map(float, numbers)))
        return boxes

    def imagenet_to_coco(self) -> dict[int, str]:
        """ImageNet class index → the COCO class name it denotes (when it denotes one)."""
        mapping = json.loads((self.root / "imagenet_to_coco.json").read_text())
        return {index: name for name, indices in mapping.items() for index in indices}


def box_mask(boxes: list[Box], size: tuple[int, int], view: ClassifierView | None = None) -> torch.Tensor:
    """The union of ``boxes`` rasterised on an image of ``size`` (H, W), optionally put in ``view``."""
    height, width = size
    mask = torch.zeros(1, height, width)
    for box in boxes:
        x0, x1 = round((box.cx - box.w / 2) * width), round((box.cx + box.w / 2) * width)
        y0, y1 = round((box.cy - box.h / 2) * height), round((box.cy + box.h / 2) * height)
        mask[:, max(y0, 0) : max(y1, y0 + 1), max(x0, 0) : max(x1, x0 + 1)] = 1
    if view is not None:
        mask = view(mask)
    return mask[0] > 0.5


def _yaml_names(path: Path) -> dict[int, str]:
    return {int(m[1]): m[2].strip() for m in re.finditer(r"^\s+(\d+):\s*(.+)$", path.read_text(), re.MULTILINE)}
