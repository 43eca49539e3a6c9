"""Label-map files: which classifier classes denote which dataset label.

A label map is a JSON object ``{dataset label: [classifier class indices]}``, the format of
``coco128/imagenet_to_coco.json`` (for example ``"dog": [151, …, 268]``). It lets an ImageNet
classifier be scored against the objects of a dataset with other class names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from maskscope.core.json_files import read_json_object
from maskscope.data.dataset import DatasetError


def read_label_map(path: str | os.PathLike, class_names: Sequence[str]) -> dict[int, str]:
    """Read a label map into ``{classifier class index: dataset label}``.

    Raises:
        DatasetError: the file is missing or not such a JSON object, a label is not one of
            ``class_names``, or a class index is mapped to two labels.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: label map not found")
    mapping = read_json_object(path, DatasetError, "a label map, a JSON object {label: [class indices]}")
    known = set(class_names)
    result: dict[int, str] = {}
    for label, indices in mapping.items():
        if label not in known:
            raise DatasetError(f"{path}: {label!r} is not a class of the dataset")
        if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
            raise DatasetError(f"{path}: the classes of {label!r} must be a list of integer indices")
        for index in indices:
            if result.setdefault(index, label) != label:
                raise DatasetError(f"{path}: class {index} is mapped to both {result[index]!r} and {label!r}")
    return result
