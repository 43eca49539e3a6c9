"""Why TorchRay's ``rise``, called as its users call it, does not agree with RISE on this model:
it scores each masked image by the sigmoid of the model's output, and on a softmax
classifier's logits that sigmoid is saturated.

For the first imagenet-samples photos, 64 RISE masks (7×7 cells, keep 0.5, bilinear) are
applied as TorchRay applies them (the normalised image times the mask) and the script reports
the top class's logit, the share of masked images whose sigmoid exceeds 0.99, and the median
softmax probability (what maskscope's RISE weighs the masks by)::

    python benchmarks/rise_sigmoid_saturation.py --images 4 --out benchmarks/results/rise_sigmoid_saturation.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from photos import imagenet_photos
from records import machine, write_record

from maskscope import Classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--masks", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rise_sigmoid_saturation.json"))
    args = parser.parse_args()
    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    generator = torch.Generator().manual_seed(0)
    grid = (torch.rand(args.masks, 1, 7, 7, generator=generator) < 0.5).float()
    masks = F.interpolate(grid, size=images.shape[-2:], mode="bilinear")
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
