"""A folder of photos with image-level labels from sub-folder names or from a CSV file.

Layouts:

* ``root/<label>/<photo>`` — the sub-folder names are the labels (one level deep); photos
  directly in ``root`` have no label;
* ``root/<photo>`` (and sub-folders) with ``labels_csv`` — a CSV with ``file,label`` columns,
  ``file`` relative to ``root``; a photo may have several labels, as repeated rows or as
  ``;``-separated names in one row. Photos the CSV does not list have no label.

Sample names are relative paths without the suffix (``cat/0001``), so they are unique. There
are no boxes or masks.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from maskscope.data.dataset import Dataset, DatasetError, Sample
from maskscope.data.images import IMAGE_SUFFIXES
from maskscope.data.label_map import read_label_map


class ImageFolder(Dataset):
    """Read the photos in ``root`` and one level of sub-folders.

    Args:
        root: the folder.
        labels_csv: a ``file,label`` CSV; without it, sub-folder names are the labels.
        label_map: a JSON ``{label: [classifier class indices]}`` used by ``label_of``; by
            default a classifier class denotes the label of the same name.
    """

    name = "folder"

    def __init__(
        self,
        root: str | os.PathLike,
        labels_csv: str | os.PathLike | None = None,
        label_map: str | os.PathLike | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: no such folder")
        files = sorted(
            path
            for path in [*self.root.iterdir(), *self.root.glob("*/*")]
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DatasetError(f"{self.root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
        relative = [path.relative_to(self.root).as_posix() for path in files]
        if labels_csv is None:
            table = {rel: [rel.split("/")[0]] for rel in relative if "/" in rel}
        else:
            table = read_labels_csv(Path(labels_csv), self.root, set(relative))
        samples = [
            Sample(rel.rsplit(".", 1)[0], path, table.get(rel, []))
            for rel, path in zip(relative, files)
        ]
        class_names = sorted({label for labels in table.values() for label in labels})
        super().__init__(samples, class_names)
        if label_map is not None:
            self.classifier_labels = read_label_map(label_map, class_names)


def read_labels_csv(path: Path, root: Path, files: set[str]) -> dict[str, list[str]]:
    """``{file relative to root: [labels]}`` from a ``file,label`` CSV (repeated rows and ``;`` lists merge)."""
    if not path.is_file():
        raise DatasetError(f"{path}: labels CSV not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"file", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: a labels CSV needs a header with 'file' and 'label' columns")
        table: dict[str, list[str]] = {}
        for line, row in enumerate(reader, start=2):
            name = Path(row["file"] or "").as_posix()
            if name not in files:
                raise DatasetError(f"{path}, line {line}: {row['file']!r} is not an image in {root}")
            labels = table.setdefault(name, [])
            for label in (row["label"] or "").split(";"):
                if label.strip() and label.strip() not in labels:
                    labels.append(label.strip())
    return table
