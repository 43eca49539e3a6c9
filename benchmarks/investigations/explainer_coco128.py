"""The learned explainer on real photos: coco128 semantic masks and the pointing game, next to MP, RISE and Grad-CAM.

An explainer trained for the default model (EfficientNet-Lite0) with COCO-category groups
(``maskscope train-explainer --groups coco``: each of the 57 COCO categories that have
ImageNet classes is the set of those classes, scored by their summed probability) is
evaluated on the photos of one coco128 split that have a semantic mask. Each photo is
explained for one category: of the categories annotated in it, the one the model gives the
highest group probability. Every method explains that group on the grouped classifier:

* the explainer — that category's mask from its single forward pass (all 57 are computed);
* MP (deletion game, 28×28 mask, blur σ 10, ``--mp-steps`` Adam steps; its saliency ``1 − up(m)``);
* RISE (``--rise-masks`` masks) and Grad-CAM (their maps scaled to [0, 1] by their maximum).

A run with ``--methods`` naming some of them keeps the other methods' figures in ``--out`` when
that file holds the same photos and targets (to score a newly trained explainer alone).

Scores per photo, against the category's pixels in the semantic mask (in the 224-px view):
the pointing game (maximum within 15 px), with the centre point beside it, and the
segmentation scores Acc / IoU / Sal / MAE of the soft map, with the all-0, all-0.5, all-1 and
ground-truth rows; means with 95% bootstrap intervals, seconds per photo.

    maskscope train-explainer --data imagenet-samples+coco128:train2017 --groups coco \\
        --drop-unknown-labels --network classifier-features --out runs/explainer_coco
    python benchmarks/investigations/explainer_coco128.py --checkpoint runs/explainer_coco/best.pt --split val2017 \\
        --out benchmarks/results/investigations/explainer_coco128.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from maskscope import Classifier, load_image
from maskscope.bench.summary import bootstrap
from maskscope.data.dataset import ground_truth
from maskscope.data.registry import open_dataset
from maskscope.methods import RISE, GradCAM, MeaningfulPerturbation
from maskscope.methods.explainer import Explainer, classifier_for_checkpoint
from maskscope.metrics import pointing_game
from maskscope.metrics.segmentation import sanity_rows, segmentation_scores

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record
from benchmarks.investigations.explainer_synthetic import to_unit_range


def photos_and_targets(grouped: Classifier, split: str, limit: int | None):
    """Names, images (N×3×224×224), target groups and the target's semantic mask of each usable photo."""
    names, images, targets, masks = [], [], [], []
    for sample in open_dataset(f"coco128:{split}", masks="semantic"):
        present = [label for label in sample.labels if label in grouped.class_names]
        if not sample.has_masks or not present:
            continue
        photo = load_image(sample.path, name=sample.name)
        image = grouped.view(photo)
        regions = {label: ground_truth(sample, label, grouped.view, tuple(photo.shape[-2:]), "mask") for label in present}
        present = [label for label in present if regions[label].any()]
        if not present:
            continue
        with torch.no_grad():
            probabilities = grouped.probabilities(image[None])[0]
        label = max(present, key=lambda name: float(probabilities[grouped.class_index(name)]))
        names.append(sample.name)
        images.append(image)
        targets.append(grouped.class_index(label))
        masks.append(regions[label])
        if limit is not None and len(names) == limit:
            break
    return names, torch.stack(images), targets, torch.stack(masks)


def explain_all(method, classifier, images, targets, batch_size: int) -> tuple[torch.Tensor, float]:
    """Saliency maps of every photo for its target, and seconds per photo."""
    maps, started = [], time.perf_counter()
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        maps.append(method(classifier, images[chunk], targets[chunk], seed=0).saliency)
    return torch.cat(maps), (time.perf_counter() - started) / len(images)


def interval(values: torch.Tensor) -> dict:
    array = values.float().numpy()
    low, high = bootstrap(array)
    return {"mean": float(array.mean()), "low": low, "high": high}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="an explainer trained with --groups coco")
    parser.add_argument("--split", default="val2017", help="the coco128 split to evaluate on (default: %(default)s)")
    parser.add_argument("--images", type=int, help="at most N photos (default: all with a semantic mask)")
    parser.add_argument("--methods", default="explainer,gradcam,rise,mp", help="comma-separated (default: %(default)s)")
    parser.add_argument("--mp-steps", type=int, default=100)
    parser.add_argument("--rise-masks", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4, help="photos per method call (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/explainer_coco128.json"))
    args = parser.parse_args()
    grouped = classifier_for_checkpoint(args.checkpoint, Classifier.default())
    names, images, targets, objects = photos_and_targets(grouped, args.split, args.images)
    print(f"{len(names)} photos of coco128:{args.split}", flush=True)
    methods = {
        "explainer": (Explainer(args.checkpoint), True),
        "gradcam": (GradCAM(), False),
        "rise": (RISE(samples=args.rise_masks), False),
        "mp": (MeaningfulPerturbation(steps=args.mp_steps), True),
    }
    record = {
        "machine": machine(), "checkpoint": str(args.checkpoint), "split": args.split, "photos": names,
        "targets": [grouped.class_names[t] for t in targets], "settings": vars(args) | {"checkpoint": str(args.checkpoint),
                                                                                           "out": str(args.out)},
        "sanity": sanity_rows(objects, grouped, images, targets), "methods": {}, "per_photo": {},
    }  # fmt: skip
    earlier = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if earlier.get("photos") == record["photos"] and earlier.get("targets") == record["targets"]:
        record["methods"], record["per_photo"] = earlier["methods"], earlier["per_photo"]  # re-run only --methods
    for name in args.methods.split(","):
        method, is_mask = methods[name]
        print(f"explaining with {name}", flush=True)
        saliency, seconds = explain_all(method, grouped, images, targets, args.batch_size)
        maps = saliency if is_mask else to_unit_range(saliency)
        pointing = pointing_game(saliency, objects, classes=targets)
        scores = segmentation_scores(maps, objects, classifier=grouped, images=images, target=targets)
        record["methods"][name] = {
            "seconds_per_image": seconds,
            "pointing": interval(pointing.hits), "pointing_per_class": pointing.accuracy,
            "centre_point": interval(pointing.centre_hits),
            **{score: interval(getattr(scores, score)) for score in ("acc", "iou", "sal", "mae")},
        }  # fmt: skip
        record["per_photo"][name] = {"hit": pointing.hits.tolist(), "iou": scores.iou.tolist()}
    shown = {name: {key: (round(value["mean"], 3) if isinstance(value, dict) else value) for key, value in entry.items()}
             for name, entry in record["methods"].items()}  # fmt: skip
    write_record(args.out, record, shown={"photos": len(names), **shown, "sanity": record["sanity"]})


if __name__ == "__main__":
    main()
