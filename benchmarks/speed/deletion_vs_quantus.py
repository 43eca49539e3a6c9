"""Deletion curves per second: ``maskscope.metrics.deletion`` against Quantus's ``PixelFlipping``.

Both score the same saliency maps (Grad-CAM of the default model on imagenet-samples
photos) with the same model, the same substrate (the model's mean colour, grey 0.5) and the
same number of curve points, taking turns in this process (ours on each ``--runs`` entry, then
Quantus, repeated ``--rounds`` times). Quantus broadcasts a
one-channel map over the three channels and flips ``features_in_step`` channel values a
step, and asks that value to divide H·W: 448 values on 224×224 gives 336 steps (about 149
pixels a step), so our curve uses the same 336 even steps over pixels. Both are given channels-last
inputs, so the model itself runs at the same
speed; what differs is how the curve points are built and batched, and on which engine our
passes run (Quantus runs the eager torch module, as its users do). Writes JSON with maps per
second, the ratios, and how far the curves agree.

Quantus is a benchmark-only dependency (its wheel asks for ``opencv-python``, which clashes
with the core's headless OpenCV, so install it without dependencies):

    pip install quantus --no-deps && pip install pandas scikit-learn cachetools
    python benchmarks/speed/deletion_vs_quantus.py --maps 16 --out benchmarks/results/speed/deletion_vs_quantus.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskscope import Classifier, load_image
from maskscope.data import ImageNetSamples
from maskscope.methods.registry import get_method
from maskscope.metrics import Protocol, deletion, rise_schedule

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

#: channel values Quantus flips a step; it must divide H·W (50176 = 2¹⁰·7² on 224×224)
FEATURES_IN_STEP = 448


class PixelSpaceModel(nn.Module):
    """The classifier's model with its normalisation, taking pixel-space images (what Quantus feeds)."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.logits(images.float())


def compare_with_quantus(
    classifier: Classifier, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor, batch_size: int,
    ours: dict[str, Classifier] | None = None, rounds: int = 1,
) -> dict:
    """Deletion curves of ``maps`` by maskscope (each of ``ours``; default: ``classifier`` itself)
    and by Quantus's ``PixelFlipping`` on ``classifier``'s eager module: speed and agreement."""
    import quantus

    ours = ours or {"maskscope": classifier}
    pixels = images.shape[-1] * images.shape[-2]
    steps = 3 * pixels // FEATURES_IN_STEP
    protocol = Protocol("pixel-flipping", "mean", "mean", partial(rise_schedule, steps=steps))
    metric = quantus.PixelFlipping(
        features_in_step=FEATURES_IN_STEP,
        perturb_baseline=0.5,
        return_auc_per_sample=False,
        abs=False,
        disable_warnings=True,
    )
    with torch.no_grad():
        for ours_classifier in ours.values():  # export and compile before the clock starts
            ours_classifier.probabilities(images[:batch_size])
    seconds: dict[str, list[float]] = {name: [] for name in [*ours, "quantus"]}
    curves = {}
    for _ in range(rounds):
        for name, ours_classifier in ours.items():
            start = time.perf_counter()
            curves[name] = deletion(ours_classifier, images, maps, target=targets.tolist(), protocol=protocol,
                                    batch_size=batch_size)
            seconds[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = metric(
            model=PixelSpaceModel(classifier).eval(),
            x_batch=images.numpy(),
            y_batch=targets.numpy(),
            a_batch=maps[:, None].numpy(),
            channel_first=True,
            softmax=True,
            device="cpu",
            batch_size=batch_size,
        )
        seconds["quantus"].append(time.perf_counter() - start)
        print({name: round(values[-1], 1) for name, values in seconds.items()}, flush=True)
    quantus_seconds = float(np.mean(seconds["quantus"]))

    # Quantus's curve has no unperturbed point; compare the remaining points and areas.
    their_curves = np.asarray(theirs)
    their_auc = np.trapezoid(their_curves, next(iter(curves.values())).fractions[1:].numpy(), axis=1)
    return {
        "maps": len(images),
        "steps_per_curve": steps,
        "batch_size": batch_size,
        "rounds": rounds,
        "quantus_maps_per_second": len(images) / quantus_seconds,
        "runs": {
            name: {
                **ours[name].engine_record(),
                "maps_per_second": len(images) / float(np.mean(seconds[name])),
                "speedup_over_quantus": quantus_seconds / float(np.mean(seconds[name])),
                "curve_mean_abs_difference_to_quantus": float(np.abs(curves[name].scores[:, 1:].numpy() - their_curves).mean()),
                "curve_max_abs_difference_to_quantus": float(np.abs(curves[name].scores[:, 1:].numpy() - their_curves).max()),
                "auc": curves[name].mean_auc,
            }
            for name in ours
        },
        "auc_quantus_without_first_point": float(their_auc.mean()),
        "seconds": seconds,
        "model": classifier.name,
        "quantus": quantus.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("MASKSCOPE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data / "imagenet-samples")
    parser.add_argument("--maps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8, help="images per Quantus batch and per our forward pass")
    parser.add_argument("--runs", default="torch:float32,auto:float32,auto:fast",
                        help="our runs as ENGINE:PRECISION, comma-separated (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/deletion_vs_quantus.json"))
    args = parser.parse_args()

    classifier = Classifier.default(engine="torch")  # Quantus's passes: eager torch
    samples = ImageNetSamples(args.data)[: args.maps]
    images = torch.stack([classifier.view(load_image(sample.path)) for sample in samples])
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1)
    maps = get_method("gradcam")(classifier, images, target=targets.tolist()).saliency
    ours = {f"maskscope-{run.replace(':', '-')}": Classifier.default(engine=run.split(":")[0], precision=run.split(":")[1])
            for run in args.runs.split(",")}
    record = compare_with_quantus(classifier, images, targets, maps, args.batch_size, ours, args.rounds)
    write_record(args.out, {**record, **machine(classifier.device)})


if __name__ == "__main__":
    main()
