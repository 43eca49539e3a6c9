"""The ImageNet (ILSVRC 2012) validation layout: a folder of photos and one XML file per photo.

``annotations/<stem>.xml`` follows the PASCAL format with synsets as object names
(``<name>n01440764</name>``) and 0-based inclusive pixel coordinates, so a box covers
``[xmin, xmax + 1) × [ymin, ymax + 1)``. A class list maps synsets to class names and to the
classifier's class indices, in the standard order (synsets sorted): by default the 1000
ImageNet-1k classes this package ships; or a text file of ``synset name`` lines
(``LOC_synset_mapping.txt``); or a ``labels.csv`` with ``class_index,synset,name`` columns
(``shared/data/imagenet-samples/labels.csv``). Labels are class names and ``label_of(i)`` is
the i-th class name; a name that two classes share (ImageNet has two ``crane`` s and two
``maillot`` s) gets its synset appended, ``"crane (n02012849)"``, so labels stay distinct.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Sequence

from maskscope.data.dataset import Dataset, DatasetError, ObjectBox, Sample
from maskscope.data.images import IMAGE_SUFFIXES
from maskscope.data.pascal_xml import read_xml_annotation


class ImageNetVal(Dataset):
    """Read ImageNet validation photos (``images``, searched recursively) and their XML ``annotations``.

    Args:
        images: the photo folder.
        annotations: the folder of ``<stem>.xml`` files.
        classes: the class list (see the module doc); ``None``: the ImageNet-1k list.

    Raises:
        DatasetError: a missing folder, a photo without its XML file, or a synset that is
            not in the class list.
    """

    name = "imagenet-val"

    def __init__(
        self,
        images: str | os.PathLike,
        annotations: str | os.PathLike,
        classes: str | os.PathLike | None = None,
    ) -> None:
        self.images, self.annotations = Path(images), Path(annotations)
        for folder, what in ((self.images, "image"), (self.annotations, "annotation")):
            if not folder.is_dir():
                raise DatasetError(f"{folder}: {what} folder not found")
        synsets = read_synset_list(None if classes is None else Path(classes))
        self.synsets = list(synsets)
        files = sorted(p for p in self.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DatasetError(f"{self.images}: no images found")
        samples = [self._sample(path, synsets) for path in files]
        super().__init__(samples, list(synsets.values()))

    def label_of(self, class_index: int, classifier_names: Sequence[str]) -> str | None:
        """Class ``class_index`` of the class list (the classifier uses the same order)."""
        return self.class_names[class_index] if 0 <= class_index < len(self.class_names) else None

    def _sample(self, path: Path, synsets: dict[str, str]) -> Sample:
        xml = self.annotations / f"{path.stem}.xml"
        if not xml.is_file():
            raise DatasetError(f"{path}: no annotation {xml}")
        size, objects = read_xml_annotation(xml)
        boxes = []
        for item in objects:
            if item.name not in synsets:
                raise DatasetError(f"{xml}: synset {item.name!r} is not in the class list")
            label = synsets[item.name]
            boxes.append(ObjectBox(label, item.xmin, item.ymin, item.xmax + 1, item.ymax + 1, item.difficult))
        labels = sorted({box.label for box in boxes if not box.difficult})
        return Sample(path.stem, path, labels, boxes, size)


def read_synset_list(path: Path | None) -> dict[str, str]:
    """``{synset: class name}`` in class-index order, from a class-list file or the packaged list."""
    synsets = _read_synsets(path)
    counts = Counter(synsets.values())
    return {synset: name if counts[name] == 1 else f"{name} ({synset})" for synset, name in synsets.items()}


def _read_synsets(path: Path | None) -> dict[str, str]:
    if path is None:
        text = resources.files("maskscope.data").joinpath("imagenet_classes.txt").read_text()
        return _synset_lines(text, "the packaged ImageNet class list")
    if not path.is_file():
        raise DatasetError(f"{path}: class list not found")
    if path.suffix.lower() != ".csv":
        return _synset_lines(path.read_text(), str(path))
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"class_index", "synset", "name"} <= set(rows[0]):
        raise DatasetError(f"{path}: a class-list CSV needs 'class_index', 'synset' and 'name' columns")
    rows.sort(key=lambda row: int(row["class_index"]))
    if [int(row["class_index"]) for row in rows] != list(range(len(rows))):
        raise DatasetError(f"{path}: class_index must run 0, 1, … without gaps")
    return {row["synset"]: row["name"] for row in rows}


def _synset_lines(text: str, source: str) -> dict[str, str]:
    """``synset name…`` lines (tab- or space-separated); the name is the text before its first comma."""
    synsets: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            synset, _, rest = line.strip().partition("\t") if "\t" in line else line.strip().partition(" ")
            synsets[synset] = rest.split(",")[0].strip() or synset
    if not synsets:
        raise DatasetError(f"{source}: an empty class list")
    return synsets
