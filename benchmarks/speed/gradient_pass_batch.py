"""What one gradient pass of the default model costs an image, by the images it holds and its precision.

A gradient pass is a forward pass on images that require a gradient, then the backward pass to
them: the unit of every mask optimisation's step. For each precision (float32, and bfloat16 as
``Classifier.default(precision="bfloat16")`` runs it: autocast on the batch-norm-folded module)
and each batch size, two passes are timed: the module's own on the whole batch (``module``),
and ``Classifier.logits`` (``classifier``), which at float32 on a CPU runs the module on
pieces of ``CPU_GRADIENT_IMAGES_PER_THREAD`` images a thread, with the page faults a pass makes
(the cost pieces remove: a whole batch's activations are taken from the system anew at every
pass). Each is timed ``--repeats`` times after two warm-up passes, and the best of three such
timings is kept (the fastest timing is the one least disturbed). Pin it to one core for a
per-core figure::

    taskset -c 0 python benchmarks/speed/gradient_pass_batch.py --threads 1
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from maskscope import Classifier

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

OUT = Path(__file__).resolve().parents[1] / "results" / "speed" / "gradient_pass_batch.json"


def module_logits(classifier: Classifier, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The batch-norm-folded module at ``precision`` on a whole batch, as one call."""
    engine = classifier.torch_engine
    engine.precision = precision
    return lambda images: engine(classifier.normalise(images))


def pass_cost(logits: Callable[[torch.Tensor], torch.Tensor], batch: int, repeats: int) -> tuple[float, float]:
    """The best of three mean times of one forward and backward pass of ``logits`` on ``batch``
    images, and the page faults a pass made in the fastest timing (memory the allocator took
    from the system and touched anew)."""
    images = torch.rand(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def one_pass() -> None:
        inputs = images.clone().requires_grad_(True)
        logits(inputs).float().sum().backward()

    for _ in range(2):
        one_pass()
    timings = []
    for _ in range(3):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        for _ in range(repeats):
            one_pass()
        seconds = (time.perf_counter() - start) / repeats
        timings.append((seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats))
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
        passes = {"module": module_logits(classifier, precision), "classifier": classifier.logits}
        for batch in map(int, args.batches.split(",")):
            row: dict = {"precision": precision, "images": batch}
            for name, logits in passes.items():
                seconds, faults = pass_cost(logits, batch, args.repeats)
                row[name] = {"ms_a_pass": 1000 * seconds, "ms_an_image": 1000 * seconds / batch, "page_faults_a_pass": faults}
            rows.append(row)
            print(f"{precision:9s} {batch:2d} images, ms an image (page faults a pass): "
                  + ", ".join(f"{name} {row[name]['ms_an_image']:5.1f} ({row[name]['page_faults_a_pass']:.0f})"
                              for name in passes), flush=True)
    write_record(args.out, {"benchmark": "gradient_pass_batch", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
