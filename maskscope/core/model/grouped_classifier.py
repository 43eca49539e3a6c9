"""A classifier of groups of another classifier's classes: the 80 COCO categories of an ImageNet model.

A group ``g`` is a set of the classifier's classes; its probability is the summed softmax
probability of its members, ``s_g(x) = Σ_{c∈g} p_c(x)``. :class:`GroupedClassifier` makes
a frozen classifier look like a classifier of its G groups to everything that reads it (the
explainer's loss, the methods, the metrics): its scores and probabilities are ``s_g``, and its
logits are ``log s_g`` (computed as a log-sum-exp of the member log-probabilities, so tiny
groups stay finite). A group's probability is a true probability of a single-label model;
``1 − Σ_g s_g`` is the mass of the classes in no group.

``../shared/data/coco128/imagenet_to_coco.json`` maps COCO class names to the ImageNet classes
that denote them (57 of the 80 categories have at least one); :func:`read_groups` reads such
a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import torch

from maskscope.core.json_files import read_json_object
from maskscope.core.model.classifier import Classifier
from maskscope.errors import MaskscopeValueError, MissingFileError


class GroupedClassifier(Classifier):
    """A classifier whose classes are groups of another classifier's classes.

    Args:
        classifier: the frozen classifier (softmax or logits output: groups sum softmax
            probabilities, which a multi-label sigmoid model does not have).
        groups: group name → member classes (indices or names of ``classifier``'s classes),
            in the order the groups should have.
    """

    def __init__(self, classifier: Classifier, groups: Mapping[str, Sequence[int | str]]) -> None:
        if classifier.output == "sigmoid":
            raise MaskscopeValueError(
                f"classifier {classifier.name} is multi-label (sigmoid): class groups sum softmax probabilities"
            )
        if not groups:
            raise MaskscopeValueError("no class groups given")
        members = {name: sorted({classifier.class_index(c) for c in classes}) for name, classes in groups.items()}
        empty = [name for name, classes in members.items() if not classes]
        if empty:
            raise MaskscopeValueError(f"class groups with no member class: {', '.join(empty)}")
        super().__init__(
            classifier.model,
            mean=classifier.mean.flatten().tolist(),
            std=classifier.std.flatten().tolist(),
            output="softmax",
            class_names=list(members),
            view=classifier.view,
            name=f"{classifier.name}[{len(members)} groups]",
        )
        self.base = classifier
        self.groups = members
        membership = torch.full((len(members), classifier.num_classes), float("-inf"))
        for row, classes in enumerate(members.values()):
            membership[row, classes] = 0.0
        self._log_membership = membership

    def group_of(self, class_index: int) -> int | None:
        """The first group holding a class of the underlying classifier, or ``None``."""
        for row, classes in enumerate(self.groups.values()):
            if class_index in classes:
                return row
        return None

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """``log s_g`` for pixel-space images B×3×H×W (B×G)."""
        log_p = self.base.logits(images).log_softmax(dim=1)
        membership = self._log_membership.to(log_p)
        return torch.logsumexp(log_p[:, None, :] + membership[None], dim=2)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """Summed probabilities ``s_g`` (B×G)."""
        return self.logits(images).exp()

    __call__ = scores
    probabilities = scores

    def engine_record(self) -> dict:
        return self.base.engine_record()

    def __repr__(self) -> str:
        return f"GroupedClassifier({self.base.name}, {len(self.groups)} groups)"


def read_groups(path: str | os.PathLike) -> dict[str, list[int]]:
    """Groups from a JSON file ``{group name: [class indices or names]}`` (e.g. ``imagenet_to_coco.json``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such class-groups file")
    expected = "a JSON object mapping group names to lists of classes"
    groups = read_json_object(path, MaskscopeValueError, expected)
    if not all(isinstance(v, list) for v in groups.values()):
        raise MaskscopeValueError(f"{path}: expected {expected}")
    return groups
