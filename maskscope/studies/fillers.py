"""The filler study (G-removal, Agarwal & Nguyen 2020, Table 1): how much of an object's class
evidence each way of removing it takes away, and how far the filled image moves from the photo.

Each object's region ``R`` (its annotated mask in the classifier's view, grown by ``dilate``
pixels) is filled by a filler ``f``: ``x̃ = m·x + (1 − m)·f(x, m)`` with ``m = 1 − R``. Per
filler and object the study records

* the classifier's probability of the object's class, ``Σ_{c ∈ C} p_c(x̃)`` over the classifier
  classes ``C`` that denote it (for coco128, ``imagenet_to_coco.json``: all 118 dog breeds for
  *dog*);
* whether the object is still recognised: a class of ``C`` is top-1 (top-5) of ``x̃``;
* MS-SSIM of ``x̃`` to the photo ``x`` (:func:`maskscope.metrics.ms_ssim.ms_ssim`; lower = more
  of the image changed).

The *real* row is the unfilled photo. The paper filled 1000 bird images for Inception-v3:
top-1 accuracy real 92.3%, blur 26.4%, gray 13.3%, inpainting 8.9%; MS-SSIM 1.000, 0.941,
0.731, 0.707 — inpainting removes the most class evidence.

Fillers (:func:`study_fillers`): ``blur[:σ]`` (σ = 10), ``mean`` (the classifier's mean colour),
``gray``, ``noise[:σ]`` (Gaussian noise of σ = 0.2 around the mean colour, replacing the object
rather than perturbing it) and the inpainters ``ns``, ``telea``, ``biharmonic``
(:mod:`maskscope.core.perturbation.inpainters`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from maskscope.bench.summary import mean_interval
from maskscope.core.model.classifier import Classifier
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Filler, Noise, blend
from maskscope.core.progress import progress_bar
from maskscope.data.dataset import Dataset, ground_truth
from maskscope.data.images import ImageLoadError, load_image
from maskscope.errors import MaskscopeValueError
from maskscope.metrics.ms_ssim import ms_ssim

DEFAULT_FILLERS = ("blur:10", "mean", "gray", "noise", "ns", "telea", "biharmonic")
#: the unfilled photo's row
REAL = "real"
MEASURES = ("probability", "top1", "top5", "ms_ssim")

#: G-removal Table 1 (1000 bird images, Inception-v3): top-1 accuracy and MS-SSIM per filler
PAPER_TABLE_1 = {
    REAL: {"top1": 0.923, "ms_ssim": 1.000},
    "blur": {"top1": 0.264, "ms_ssim": 0.941},
    "gray": {"top1": 0.133, "ms_ssim": 0.731},
    "inpaint": {"top1": 0.089, "ms_ssim": 0.707},
}


@dataclass
class StudyObject:
    """One object to fill.

    Attributes:
        name: unique name, ``<image>:<label>`` for dataset objects.
        image: the photo in the classifier's view, 3×H×W in [0, 1].
        region: the pixels to fill, H×W bool.
        classes: the classifier classes that denote the object.
        label: the dataset's name for it.
    """

    name: str
    image: torch.Tensor
    region: torch.Tensor
    classes: list[int]
    label: str


def study_fillers(specs: Sequence[str], mean_colour: torch.Tensor) -> dict[str, Filler]:
    """Fillers by spec; ``noise[:σ]`` is noise around the mean colour (see the module doc)."""
    fillers: dict[str, Filler] = {}
    for spec in specs:
        name, _, argument = spec.partition(":")
        if name.strip().lower() == "noise":
            fillers[spec] = Noise(float(argument) if argument else 0.2, centre=mean_colour.flatten().tolist())
        else:
            fillers[spec] = resolve_filler(spec, mean_colour)
    if REAL in fillers:
        raise MaskscopeValueError(f"{REAL!r} is the unfilled row, not a filler")
    return fillers


def classes_by_label(dataset: Dataset, class_names: Sequence[str]) -> dict[str, list[int]]:
    """Dataset label → the classifier classes that denote it (``dataset.label_of``)."""
    classes: dict[str, list[int]] = {}
    for index in range(len(class_names)):
        label = dataset.label_of(index, class_names)
        if label is not None:
            classes.setdefault(label, []).append(index)
    return classes


def dataset_objects(
    dataset: Dataset,
    classifier: Classifier,
    min_area: float = 0.05,
    max_area: float = 0.5,
    dilate: int = 2,
    recognised_only: bool = True,
    limit: int | None = None,
    progress: bool = True,
) -> tuple[list[StudyObject], dict[str, int]]:
    """The objects of a dataset with masks that the study fills, and how many each rule kept.

    An object is all instances of one label in one photo (filling one of two dogs leaves the
    class in the image). It is kept when its label denotes classifier classes, its mask covers
    ``min_area``–``max_area`` of the classifier's view (big enough to matter, with enough
    context left to paint from), and, with ``recognised_only``, one of those classes is in the
    classifier's top-5 on the unfilled photo (an object the model does not see has no evidence
    to remove). The region is the mask grown by ``dilate`` pixels (square neighbourhood), so
    the outline of an annotation traced slightly inside the object does not survive filling.
    Objects are taken in the dataset's order, at most ``limit`` of them.
    """
    by_label = classes_by_label(dataset, classifier.class_names)
    counts = {"photos": 0, "objects with mapped classes": 0, "in the area range": 0, "kept": 0, "unreadable": 0}
    objects: list[StudyObject] = []
    for sample in progress_bar(dataset, desc="objects", unit="photo", disable=not progress):
        if limit is not None and len(objects) >= limit:
            break
        if not sample.has_masks:
            continue
        masks = sample.read_masks()
        labels = [label for label in sorted(masks) if label in by_label and masks[label].any()]
        if not labels:
            continue
        try:
            photo = load_image(sample.path, name=sample.name)
        except ImageLoadError:
            counts["unreadable"] += 1
            continue
        counts["photos"] += 1
        image = classifier.view(photo)
        candidates = []
        for label in labels:
            counts["objects with mapped classes"] += 1
            region = grow(ground_truth(sample, label, classifier.view, (photo.shape[-2], photo.shape[-1]), "mask"), dilate)
            if min_area <= float(region.float().mean()) <= max_area:
                candidates.append(StudyObject(f"{sample.name}:{label}", image, region, by_label[label], label))
        counts["in the area range"] += len(candidates)
        if recognised_only and candidates:
            with torch.no_grad():
                top5 = set(classifier.probabilities(image[None].to(classifier.device)).topk(5, 1).indices[0].tolist())
            candidates = [c for c in candidates if top5 & set(c.classes)]
        objects += candidates[: None if limit is None else limit - len(objects)]
    counts["kept"] = len(objects)
    return objects, counts


def grow(region: torch.Tensor, pixels: int) -> torch.Tensor:
    """``region`` (H×W bool) dilated by a (2·pixels + 1)² square."""
    if pixels <= 0:
        return region
    grown = F.max_pool2d(region.float()[None, None], 2 * pixels + 1, stride=1, padding=pixels)
    return grown[0, 0] > 0


def fill_objects(
    classifier: Classifier,
    objects: Sequence[StudyObject],
    fillers: dict[str, Filler],
    images_per_batch: int = 8,
    scales: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Fill every object with every filler; per object a row of the measures per filler and ``real``.

    Args:
        images_per_batch: objects filled and scored together.
        scales: MS-SSIM scales (``None``: the most that fit, up to 5).
    """
    if not objects:
        raise MaskscopeValueError("the filler study has no objects to fill")
    rows = []
    bar = progress_bar(total=len(objects), desc="filler study", unit="object", disable=not progress)
    for start in range(0, len(objects), images_per_batch):
        chunk = objects[start : start + images_per_batch]
        images = torch.stack([o.image for o in chunk]).to(classifier.device)
        keep = 1 - torch.stack([o.region for o in chunk]).float()[:, None].to(images)
        versions = {REAL: images}
        for name, filler in fillers.items():
            versions[name] = blend(images, keep, filler(images, keep))
        measures = {name: _measures(classifier, images, filled, chunk, scales) for name, filled in versions.items()}
        for index, item in enumerate(chunk):
            rows.append({
                "object": item.name,
                "label": item.label,
                "area": round(float(item.region.float().mean()), 4),
                "classes": item.classes,
                "fillers": {name: {k: v[index] for k, v in values.items()} for name, values in measures.items()},
            })
        bar.update(len(chunk))
    bar.close()
    return rows


