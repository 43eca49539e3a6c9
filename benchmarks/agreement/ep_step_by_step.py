"""Extremal Perturbation step by step: maskscope's mask parameters against TorchRay's after
every iteration, on one imagenet-samples photo, both in this process.

Shows where the two codes part: the largest difference of each area's mask parameter after
chosen iterations, each code's summary-map maximum, and how high each summary map stands at
the other's maximum. Beside it, the same for TorchRay against itself on the photo moved by
rounding-sized noise (``--input-noise``, default 1e-7, then clipped to [0, 1]): how far two
runs of one code part when only the last bits of the input differ. Runs in the peers'
environment (TorchRay needs torchvision; see ``reference_agreement.py``)::

    PYTHONPATH=$PWD /work/refenv/bin/python benchmarks/agreement/ep_step_by_step.py --photo 2 --steps 100 \\
        --out benchmarks/results/agreement/ep_step_by_step.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import maskscope.core.optimisation.descent as optimisation
from maskscope import Classifier
from maskscope.methods import ExtremalPerturbation

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.map_agreement import agreement, peaks
from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

AREAS = [0.05, 0.1, 0.2]


def torchray_parameters(classifier: Classifier, image: torch.Tensor, target: int, steps: int):
    """TorchRay's mask parameter before every iteration (steps×A×h×w) and its summary map."""
    import torchray.attribution.extremal_perturbation as torchray_ep

    seen = []
    original = torchray_ep.MaskGenerator.generate

    def recording(generator, parameter):
        seen.append(parameter.detach().clone())
        return original(generator, parameter)

    torchray_ep.MaskGenerator.generate = recording
    try:
        masks, _ = torchray_ep.extremal_perturbation(classifier.model, classifier.normalise(image), target,
                                                     areas=AREAS, max_iter=steps)
    finally:
        torchray_ep.MaskGenerator.generate = original
    return torch.stack(seen)[:, :, 0], masks.detach().sum(0)[0]


def maskscope_parameters(classifier: Classifier, image: torch.Tensor, target: int, steps: int):
    """maskscope's mask parameter before every step (steps×A×h×w) and its summary map."""
    seen = []
    original = optimisation.MomentumSGD.step

    def recording(rule, problem, masks, grad, loss):
        seen.append(masks.detach().clone())
        return original(rule, problem, masks, grad, loss)

    optimisation.MomentumSGD.step = recording
    try:
        explanation = ExtremalPerturbation(areas=AREAS, steps=steps)(classifier, image, target=[target])
    finally:
        optimisation.MomentumSGD.step = original
    return torch.stack(seen)[:, :, 0], explanation.saliency[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=int, default=2, help="index among the imagenet-samples photos")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--input-noise", type=float, default=1e-7,
                        help="σ of the noise added to the photo for TorchRay's run against itself")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/ep_step_by_step.json"))
    args = parser.parse_args()
    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.photo + 1)
    image = images[args.photo:args.photo + 1]
    with torch.no_grad():
        target = int(classifier.probabilities(image).argmax(1))
    started = time.perf_counter()
    theirs, theirs_map = torchray_parameters(classifier, image, target, args.steps)
    middle = time.perf_counter()
    ours, ours_map = maskscope_parameters(classifier, image, target, args.steps)
    ended = time.perf_counter()
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    moved = (image + args.input_noise * noise).clamp(0, 1)
    again, again_map = torchray_parameters(classifier, moved, target, args.steps)
    shown = sorted({1, 2, 5, 10, 20, 30, 50, 70, args.steps - 1} & set(range(1, args.steps)))

    def differences(first: torch.Tensor, second: torch.Tensor) -> dict:
        return {str(step): (first[step] - second[step]).abs().flatten(1).max(1).values.tolist() for step in shown}

    record = {
        "photo": names[args.photo], "target": target, "steps": args.steps, "areas": AREAS,
        "largest_parameter_difference": differences(ours, theirs),
        **agreement(ours_map[None], theirs_map[None]),
        "peaks": {"reference": peaks(theirs_map[None])[0].tolist(), "maskscope": peaks(ours_map[None])[0].tolist(),
                  "reference_moved_input": peaks(again_map[None])[0].tolist()},
        "reference_against_itself": {
            "input_noise": args.input_noise,
            "largest_input_change": float((moved - image).abs().max()),
            "largest_parameter_difference": differences(again, theirs),
            **agreement(again_map[None], theirs_map[None]),
        },
        "seconds": {"reference": middle - started, "maskscope": ended - middle},
        **machine(),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
