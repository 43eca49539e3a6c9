"""Extremal Perturbation: maskscope's batched `ep` against TorchRay's `extremal_perturbation`.

Both explain the top-1 class of the same imagenet-samples photos with the default model, at
the same areas and the same number of iterations, one after the other in this process:
TorchRay one photo per call (its interface), maskscope ``--batch-size`` photos per call with
all (photo, area) masks in one batch. Reported: seconds per photo of each and their ratio,
and how alike the two summary maps are (Spearman correlation of the sum of the area masks,
and the share of photos whose maxima lie within 15 px of each other). ``--variant adam``
runs :meth:`ExtremalPerturbation.adam_variant` (the project's earlier EP, recorded in
``ep_vs_torchray/adam_variant.json``) instead of the defaults.

TorchRay needs torchvision, which does not import beside the project's CPU torch, so run this
in a separate environment::

    python3 -m venv /tmp/torchray && . /tmp/torchray/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1 && pip install torchray && pip install -e .
    python benchmarks/agreement/ep_vs_torchray.py --images 16 --steps 100 --out benchmarks/results/agreement/ep_vs_torchray.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maskscope import Classifier
from maskscope.methods import ExtremalPerturbation
from maskscope.metrics import spearman

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.map_agreement import peaks
from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

try:
    from torchray.attribution.extremal_perturbation import extremal_perturbation
except ImportError as error:  # pragma: no cover - a benchmark-only dependency
    raise SystemExit(f"this benchmark needs TorchRay ({error}); see the set-up in its docstring") from error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100, help="iterations of both (the paper: 800)")
    parser.add_argument("--areas", default="0.05,0.1,0.2")
    parser.add_argument("--batch-size", type=int, default=4, help="photos per maskscope call")
    parser.add_argument("--variant", choices=("authors", "adam"), default="authors", help="maskscope's EP variant")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/ep_vs_torchray.json"))
    args = parser.parse_args()
    areas = [float(value) for value in args.areas.split(",")]

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    make = ExtremalPerturbation.adam_variant if args.variant == "adam" else ExtremalPerturbation
    method = make(areas=areas, steps=args.steps)
    method(classifier, images[:1], target=targets[:1])  # warm-up

    started = time.perf_counter()
    ours = []
    for start in range(0, len(images), args.batch_size):
        chunk = slice(start, start + args.batch_size)
        ours.append(method(classifier, images[chunk], target=targets[chunk]).saliency)
    ours_seconds = (time.perf_counter() - started) / len(images)
    ours = torch.cat(ours)

    # TorchRay takes the model's own input: the normalised image
    model = classifier.model
    started = time.perf_counter()
    theirs = []
    for image, target in zip(images, targets):
        masks, _ = extremal_perturbation(
            model, classifier.normalise(image[None]), target, areas=areas, max_iter=args.steps
        )
        theirs.append(masks.detach().sum(0)[0])
    theirs_seconds = (time.perf_counter() - started) / len(images)
    theirs = F.interpolate(torch.stack(theirs)[:, None], size=ours.shape[-2:], mode="bilinear")[:, 0]

    correlation = spearman(ours, theirs).numpy()
    distance = (peaks(ours) - peaks(theirs)).float().norm(dim=1).numpy()
    near = distance <= 15
    record = {
        "images": names,
        "areas": areas,
        "steps": args.steps,
        "variant": args.variant,
        "batch_size": args.batch_size,
        "maskscope_seconds_per_image": ours_seconds,
        "torchray_seconds_per_image": theirs_seconds,
        "speed_ratio_torchray_over_maskscope": theirs_seconds / ours_seconds,
        "summary_map_spearman": {
            "mean": float(correlation.mean()),
            "min": float(correlation.min()),
            "per_image": correlation.tolist(),
        },
        "maxima_within_15px": float(np.mean(near)),
        "maxima_distance_px": distance.tolist(),
        **machine(classifier.device),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
