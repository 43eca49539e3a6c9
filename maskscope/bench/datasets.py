"""``--data`` for benchmarks: a dataset name under ``$MASKSCOPE_DATA`` (or ``../shared/data``), or a folder."""

from __future__ import annotations

import os
from pathlib import Path

from maskscope.data.dataset import Dataset, DatasetError


def open_dataset(spec: str) -> Dataset:
    """``imagenet-samples``, ``coco128`` or a folder of either kind (``labels.csv`` → imagenet-samples)."""
    from maskscope.data.coco128 import Coco128
    from maskscope.data.imagenet_samples import ImageNetSamples

    readers = {"imagenet-samples": ImageNetSamples, "coco128": Coco128}
    if spec in readers:
        root = Path(os.environ.get("MASKSCOPE_DATA", Path.cwd().parent / "shared" / "data")) / spec
        return readers[spec](root)
    path = Path(spec)
    if not path.is_dir():
        raise DatasetError(f"unknown dataset {spec!r}: use {', '.join(readers)} or a dataset folder")
    if (path / "labels.csv").is_file():
        return ImageNetSamples(path)
    return Coco128(path)