def _measures(classifier, originals, filled, objects, scales) -> dict[str, list[float]]:
    with torch.no_grad():
        probabilities = classifier.probabilities(filled).cpu()
    top5 = probabilities.topk(5, 1).indices.tolist()
    similarity = ms_ssim(filled.cpu(), originals.cpu(), scales).tolist()
    result: dict[str, list[float]] = {measure: [] for measure in MEASURES}
    for index, item in enumerate(objects):
        result["probability"].append(round(float(probabilities[index, item.classes].sum()), 6))
        result["top1"].append(float(top5[index][0] in item.classes))
        result["top5"].append(float(bool(set(top5[index]) & set(item.classes))))
        result["ms_ssim"].append(round(similarity[index], 6))
    return result


def summarise_fillers(rows: Sequence[dict]) -> list[dict]:
    """Per filler (``real`` first): mean and 95% bootstrap interval of each measure over the objects."""
    names = list(rows[0]["fillers"])
    table = []
    for name in names:
        entry = {"filler": name, "n": len(rows)}
        for measure in MEASURES:
            values = np.asarray([row["fillers"][name][measure] for row in rows], dtype=float)
            entry[measure] = mean_interval(values)
        table.append(entry)
    return table


def paired_differences(rows: Sequence[dict], baseline: str, measures: Sequence[str] = ("probability", "top1")) -> list[dict]:
    """Per filler other than ``baseline``: mean and 95% bootstrap interval of the per-object
    difference ``filler − baseline`` of each measure (negative: the filler removes more)."""
    if baseline not in rows[0]["fillers"]:
        raise MaskscopeValueError(f"{baseline!r} is not one of the study's fillers {list(rows[0]['fillers'])}")
    table = []
    for name in rows[0]["fillers"]:
        if name in (baseline, REAL):
            continue
        entry = {"filler": name, "baseline": baseline, "n": len(rows)}
        for measure in measures:
            values = np.asarray([row["fillers"][name][measure] - row["fillers"][baseline][measure] for row in rows])
            entry[measure] = mean_interval(values)
        table.append(entry)
    return table


