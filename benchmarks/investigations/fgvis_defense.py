"""What FGVis's adversarial defense does to each game on real photos with the default model.

For the first ``--images`` imagenet-samples photos (top-1 class), at the deletion game's start
mask ``m ~ U(0.99, 1)``, it records the share of nonlinearity outputs the defense's bounds
block (:meth:`~maskscope.core.model.defense.AdversarialDefense.outside_share`) and the cosine
between the defended and the true gradient of ``p_c(Φ(x, m))``; the same share at three
other masks (``m = 0.995`` everywhere, the central quarter of the image deleted, all of it
deleted) says whether any move towards the reference crosses the bounds; then it runs, per
photo:

- the deletion game at the smallest λ of the paper's search (1e-10) for ``--steps`` steps,
  with the defense and without it;
- the preservation game at its defaults but ``--steps`` steps a λ round.

Each run records p before and under the final mask, the mask's mean, the kept area and
``goal_met``::

    python benchmarks/investigations/fgvis_defense.py --images 4 --steps 200 \\
        --out benchmarks/results/investigations/fgvis_defense.json
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from maskscope import Classifier
from maskscope.core.model.defense import AdversarialDefense
from maskscope.methods import FGVis

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record


def start_gradients(classifier: Classifier, images: torch.Tensor, targets: list[int], seed: int = 0) -> dict:
    """At the deletion start mask: the share of units the bounds block (there and at three other masks)
    and cos(defended, true gradient)."""
    method = FGVis()
    masks = method._initial_masks(tuple(images.shape), seed, images.device)
    weights = torch.nn.functional.one_hot(torch.tensor(targets), classifier.num_classes).float()
    problem = method._problem(classifier, images, weights, 0.0)  # the deletion game's Φ(x, m) and p_c

    def gradient(defended: bool) -> torch.Tensor:
        current = masks.clone().requires_grad_(True)
        with AdversarialDefense(classifier, images) if defended else nullcontext():
            problem.class_scores(current, jitter=False).sum().backward()
        return current.grad.flatten(1)

    centre_deleted = torch.ones_like(masks)
    side = images.shape[-1]
    centre_deleted[..., side // 4 : side - side // 4, side // 4 : side - side // 4] = 0
    other_masks = {
        "uniform_0.995": torch.full_like(masks, 0.995),
        "centre_quarter_deleted": centre_deleted,
        "all_deleted": torch.zeros_like(masks),
    }
    with AdversarialDefense(classifier, images) as defense:
        blocked = defense.outside_share(problem.perturb(masks, jitter=False))
        blocked_elsewhere = {
            label: defense.outside_share(problem.perturb(other, jitter=False)).tolist()
            for label, other in other_masks.items()
        }
    true, defended = gradient(False), gradient(True)
    return {
        "outside_share": blocked.tolist(),
        "outside_share_at_other_masks": blocked_elsewhere,
        "cosine_defended_true": torch.nn.functional.cosine_similarity(true, defended).tolist(),
        "norm_true": true.norm(dim=1).tolist(),
        "norm_defended": defended.norm(dim=1).tolist(),
    }


def run(method: FGVis, classifier: Classifier, images: torch.Tensor, targets: list[int]) -> dict:
    """The method on each photo alone: p after, mask mean, kept area, goal and seconds."""
    rows = []
    for image, target in zip(images, targets):
        started = time.perf_counter()
        explanation = method(classifier, image[None], target=[target], seed=0)
        rows.append({
            "probability_after": explanation.scores_after.item(),
            "mask_mean": explanation.mask.mean().item(),
            "kept_area": explanation.kept_area.item(),
            "chosen_l1_weight": explanation.chosen_l1_weight.item(),
            "goal_met": bool(explanation.goal_met.item()),
            "seconds": time.perf_counter() - started,
        })
    return {"photos": rows, "goal_met": sum(row["goal_met"] for row in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200, help="steps per run or λ round (the paper: 500)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/fgvis_defense.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.images)
    with torch.no_grad():
        before = classifier.probabilities(images)
    targets = before.argmax(1).tolist()
    smallest = (FGVis().l1_weights[-1],)
    record = {
        "images": names,
        "steps": args.steps,
        "probability_before": before.max(1).values.tolist(),
        "at_the_deletion_start": start_gradients(classifier, images, targets),
        "deletion_defended": run(FGVis(l1_weights=smallest, steps=args.steps), classifier, images, targets),
        "deletion_undefended": run(FGVis(l1_weights=smallest, steps=args.steps, defense=False), classifier, images, targets),
        "preservation_defended": run(FGVis(game="preservation", steps=args.steps), classifier, images, targets),
        **machine(),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
