"""``../shared/data/imagenet-samples``: one photo per ImageNet-1k class.

``labels.csv`` has ``file,class_index,synset,name``; the label of each photo is its ImageNet
class name, so ``label_of`` is the identity on class indices. There are no boxes or masks.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

from maskscope.data.dataset import Dataset, DatasetError, Sample


class ImageNetSamples(Dataset):
    """Read the imagenet-samples folder at ``root``."""

    name = "imagenet-samples"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        table = self.root / "labels.csv"
        if not table.is_file():
            raise DatasetError(f"{self.root}: not an imagenet-samples folder (no labels.csv)")
        with table.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        self.class_indices = {row["name"]: int(row["class_index"]) for row in rows}
        names = [row["name"] for row in sorted(rows, key=lambda row: int(row["class_index"]))]
        samples = [Sample(Path(row["file"]).stem, self.root / row["file"], [row["name"]]) for row in rows]
        super().__init__(samples, names)

    def label_of(self, class_index: int, classifier_names: Sequence[str]) -> str | None:
        """ImageNet class ``class_index`` is the label of the same index."""
        return self.class_names[class_index] if 0 <= class_index < len(self.class_names) else None
