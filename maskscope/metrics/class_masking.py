"""The class-specific masking table (Stalder et al., 2022): does class k's mask keep class t?

For every target class t, take the images that contain t; for each class k, binarise the
image's mask of class k at thresholds 0.1, 0.2, …, 0.9, feed ``(s_k > thr)·x`` to the
classifier (in its normalised space: removed pixels take its mean colour) and read the
softmax probability of t; average over the thresholds, then over the images. Row t, column k
of the table is that mean; the last column is the probability of t on the unmasked images.
A class-specific explainer gives a high diagonal (t's own mask keeps t) and a low
off-diagonal (other classes' masks do not).

Softmax probability: the softmax of the classifier's logits whatever its output kind (for
class groups, the group's summed softmax probability).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.perturbation.fillers import Constant
from maskscope.core.progress import progress_bar
from maskscope.core.scoring.perturbations import score_perturbations

THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 10))


@dataclass
class ClassMaskingTable:
    """Rows: target classes t; columns: the mask of each class k, then ``"unmasked"``.

    Attributes:
        values: C×(C+1) mean softmax probability of t (NaN for a class no image contains).
        counts: images containing each class (C).
        class_names: the C class names.
        thresholds: the binarisation thresholds.
    """

    values: torch.Tensor
    counts: torch.Tensor
    class_names: list[str]
    thresholds: tuple[float, ...]

    def diagonal(self) -> torch.Tensor:
        """``values[t, t]`` for every class (C)."""
        return self.values[:, :-1].diagonal()

    def off_diagonal(self) -> torch.Tensor:
        """Each row's mean over the masks of the other classes (C)."""
        masked = self.values[:, :-1]
        others = ~torch.eye(len(masked), dtype=torch.bool)
        return torch.stack([row[keep].mean() for row, keep in zip(masked, others)])

    def to_markdown(self, digits: int = 3) -> str:
        """The table as Markdown, rows and columns named by class."""
        header = "| target \\ mask | " + " | ".join(self.class_names) + " | unmasked | images |"
        lines = [header, "|" + "---|" * (len(self.class_names) + 3)]
        for name, row, count in zip(self.class_names, self.values.tolist(), self.counts.tolist()):
            cells = " | ".join("" if value != value else f"{value:.{digits}f}" for value in row)
            lines.append(f"| {name} | {cells} | {count} |")
        return "\n".join(lines)


def class_masking_table(
    classifier: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_masks: torch.Tensor,
    thresholds: tuple[float, ...] = THRESHOLDS,
    batch_size: int | None = None,
    progress: bool = False,
) -> ClassMaskingTable:
    """The class-specific masking table of class masks (see the module doc).

    Args:
        classifier: the model the masks explain (a grouped classifier for class groups).
        images: N×3×H×W in [0, 1], in the classifier's view.
        labels: N×C multi-hot: the classes each image contains.
        class_masks: N×C×H×W in [0, 1], every class's mask of every image (an explainer's
            ``Explanation.class_masks``).
        thresholds: where masks are binarised (``s > thr`` is kept).
        batch_size: masked images per forward pass (default: 8 on a CPU, 64 on a GPU).
    """
    count, classes = labels.shape
    if class_masks.shape[:2] != (count, classes) or class_masks.shape[-2:] != images.shape[-2:]:
        raise ValueError(
            f"class masks {tuple(class_masks.shape)} must be N×C×H×W for {count} images of "
            f"{tuple(images.shape[-2:])} and {classes} classes"
        )
    if classifier.num_classes != classes:
        raise ValueError(f"labels have {classes} classes, classifier {classifier.name} has {classifier.num_classes}")
    scorer = softmax_classifier(classifier)
    present = labels.bool()
    levels = torch.tensor(thresholds, dtype=class_masks.dtype).view(1, -1, 1, 1)
    totals = torch.zeros(classes, classes)
    with torch.no_grad():
        unmasked = scorer.probabilities(images).cpu()
    for index in progress_bar(range(count), desc="class masking", disable=not progress, leave=False):
        if not present[index].any():
            continue
        binary = (class_masks[index].cpu()[:, None] > levels).float().flatten(0, 1)  # (C·T)×H×W
        scores = score_perturbations(
            scorer, images[index : index + 1], binary[None], Constant(classifier.mean_colour), batch_size=batch_size
        )[0]
        mean_over_thresholds = scores.view(classes, len(thresholds), classes).mean(1).cpu()  # mask k × class t
        totals[present[index]] += mean_over_thresholds.T[present[index]]
    counts = present.sum(0)
    values = torch.full((classes, classes + 1), float("nan"))
    seen = counts > 0
    values[seen, :classes] = totals[seen] / counts[seen, None]
    values[seen, classes] = (unmasked * present).sum(0)[seen] / counts[seen]
    return ClassMaskingTable(values, counts, list(classifier.class_names), tuple(thresholds))


def softmax_classifier(classifier: Classifier) -> Classifier:
    """The classifier itself when its scores are softmax probabilities, else a copy that reads them."""
    if classifier.output == "softmax":
        return classifier
    softmax = copy.copy(classifier)
    softmax.output = "softmax"
    return softmax
