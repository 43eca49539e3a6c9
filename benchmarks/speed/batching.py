"""Per-image time of MP explaining 8 photos in one batched call vs one call per photo.

Both runs use the default model, the same photos, seed and step count, measured one after
the other in this process; the masks of the two runs are compared too. Writes JSON.

    python benchmarks/speed/batching.py --steps 100 --out benchmarks/results/speed/batching.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from skimage import data

from maskscope import Classifier, MeaningfulPerturbation, load_image

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "cat", "hubble_deep_field", "immunohistochemistry", "retina")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/batching.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    images = torch.stack([classifier.view(load_image(getattr(data, name)(), name=name)) for name in PHOTOS])
    method = MeaningfulPerturbation(steps=args.steps)
    method(classifier, images[:1], seed=0)  # warm-up

    start = time.perf_counter()
    together = method(classifier, images, seed=0)
    batched = (time.perf_counter() - start) / len(images)

    start = time.perf_counter()
    alone = torch.cat([method(classifier, images[i : i + 1], seed=0).mask for i in range(len(images))])
    one_by_one = (time.perf_counter() - start) / len(images)

    difference = (alone - together.mask).abs()
    record = {
        "images": list(PHOTOS),
        "steps": args.steps,
        "seconds_per_image_batched": batched,
        "seconds_per_image_one_by_one": one_by_one,
        "ratio_batched_over_one_by_one": batched / one_by_one,
        "mask_max_abs_difference": float(difference.max()),
        "mask_mean_abs_difference": float(difference.mean()),
        **machine(classifier.device),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
