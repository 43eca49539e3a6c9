"""What one gradient pass of the default model costs an image, by the images it holds and its precision.

A gradient pass is ``Classifier.logits`` on images that require a gradient, then the backward
pass to them: the unit of every mask optimisation's step. For each precision (float32, and
bfloat16 as ``Classifier.default(precision="bfloat16")`` runs it: autocast on the
batch-norm-folded module) and each batch size, the pass is timed ``--repeats`` times after two
warm-up passes, and the best of three such timings is kept (the machine is shared: the
fastest timing is the one least disturbed). Pin it to one core for a per-core figure::

    taskset -c 0 python benchmarks/speed/gradient_pass_batch.py --threads 1
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

from benchmarks.common.records import machine, write_record

OUT = Path(__file__).resolve().parents[1] / "results" / "speed" / "gradient_pass_batch.json"


def pass_seconds(classifier: Classifier, batch: int, repeats: int) -> float:
    """The best of three mean times of one forward and backward pass on ``batch`` images."""
    images = torch.rand(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def one_pass() -> None:
        inputs = images.clone().requires_grad_(True)
        classifier.logits(inputs).float().sum().backward()

    for _ in range(2):
        one_pass()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            one_pass()
        timings.append((time.perf_counter() - start) / repeats)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,2,3,4,8", help="images a pass, comma-separated")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=4, help="passes a timing")
    parser.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for precision in args.precisions.split(","):
        classifier = Classifier.default(precision=precision)
        for batch in map(int, args.batches.split(",")):
            seconds = pass_seconds(classifier, batch, args.repeats)
            rows.append({"precision": precision, "images": batch, "ms_a_pass": 1000 * seconds,
                         "ms_an_image": 1000 * seconds / batch})
            print(f"{precision:9s} {batch:2d} images: {1000 * seconds:7.1f} ms a pass, "
                  f"{1000 * seconds / batch:5.1f} ms an image", flush=True)
    write_record(args.out, {"benchmark": "gradient_pass_batch", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
