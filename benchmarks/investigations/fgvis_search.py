"""FGVis's λ search: the bisection (the default) against the paper's sequential rule.

Both explain the top-1 class of the same imagenet-samples photos with the default model, at
the paper's 13 λ values and the same steps per round, one after the other in this process.
Reported per photo and on average: seconds of each, rounds each ran, the λ each chose, the
Spearman correlation of their saliency maps, and whether each met the deletion goal of
``maskscope.core.optimisation.games.goal_met``::

    python benchmarks/investigations/fgvis_search.py --images 3 --steps 500 \\
        --out benchmarks/results/investigations/fgvis_search.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from maskscope import Classifier
from maskscope.methods import FGVis
from maskscope.metrics import spearman

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def run(method: FGVis, classifier: Classifier, images: torch.Tensor, targets: list[int]):
    """The explanation, seconds and rounds of ``method`` on each photo alone."""
    rounds = []
    original = FGVis._round

    def counting(self, *args):
        rounds[-1] += 1
        return original(self, *args)

    FGVis._round = counting
    try:
        explanations, seconds = [], []
        for image, target in zip(images, targets):
            rounds.append(0)
            started = time.perf_counter()
            explanations.append(method(classifier, image[None], target=[target]))
            seconds.append(time.perf_counter() - started)
    finally:
        FGVis._round = original
    return explanations, seconds, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--steps", type=int, default=500, help="steps per λ round (the paper: 500)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/fgvis_search.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    results = {}
    for search in ("bisection", "sequential"):
        results[search] = run(FGVis(steps=args.steps, search=search), classifier, images, targets)
    (fast, fast_seconds, fast_rounds), (paper, paper_seconds, paper_rounds) = results["bisection"], results["sequential"]
    fast_maps = torch.cat([e.saliency for e in fast])
    paper_maps = torch.cat([e.saliency for e in paper])
    correlation = spearman(fast_maps, paper_maps)
    record = {
        "images": names,
        "steps": args.steps,
        "bisection": {
            "seconds": fast_seconds,
            "rounds": fast_rounds,
            "lambda": [float(e.chosen_l1_weight[0]) for e in fast],
            "goal_met": [bool(e.goal_met[0]) for e in fast],
            "score_after": [float(e.scores_after[0]) for e in fast],
        },
        "sequential": {
            "seconds": paper_seconds,
            "rounds": paper_rounds,
            "lambda": [float(e.chosen_l1_weight[0]) for e in paper],
            "goal_met": [bool(e.goal_met[0]) for e in paper],
            "score_after": [float(e.scores_after[0]) for e in paper],
        },
        "score_before": [float(e.scores_before[0]) for e in fast],
        "map_spearman": {"mean": float(correlation.mean()), "per_image": correlation.tolist()},
        "speed_ratio_sequential_over_bisection": sum(paper_seconds) / sum(fast_seconds),
        **machine(classifier.device),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
