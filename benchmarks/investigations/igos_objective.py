"""Is I-GOS's optimiser short, or its objective? I-GOS's objective at five masks on real photos.

For the first ``--images`` imagenet-samples photos the default model classifies with top-1
probability at least ``--confidence``, I-GOS and iGOS++ run at their defaults, and I-GOS's
objective is evaluated at five 28×28 masks: ``M = 1`` (the start), I-GOS's final mask,
iGOS++'s final combined mask ``M_d·M_i`` (which removes more of the evidence), and the masks
Adam reaches on the paper's equation ``F_end`` (``--adam-steps`` steps, lr ``--adam-lr``) from
``M = 1`` and from ``M = 0``: a plain local minimiser, from I-GOS's start and from the other end::

    F_end(M) = p_C(Φ(x, up(M)))                         + λ1·mean|1 − M| + λ2·TV(M)   (the paper's equation)
    F(M)     = (1/S)·Σ_s p_C(Φ(x, (s/S)·up(M)))        + λ1·mean|1 − M| + λ2·TV(M)   (the path, noiseless)
    F_IG(M)  = (1/S)·Σ_s p_C(Φ(x, (s/S)·up(M)) + n_s)  + λ1·mean|1 − M| + λ2·TV(M)   (the path with the
                                                                                        noise of I-GOS's steps)

``F_IG`` is averaged over ``--draws`` noise draws. If another mask scores lower than I-GOS's,
a better optimiser of the same objective would reach it; if they all score higher, the
objective itself prefers keeping the evidence. Also recorded: the regulariser, the class
probability at the end point (no noise), the mask's mean and its share of cells kept (``M ≥ 0.9``)::

    python benchmarks/investigations/igos_objective.py --images 3 --out benchmarks/results/investigations/igos_objective.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from maskscope import Classifier
from maskscope.core.optimisation.descent import Adam, optimise_masks
from maskscope.core.optimisation.directions import IntegratedGradient, end_point_scores
from maskscope.core.optimisation.games import MaskProblem, get_game
from maskscope.core.perturbation.masks import Upsampler
from maskscope.methods import IGOS, IGOSPlusPlus
from maskscope.methods.igos import heavy_blur

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record
from benchmarks.investigations.igos_real_photos import confident_photos


def objective(problem: MaskProblem, masks: torch.Tensor, points: int, noise: float, draws: int) -> torch.Tensor:
    """I-GOS's integrated objective at ``masks`` with ``points`` path points, averaged over
    ``draws`` noise draws (the first iteration's noise of seeds 0, 1, …; one draw without noise)."""
    everyone = torch.arange(masks.shape[0])
    values = []
    for seed in range(draws if noise > 0 else 1):
        path = IntegratedGradient(points, noise, seed)
        path.draw = 1  # the noise of a run's first iteration, without computing its gradient
        values.append(path.objective(problem, masks, everyone))
    return torch.stack(values).mean(0)


def adam_minimum(problem: MaskProblem, side: int, start: float, steps: int, lr: float) -> torch.Tensor:
    """side×side masks Adam reaches on the end-point objective ``problem.objective`` from ``M = start``."""
    init = torch.full((problem.images.shape[0], 1, side, side), start)
    return optimise_masks(problem, init, step_rule=Adam(lr), steps=steps).masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--confidence", type=float, default=0.5)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--adam-steps", type=int, default=300)
    parser.add_argument("--adam-lr", type=float, default=0.02)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/igos_objective.json"))
    args = parser.parse_args()
    classifier = Classifier.default()
    names, images = confident_photos(classifier, args.images, args.confidence)
    igos = IGOS()
    with torch.no_grad():
        targets = torch.nn.functional.one_hot(classifier.probabilities(images).argmax(1), classifier.num_classes)
    problem = MaskProblem(classifier, images, targets.float(), get_game("deletion"), heavy_blur(min(images.shape[-2:])),
                          Upsampler("bilinear"), igos.regulariser)
    masks = {
        "start (M = 1)": torch.ones(len(names), 1, igos.resolution, igos.resolution),
        "I-GOS final": igos(classifier, images, target="top1", seed=0).mask,
        "iGOS++ final (M_d·M_i)": IGOSPlusPlus()(classifier, images, target="top1", seed=0).mask.prod(1, keepdim=True),
        "Adam on F_end from M = 1": adam_minimum(problem, igos.resolution, 1.0, args.adam_steps, args.adam_lr),
        "Adam on F_end from M = 0": adam_minimum(problem, igos.resolution, 0.0, args.adam_steps, args.adam_lr),
    }
    everyone = torch.arange(len(names))
    rows = {}
    for label, mask in masks.items():
        rows[label] = {
            "objective_end_point": problem.objective(mask).tolist(),
            "objective_noiseless": objective(problem, mask, igos.points, 0.0, 1).tolist(),
            "objective_with_noise": objective(problem, mask, igos.points, igos.noise, args.draws).tolist(),
            "regulariser": problem.penalty(mask, everyone).tolist(),
            "probability_at_end_point": end_point_scores(problem, mask).tolist(),
            "mask_mean": mask.flatten(1).mean(1).tolist(),
            "kept_share": (mask >= 0.9).flatten(1).float().mean(1).tolist(),
        }
        print(label, {key: [round(v, 3) for v in values] for key, values in rows[label].items()}, flush=True)
    shown = {label: {key: round(sum(values) / len(values), 3) for key, values in row.items()} for label, row in rows.items()}
    settings = {"photos": names, "draws": args.draws, "adam_steps": args.adam_steps, "adam_lr": args.adam_lr}
    write_record(args.out, {**settings, "masks": rows, **machine(classifier.device)}, shown)


if __name__ == "__main__":
    main()
