"""LIME: maskscope's batched `lime` against the lime package's `LimeImageExplainer`.

Both explain the top-1 class of the same imagenet-samples photos with the default model and
the same settings: the same SLIC superpixels (n_segments 50, compactness 30, σ 3; lime is
given maskscope's segmentation function, so the superpixels are identical), N samples, the
kernel width 0.25 on the cosine distance, the classifier's mean colour in hidden
superpixels, ridge α = 1, all through the same ``Classifier`` (lime's ``classifier_fn``
converts its NumPy batch and calls it). Each library batches its classifier calls as it does
by default (lime: 10 images a call; maskscope: 8 on a CPU), or as ``--lime-batch-size`` and
``--batch-size`` say. maskscope runs once per ``--runs`` entry (ENGINE:PRECISION: eager torch
float32, the ``auto`` engine at float32 and at ``fast``); lime runs eager torch float32, as
its users run it. The runs rotate photo by photo, and so does which goes first, so load on the machine
hits all alike. Reported: seconds per photo of each and the ratios; the seconds spent inside
the model's forward passes and the rest, each library's own overhead, with its ratio;
whether the superpixels were identical; and how well each set of maskscope's superpixel
weights agrees with lime's (Spearman correlation, largest absolute difference). Given the
same seed, lime (NumPy's ``RandomState``) and maskscope (a torch generator) draw the same
bits from the same Mersenne Twister in the same order, so their samples are identical and,
in float32, the weights should agree to rounding: the benchmark checks the whole method, not
only its speed.

    pip install -e ".[compare]"
    python benchmarks/agreement/lime_vs_lime.py --images 4 --samples 1000 --out benchmarks/results/agreement/lime_vs_lime.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import torch

from maskscope import Classifier
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.methods import LIME
from maskscope.methods.lime import superpixels

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record
from benchmarks.common.side_by_side import Agreement, SideBySide

try:
    from lime.lime_image import LimeImageExplainer
except ImportError as error:  # pragma: no cover - a benchmark-only dependency
    raise SystemExit(f"this benchmark needs the lime package ({error}): pip install -e '.[compare]'") from error


def lime_classifier_fn(classifier: Classifier):
    """lime's ``classifier_fn``: a batch N×H×W×3 (float64, [0, 1]) → probabilities N×C."""

    def predict(batch: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            return classifier.probabilities(images).numpy()

    return predict


def segment(array: np.ndarray) -> np.ndarray:
    """maskscope's SLIC superpixels of an H×W×3 array, for lime."""
    return superpixels(torch.from_numpy(array).permute(2, 0, 1)).numpy()


def run_lime(classifier, image, target, args, seed) -> tuple[np.ndarray, np.ndarray]:
    """The lime package's superpixel weights and segments for one photo."""
    explainer = LimeImageExplainer(kernel_width=0.25, random_state=seed)
    array = image.permute(1, 2, 0).double().numpy()
    with contextlib.redirect_stderr(io.StringIO()):  # lime always draws a progress bar
        explanation = explainer.explain_instance(
            array,
            lime_classifier_fn(classifier),
            labels=(target,),
            top_labels=None,
            hide_color=tuple(classifier.mean_colour.flatten().tolist()),
            num_samples=args.samples,
            batch_size=args.lime_batch_size,
            segmentation_fn=segment,
            random_seed=seed,
        )
    weights = np.zeros(int(explanation.segments.max()) + 1)
    for superpixel, weight in explanation.local_exp[target]:
        weights[superpixel] = weight
    return weights, explanation.segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--samples", type=int, default=1000, help="N for both (LIME's default: 1000)")
    parser.add_argument("--batch-size", type=int, help="maskscope's images per classifier call (default: its own)")
    parser.add_argument("--lime-batch-size", type=int, default=10, help="lime's (default: %(default)s, lime's own)")
    parser.add_argument("--runs", default="torch:float32,auto:float32,auto:fast",
                        help="maskscope's runs as ENGINE:PRECISION, comma-separated (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/lime_vs_lime.json"))
    args = parser.parse_args()

    classifier = Classifier.default(engine="torch")  # the peer's passes: eager torch, as its users run it
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    ours = LIME(samples=args.samples, batch_size=args.batch_size)
    timing, classifiers = SideBySide.at_engines(classifier, args.runs.split(","), "lime")
    ours_batch = default_batch_size(args.batch_size, classifier.device)
    timing.warm_up(images.shape[-1], {1, ours_batch, args.samples % ours_batch,
                                      args.lime_batch_size, args.samples % args.lime_batch_size})
    agreement = Agreement(classifiers)
    identical = []
    for index, (image, target) in enumerate(zip(images, targets)):
        seed = args.seed + index
        calls = {name: (lambda c=c: ours(c, image[None], target=[target], seed=seed)) for name, c in classifiers.items()}
        calls["lime"] = lambda: run_lime(classifier, image, target, args, seed)
        results = timing.run(index, calls)
        theirs, segments = results["lime"]
        identical.append(bool(np.array_equal(segments, superpixels(image).numpy())))
        theirs = torch.from_numpy(theirs).float()
        weights = {name: results[name].superpixel_weights[0, : len(theirs)] for name in classifiers}
        print(f"{names[index]}: {timing.photo_line(agreement, weights, theirs)}", flush=True)

    spearmans, differences = agreement.summary()
    record = {
        "images": names,
        "samples": args.samples,
        "batch_size": {"maskscope": ours_batch, "lime": args.lime_batch_size},
        **timing.engines_record(classifiers),
        "segmentations_identical": all(identical),
        "superpixel_weight_spearman": spearmans,
        "superpixel_weight_max_abs_difference": differences,
        **machine(classifier.device),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
