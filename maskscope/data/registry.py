"""Open a dataset by name or path: ``open_dataset("coco128")``, ``open_dataset("VOCdevkit")``.

Names of the shared sets (``imagenet-samples``, ``coco128``, or ``coco128:val2017`` for one
split) resolve under the data root:
``$MASKSCOPE_DATA``, else ``../shared/data`` from the current directory, else ``shared/data``
beside the project's folder. A path opens with the reader ``format`` names, or with the one
its contents suggest (:func:`detect_format`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from maskscope.data.coco128 import Coco128
from maskscope.data.coco_json import CocoJson
from maskscope.data.dataset import Dataset, DatasetError
from maskscope.data.folder import ImageFolder
from maskscope.data.imagenet_samples import ImageNetSamples
from maskscope.data.imagenet_val import ImageNetVal
from maskscope.data.voc import VOC, find_voc_root

NAMED: dict[str, Callable[..., Dataset]] = {"imagenet-samples": ImageNetSamples, "coco128": Coco128}
FORMATS = ("folder", "imagenet-val", "voc", "coco", "imagenet-samples", "coco128")


def open_dataset(
    spec: str | os.PathLike,
    *,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    **options: Any,
) -> Dataset:
    """The dataset ``spec`` names.

    Args:
        spec: ``"imagenet-samples"``, ``"coco128"``, ``"coco128:SPLIT"`` (``train2017`` or
            ``val2017``), or a path (a folder; a COCO ``.json`` file).
        format: the reader for a path: ``"folder"`` (:class:`ImageFolder`), ``"imagenet-val"``
            (:class:`ImageNetVal`, needs ``annotations=``), ``"voc"`` (:class:`VOC`),
            ``"coco"`` (:class:`CocoJson`, needs ``images=``), ``"imagenet-samples"`` or
            ``"coco128"``; ``None``: detected.
        root: the data root for the named sets (default: see the module doc).
        options: passed to the reader (``label_map=``, ``split=``, ``labels_csv=``, ``masks=``, …).

    Raises:
        DatasetError: an unknown name, a missing path, or a format that is not known.
    """
    if format is not None and format not in FORMATS:
        raise DatasetError(f"unknown dataset format {format!r}; known: {', '.join(FORMATS)}")
    name, colon, split = str(spec).partition(":")
    if format is None and name in NAMED:
        folder = data_root(root) / name
        if not folder.is_dir():
            raise DatasetError(f"{spec}: not found at {folder} (set MASKSCOPE_DATA to the folder holding it)")
        if colon:
            if name != "coco128":
                raise DatasetError(f"{spec}: only coco128 has splits (coco128:train2017, coco128:val2017)")
            options["split"] = split
        return NAMED[name](folder, **options)
    path = Path(spec)
    if not path.exists():
        raise DatasetError(f"{spec}: no such file or folder, and not a dataset name ({', '.join(NAMED)})")
    format = format or detect_format(path)
    if format in NAMED:
        return NAMED[format](path, **options)
    if format == "folder":
        return ImageFolder(path, **options)
    if format == "voc":
        return VOC(path, **options)
    if format == "imagenet-val":
        if "annotations" not in options:
            raise DatasetError(f"{path}: the imagenet-val format needs annotations=<folder of XML files>")
        return ImageNetVal(path, **options)
    if "images" not in options:
        raise DatasetError(f"{path}: the coco format needs images=<folder the JSON's file names are in>")
    return CocoJson(path, **options)


def detect_format(path: Path) -> str:
    """The reader a path looks like it needs: ``labels.csv`` → imagenet-samples, ``boxes.yaml`` →
    coco128, ``Annotations/`` + ``JPEGImages/`` (or a ``VOC20xx/`` holding them) → voc, a
    ``.json`` file → coco, any other folder → folder."""
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        raise DatasetError(f"{path}: a file opens only as a COCO .json annotation file")
    if (path / "labels.csv").is_file():
        return "imagenet-samples"
    if (path / "boxes.yaml").is_file():
        return "coco128"
    try:
        find_voc_root(path)
        return "voc"
    except DatasetError:
        return "folder"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where the shared sets are: ``root``, ``$MASKSCOPE_DATA``, ``../shared/data`` or the project's sibling."""
    if root is not None:
        return Path(root)
    if os.environ.get("MASKSCOPE_DATA"):
        return Path(os.environ["MASKSCOPE_DATA"])
    beside = Path.cwd().parent / "shared" / "data"
    if beside.is_dir():
        return beside
    return Path(__file__).resolve().parents[3] / "shared" / "data"
