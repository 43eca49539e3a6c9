"""Throughput of ``bench`` on 1 and 2 single-CPU Ray workers, beside the local runner, and the driver's cost.

A simulated cluster on this machine (``ray.cluster_utils.Cluster``): a head node without CPUs
for the driver and two worker nodes of one CPU each. The same run (the default model, the first
``--images`` imagenet-samples photos, ``--methods`` × ``--metrics``) goes through the local
runner at one torch thread, then Ray with 1 worker, then Ray with 2 workers, ``--repeats`` times
in turn (A B C A B C). Ray's throughput counts the tasks finished after every worker had loaded
its classifier, from then to the last record; the driver's own work (its time not spent waiting for workers) is per image. The
50,000-photo projection divides the measured seconds per image by the worker count at the
measured 2-worker efficiency, and states the worker count beyond which the driver is the bound.
``record_seconds_per_image`` (the records' own times) shows whether the workers had a core each:
it stays level from 1 to 2 workers when they do and doubles when they share one.

    python benchmarks/speed/ray_scaling.py --out benchmarks/results/speed/ray_scaling.json
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch
from ray.cluster_utils import Cluster

from maskscope import Classifier
from maskscope.bench import BenchConfig, run_bench
from maskscope.bench.ray_runner import RayOptions, run_bench_ray
from maskscope.data.registry import open_dataset

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

PHOTOS = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--methods", default="gradient,centre")
    parser.add_argument("--metrics", default="deletion:rise-batch,insertion:rise-batch")
    parser.add_argument("--images-per-batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/ray_scaling.json"))
    args = parser.parse_args()

    config = BenchConfig("imagenet-samples", args.methods.split(","), args.metrics.split(","), limit=args.images,
                         images_per_batch=args.images_per_batch)
    dataset = open_dataset(config.dataset)
    torch.set_num_threads(1)
    classifier = Classifier.default()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="WARNING")
    runs: dict[str, list[dict]] = {"local": [], "ray_1_worker": [], "ray_2_workers": []}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for repeat in range(args.repeats):
                out = Path(scratch) / f"local{repeat}"
                started = time.perf_counter()
                log = run_bench(classifier, dataset, config, out, progress=False)
                runs["local"].append({"images_per_second": args.images / (time.perf_counter() - started),
                                      "record_seconds_per_image": record_seconds(log.records, args.images)})
                for workers, key in ((1, "ray_1_worker"), (2, "ray_2_workers")):
                    out = Path(scratch) / f"{key}{repeat}"
                    run = run_bench_ray(functools.partial(Classifier.default), dataset, config, out,
                                        RayOptions(workers=workers), progress=False)
                    assert run.images == args.images and len(run.log.records) == len(runs_triples(config))
                    runs[key].append({
                        "images_per_second": run.images_per_second(after=run.ready_at[workers - 1]),
                        "startup_seconds": run.ready_at[workers - 1],
                        "driver_ms_per_image": 1000 * run.driver_seconds / run.images,
                        "seconds": run.seconds,
                        "record_seconds_per_image": record_seconds(run.log.records, args.images),
                    })
                print(repeat, {key: value[-1] for key, value in runs.items()}, flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    median = {key: {name: statistics.median(r[name] for r in value) for name in value[0]} for key, value in runs.items()}
    one, two = median["ray_1_worker"]["images_per_second"], median["ray_2_workers"]["images_per_second"]
    efficiency = two / (2 * one)
    seconds_per_image = 1 / one
    driver = median["ray_2_workers"]["driver_ms_per_image"] / 1000
    record = {
        "configuration": {"images": args.images, "methods": config.methods, "metrics": config.metrics,
                          "images_per_batch": args.images_per_batch, "model": "default (EfficientNet-Lite0)",
                          "cluster": "head without CPUs + 2 nodes of 1 CPU, one torch thread per worker"},
        "runs": runs,
        "median": median,
        "speedup_2_workers_over_1": two / one,
        "ray_1_worker_over_local": one / median["local"]["images_per_second"],
        "seconds_per_image_one_worker": seconds_per_image,
        "driver_ms_per_image": 1000 * driver,
        "workers_the_driver_can_feed": seconds_per_image / driver,
        "projected_hours_for_50000_photos": {
            str(workers): PHOTOS * seconds_per_image / (workers * (1 if workers == 1 else efficiency)) / 3600
            for workers in (1, 2, 32, 128)
        },
        "load_average_after": os.getloadavg(),
        **machine(),
    }
    write_record(args.out, record)


def record_seconds(records: list[dict], images: int) -> float:
    """The records' own times (each method's per-image time plus each metric's), summed, per image:
    the time the explaining process spent, which grows when the processes share too few cores."""
    return sum(r["seconds"] for r in records) / images


def runs_triples(config: BenchConfig) -> list:
    return [(i, m, k) for i in range(config.limit) for m in config.methods for k in config.metrics]


if __name__ == "__main__":
    main()
