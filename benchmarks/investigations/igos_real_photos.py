"""I-GOS and iGOS++ at their defaults on real photos: does the deletion mask remove the evidence?

For the first ``--images`` imagenet-samples photos that the default model classifies with
top-1 probability at least ``--confidence``, each method explains the top-1 class one photo
at a time with its documented defaults (plus any ``--param NAME=VALUE``), and the script
records per photo: the class probability before, under the final deletion mask (the
image kept where ``M = 1``, the heavy blur elsewhere), the share of mask cells kept
(``M ≥ 0.9``), the mask's mean and minimum, the deletion and insertion AUC of its map
(``igos`` protocol) and the seconds. The same script runs on an
older version of the library (put its source first on ``PYTHONPATH``) to give the
before/after figures of a change:

    git archive 43b08b1 | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before python benchmarks/investigations/igos_real_photos.py --label before
    PYTHONPATH=$PWD python benchmarks/investigations/igos_real_photos.py --label after

Writes ``benchmarks/results/investigations/igos_real_photos/<label>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from maskscope import Classifier
from maskscope.methods import get_method
from maskscope.metrics import deletion, insertion

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def confident_photos(classifier: Classifier, count: int, confidence: float, scan: int = 64):
    """Names and images of the first ``count`` of ``scan`` photos whose top-1 probability is at least ``confidence``."""
    names, images = imagenet_photos(classifier, scan)
    with torch.no_grad():
        top = classifier.probabilities(images).max(1).values
    chosen = (top >= confidence).nonzero().flatten()[:count]
    return [names[i] for i in chosen], images[chosen]


def parse_params(pairs: list[str]) -> dict:
    """``NAME=VALUE`` pairs: ``true``/``false``, an int, a float, else the text (``search_objective=path``)."""
    params: dict = {}
    for pair in pairs:
        name, value = pair.split("=", 1)
        if value.lower() in ("true", "false"):
            params[name] = value.lower() == "true"
            continue
        for kind in (int, float, str):
            try:
                params[name] = kind(value)
                break
            except ValueError:
                continue
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--confidence", type=float, default=0.5)
    parser.add_argument("--methods", default="igos,igos++")
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE for every method")
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    classifier = Classifier.default()
    names, images = confident_photos(classifier, args.images, args.confidence)
    params = parse_params(args.param)
    results = {}
    for name in args.methods.split(","):
        rows = []
        for photo, image in zip(names, images):
            method = get_method(name, **params)
            begun = time.perf_counter()
            explanation = method(classifier, image[None], target="top1", seed=0)
            seconds = time.perf_counter() - begun
            mask = explanation.mask[0].prod(0)  # iGOS++ keeps M_d and M_i; its explanation is their product
            target = explanation.targets[0][0]
            auc = {  # of the 28×28 map 1 − M, as benchmarks/agreement/reference_agreement.py scores the I-GOS rows
                kind: float(curve(classifier, image[None], (1 - mask)[None], target=[target], protocol="igos").auc[0])
                for kind, curve in (("deletion_auc", deletion), ("insertion_auc", insertion))
            }
            rows.append(
                {
                    "image": photo,
                    "target": explanation.target_names[0][0],
                    "probability_before": float(explanation.scores_before[0]),
                    "probability_after": float(explanation.scores_after[0]),
                    "kept_share": float((mask >= 0.9).float().mean()),
                    "mask_mean": float(mask.mean()),
                    "mask_min": float(mask.min()),
                    **auc,
                    "seconds": seconds,
                }
            )
            print(name, rows[-1], flush=True)
        column = {key: np.asarray([row[key] for row in rows]) for key in rows[0] if key not in ("image", "target")}
        results[name] = {
            "params": {k: v for k, v in get_method(name, **params).get_params().items() if k != "filler"},
            "mean": {key: float(values.mean()) for key, values in column.items()},
            "photos": rows,
        }
    out = args.out or Path(f"benchmarks/results/investigations/igos_real_photos/{args.label}.json")
    record = {"label": args.label, "confidence": args.confidence, "methods": results, **machine(classifier.device)}
    write_record(out, record, {name: result["mean"] for name, result in results.items()})


if __name__ == "__main__":
    main()
