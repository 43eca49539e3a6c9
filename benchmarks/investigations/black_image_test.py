"""The black-image check (FGVis Table A1) on the default model, without and with the defense.

For N classes evenly spaced over ImageNet, the generation game with λ = 0 starts from a black
image and runs up to S steps; a class counts when it becomes top-1. Writes JSON.

    OMP_NUM_THREADS=1 python benchmarks/investigations/black_image_test.py --classes 100 --steps 60 \
        --out benchmarks/results/investigations/black_image_test.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskscope import Classifier
from maskscope.checks import black_image_test

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--images-per-batch", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/black_image_test.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    runs = {}
    for defense in (False, True):
        result = black_image_test(
            classifier, args.classes, defense=defense, steps=args.steps, images_per_batch=args.images_per_batch, progress=True
        )
        runs["defended" if defense else "undefended"] = result.to_dict()
        print(f"defense={defense}: {result.success_rate:.1%} of {len(result.classes)} classes top-1 "
              f"({result.seconds:.0f} s)", flush=True)
    record = {
        "config": {
            "model": classifier.name,
            "classes": args.classes,
            "steps": args.steps,
            "images_per_batch": args.images_per_batch,
            "lr": 0.1,
            "lambda": 0.0,
            "start": "black image, reference = mean colour, m ~ U(0, 0.01)",
        },
        "success_rate": {name: run["success_rate"] for name, run in runs.items()},
        "seconds": {name: run["seconds"] for name, run in runs.items()},
        "paper": {"undefended": 1.0, "defended": "0.000-0.001"},
        "runs": runs,
        **machine(classifier.device),
    }
    write_record(args.out, record, {key: record[key] for key in ("config", "success_rate", "seconds", "paper")})


if __name__ == "__main__":
    main()
