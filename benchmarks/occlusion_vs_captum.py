"""Occlusion: maskscope's `occlusion` against Captum's `Occlusion` at the same windows.

For each window:stride setting (default 35:8, the MP supplement's mean-pixel occlusion, and
29:3, the sliding-patch setting of G-removal) both explain the top-1 class of the same
imagenet-samples photos with the default model: the same square windows at the same
positions (maskscope ``placement="edge"``: Captum's grid, whose last window is clipped by the
border when the stride overshoots it, as for 35:8 on 224 px), the same baseline (the
classifier's mean colour, i.e. 0 in its normalised input, where Captum works), the softmax
probability of the class, and the same number of perturbed images per forward pass
(Captum's ``perturbations_per_eval``). Both average each pixel's drop over the windows
covering it, so their maps should agree to rounding. The two alternate photo by photo (which
goes first alternates too). Reported per setting: seconds per photo of each and their ratio,
the seconds inside the model's forward passes and the rest (each library's own overhead) with
its ratio, and the agreement of the maps (Spearman over pixels, largest absolute difference).

    pip install -e ".[compare]"
    python benchmarks/occlusion_vs_captum.py --images 4 --settings 35:8 --out benchmarks/results/occlusion_vs_captum.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from maskscope import Classifier
from maskscope.methods import Occlusion
from maskscope.metrics import spearman

from photos import imagenet_photos
from records import machine, write_record
from side_by_side import SideBySide

try:
    from captum.attr import Occlusion as CaptumOcclusion
except ImportError as error:  # pragma: no cover - a benchmark-only dependency
    raise SystemExit(f"this benchmark needs Captum ({error}): pip install -e '.[compare]'") from error


def captum_map(classifier: Classifier, image: torch.Tensor, target: int, window: int, stride: int, batch_size: int):
    """Captum's occlusion map H×W of the class probability, on the classifier's normalised input."""
    layout = torch.channels_last if classifier.channels_last else torch.contiguous_format

    def probabilities(inputs: torch.Tensor) -> torch.Tensor:
        return classifier.model(inputs.contiguous(memory_format=layout)).softmax(1)

    with torch.no_grad():
        attribution = CaptumOcclusion(probabilities).attribute(
            classifier.normalise(image[None]),
            sliding_window_shapes=(3, window, window),
            strides=(3, stride, stride),
            baselines=0.0,
            target=target,
            perturbations_per_eval=batch_size,
        )
    return attribution[0, 0]  # every channel holds the same average (the window spans all three)


def compare(classifier, names, images, targets, window, stride, batch_size) -> dict:
    """Time both on every photo at one setting; their seconds and their maps' agreement."""
    ours = Occlusion(sizes=window, stride=stride, placement="edge", batch_size=batch_size)
    timing = SideBySide(classifier, "maskscope", "captum")
    count = len(ours.grids(tuple(images.shape[-2:]))[0])
    timing.warm_up(images.shape[-1], {1, batch_size, count % batch_size})
    correlations, differences = [], []
    for index, (image, target) in enumerate(zip(images, targets)):
        maps = timing.run(
            index,
            {
                "maskscope": lambda: ours(classifier, image[None], target=[target]).saliency[0],
                "captum": lambda: captum_map(classifier, image, target, window, stride, batch_size),
            },
        )
        correlations.append(float(spearman(maps["maskscope"][None], maps["captum"][None])[0]))
        differences.append(float((maps["maskscope"] - maps["captum"]).abs().max()))
        print(f"{window}:{stride} {names[index]}: {timing.seconds['maskscope'][-1]:.1f} s against "
              f"{timing.seconds['captum'][-1]:.1f} s, Spearman {correlations[-1]:.4f}", flush=True)
    timing.release()
    return {
        "window": window,
        "stride": stride,
        "windows_per_image": count,
        **timing.summary(),
        "map_spearman": {"mean": float(np.mean(correlations)), "per_image": correlations},
        "map_max_abs_difference": max(differences),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--settings", default="35:8,29:3", help="window:stride pairs, comma-separated")
    parser.add_argument("--batch-size", type=int, default=64, help="perturbed images per forward pass, both")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/occlusion_vs_captum.json"))
    args = parser.parse_args()
    settings = [tuple(int(value) for value in pair.split(":")) for pair in args.settings.split(",")]

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    results = [compare(classifier, names, images, targets, w, s, args.batch_size) for w, s in settings]
    write_record(args.out, {"images": names, "batch_size": args.batch_size, "settings": results, **machine(classifier.device)})


if __name__ == "__main__":
    main()
