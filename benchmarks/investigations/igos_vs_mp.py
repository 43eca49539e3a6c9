"""I-GOS against Meaningful Perturbation: deletion, insertion (igos protocol) and seconds per image.

The I-GOS paper's claim (Tables 1, 2, 4): I-GOS reaches a lower deletion and a higher
insertion score than MP, in about 0.35-0.4x MP's time. This script tests it on the first N
photos of imagenet-samples with the default model, each method explaining every photo's
top-1 class, all methods on the same photos, one after the other in this process:

* MP with the paper's defaults (28x28 mask, 300 Adam steps, blur sigma 10), or ``--mp-steps``;
* I-GOS at each ``--resolutions`` (default 28 and 224), with its per-resolution lambdas.

Every method explains ``--batch-size`` photos per call; its seconds per image are that call's
wall time over the photos (the classifier's top-1 pass included, scoring excluded). The
methods take turns batch by batch, so a change in the machine's load falls on all of them
alike; every photo's figures are appended to ``<out>.jsonl`` as they come, and a run started
again with the same ``--out`` goes on from there. The
deletion and insertion curves use the igos protocol (heavy blur substrate, at the
saliency's own resolution), so a 28x28 map removes 28x28 cells. Writes JSON: per method the
mean AUCs with a 95% bootstrap interval over the photos, the mean seconds per image, the
paired differences to MP and the time ratios.

    python benchmarks/investigations/igos_vs_mp.py --images 50 --out benchmarks/results/investigations/igos_vs_mp.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from maskscope import Classifier
from maskscope.bench.summary import bootstrap
from maskscope.methods import IGOS, MeaningfulPerturbation
from maskscope.metrics import deletion, insertion

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def explain_batch(method, classifier: Classifier, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Saliency maps at the method's own resolution (for the igos protocol) and seconds per image."""
    begun = time.perf_counter()
    explanation = method(classifier, batch, target="top1", seed=0)
    return own_resolution(explanation), (time.perf_counter() - begun) / len(batch)


def own_resolution(explanation) -> torch.Tensor:
    """``1 − M`` at the mask's resolution (I-GOS: 1 channel); MP's saliency is already image-sized."""
    if explanation.method == "igos":
        return 1 - explanation.mask[:, 0]
    return explanation.saliency


def curve_aucs(classifier: Classifier, images: torch.Tensor, maps: torch.Tensor) -> dict[str, list[float]]:
    """Deletion and insertion AUCs (igos protocol) of every image."""
    return {
        kind: metric(classifier, images, maps, "top1", protocol="igos", batch_size=8).auc.tolist()
        for kind, metric in (("deletion", deletion), ("insertion", insertion))
    }


def load_rows(path: Path) -> list[dict]:
    """The per-photo rows an earlier run appended (none if it is the first)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(values: np.ndarray) -> dict:
    low, high = bootstrap(values)
    return {"mean": float(values.mean()), "low": low, "high": high}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--mp-steps", type=int, default=300)
    parser.add_argument("--resolutions", default="28,224", help="I-GOS mask sides, comma-separated")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/igos_vs_mp.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    methods = {f"mp-{args.mp_steps}": MeaningfulPerturbation(steps=args.mp_steps)}
    for side in (int(value) for value in args.resolutions.split(",")):
        methods[f"igos-{side}"] = IGOS(resolution=side)
    IGOS(resolution=28)(classifier, images[:1])  # warm-up

    rows_path = args.out.with_suffix(".jsonl")
    rows = load_rows(rows_path)
    done = {(row["method"], row["image"]) for row in rows}
    with rows_path.open("a") as sink:
        for start in tqdm(range(0, len(images), args.batch_size), desc="batches", unit="batch"):
            batch_names = names[start : start + args.batch_size]
            batch = images[start : start + args.batch_size]
            for label, method in methods.items():
                if all((label, name) in done for name in batch_names):
                    continue
                maps, seconds = explain_batch(method, classifier, batch)
                aucs = curve_aucs(classifier, batch, maps)
                for index, name in enumerate(batch_names):
                    row = {"method": label, "image": name, "seconds": seconds}
                    row.update({kind: values[index] for kind, values in aucs.items()})
                    rows.append(row)
                    sink.write(json.dumps(row) + "\n")
                sink.flush()

    per_image, results = {}, {}
    for label, method in methods.items():
        by_image = {row["image"]: row for row in rows if row["method"] == label}
        per_image[label] = {
            key: np.asarray([by_image[name][key] for name in names]) for key in ("seconds", "deletion", "insertion")
        }
        results[label] = {
            "params": {k: v for k, v in method.get_params().items() if k != "filler"},
            "seconds_per_image": float(per_image[label]["seconds"].mean()),
            "deletion_auc": summary(per_image[label]["deletion"]),
            "insertion_auc": summary(per_image[label]["insertion"]),
        }

    reference = f"mp-{args.mp_steps}"
    for label in methods:
        if label == reference:
            continue
        results[label]["versus_mp"] = {
            "time_ratio": results[label]["seconds_per_image"] / results[reference]["seconds_per_image"],
            "deletion_difference": summary(per_image[label]["deletion"] - per_image[reference]["deletion"]),
            "insertion_difference": summary(per_image[label]["insertion"] - per_image[reference]["insertion"]),
            "lower_deletion_share": float((per_image[label]["deletion"] < per_image[reference]["deletion"]).mean()),
            "higher_insertion_share": float(
                (per_image[label]["insertion"] > per_image[reference]["insertion"]).mean()
            ),
        }
    record = {
        "images": names,
        "protocol": "igos",
        "batch_size": args.batch_size,
        "methods": results,
        "per_image": {label: {k: v.tolist() for k, v in values.items()} for label, values in per_image.items()},
        **machine(classifier.device),
    }
    write_record(args.out, record, {label: {k: v for k, v in r.items() if k != "params"} for label, r in results.items()})


if __name__ == "__main__":
    main()
