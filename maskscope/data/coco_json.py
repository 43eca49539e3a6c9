"""COCO instance annotations: ``instances_*.json`` plus its image folder.

The JSON holds ``images`` (``id``, ``file_name``, ``width``, ``height``), ``categories``
(``id``, ``name``) and ``annotations`` (``image_id``, ``category_id``, ``bbox = [x, y, w, h]``
in pixels, ``iscrowd``, ``segmentation``). A segmentation is a list of polygons
``[x1, y1, x2, y2, …]`` (rasterised with PIL) or a run-length encoding ``{"size": [H, W],
"counts": …}`` of the column-major mask, alternating runs of 0s and 1s starting with 0s;
``counts`` is a list of run lengths or COCO's compressed string (:func:`decode_rle_string`).
Crowd annotations (``iscrowd = 1``) are ignore regions, as in COCO's evaluation: their boxes
are flagged ``difficult`` and they are left out of the labels and the masks.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from maskscope.data.dataset import Dataset, DatasetError, ObjectBox, Sample
from maskscope.data.label_map import read_label_map


class CocoJson(Dataset):
    """Read a COCO instances JSON file and the photos it names.

    Args:
        annotations: the JSON file.
        images: the folder ``file_name`` is relative to.
        label_map: a JSON ``{category name: [classifier class indices]}`` used by
            ``label_of`` (for an ImageNet classifier on COCO categories:
            ``shared/data/coco128/imagenet_to_coco.json``); by default a classifier class
            denotes the category of the same name.
    """

    name = "coco"

    def __init__(
        self,
        annotations: str | os.PathLike,
        images: str | os.PathLike,
        label_map: str | os.PathLike | None = None,
    ) -> None:
        self.annotations, self.images = Path(annotations), Path(images)
        if not self.annotations.is_file():
            raise DatasetError(f"{self.annotations}: annotation file not found")
        if not self.images.is_dir():
            raise DatasetError(f"{self.images}: image folder not found")
        try:
            content = json.loads(self.annotations.read_text())
            categories = {int(c["id"]): str(c["name"]) for c in content["categories"]}
            entries = content["images"]
            objects = content.get("annotations", [])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{self.annotations}: not a COCO instances file ({error!r})") from error
        by_image: dict[int, list[dict]] = {}
        for item in objects:
            if item.get("category_id") not in categories:
                raise DatasetError(f"{self.annotations}: annotation {item.get('id')} has an unknown category")
            by_image.setdefault(item["image_id"], []).append(item)
        samples = [self._sample(entry, by_image.get(entry["id"], []), categories) for entry in entries]
        super().__init__(samples, [categories[i] for i in sorted(categories)])
        if label_map is not None:
            self.classifier_labels = read_label_map(label_map, self.class_names)

    def _sample(self, entry: dict, objects: list[dict], categories: dict[int, str]) -> Sample:
        path = self.images / entry["file_name"]
        if not path.is_file():
            raise DatasetError(f"{path}: image of {self.annotations.name} not found")
        size = (int(entry["height"]), int(entry["width"]))
        boxes = []
        for item in objects:
            x, y, w, h = (float(v) for v in item["bbox"])
            boxes.append(ObjectBox(categories[item["category_id"]], x, y, x + w, y + h, bool(item.get("iscrowd", 0))))
        shapes = [
            (categories[item["category_id"]], item["segmentation"])
            for item in objects
            if not item.get("iscrowd", 0) and item.get("segmentation")
        ]
        read_masks = partial(rasterise, shapes, size, str(path)) if shapes else None
        labels = sorted({box.label for box in boxes if not box.difficult})
        return Sample(Path(entry["file_name"]).with_suffix("").as_posix(), path, labels, boxes, size, read_masks)


def rasterise(shapes: list[tuple[str, list | dict]], size: tuple[int, int], source: str) -> dict[str, np.ndarray]:
    """One H×W bool mask per label: the union of its instances' polygons or RLEs."""
    masks: dict[str, np.ndarray] = {}
    for label, segmentation in shapes:
        mask = masks.setdefault(label, np.zeros(size, dtype=bool))
        if isinstance(segmentation, dict):
            mask |= decode_rle(segmentation, size, source)
        else:
            canvas = Image.new("1", (size[1], size[0]))
            for polygon in segmentation:
                if len(polygon) >= 6:
                    ImageDraw.Draw(canvas).polygon([float(v) for v in polygon], fill=1)
            mask |= np.array(canvas, dtype=bool)
    return masks


def decode_rle(rle: dict, size: tuple[int, int], source: str = "RLE") -> np.ndarray:
    """An H×W bool mask from a COCO RLE: runs of 0s and 1s (0s first) over the column-major pixels."""
    height, width = (int(v) for v in rle.get("size", size))
    counts = rle.get("counts")
    runs = decode_rle_string(counts) if isinstance(counts, (str, bytes)) else counts
    if not isinstance(runs, list) or sum(runs) != height * width or min(runs, default=0) < 0:
        raise DatasetError(f"{source}: the RLE counts do not cover its {height}×{width} mask")
    if (height, width) != tuple(size):
        raise DatasetError(f"{source}: RLE size {height}×{width} differs from the image's {size[0]}×{size[1]}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(width, height).T


def decode_rle_string(text: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string into run lengths.

    Each run length is written as a signed number in 5-bit groups, least significant first,
    one character (``chr(group + 48)``) per group; bit 0x20 of a character says another group
    follows and bit 0x10 of the last one is the sign. From the fourth run on, the number
    stored is the difference to the run two places earlier.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii")
    runs: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                raise DatasetError(f"truncated compressed RLE string {text!r}")
            group = ord(text[position]) - 48
            if not 0 <= group < 64:
                raise DatasetError(f"character {text[position]!r} cannot occur in a compressed RLE string")
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            shift += 5
            position += 1
            if not more and group & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs
