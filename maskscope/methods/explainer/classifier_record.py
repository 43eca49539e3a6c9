"""What an explainer checkpoint remembers of its frozen classifier, and the check that it is the same one.

An explainer is only meaningful for the classifier it was trained against: the same weights,
fed the same way, explaining the same class list. The record keeps how the classifier was fed
(normalisation, output kind, view), its class names and class groups, a fingerprint of the
explained class list and the classifier's logits on a fixed probe image. :meth:`check`
compares a classifier with the record; :meth:`apply` feeds a loaded model the recorded way.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.grouped_classifier import GroupedClassifier
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeValueError

#: the probe logits may differ by this much (relative and absolute) between devices
PROBE_TOLERANCE = 1e-3


class CheckpointMismatch(MaskscopeValueError):
    """An explainer checkpoint does not belong to the classifier it is used with."""


def class_fingerprint(class_names: list[str]) -> str:
    """A short hash of a class list (order matters)."""
    return hashlib.sha256("\n".join(class_names).encode()).hexdigest()[:16]


def probe_image(size: int | tuple[int, int]) -> torch.Tensor:
    """The fixed probe image 1×3×size×size, or 1×3×height×width (uniform noise from seed 0)."""
    height, width = (size, size) if isinstance(size, int) else size
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))


@dataclass
class ClassifierRecord:
    """How a classifier was fed and what it answered on the probe image.

    Attributes:
        name: the classifier's name.
        mean, std, output, resize, crop: its normalisation, output kind and view.
        class_names: the underlying classifier's class names.
        groups: class groups explained instead of the classes (group → class indices), or None.
        probe_logits: the explained classifier's logits on :func:`probe_image` (C values).
    """

    name: str
    mean: list[float]
    std: list[float]
    output: str
    resize: int | tuple[int, int] | None
    crop: int | tuple[int, int]
    class_names: list[str]
    groups: dict[str, list[int]] | None
    probe_logits: list[float]

    @classmethod
    def of(cls, classifier: Classifier) -> "ClassifierRecord":
        """Record ``classifier`` (a :class:`GroupedClassifier` records its groups and base classifier)."""
        base = classifier.base if isinstance(classifier, GroupedClassifier) else classifier
        with torch.no_grad():
            probe = classifier.logits(probe_image(classifier.view.crop).to(classifier.device))
        return cls(
            name=base.name,
            mean=base.mean.flatten().tolist(),
            std=base.std.flatten().tolist(),
            output=base.output,
            resize=base.view.resize,
            crop=base.view.crop,
            class_names=list(base.class_names),
            groups=dict(classifier.groups) if isinstance(classifier, GroupedClassifier) else None,
            probe_logits=probe[0].float().cpu().tolist(),
        )

    @property
    def explained_classes(self) -> list[str]:
        """The classes the explainer has a mask for: the group names, or the class names."""
        return list(self.groups) if self.groups is not None else list(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, classifier: Classifier) -> Classifier:
        """The same model fed the recorded way (normalisation, output, view, class names, groups)."""
        fed = Classifier(
            classifier.model,
            mean=self.mean,
            std=self.std,
            output=self.output,
            class_names=self.class_names,
            view=ClassifierView(resize=self.resize, crop=self.crop),
            name=classifier.name,
            channels_last=classifier.channels_last,
            **classifier.engine_settings(),
        )
        return GroupedClassifier(fed, self.groups) if self.groups is not None else fed

    def check(self, classifier: Classifier) -> None:
        """Raise :class:`CheckpointMismatch` unless ``classifier`` explains the recorded classes with the recorded model."""
        expected, given = self.explained_classes, list(classifier.class_names)
        if given != expected:
            what = f"{len(self.groups)} class groups" if self.groups is not None else f"{len(expected)} classes"
            first = next((i for i, (a, b) in enumerate(zip(expected, given)) if a != b), min(len(expected), len(given)))
            raise CheckpointMismatch(
                f"the explainer was trained for {what} of classifier {self.name} (class list {class_fingerprint(expected)}); "
                f"classifier {classifier.name} has {len(given)} classes (class list {class_fingerprint(given)}), "
                f"first difference at class {first}"
            )
        with torch.no_grad():
            logits = classifier.logits(probe_image(self.crop).to(classifier.device))[0].float().cpu()
        recorded = torch.tensor(self.probe_logits)
        if not torch.allclose(logits, recorded, rtol=PROBE_TOLERANCE, atol=PROBE_TOLERANCE):
            difference = float((logits - recorded).abs().max())
            raise CheckpointMismatch(
                f"the explainer was trained for classifier {self.name}, but classifier {classifier.name} answers the "
                f"probe image differently (largest logit difference {difference:.3g}): another model, other weights "
                "or another normalisation"
            )
