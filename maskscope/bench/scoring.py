"""Score a batch of saliency maps by one metric; one result (values or a skip reason) per image.

Metric specs: ``deletion:<protocol>`` and ``insertion:<protocol>`` (AUC and the curve;
protocols of :mod:`maskscope.metrics.deletion_insertion`; a bare ``deletion`` or ``insertion``
takes :data:`DEFAULT_PROTOCOL`, the metric functions' default), ``pointing`` (hit within 15 px
of the target's masks, else boxes, and the centre-point baseline's hit), ``weak_localisation``
(best box IoU for every threshold rule over its α sweep), ``segmentation`` (Acc, IoU,
MAE of the min–max normalised map against the object masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from maskscope.data.dataset import DatasetError, Sample, boxes_in_view, ground_truth
from maskscope.errors import MaskscopeValueError
from maskscope.metrics import PROTOCOLS, deletion, insertion, pointing_game, segmentation_scores, weak_localisation
from maskscope.metrics.weak_localisation import DEFAULT_ALPHAS

#: α sweeps of the weak-localisation thresholds (they include MP's α*: mean 1.0, value 0.25, energy 0.90;
#: ``max`` is the G-removal protocol's h ≥ α·max, α = 0, 0.05, …, 0.95).
ALPHAS = {
    "mean": [round(0.25 * i, 2) for i in range(13)],
    "value": [round(0.05 * i, 2) for i in range(20)],
    "energy": [round(0.05 * i, 2) for i in range(1, 21)],
    "max": list(DEFAULT_ALPHAS),
}
NEEDS_OBJECTS = ("pointing", "weak_localisation", "segmentation")
#: the protocol of a bare ``deletion`` or ``insertion`` (that of :func:`maskscope.metrics.deletion`)
DEFAULT_PROTOCOL = "rise"


@dataclass
class Item:
    """One image being scored: its annotations, photo size, target class, the target's label in
    the dataset (``None`` when the class denotes none) and the class's name in the classifier."""

    sample: Sample
    size: tuple[int, int]
    target: int
    label: str | None
    class_name: str | None = None


def with_default_protocol(spec: str) -> str:
    """``deletion`` and ``insertion`` with :data:`DEFAULT_PROTOCOL` named; any other spec as it is."""
    return f"{spec}:{DEFAULT_PROTOCOL}" if spec in ("deletion", "insertion") else spec


def check_metric(spec: str) -> str:
    """``spec`` (a bare deletion or insertion with its default protocol) if it names a metric,
    else MaskscopeValueError listing the choices."""
    kind, _, protocol = with_default_protocol(spec).partition(":")
    if kind in ("deletion", "insertion") and protocol in PROTOCOLS:
        return f"{kind}:{protocol}"
    if kind in NEEDS_OBJECTS and not protocol:
        return spec
    choices = [f"{k}:{p}" for k in ("deletion", "insertion") for p in PROTOCOLS] + list(NEEDS_OBJECTS)
    choices[:0] = [f"deletion (= deletion:{DEFAULT_PROTOCOL})", "insertion"]
    raise MaskscopeValueError(f"unknown metric {spec!r}; choices: {', '.join(choices)}")


def score(spec: str, classifier, images: torch.Tensor, maps: torch.Tensor, items: list[Item], batch_size: int | None = None):
    """Values (dict) or a skip reason (str) per image, for the batch ``images``/``maps`` B×…"""
    kind, _, protocol = spec.partition(":")
    if kind in ("deletion", "insertion"):
        function = deletion if kind == "deletion" else insertion
        targets = [item.target for item in items]
        curves = function(classifier, images, maps, target=targets, protocol=protocol, batch_size=batch_size)
        fractions = [round(float(f), 6) for f in curves.fractions]
        return [
            {"auc": float(auc), "fractions": fractions, "scores": [round(float(s), 6) for s in row]}
            for auc, row in zip(curves.auc, curves.scores)
        ]
    results: list = [None] * len(items)
    truths = {}
    crop = maps.shape[-1]
    for index, item in enumerate(items):
        try:
            if item.label is None:
                raise DatasetError(f"{item.sample.name}: the target class denotes no label of the dataset")
            if kind == "weak_localisation":
                boxes = boxes_in_view(item.sample.boxes, item.label, classifier.view, item.size)
                if len(boxes) == 0:
                    raise DatasetError(f"{item.sample.name}: no box of {item.label!r} inside the classifier's view")
                truths[index] = boxes
            elif kind == "segmentation":
                if not item.sample.has_masks:
                    raise DatasetError(f"{item.sample.name}: no object masks")
                truths[index] = ground_truth(item.sample, item.label, classifier.view, item.size, "mask")
            else:
                truths[index] = ground_truth(item.sample, item.label, classifier.view, item.size, "auto")
        except DatasetError as error:
            results[index] = f"no ground truth: {error}"
    chosen = sorted(truths)
    if not chosen:
        return results
    subset = maps[chosen].float().cpu()
    if kind == "pointing":
        found = pointing_game(subset, torch.stack([truths[i].cpu() for i in chosen]).reshape(-1, crop, crop))
        for position, index in enumerate(chosen):
            results[index] = {"hit": float(found.hits[position]), "centre_hit": float(found.centre_hits[position])}
    elif kind == "weak_localisation":
        ious = {
            method: torch.stack(
                [weak_localisation(subset, [truths[i] for i in chosen], method, alpha).iou for alpha in alphas], 1
            )
            for method, alphas in ALPHAS.items()
        }
        for position, index in enumerate(chosen):
            results[index] = {
                "alphas": ALPHAS,
                "ious": {method: [round(float(v), 6) for v in values[position]] for method, values in ious.items()},
            }
    else:
        low = subset.flatten(1).min(1).values[:, None, None]
        high = subset.flatten(1).max(1).values[:, None, None]
        normalised = (subset - low) / (high - low).clamp_min(1e-12)
        segmented = segmentation_scores(normalised, torch.stack([truths[i].cpu() for i in chosen]))
        for position, index in enumerate(chosen):
            results[index] = {
                "acc": float(segmented.acc[position]),
                "iou": float(segmented.iou[position]),
                "mae": float(segmented.mae[position]),
            }
    return results
