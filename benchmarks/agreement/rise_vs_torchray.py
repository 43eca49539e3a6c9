"""RISE: maskscope's `rise` against TorchRay's `rise`, fed the same masks, side by side.

Both explain the top-1 class of the same imagenet-samples photos with the default model and
``--masks`` masks (default 4000, the paper's N for ResNet-50): the masks maskscope draws from
its seed (7×7 grids kept with probability 0.5, shifted and enlarged bilinearly) are handed to
TorchRay as ``filter_masks``, so the maps must agree to rounding. TorchRay multiplies the
normalised image by the mask, which is maskscope's blend towards the classifier's mean colour,
and takes the sigmoid of the model's output; it is given the probability written as a logit so
that its sigmoid returns the softmax probability maskscope explains. TorchRay batches its
passes as it does by default (32 masked images a pass) or as ``--torchray-batch-size`` says;
maskscope runs once per ``--runs`` entry (ENGINE:PRECISION: eager torch float32, the ``auto``
engine at float32 and at ``fast``), TorchRay runs eager torch float32, as its users run it. The
runs rotate photo by photo. Reported: seconds per photo of each and the ratios, the seconds
inside the model and the rest, and each of maskscope's maps against TorchRay's (Spearman over
pixels, largest absolute difference, both over the map's range).

TorchRay needs torchvision, so this runs in the benchmark-only environment
(``pip install torch==2.14.1 torchvision==0.29.1 torchray``, with maskscope on the path):

    PYTHONPATH=$PWD python benchmarks/agreement/rise_vs_torchray.py --images 4 \\
        --out benchmarks/results/agreement/rise_vs_torchray.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from maskscope import Classifier
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.methods import RISE
from maskscope.methods.rise import rise_masks

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record
from benchmarks.common.side_by_side import Agreement, SideBySide

CELLS, KEEP, SEED = 7, 0.5, 0


class ProbabilityAsLogit(torch.nn.Module):
    """The model's softmax probability written as a logit, so that TorchRay's sigmoid returns it."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.classifier.model(normalised).double().softmax(1)).float()


def seeded_masks(count: int, size: tuple[int, int]) -> torch.Tensor:
    """The masks ``RISE(samples=count)`` draws from ``SEED`` (its drawing order), N×1×H×W."""
    generator = torch.Generator().manual_seed(SEED)
    grids = (torch.rand(count, CELLS, CELLS, generator=generator) < KEEP).float()
    limits = torch.tensor([-(-size[0] // CELLS), -(-size[1] // CELLS)])
    shifts = (torch.rand(count, 2, generator=generator) * limits).long()
    return rise_masks(grids, shifts, size)[:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--masks", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, help="maskscope's masked images per pass (default: its own)")
    parser.add_argument("--torchray-batch-size", type=int, default=32, help="TorchRay's (default: %(default)s, its own)")
    parser.add_argument("--runs", default="torch:float32,auto:float32,auto:fast",
                        help="maskscope's runs as ENGINE:PRECISION, comma-separated (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/rise_vs_torchray.json"))
    args = parser.parse_args()
    try:
        from torchray.attribution.rise import rise
    except ImportError as error:  # a benchmark-only dependency
        raise SystemExit(f"this benchmark needs TorchRay ({error}), in the environment with torchvision") from error

    classifier = Classifier.default(engine="torch")  # the peer's passes: eager torch, as its users run it
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    ours = RISE(samples=args.masks, resolution=CELLS, keep=KEEP, batch_size=args.batch_size)
    masks = seeded_masks(args.masks, tuple(images.shape[-2:]))
    timing, classifiers = SideBySide.at_engines(classifier, args.runs.split(","), "torchray")
    theirs_model = ProbabilityAsLogit(classifier)
    ours_batch = default_batch_size(args.batch_size, classifier.device)
    timing.warm_up(images.shape[-1], {ours_batch, args.masks % ours_batch,
                                      args.torchray_batch_size, args.masks % args.torchray_batch_size})
    agreement = Agreement(classifiers)
    for index, (image, target) in enumerate(zip(images, targets)):
        calls = {name: (lambda c=c: ours(c, image[None], target=[target], seed=SEED).saliency[0])
                 for name, c in classifiers.items()}

        def torchray_map(image=image, target=target) -> torch.Tensor:
            with torch.no_grad():
                saliency = rise(theirs_model, classifier.normalise(image[None]), filter_masks=masks,
                                num_masks=args.masks, batch_size=args.torchray_batch_size)
            return saliency[0, target] / KEEP

        calls["torchray"] = torchray_map
        maps = timing.run(index, calls)
        print(f"{names[index]}: {timing.photo_line(agreement, maps, maps['torchray'])}", flush=True)
    timing.release()
    spearmans, differences = agreement.summary()
    write_record(args.out, {
        "images": names,
        "samples": args.masks,
        "resolution": CELLS,
        "keep": KEEP,
        "batch_size": {"maskscope": ours_batch, "torchray": args.torchray_batch_size},
        **timing.engines_record(classifiers),
        "map_spearman": spearmans,
        "map_max_abs_difference": differences,
        **machine(classifier.device),
    })


if __name__ == "__main__":
    main()
