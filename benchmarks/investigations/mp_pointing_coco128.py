"""MP's pointing game on coco128 photos whose top-1 ImageNet class names an object present.

For each photo (in sorted order) the default model's top-1 class is mapped to a COCO class
with ``imagenet_to_coco.json``; photos where that class is annotated are kept, up to
``--images``. MP (paper defaults) explains the top-1 class, batched ``--batch-size`` photos
at a time, and hits are counted within 15 px of the class's boxes (ties averaged) beside the
centre-point baseline. Writes a JSON record.

    python benchmarks/investigations/mp_pointing_coco128.py --images 40 \\
        --out benchmarks/results/investigations/mp_pointing_coco128.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from maskscope import Classifier, MeaningfulPerturbation, load_image
from maskscope.data.coco128 import Coco128
from maskscope.data.dataset import ground_truth
from maskscope.metrics import pointing_game

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("MASKSCOPE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data / "coco128")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/mp_pointing_coco128.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    dataset = Coco128(args.data)
    views, truths, classes, names = [], [], [], []
    for sample in dataset:
        photo = load_image(sample.path)
        view = classifier.view(photo)
        with torch.no_grad():
            top1 = int(classifier.probabilities(view[None]).argmax())
        label = dataset.label_of(top1, classifier.class_names)
        if label not in sample.labels:
            continue
        truth = ground_truth(sample, label, classifier.view, tuple(photo.shape[1:]), kind="box")
        if not truth.any():
            continue
        views.append(view), truths.append(truth), classes.append(top1), names.append(sample.name)
        if len(views) == args.images:
            break

    method = MeaningfulPerturbation(steps=args.steps, progress=True)
    start = time.perf_counter()
    maps = []
    for first in range(0, len(views), args.batch_size):
        batch = torch.stack(views[first : first + args.batch_size])
        maps.append(method(classifier, batch, target=classes[first : first + args.batch_size]).saliency)
    seconds = time.perf_counter() - start
    result = pointing_game(torch.cat(maps), torch.stack(truths), classes, tolerance=15)
    record = {
        "images": names,
        "count": len(names),
        "tolerance_px": 15,
        "mp_steps": args.steps,
        "mp_accuracy_per_class": result.accuracy,
        "centre_accuracy_per_class": result.centre_accuracy,
        "mp_hit_rate": float(result.hits.mean()),
        "centre_hit_rate": float(result.centre_hits.mean()),
        "seconds_per_image": seconds / max(len(names), 1),
        "model": classifier.name,
        **machine(classifier.device),
    }
    write_record(args.out, record, {k: v for k, v in record.items() if k != "images"})


if __name__ == "__main__":
    main()
