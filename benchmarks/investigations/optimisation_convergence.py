"""The convergence stop of the mask optimisations (MP, I-GOS) against their full runs on real photos.

For the first ``--photos`` imagenet-samples photos (default classifier, top-1 class) a method
runs twice on the batch of photos with the same seed: every step (``stop_tolerance=None``)
and with the stop (a photo leaves the batch once its mask moved by less than
``--tolerance``, the largest |Δm| of a step, for ``--checks`` successive steps). Recorded per
photo: the steps the stop ran, the Spearman ρ of the two maps and whether each met its
game's goal. The summary gives the share of steps saved, the least and median ρ and how many
photos reach ρ ≥ 0.99 (the bar for making the stop a default)::

    python benchmarks/investigations/optimisation_convergence.py --method mp --photos 16 \\
        --out benchmarks/results/investigations/optimisation_convergence/mp.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from maskscope import Classifier
from maskscope.methods import IGOS, MeaningfulPerturbation
from maskscope.metrics import spearman

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

METHODS = {"mp": MeaningfulPerturbation, "igos": IGOS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=list(METHODS), required=True)
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--checks", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    cls = METHODS[args.method]
    stop = {"stop_tolerance": args.tolerance, "stop_checks": args.checks}
    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.photos)
    seconds = {}
    start = time.perf_counter()
    full = cls()(classifier, images, target="top1")
    seconds["full"] = time.perf_counter() - start
    start = time.perf_counter()
    stopped = cls(**stop)(classifier, images, target="top1")
    seconds["stopped"] = time.perf_counter() - start
    rho = spearman(full.saliency, stopped.saliency)
    steps = stopped.history.isfinite().sum(1)
    rows = [
        {
            "photo": name,
            "steps": full.history.shape[1],
            "steps_run": int(steps[i]),
            "spearman": round(float(rho[i]), 4),
            "goal_met": [bool(full.goal_met[i]), bool(stopped.goal_met[i])],
            "scores_after": [round(float(full.scores_after[i]), 4), round(float(stopped.scores_after[i]), 4)],
        }
        for i, name in enumerate(names)
    ]
    for row in rows:
        print(row)
    values = np.array([row["spearman"] for row in rows])
    summary = {
        "photos": len(rows),
        "steps_saved": float(1 - steps.sum() / (full.history.shape[1] * len(rows))),
        "spearman_min": float(values.min()),
        "spearman_median": float(np.median(values)),
        "photos_with_spearman_at_least_0.99": int((values >= 0.99).sum()),
        "goals_met_full_stopped": [int(full.goal_met.sum()), int(stopped.goal_met.sum())],
    }
    record = {"method": args.method, "stop": stop, **summary, "seconds": seconds, "rows": rows,
              "engine": classifier.engine_record(), "load_average": os.getloadavg()[0], **machine(classifier.device)}
    write_record(args.out, record, shown=summary)


if __name__ == "__main__":
    main()
