"""The inference engines side by side: ms per image, start-up time, and agreement with float32.

For each ``--runs`` entry (ENGINE:PRECISION) a copy of the default model's ``Classifier`` on
that engine scores the same imagenet-samples photos in batches of ``--batch-size``; the runs
take turns (the order rotates each round), so load on the machine hits all alike. Reported
per run: milliseconds per image (median over rounds), the seconds to the first result from a
cold cache (export, compilation, int8 calibration) and from a warm one (a new classifier
finding the cached export), the share of photos whose top-1 class equals eager torch
float32's, the largest change of a probability, and the Spearman correlation over pixels of
occlusion and RISE maps of the compiled runs to ``--map-reference``'s maps (default
ONNX Runtime float32, which the tests hold to eager torch float32 within 1e-4; eager torch
on a loaded machine would take most of the benchmark's time). int8 calibrates on ``--calibration``
photos that follow the measured ones. Writes JSON.

    python benchmarks/speed/engines.py --images 16 --out benchmarks/results/speed/engines.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from maskscope import Classifier
from maskscope.methods import RISE, Occlusion
from maskscope.metrics import spearman

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

RUNS = "torch:float32,torch:bfloat16,onnxruntime:float32,openvino:float32,openvino:bfloat16,openvino:int8"


def scores(classifier: Classifier, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([classifier.probabilities(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=RUNS, help="ENGINE:PRECISION, comma-separated (default: %(default)s)")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--calibration", type=int, default=32, help="photos int8 calibrates on")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--map-images", type=int, default=2, help="photos whose occlusion and RISE maps are compared")
    parser.add_argument("--rise-masks", type=int, default=1000)
    parser.add_argument("--map-reference", default="onnxruntime-float32", help="the run whose maps the others' are compared to")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/engines.json"))
    args = parser.parse_args()
    os.environ["MASKSCOPE_CACHE"] = tempfile.mkdtemp(prefix="maskscope-engines-")  # start cold

    base = Classifier.default(engine="torch")
    names, photos = imagenet_photos(base, args.images + args.calibration)
    images, calibration = photos[: args.images], photos[args.images :]
    runs = [tuple(run.split(":")) for run in args.runs.split(",")]
    classifiers, first_seconds, warm_seconds = {}, {}, {}
    for engine, precision in runs:
        name = f"{engine}-{precision}"
        start = time.perf_counter()
        classifiers[name] = Classifier.default(engine=engine, precision=precision, calibration=calibration)
        scores(classifiers[name], images[:1], 1)
        first_seconds[name] = time.perf_counter() - start
        start = time.perf_counter()
        scores(Classifier.default(engine=engine, precision=precision, calibration=calibration), images[:1], 1)
        warm_seconds[name] = time.perf_counter() - start
        print(f"{name}: first result {first_seconds[name]:.1f} s cold, {warm_seconds[name]:.1f} s warm", flush=True)

    times: dict[str, list[float]] = {name: [] for name in classifiers}
    for name, classifier in classifiers.items():
        scores(classifier, images[: args.batch_size], args.batch_size)  # each engine prepares its kernels per shape
    order = list(classifiers)
    for round_ in range(args.rounds):
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            start = time.perf_counter()
            scores(classifiers[name], images, args.batch_size)
            times[name].append((time.perf_counter() - start) / len(images) * 1000)
        print(f"round {round_}: " + ", ".join(f"{n} {times[n][-1]:.1f} ms" for n in order), flush=True)

    reference_name = "torch-float32"
    expected = scores(classifiers.get(reference_name) or base, images, args.batch_size)
    targets = expected.argmax(1)
    methods = {"occlusion": Occlusion(window=35, stride=14), "rise": RISE(samples=args.rise_masks)}
    map_images, map_targets = images[: args.map_images], targets[: args.map_images].tolist()
    map_reference = classifiers[args.map_reference]
    reference_maps = {m: method(map_reference, map_images, target=map_targets).saliency for m, method in methods.items()}
    results = {}
    torch_ms = statistics.median(times[reference_name]) if reference_name in times else None
    for name, classifier in classifiers.items():
        probabilities = scores(classifier, images, args.batch_size)
        row = {
            **classifier.engine_record(),
            "ms_per_image": statistics.median(times[name]),
            "ms_per_image_rounds": times[name],
            "first_result_seconds_cold_cache": first_seconds[name],
            "first_result_seconds_warm_cache": warm_seconds[name],
            "top1_agreement_with_torch_float32": float((probabilities.argmax(1) == targets).float().mean()),
            "max_probability_change": float((probabilities - expected).abs().max()),
        }
        if torch_ms is not None:
            row["speed_ratio_over_torch_float32"] = torch_ms / row["ms_per_image"]
        for m, method in methods.items() if classifier.engine != "torch" else ():
            maps = method(classifier, map_images, target=map_targets).saliency
            row[f"{m}_map_spearman_to_{args.map_reference}"] = [float(v) for v in spearman(maps, reference_maps[m])]
            row[f"{m}_map_max_abs_difference"] = float((maps - reference_maps[m]).abs().max())
        results[name] = row
        print(name, {k: v for k, v in row.items() if k != "ms_per_image_rounds"}, flush=True)
    write_record(args.out, {
        "model": base.name,
        "images": names[: args.images],
        "calibration_images": len(calibration),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "map_reference": args.map_reference,
        "runs": results,
        **machine(base.device),
    }, shown={name: {"ms": r["ms_per_image"], "top1": r["top1_agreement_with_torch_float32"]} for name, r in results.items()})


if __name__ == "__main__":
    main()
