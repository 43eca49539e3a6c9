"""Score-CAM: maskscope's `scorecam` against pytorch-grad-cam's `ScoreCAM`, side by side.

Both explain the top-1 class of the same imagenet-samples photos with the default model
(EfficientNet-Lite0) at maskscope's default layer, the output of the head's activation (1280
channels on a 7×7 grid). That module, ``_swish`` (a ReLU6), is shared by every block, and
pytorch-grad-cam records the *first* call of a hooked module (the stem's), so the script
makes the head's activation a module of its own: ``_bn1`` becomes ``Sequential(_bn1,
ReLU6())``, after which ``_swish`` changes nothing (ReLU6 is idempotent; the logits are
checked to be unchanged), and both name ``_bn1``. maskscope runs with pytorch-grad-cam's
weighting (``score="logit", channel_softmax=True``); pytorch-grad-cam masks the normalised
input by multiplication, which is maskscope's mean-colour filler. pytorch-grad-cam min–max
normalises the map on the layer's grid, resizes it with OpenCV (bilinear, as maskscope) and
min–max normalises the resized map again; maskscope's map is put on that scale,
``(S − min S) / (max(S − min S) + 1e-7)``, before comparing. Each runs in eager torch float32
on one thread at its own batch size (maskscope 8 on a CPU, pytorch-grad-cam 16), and which
goes first alternates photo by photo.
Reported: seconds per photo of each and their ratio, the channels maskscope scored (constant
channels share one pass) and the maps' largest absolute difference and Spearman correlation.
Run it from an environment with pytorch-grad-cam, with maskscope on the path:

    PYTHONPATH=. /work/refenv/bin/python benchmarks/agreement/score_cam_vs_grad_cam.py --images 3 \\
        --out benchmarks/results/agreement/score_cam_vs_grad_cam.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from maskscope import Classifier
from maskscope.core.optimisation.layer_masks import find_module
from maskscope.methods import ScoreCAM
from maskscope.methods.score_cam import layer_activations

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

try:
    from pytorch_grad_cam import ScoreCAM as PeerScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
except ImportError as error:  # pragma: no cover - a benchmark-only dependency
    raise SystemExit(f"this benchmark needs pytorch-grad-cam ({error}): pip install grad-cam") from error

LAYER = "_bn1"


def own_head_activation(classifier: Classifier, images: torch.Tensor) -> None:
    """Make the head's ReLU6 a module called once, ``_bn1 → Sequential(_bn1, ReLU6())``."""
    model = classifier.model
    with torch.no_grad():
        before = classifier.logits(images)
        model._bn1 = nn.Sequential(model._bn1, nn.ReLU6())
        after = classifier.logits(images)
    if not torch.equal(before, after):
        raise SystemExit("the model changed its logits when its head activation was given its own module")


def peer_map(classifier: Classifier, image: torch.Tensor, target: int, batch_size: int) -> np.ndarray:
    """pytorch-grad-cam's Score-CAM map H×W (min–max normalised) on the classifier's normalised input."""
    with PeerScoreCAM(model=classifier.model, target_layers=[find_module(classifier.model, LAYER)]) as cam:
        cam.batch_size = batch_size
        return cam(input_tensor=classifier.normalise(image[None]), targets=[ClassifierOutputTarget(target)])[0]


def our_map(method: ScoreCAM, classifier: Classifier, image: torch.Tensor, target: int) -> np.ndarray:
    """maskscope's map H×W on pytorch-grad-cam's scale (min–max normalised)."""
    saliency = method(classifier, image[None], target=[target]).saliency[0]
    shifted = saliency - saliency.min()
    return (shifted / (shifted.max() + 1e-7)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--batch-size", type=int, help="maskscope's masked images per pass (default: its own)")
    parser.add_argument("--peer-batch-size", type=int, default=16, help="pytorch-grad-cam's (default: its own, 16)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/score_cam_vs_grad_cam.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    classifier = Classifier.default(engine="torch")
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    own_head_activation(classifier, images)
    method = ScoreCAM(layer=LAYER, score="logit", channel_softmax=True, batch_size=args.batch_size)
    module = find_module(classifier.model, LAYER)
    photos = []
    for index, (name, image, target) in enumerate(zip(names, images, targets)):
        calls = {
            "maskscope": lambda: our_map(method, classifier, image, target),
            "pytorch-grad-cam": lambda: peer_map(classifier, image, target, args.peer_batch_size),
        }
        order = list(calls) if index % 2 == 0 else list(calls)[::-1]
        maps, seconds = {}, {}
        for key in order:
            start = time.perf_counter()
            maps[key] = calls[key]()
            seconds[key] = time.perf_counter() - start
        activations = layer_activations(classifier, image[None], module)[0].flatten(1)
        live = int((activations.amax(1) > activations.amin(1)).sum())
        difference = float(np.abs(maps["maskscope"] - maps["pytorch-grad-cam"]).max())
        rho = float(spearmanr(maps["maskscope"].ravel(), maps["pytorch-grad-cam"].ravel())[0])
        photos.append({
            "photo": name, "target": classifier.class_names[target], "seconds": seconds,
            "speed_ratio": seconds["pytorch-grad-cam"] / seconds["maskscope"],
            "channels": activations.shape[0], "nonconstant_channels": live,
            "map_max_abs_difference": difference, "map_spearman": rho,
        })
        print(f"{name}: {photos[-1]}", flush=True)
    sides = ("maskscope", "pytorch-grad-cam")
    summary = {
        "seconds_per_photo": {key: float(np.mean([p["seconds"][key] for p in photos])) for key in sides},
        "largest_map_difference": max(p["map_max_abs_difference"] for p in photos),
        "smallest_spearman": min(p["map_spearman"] for p in photos),
    }
    summary["speed_ratio"] = summary["seconds_per_photo"]["pytorch-grad-cam"] / summary["seconds_per_photo"]["maskscope"]
    record = {
        "layer": LAYER, "maskscope": method.get_params(), "peer_batch_size": args.peer_batch_size,
        "summary": summary, "photos": photos, **machine(classifier.device),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
