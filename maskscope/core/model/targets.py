"""Resolving target specifications into class indices per image.

A target may be given as ``"top1"``, ``"topk:K"``, ``"topk-sum:K"``, a class index, a class
name, or a list with one entry per image (each of these, or a set of indices and names).
:func:`resolve_targets` turns it into a list (one per image) of lists of class indices; a
set's scores are summed (``p · w`` with the multi-hot :func:`target_weights`).

A method makes one map per class set. ``"topk:K"`` asks for a map per class (as Captum's
``target`` does), so :func:`maps_per_class` splits an image's K classes into K maps, ranked
by score; ``"topk-sum:K"`` (and an explicit set) asks for one map of the K scores' sum.
"""

from __future__ import annotations

import re
from typing import Sequence, Union

import torch

from maskscope.core.model.classifier import Classifier, TargetError

TargetSpec = Union[str, int, Sequence]

#: ``top1``, ``top5``, ``topk:5`` (a map per class) and ``topk-sum:5`` (one map of their sum)
TOP_K = re.compile(r"top(?:k(?P<sum>-sum)?:)?(?P<k>[0-9]+)$")


def resolve_targets(spec: TargetSpec, classifier: Classifier, scores: torch.Tensor) -> list[list[int]]:
    """Class indices per image for ``spec``, given the classifier's scores B×C on the images."""
    batch = scores.shape[0]
    if isinstance(spec, str) and spec.lower().startswith("top"):
        k = _top_k(spec)
        if k > scores.shape[1]:
            raise TargetError(f"target {spec!r} asks for more classes than the classifier's {scores.shape[1]}")
        return scores.topk(k, dim=1).indices.tolist()
    if isinstance(spec, (str, int)) or not isinstance(spec, Sequence):
        return [[classifier.class_index(spec)] for _ in range(batch)]
    if len(spec) != batch:
        raise TargetError(f"got {len(spec)} targets for {batch} images")
    resolved = []
    for item, image_scores in zip(spec, scores):
        if isinstance(item, str) and item.lower().startswith("top"):
            resolved.append(image_scores.topk(_top_k(item)).indices.tolist())
        elif isinstance(item, (str, int)) or not isinstance(item, Sequence):
            resolved.append([classifier.class_index(item)])
        else:
            resolved.append([classifier.class_index(c) for c in item])
    return resolved


def target_weights(targets: list[list[int]], num_classes: int, device=None) -> torch.Tensor:
    """Multi-hot B×C matrix: the score of a target set is ``(p · w).sum(1)``."""
    weights = torch.zeros(len(targets), num_classes, device=device)
    for row, classes in enumerate(targets):
        weights[row, classes] = 1.0
    return weights


def maps_per_class(spec: TargetSpec, targets: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """(the image each map explains, the map's classes): an image with a ``"topk:K"`` target
    gets K maps of one class each, highest score first; any other target one map."""
    rows = map_rows(spec, len(targets))
    classes: list[list[int]] = []
    for image, chosen in enumerate(targets):
        classes += [[c] for c in chosen] if rows.count(image) > 1 else [chosen]
    return rows, classes


def map_rows(spec: TargetSpec, count: int) -> list[int]:
    """The image each map of ``count`` images explains: K rows for an image whose target is
    ``"topk:K"``, one for any other (so a caller can name, and draw, each map's photo)."""
    items = spec if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec] * count
    return [image for image, item in enumerate(items) for _ in range(_top_k(item) if _splits(item) else 1)]


def map_names(names: list[str], rows: list[int]) -> list[str]:
    """A name per map: its image's name, with ``_top1``, ``_top2``, … where an image has several maps."""
    counts = {row: rows.count(row) for row in rows}
    seen: dict[int, int] = {}
    named = []
    for row in rows:
        seen[row] = seen.get(row, 0) + 1
        named.append(names[row] if counts[row] == 1 else f"{names[row]}_top{seen[row]}")
    return named


def _splits(item) -> bool:
    """Whether the target ``item`` asks for a map per class (``topk:K``, ``topK``)."""
    if not isinstance(item, str):
        return False
    match = TOP_K.match(item.lower())
    return match is not None and not match.group("sum")


def _top_k(spec: str) -> int:
    text = spec.lower()
    if text in ("top", "topk"):
        return 1
    match = TOP_K.match(text)
    if match is None:
        raise TargetError(f"cannot read target {spec!r}; use top1, topk:K, an index or a class name")
    k = int(match.group("k"))
    if k < 1:
        raise TargetError(f"target {spec!r} asks for fewer than one class")
    return k
