"""Hierarchical perturbation (HiPe) against exhaustive occlusion on real photos.

Both explain the top-1 class of the first N imagenet-samples photos with the default model,
at their defaults: `occlusion` scores every 35×35 window at stride 8 (784 passes on a 224
image), `hipe` scores the 49 windows of 64 px at stride 32 and refines to 32, 16 and 8 px
where its running map reaches the mid-range. Both fill with the classifier's mean colour and
explain the probability. They run one after the other on the same classifier (which goes first
alternates photo by photo). Reported per photo and on average: forward passes (besides the one
on the photo), seconds, the Spearman correlation of the two maps over pixels, and their
deletion and insertion AUCs (``maskscope.metrics``; by default the ``rise-batch`` protocol,
28 steps, as in the reference-agreement rows), with the mean HiPe − occlusion difference and
its 95% bootstrap interval.

    python benchmarks/investigations/hipe_vs_occlusion.py --images 16 \\
        --out benchmarks/results/investigations/hipe_vs_occlusion.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from maskscope import Classifier
from maskscope.bench.summary import mean_interval
from maskscope.methods import HierarchicalPerturbation, Occlusion
from maskscope.metrics import deletion, insertion

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--protocol", default="rise-batch", help="deletion/insertion protocol (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/hipe_vs_occlusion.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    methods = {"occlusion": Occlusion(), "hipe": HierarchicalPerturbation()}
    exhaustive = len(methods["occlusion"].grids(tuple(images.shape[-2:]))[0])
    methods["hipe"](classifier, images[:1], target=targets[:1])  # warm up the engine once
    maps: dict[str, list[torch.Tensor]] = {key: [] for key in methods}
    seconds: dict[str, list[float]] = {key: [] for key in methods}
    passes: dict[str, list[int]] = {"occlusion": [exhaustive] * len(images), "hipe": []}
    for index, (name, image, target) in enumerate(zip(names, images, targets)):
        order = list(methods) if index % 2 == 0 else list(methods)[::-1]
        for key in order:
            start = time.perf_counter()
            explanation = methods[key](classifier, image[None], target=[target])
            seconds[key].append(time.perf_counter() - start)
            maps[key].append(explanation.saliency[0])
            if key == "hipe":
                passes["hipe"].append(int(explanation.samples_used[0]))
        print(f"{name}: hipe {passes['hipe'][-1]} passes {seconds['hipe'][-1]:.1f} s, "
              f"occlusion {exhaustive} passes {seconds['occlusion'][-1]:.1f} s", flush=True)

    spearman = [float(spearmanr(h.flatten(), o.flatten())[0]) for h, o in zip(maps["hipe"], maps["occlusion"])]
    aucs = {}
    for key in methods:
        saliency = torch.stack(maps[key])
        aucs[key] = {
            "deletion": deletion(classifier, images, saliency, targets, args.protocol).auc.numpy(),
            "insertion": insertion(classifier, images, saliency, targets, args.protocol).auc.numpy(),
        }
    summary = {
        key: {
            "passes": float(np.mean(passes[key])), "seconds": float(np.mean(seconds[key])),
            "deletion_auc": float(aucs[key]["deletion"].mean()), "insertion_auc": float(aucs[key]["insertion"].mean()),
        }
        for key in methods
    }
    summary["hipe_share_of_passes"] = summary["hipe"]["passes"] / exhaustive
    summary["map_spearman"] = mean_interval(np.array(spearman))
    for curve in ("deletion", "insertion"):
        summary[f"{curve}_auc_difference_hipe_minus_occlusion"] = mean_interval(aucs["hipe"][curve] - aucs["occlusion"][curve])
    photos = [
        {"photo": name, "target": classifier.class_names[target], "map_spearman": spearman[i],
         **{key: {"passes": passes[key][i], "seconds": seconds[key][i], "deletion_auc": float(aucs[key]["deletion"][i]),
                  "insertion_auc": float(aucs[key]["insertion"][i])} for key in methods}}
        for i, (name, target) in enumerate(zip(names, targets))
    ]
    record = {
        "methods": {key: method.get_params() for key, method in methods.items()}, "protocol": args.protocol,
        "engine": classifier.engine_record(), "summary": summary, "photos": photos, **machine(classifier.device),
    }
    write_record(args.out, record, shown=summary)


if __name__ == "__main__":
    main()
