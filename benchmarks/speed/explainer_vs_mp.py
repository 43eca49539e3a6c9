"""The learned explainer's inference time (every class mask of an image) against MP's time for one class.

The paper's claim: a trained explainer gives all class masks in one forward pass, orders of
magnitude faster than an optimisation per image and class. This script times, on this
machine and the default model (EfficientNet-Lite0), the first N imagenet-samples photos:

* the explainer of ``--checkpoint`` (any explainer trained for the default model, e.g. with
  COCO-category groups: timing does not depend on how well it was trained), network only —
  all C class masks per image, ``--batch-size`` images per forward pass — and the whole
  ``explain()`` call (which adds the classifier's pass for the targets and one for the
  masked image's score);
* MP with its paper defaults (deletion game, 28×28 mask, 300 Adam steps, blur σ 10)
  explaining the top-1 class, ``--mp-batch`` photos per call, on the first ``--mp-images``.

The explainer's network is loaded (and its classifier checked) before the clock starts.
Writes JSON with seconds per image and the ratio.

    maskscope train-explainer --data coco128 --groups coco --drop-unknown-labels --epochs 3 \\
        --out runs/explainer_coco128
    python benchmarks/speed/explainer_vs_mp.py --checkpoint runs/explainer_coco128/best.pt \\
        --out benchmarks/results/speed/explainer_vs_mp.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from maskscope import Classifier
from maskscope.methods import MeaningfulPerturbation
from maskscope.methods.explainer import Explainer, classifier_for_checkpoint, load_checkpoint

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def seconds_per_image(run, images: torch.Tensor, batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(images), batch_size):
        run(images[start : start + batch_size])
    return (time.perf_counter() - started) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="an explainer trained for the default model")
    parser.add_argument("--images", type=int, default=32, help="photos the explainer explains")
    parser.add_argument("--batch-size", type=int, default=8, help="images per explainer pass")
    parser.add_argument("--mp-images", type=int, default=4, help="photos MP explains")
    parser.add_argument("--mp-batch", type=int, default=4, help="photos per MP call")
    parser.add_argument("--mp-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/explainer_vs_mp.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = Classifier.default()
    classifier = classifier_for_checkpoint(args.checkpoint, base)
    _, photos = imagenet_photos(base, args.images)
    explainer = Explainer(args.checkpoint, batch_size=args.batch_size)
    with torch.no_grad():
        explainer.class_masks(classifier, photos[:1])  # loads and checks the network
        masks_only = seconds_per_image(lambda batch: explainer.class_masks(classifier, batch), photos, args.batch_size)
        whole_call = seconds_per_image(lambda batch: explainer(classifier, batch, "top1"), photos, args.batch_size)
    mp = MeaningfulPerturbation(steps=args.mp_steps)
    mp_seconds = seconds_per_image(lambda batch: mp(base, batch, "top1"), photos[: args.mp_images], args.mp_batch)
    checkpoint = load_checkpoint(args.checkpoint)
    record = {
        "machine": machine(),
        "model": base.name,
        "explainer": {
            "checkpoint": str(args.checkpoint),
            "network": checkpoint["network"]["name"],
            "classes": checkpoint["network"]["num_classes"],
            "images": args.images,
            "batch_size": args.batch_size,
            "seconds_per_image_all_class_masks": masks_only,
            "seconds_per_image_explain_call": whole_call,
        },
        "mp": {"images": args.mp_images, "batch_size": args.mp_batch, "steps": args.mp_steps,
               "seconds_per_image_one_class": mp_seconds},  # fmt: skip
        "mp_over_explainer": mp_seconds / masks_only,
        "mp_over_explainer_call": mp_seconds / whole_call,
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
