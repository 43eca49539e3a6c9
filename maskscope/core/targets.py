"""Resolving target specifications into class indices per image.

A target may be given as ``"top1"``, ``"topk:K"``, a class index, a class name, or a list
with one entry per image (each an index, a name, or a set of them). The result is always a
list (one per image) of lists of class indices; multi-class games sum the scores of a set.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch

from maskscope.core.classifier import Classifier, TargetError

TargetSpec = Union[str, int, Sequence]


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


def _top_k(spec: str) -> int:
    text = spec.lower().replace("topk", "top").replace(":", "")
    try:
        k = int(text[3:]) if len(text) > 3 else 1
    except ValueError:
        raise TargetError(f"cannot read target {spec!r}; use top1, topk:K, an index or a class name") from None
    if k < 1:
        raise TargetError(f"target {spec!r} asks for fewer than one class")
    return k
