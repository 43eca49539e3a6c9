"""Milliseconds per image of the default model's forward pass, by batch size and precision.

The sampling methods (occlusion, SP, LIME, RISE, deletion/insertion) spend nearly all their
time in forward passes of perturbed images, ``batch_size`` at a time, so the batch size and
the precision they run at set their speed. For each batch size the model runs on random
images in float32 and under ``torch.autocast`` in ``--precision`` (bfloat16 on a CPU),
channels-last as ``Classifier.default`` feeds it. On the photos, the reduced precision is
compared with float32: the share of photos whose top-1 class is unchanged, the largest change
of a probability, and the cosine between the two input gradients of the top-1 probability
(what the gradient-based methods would see). Writes JSON.

    python benchmarks/forward_throughput.py --out benchmarks/results/forward_throughput.json
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from maskscope import Classifier

from photos import imagenet_photos
from records import machine, write_record


def milliseconds_per_image(classifier: Classifier, batch: int, size: int, repeats: int) -> float:
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        classifier.scores(images)  # oneDNN prepares its kernels per shape
        start = time.perf_counter()
        for _ in range(repeats):
            classifier.scores(images)
    return (time.perf_counter() - start) / repeats / batch * 1000


def top1_gradients(classifier: Classifier, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    images = images.clone().requires_grad_(True)
    classifier.probabilities(images).gather(1, targets[:, None]).sum().backward()
    return images.grad.flatten(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,4,8,16,32,64")
    parser.add_argument("--precision", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=4, help="timed passes per batch size")
    parser.add_argument("--images", type=int, default=32, help="photos for the agreement of the two precisions")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/forward_throughput.json"))
    args = parser.parse_args()

    full = Classifier.default()
    reduced = copy.copy(full)
    reduced.precision = args.precision
    size = full.view.crop
    rows = []
    for batch in (int(value) for value in args.batch_sizes.split(",")):
        row = {"batch_size": batch,
               "float32_ms_per_image": milliseconds_per_image(full, batch, size, args.repeats),
               f"{args.precision}_ms_per_image": milliseconds_per_image(reduced, batch, size, args.repeats)}
        row["speed_ratio"] = row["float32_ms_per_image"] / row[f"{args.precision}_ms_per_image"]
        print(row, flush=True)
        rows.append(row)

    names, images = imagenet_photos(full, args.images)
    with torch.no_grad():
        exact, approximate = full.probabilities(images), reduced.probabilities(images)
    targets = exact.argmax(1)
    cosines = torch.nn.functional.cosine_similarity(
        top1_gradients(full, images, targets), top1_gradients(reduced, images, targets), dim=1
    )
    best = min(rows, key=lambda r: r["float32_ms_per_image"])
    write_record(args.out, {
        "model": full.name,
        "precision": args.precision,
        "by_batch_size": rows,
        "fastest_float32_batch_size": best["batch_size"],
        "photos": len(names),
        "top1_agreement": float((approximate.argmax(1) == targets).float().mean()),
        "max_probability_change": float((approximate - exact).abs().max()),
        "gradient_cosine": {"mean": float(cosines.mean()), "min": float(cosines.min())},
        **machine(full.device),
    })


if __name__ == "__main__":
    main()
