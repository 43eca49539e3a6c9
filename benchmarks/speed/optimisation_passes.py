"""Count the classifier passes each optimisation method makes, by wrapping ``Classifier.logits``.

Every image that goes through the model counts once, split into gradient passes (autograd
on and the input requiring a gradient) and passes without. Runs each method at a few steps on
two 64-px random images, so that it runs in seconds;
the counts grow with ``steps`` as the docs say. The model is a small untrained CNN (seeded):
the counts depend on what the methods do, not on what the model knows. Run it with ``PYTHONPATH`` pointing at another
checkout to count that code's passes::

    python benchmarks/speed/optimisation_passes.py --out benchmarks/results/speed/optimisation_passes.json
    PYTHONPATH=/work/old python benchmarks/speed/optimisation_passes.py --label before
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.methods import IGOS, ExtremalPerturbation, FGVis, IGOSPlusPlus, MeaningfulPerturbation
from maskscope.methods.meaningful_perturbation_g import MeaningfulPerturbationG

STEPS = 10
METHODS = {
    "mp": lambda: MeaningfulPerturbation(resolution=16, smooth_sigma=1.0, filler="blur:8", steps=STEPS),
    "mp-g": lambda: MeaningfulPerturbationG(resolution=16, filler="blur:8", steps=STEPS),
    "fgvis": lambda: FGVis(steps=STEPS),
    "fgvis (stop_early)": lambda: FGVis(steps=STEPS, stop_early=True),
    # without the regulariser, so that the untrained model's line search accepts steps
    "igos": lambda: IGOS(resolution=16, steps=STEPS, l1_weight=0.0, tv_weight=0.0),
    "igos++": lambda: IGOSPlusPlus(resolution=16, steps=STEPS, l1_weight=0.0, tv_weight=0.0),
    "ep": lambda: ExtremalPerturbation(resolution=16, smooth_sigma=8.0, steps=STEPS),
}


def count_passes(method, classifier, images, classes) -> dict[str, int]:
    counts = {"gradient": 0, "no_gradient": 0}
    logits = classifier.logits

    def counted(batch: torch.Tensor) -> torch.Tensor:
        kind = "gradient" if torch.is_grad_enabled() and batch.requires_grad else "no_gradient"
        counts[kind] += len(batch)
        return logits(batch)

    classifier.logits = counted
    try:
        method(classifier, images, target=classes)
    finally:
        del classifier.logits
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()
    classifier = Classifier(model, class_names=["a", "b", "c"])
    images = torch.rand(args.images, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    classes = [i % 3 for i in range(args.images)]
    counts = {name: count_passes(make(), classifier, images, classes) for name, make in METHODS.items()}
    for name, passes in counts.items():
        print(f"{args.label:>8} {name:<20} gradient {passes['gradient']:>6}  no gradient {passes['no_gradient']:>6}")
    if args.out:
        record = json.loads(args.out.read_text()) if args.out.exists() else {}
        record[args.label] = {"steps": STEPS, "images": args.images, "passes": counts}
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
