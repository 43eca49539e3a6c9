"""FGVis's defended gradient pass and FGVis at its defaults, this checkout against an earlier one.

Two measurements on the first ``--photos`` imagenet-samples photos (default one) and the default
model, each made by a fresh process per checkout (``PYTHONPATH`` set to it), at ``--threads``
torch threads:

* ``passes``: seconds an image of one forward and backward pass of FGVis's objective at its start
  mask (``m ~ U(0.99, 1)``, deletion), at FGVis's batch for these photos, with the adversarial
  defense and without it (the median of ``--repeats`` passes after two warm-up passes). The
  checkouts take turns ``--rounds`` times, so that a drift of the machine's speed touches both.
* ``fgvis`` (unless ``--passes-only``): ``FGVis()`` at its defaults (``--steps`` a λ round) on the
  photos, wall seconds, the gradient passes it made, the λ it chose and whether its goal was met,
  and the Spearman rank correlation of this checkout's map with the earlier one's. With
  ``--floor`` the earlier checkout runs again on torch's AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``):
  the Spearman between its two maps is what a change of float rounding alone does to the map.
  ``--rounds 0`` leaves out the pass timing.

    taskset -c 1 python benchmarks/speed/fgvis_speed.py --before /work/old --threads 1 \\
        --out benchmarks/results/speed/fgvis_speed.json
    taskset -c 1 python benchmarks/speed/fgvis_speed.py --before /work/old --threads 1 --rounds 0 \\
        --steps 100 --floor --out benchmarks/results/speed/fgvis_speed/floor.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

HERE = Path(__file__).resolve().parents[2]


def measure_passes(count: int, threads: int, repeats: int) -> dict:
    """Seconds an image of FGVis's gradient pass, defended and not (run inside a worker)."""
    import torch

    from benchmarks.common.layout import import_module
    from benchmarks.common.photos import imagenet_photos
    from maskscope import Classifier

    AdversarialDefense = import_module("maskscope.core.model.defense").AdversarialDefense

    torch.set_num_threads(threads)
    classifier = Classifier.default()
    _, images = imagenet_photos(classifier, count)
    masks = 1 - 0.01 * torch.rand(images.shape, generator=torch.Generator().manual_seed(0))
    mean = classifier.mean_colour.view(1, 3, 1, 1)
    with torch.no_grad():
        classes = classifier.probabilities(images).argmax(1)

    def one_pass() -> float:
        current = masks.clone().requires_grad_(True)
        start = time.perf_counter()
        probabilities = classifier.probabilities(current * images + (1 - current) * mean)
        probabilities.gather(1, classes[:, None]).sum().backward()
        return time.perf_counter() - start

    def timed() -> float:
        one_pass(), one_pass()
        return statistics.median(one_pass() for _ in range(repeats)) / len(images)

    plain = timed()
    with AdversarialDefense(classifier, images):
        defended = timed()
    return {"undefended_s": plain, "defended_s": defended, "batch": len(images)}


def measure_fgvis(count: int, threads: int, steps: int, maps: Path) -> dict:
    """FGVis at its defaults on the photos: wall seconds, passes, λ, goals (run inside a worker)."""
    import torch

    from benchmarks.common.photos import imagenet_photos
    from maskscope import Classifier
    from maskscope.methods import FGVis

    torch.set_num_threads(threads)
    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, count)
    passes = {"gradient": 0, "no_gradient": 0}
    logits = classifier.logits

    def counted(batch: torch.Tensor) -> torch.Tensor:
        passes["gradient" if torch.is_grad_enabled() and batch.requires_grad else "no_gradient"] += len(batch)
        return logits(batch)

    classifier.logits = counted  # type: ignore[method-assign]
    start = time.perf_counter()
    explanation = FGVis(steps=steps)(classifier, images)
    seconds = time.perf_counter() - start
    np.save(maps, explanation.saliency.numpy())
    return {
        "photos": names,
        "seconds": seconds,
        "seconds_a_photo": seconds / len(images),
        "passes": passes,
        "chosen_l1_weight": explanation.chosen_l1_weight.tolist(),
        "decision_changed": explanation.decision_changed.tolist(),
        "scores_before": explanation.scores_before.tolist(),
        "scores_after": explanation.scores_after.tolist(),
    }


