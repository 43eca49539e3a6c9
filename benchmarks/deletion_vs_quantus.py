"""Deletion curves per second: ``maskscope.metrics.deletion`` against Quantus's ``PixelFlipping``.

Both score the same saliency maps (Grad-CAM of the default model on imagenet-samples
photos) with the same model, the same substrate (the model's mean colour, grey 0.5) and the
same number of curve points, one after the other in this process. Quantus broadcasts a
one-channel map over the three channels and flips ``features_in_step`` channel values a
step, and asks that value to divide H·W: 448 values on 224×224 gives 336 steps (about 149
pixels a step), so our curve uses the same 336 even steps over pixels. Both are given channels-last inputs, so the model itself runs at the same
speed; what differs is how the curve points are built and batched. Writes JSON with
maps per second, the ratio, and how far the two curves' areas agree.

Quantus is a benchmark-only dependency (its wheel asks for ``opencv-python``, which clashes
with the core's headless OpenCV, so install it without dependencies):

    pip install quantus --no-deps && pip install pandas scikit-learn cachetools
    python benchmarks/deletion_vs_quantus.py --maps 16 --out benchmarks/results/deletion_vs_quantus.json
"""

from __future__ import annotations

import argparse
import os
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

from records import machine, write_record

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
    classifier: Classifier, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor, batch_size: int
) -> dict:
    """Deletion curves of ``maps`` by maskscope and by Quantus's ``PixelFlipping``: speed and agreement."""
    import quantus

    pixels = images.shape[-1] * images.shape[-2]
    steps = 3 * pixels // FEATURES_IN_STEP
    protocol = Protocol("pixel-flipping", "mean", "mean", partial(rise_schedule, steps=steps))

    start = time.perf_counter()
    ours = deletion(classifier, images, maps, targets=targets.tolist(), protocol=protocol, batch_size=batch_size)
    ours_seconds = time.perf_counter() - start

    metric = quantus.PixelFlipping(
        features_in_step=FEATURES_IN_STEP,
        perturb_baseline=0.5,
        normalise=False,
        abs=False,
        disable_warnings=True,
    )
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
    quantus_seconds = time.perf_counter() - start

    # Quantus's curve has no unperturbed point; compare the remaining points and areas.
    their_curves = np.asarray(theirs)
    their_auc = np.trapezoid(their_curves, ours.fractions[1:].numpy(), axis=1)
    return {
        "maps": len(images),
        "steps_per_curve": steps,
        "batch_size": batch_size,
        "maskscope_maps_per_second": len(images) / ours_seconds,
        "quantus_maps_per_second": len(images) / quantus_seconds,
        "speedup": quantus_seconds / ours_seconds,
        "curve_mean_abs_difference": float(np.abs(ours.scores[:, 1:].numpy() - their_curves).mean()),
        "auc_maskscope": ours.mean_auc,
        "auc_quantus_without_first_point": float(their_auc.mean()),
        "model": classifier.name,
        "quantus": quantus.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("MASKSCOPE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data / "imagenet-samples")
    parser.add_argument("--maps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8, help="images per Quantus batch and per our forward pass")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/deletion_vs_quantus.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    samples = ImageNetSamples(args.data)[: args.maps]
    images = torch.stack([classifier.view(load_image(sample.path)) for sample in samples])
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1)
    maps = get_method("gradcam")(classifier, images, target=targets.tolist()).saliency
    record = compare_with_quantus(classifier, images, targets, maps, args.batch_size)
    write_record(args.out, {**record, **machine(classifier.device)})


if __name__ == "__main__":
    main()
