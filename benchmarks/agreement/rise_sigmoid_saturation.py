"""Why TorchRay's ``rise``, called as its users call it, does not agree with RISE on this model:
it scores each masked image by the sigmoid of the model's output, and on a softmax
classifier's logits that sigmoid is saturated.

For the first imagenet-samples photos, the first 64 masks ``RISE`` draws (7×7 cells, keep 0.5,
seed 0) are applied as TorchRay applies them (the normalised image times the mask) and the script reports
the top class's logit, the share of masked images whose sigmoid exceeds 0.99, and the median
softmax probability (what maskscope's RISE weighs the masks by)::

    python benchmarks/agreement/rise_sigmoid_saturation.py --images 4 \\
        --out benchmarks/results/agreement/rise_sigmoid_saturation.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from maskscope import Classifier

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.agreement.rise_vs_torchray import seeded_masks
from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--masks", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/rise_sigmoid_saturation.json"))
    args = parser.parse_args()
    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    masks = seeded_masks(args.masks, tuple(images.shape[-2:]))
    photos = {}
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1)
        for index, name in enumerate(names):
            outputs = classifier.model(classifier.normalise(images[index:index + 1]) * masks)
            logits = outputs[:, targets[index]]
            photos[name] = {
                "logit_min": float(logits.min()), "logit_median": float(logits.median()),
                "sigmoid_above_0.99": float((torch.sigmoid(logits) > 0.99).float().mean()),
                "softmax_median": float(outputs.softmax(1)[:, targets[index]].median()),
            }
    record = {"masks": args.masks, "photos": photos, **machine()}
    write_record(args.out, record)


if __name__ == "__main__":
    main()