def in_checkout(checkout: Path, arguments: list[str], **variables: str) -> dict:
    """Run this script's ``--worker`` with the package of ``checkout`` (and more environment
    ``variables``); its JSON answer."""
    threads = arguments[arguments.index("--threads") + 1]
    environment = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": threads, **variables}
    done = subprocess.run([sys.executable, __file__, *arguments], env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the worker in {checkout} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of the earlier code (required)")
    parser.add_argument("--photos", type=int, default=1, help="the first N imagenet-samples photos")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10, help="timed passes per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="turns of the two checkouts at the pass timing")
    parser.add_argument("--passes-only", action="store_true", help="leave out FGVis at its defaults")
    parser.add_argument("--steps", type=int, default=500, help="FGVis's steps a λ round (its default: 500)")
    parser.add_argument("--floor", action="store_true", help="run the earlier checkout again on AVX2 kernels")
    parser.add_argument("--worker", choices=("passes", "fgvis"), help=argparse.SUPPRESS)
    parser.add_argument("--maps", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/fgvis_speed.json"))
    args = parser.parse_args()

    if args.worker is not None:
        import maskscope

        if args.worker == "passes":
            answer = measure_passes(args.photos, args.threads, args.repeats)
        else:
            answer = measure_fgvis(args.photos, args.threads, args.steps, args.maps)
        print(json.dumps(answer | {"package": str(Path(maskscope.__file__).parent)}))
        return

    if args.before is None:
        parser.error("--before is required")
    checkouts = {"before": args.before.resolve(), "after": HERE}
    common = ["--photos", str(args.photos), "--threads", str(args.threads)]
    load_before = os.getloadavg()
    turns: dict[str, list[dict]] = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, checkout in checkouts.items():
            turns[name].append(in_checkout(checkout, ["--worker", "passes", "--repeats", str(args.repeats), *common]))
            print(name, turns[name][-1], flush=True)
    record: dict = {"benchmark": "fgvis_speed", "machine": machine(), "before": str(args.before)}
    if args.rounds:
        passes = {
            name: {key: statistics.median(turn[key] for turn in runs) for key in ("undefended_s", "defended_s")}
            | {"turns": runs}
            for name, runs in turns.items()
        }
        record["passes"] = passes
        record["defended_pass_speed_up"] = passes["before"]["defended_s"] / passes["after"]["defended_s"]
    if not args.passes_only:
        runs, maps = {}, {}
        variants = [(name, checkout, {}) for name, checkout in checkouts.items()]
        if args.floor:
            variants.append(("before (AVX2 kernels)", checkouts["before"], {"ATEN_CPU_CAPABILITY": "avx2"}))
        arguments = ["--worker", "fgvis", "--steps", str(args.steps), *common]
        with tempfile.TemporaryDirectory(prefix="maskscope-fgvis-") as scratch:
            for number, (name, checkout, variables) in enumerate(variants):
                path = Path(scratch) / f"{number}.npy"
                runs[name] = in_checkout(checkout, [*arguments, "--maps", str(path)], **variables)
                maps[name] = np.load(path)
                print(name, {k: v for k, v in runs[name].items() if k != "photos"}, flush=True)

        def spearman_between(first: str, second: str) -> list[float]:
            return [float(spearmanr(a.ravel(), b.ravel())[0]) for a, b in zip(maps[first], maps[second])]

        record["fgvis_steps"] = args.steps
        record["fgvis"] = runs
        record["fgvis_speed_up"] = runs["before"]["seconds"] / runs["after"]["seconds"]
        record["map_spearman_to_before"] = spearman_between("after", "before")
        if args.floor:
            record["map_spearman_floor"] = spearman_between("before (AVX2 kernels)", "before")
    record["load_average"] = {"before": load_before, "after": os.getloadavg()}
    write_record(args.out, record)


if __name__ == "__main__":
    main()
