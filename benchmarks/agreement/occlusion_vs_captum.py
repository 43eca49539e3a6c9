"""Occlusion: maskscope's `occlusion` against Captum's `Occlusion` at the same windows.

For each window:stride setting (default 35:8, the MP supplement's mean-pixel occlusion, and
29:3, the sliding-patch setting of G-removal) both explain the top-1 class of the same
imagenet-samples photos with the default model: the same square windows at the same
positions (maskscope ``placement="edge"``: Captum's grid, whose last window is clipped by the
border when the stride overshoots it, as for 35:8 on 224 px), the same baseline (the
classifier's mean colour, i.e. 0 in its normalised input, where Captum works), the softmax
probability of the class. Each library batches the perturbed images as it does by default
(Captum's ``perturbations_per_eval``: 1; maskscope: 8 on a CPU), or as ``--captum-batch-size``
and ``--batch-size`` say. maskscope runs once per ``--runs`` entry (ENGINE:PRECISION: eager
torch float32, the ``auto`` engine at float32 and at ``fast``); Captum runs eager torch float32,
as its users run it. Both average each pixel's drop over the windows covering it, so in float32 their maps
should agree to rounding. The runs rotate photo by photo, and so does which goes first.
Reported per setting: seconds per photo of each and the ratios, the seconds inside the model's
forward passes and the rest (each library's own overhead) with its ratio, and the agreement of
each of maskscope's maps with Captum's (Spearman over pixels, largest absolute difference).

    pip install -e ".[compare]"
    python benchmarks/agreement/occlusion_vs_captum.py --images 4 --settings 35:8 \\
        --out benchmarks/results/agreement/occlusion_vs_captum.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from maskscope import Classifier
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.methods import Occlusion

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record
from benchmarks.common.side_by_side import Agreement, SideBySide

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


def compare(classifier, names, images, targets, window, stride, args) -> dict:
    """Time every run on every photo at one setting; their seconds and their maps' agreement."""
    ours = Occlusion(window=window, stride=stride, placement="edge", batch_size=args.batch_size)
    timing, classifiers = SideBySide.at_engines(classifier, args.runs.split(","), "captum")
    count = len(ours.grids(tuple(images.shape[-2:]))[0])
    ours_batch = default_batch_size(args.batch_size, classifier.device)
    timing.warm_up(images.shape[-1], {1, ours_batch, count % ours_batch,
                                      args.captum_batch_size, count % args.captum_batch_size})
    agreement = Agreement(classifiers)
    for index, (image, target) in enumerate(zip(images, targets)):
        calls = {name: (lambda c=c: ours(c, image[None], target=[target]).saliency[0]) for name, c in classifiers.items()}
        calls["captum"] = lambda: captum_map(classifier, image, target, window, stride, args.captum_batch_size)
        maps = timing.run(index, calls)
        print(f"{window}:{stride} {names[index]}: {timing.photo_line(agreement, maps, maps['captum'])}", flush=True)
    timing.release()
    spearmans, differences = agreement.summary()
    return {
        "window": window,
        "stride": stride,
        "windows_per_image": count,
        "batch_size": {"maskscope": ours_batch, "captum": args.captum_batch_size},
        **timing.engines_record(classifiers),
        "map_spearman": spearmans,
        "map_max_abs_difference": differences,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--settings", default="35:8,29:3", help="window:stride pairs, comma-separated")
    parser.add_argument("--batch-size", type=int, help="maskscope's perturbed images per forward pass (default: its own)")
    parser.add_argument("--captum-batch-size", type=int, default=1,
                        help="Captum's perturbations_per_eval (default: %(default)s, Captum's own)")
    parser.add_argument("--runs", default="torch:float32,auto:float32,auto:fast",
                        help="maskscope's runs as ENGINE:PRECISION, comma-separated (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/occlusion_vs_captum.json"))
    args = parser.parse_args()
    settings = [tuple(int(value) for value in pair.split(":")) for pair in args.settings.split(",")]

    classifier = Classifier.default(engine="torch")  # the peer's passes: eager torch, as its users run it
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    results = [compare(classifier, names, images, targets, w, s, args) for w, s in settings]
    write_record(args.out, {"images": names, "settings": results, **machine(classifier.device)})


if __name__ == "__main__":
    main()
