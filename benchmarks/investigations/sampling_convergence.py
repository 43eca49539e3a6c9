"""The convergence stop of RISE, LIME and SP-G against their full sample counts on real photos.

For each of the first ``--photos`` imagenet-samples photos (default classifier, its top-1
class) a method runs twice with the same seed: with every sample (``stop_tolerance=None``)
and with the stop. Recorded per photo: the samples the stop used, the Spearman ρ of the two
maps, and the deletion and insertion AUCs of both (``rise-batch`` protocol). The summary gives
the share of samples saved, the least and median ρ, how many photos reach ρ ≥ 0.99 (the bar
for making the stop a default) and the mean and largest |ΔAUC|. The record is rewritten after
every photo, so a run cut short leaves the photos it finished.

    python benchmarks/investigations/sampling_convergence.py --method rise --photos 16 \\
        --out benchmarks/results/investigations/sampling_convergence/rise.json
    python benchmarks/investigations/sampling_convergence.py --method lime --photos 16 \\
        --out benchmarks/results/investigations/sampling_convergence/lime.json
    python benchmarks/investigations/sampling_convergence.py --method sp-g --photos 16 \\
        --out benchmarks/results/investigations/sampling_convergence/sp-g.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from maskscope import Classifier
from maskscope.methods import LIME, RISE, SlidingPatch
from maskscope.metrics import deletion, insertion, spearman

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

#: method name -> (class, its arguments beyond the defaults, default stop interval)
METHODS = {
    "rise": (RISE, {}, 500),
    "lime": (LIME, {}, 100),
    "sp-g": (SlidingPatch, {"filler": "inpaint"}, 500),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=list(METHODS), required=True)
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--tolerance", type=float, default=0.99)
    parser.add_argument("--interval", type=int, help="samples between checks (default: the method's)")
    parser.add_argument("--checks", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    cls, options, interval = METHODS[args.method]
    stop = {"stop_tolerance": args.tolerance, "stop_interval": args.interval or interval, "stop_checks": args.checks}
    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.photos)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    rows: list[dict] = []
    seconds = {"full": 0.0, "stopped": 0.0}
    for name, image, target in zip(names, images, targets):
        start = time.perf_counter()
        full = cls(**options)(classifier, image[None], target=target)
        seconds["full"] += time.perf_counter() - start
        start = time.perf_counter()
        stopped = cls(**options, **stop)(classifier, image[None], target=target)
        seconds["stopped"] += time.perf_counter() - start
        maps = torch.cat([full.saliency, stopped.saliency])
        pair = image[None].expand(2, -1, -1, -1)
        deleted = deletion(classifier, pair, maps, target=[target, target], protocol="rise-batch").auc
        inserted = insertion(classifier, pair, maps, target=[target, target], protocol="rise-batch").auc
        rows.append({
            "photo": name,
            "samples": int(full.samples_used[0]),
            "samples_used": int(stopped.samples_used[0]),
            "spearman": float(spearman(full.saliency, stopped.saliency)[0]),
            "deletion_auc": [round(float(v), 4) for v in deleted],
            "insertion_auc": [round(float(v), 4) for v in inserted],
        })
        print(rows[-1], flush=True)
        record = {"method": args.method, "options": options, "stop": stop, "photos_asked": args.photos,
                  **summarise(rows), "seconds": seconds, "rows": rows}
        write_record(args.out, {**record, "engine": classifier.engine_record(), "load_average": os.getloadavg()[0],
                                **machine(classifier.device)}, shown={})


def summarise(rows: list[dict]) -> dict:
    """Samples saved, map agreement and AUC differences over the photos done."""
    rho = np.array([r["spearman"] for r in rows])
    used = np.array([r["samples_used"] for r in rows])
    total = np.array([r["samples"] for r in rows])
    d_deletion = np.array([abs(r["deletion_auc"][1] - r["deletion_auc"][0]) for r in rows])
    d_insertion = np.array([abs(r["insertion_auc"][1] - r["insertion_auc"][0]) for r in rows])
    return {
        "photos": len(rows),
        "samples_saved": float(1 - used.sum() / total.sum()),
        "samples_used_min_median_max": [int(used.min()), float(np.median(used)), int(used.max())],
        "spearman_min": float(rho.min()),
        "spearman_median": float(np.median(rho)),
        "photos_with_spearman_at_least_0.99": int((rho >= 0.99).sum()),
        "deletion_auc_abs_difference_mean_max": [float(d_deletion.mean()), float(d_deletion.max())],
        "insertion_auc_abs_difference_mean_max": [float(d_insertion.mean()), float(d_insertion.max())],
    }


if __name__ == "__main__":
    main()