def markdown_table(summary: Sequence[dict], differences: Sequence[Sequence[dict]] = ()) -> str:
    """The summary as a Markdown table: mean [95% bootstrap interval] per filler and measure."""
    header = ("| filler | p(object's class) ↓ | top-1 still recognised ↓ | top-5 still recognised ↓ "
              "| MS-SSIM to the photo |")
    lines = [header, "|---|---|---|---|---|"]
    for entry in summary:
        cells = [f"{entry[m]['mean']:.3f} [{entry[m]['low']:.3f}, {entry[m]['high']:.3f}]" for m in MEASURES]
        lines.append(f"| {entry['filler']} | " + " | ".join(cells) + " |")
    lines += ["", f"Mean [95% bootstrap interval, 1000 resamples] over {summary[0]['n']} objects; "
              "↓: lower = more of the object's class evidence removed."]
    for table in differences:
        baseline = table[0]["baseline"]
        lines += ["", f"| filler | Δ p(object's class) vs {baseline} | Δ top-1 still recognised vs {baseline} |",
                  "|---|---|---|"]
        for entry in table:
            cells = [f"{entry[m]['mean']:+.3f} [{entry[m]['low']:+.3f}, {entry[m]['high']:+.3f}]"
                     for m in ("probability", "top1")]
            lines.append(f"| {entry['filler']} | " + " | ".join(cells) + " |")
        lines += ["", f"Paired per object: filler − {baseline} (negative: the filler removes more)."]
    return "\n".join(lines) + "\n"


def write_outputs(out: str | os.PathLike, result: dict) -> tuple[Path, Path]:
    """``OUT/filler_study.json`` (configuration, selection, summary, paired differences, per-object
    rows) and ``OUT/filler_study.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out / "filler_study.json", out / "filler_study.md"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    markdown_path.write_text(markdown_table(result["summary"], result.get("paired_differences", ())))
    return json_path, markdown_path
