"""Milliseconds per image of the default model's forward pass, by batch size, engine and precision.

The sampling methods (occlusion, SP, LIME, RISE, deletion/insertion) spend nearly all their
time in forward passes of perturbed images, ``batch_size`` at a time, so the batch size, the
engine and the precision they run at set their speed. For each batch size the model runs on
random images on each ``--runs`` entry (ENGINE:PRECISION), one after the other. On the
photos, each run is compared with the first: the share of photos whose top-1 class is
unchanged, the largest change of a probability, and the cosine between the input gradients
of the top-1 probability (what the gradient-based methods would see; gradient passes run the
torch module, under autocast at bfloat16). Writes JSON.

    python benchmarks/speed/forward_throughput.py --out benchmarks/results/speed/forward_throughput.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from maskscope import Classifier

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def milliseconds_per_image(classifier: Classifier, batch: int, size: int, repeats: int) -> float:
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        classifier.probabilities(images)  # oneDNN prepares its kernels per shape
        start = time.perf_counter()
        for _ in range(repeats):
            classifier.probabilities(images)
    return (time.perf_counter() - start) / repeats / batch * 1000


def top1_gradients(classifier: Classifier, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    images = images.clone().requires_grad_(True)
    classifier.probabilities(images).gather(1, targets[:, None]).sum().backward()
    return images.grad.flatten(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--runs", default="torch:float32,torch:bfloat16,onnxruntime:float32,openvino:bfloat16",
                        help="ENGINE:PRECISION, comma-separated; the first is the reference (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=4, help="timed passes per batch size")
    parser.add_argument("--images", type=int, default=32, help="photos for the agreement with the reference")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/forward_throughput.json"))
    args = parser.parse_args()

    runs = [tuple(run.split(":")) for run in args.runs.split(",")]
    classifiers = {f"{e}-{p}": Classifier.default(engine=e, precision=p) for e, p in runs}
    reference_name, reference = next(iter(classifiers.items()))
    size = reference.view.crop
    rows = []
    for batch in (int(value) for value in args.batch_sizes.split(",")):
        row = {"batch_size": batch}
        for name, classifier in classifiers.items():  # one run after the other at each batch size
            row[f"{name}_ms_per_image"] = milliseconds_per_image(classifier, batch, size, args.repeats)
        for name in classifiers:
            row[f"{name}_speed_ratio"] = row[f"{reference_name}_ms_per_image"] / row[f"{name}_ms_per_image"]
        print(row, flush=True)
        rows.append(row)

    names, images = imagenet_photos(reference, args.images)
    with torch.no_grad():
        exact = reference.probabilities(images)
    targets = exact.argmax(1)
    reference_gradients = top1_gradients(reference, images, targets)
    agreement = {}
    for name, classifier in classifiers.items():
        with torch.no_grad():
            approximate = classifier.probabilities(images)
        cosines = torch.nn.functional.cosine_similarity(reference_gradients, top1_gradients(classifier, images, targets), dim=1)
        agreement[name] = {
            **classifier.engine_record(),
            "top1_agreement": float((approximate.argmax(1) == targets).float().mean()),
            "max_probability_change": float((approximate - exact).abs().max()),
            "gradient_cosine": {"mean": float(cosines.mean()), "min": float(cosines.min())},
        }
    write_record(args.out, {
        "model": reference.name,
        "reference": reference_name,
        "by_batch_size": rows,
        "photos": len(names),
        "agreement_with_reference": agreement,
        **machine(reference.device),
    })


if __name__ == "__main__":
    main()
