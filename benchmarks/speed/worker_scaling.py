"""``explain`` and the local ``bench`` on worker processes against one process, and the scaling beyond this machine.

Each command runs twice as a user runs it (``python -m maskscope.cli.main``, a fresh process,
wall time from start to exit, so the workers' start-up counts): ``--workers 1`` (one process at
torch's own thread count, as before worker processes existed) and ``--workers 2
--worker-threads 1``. The commands: ``explain`` of the first ``--photos`` imagenet-samples
photos with ``--method mp`` (at its defaults unless ``--mp-steps``), and a small ``bench`` (the
first ``--bench-photos`` photos in batches of ``--bench-batch``, the README's methods and
metrics; ``--mp-steps`` and ``--rise-samples`` shorten it on a busy machine). Both runs of a
command must make the same maps (largest difference and per-photo Spearman) and records.

The projection to 8 and 16 cores takes the photos a second of one one-thread worker measured
here (the two-worker rate halved), times the workers, at the efficiency that
``benchmarks/results/speed/ray_scaling.json`` measured from 1 to 2 single-CPU Ray workers, and caps
it where a run has fewer batches than cores (``explain`` at ``--images-per-batch 8`` gives one worker
per 8 photos). The load average is recorded beside every run: the machine is shared.

    python benchmarks/speed/worker_scaling.py --out benchmarks/results/speed/worker_scaling.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
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

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("MASKSCOPE_DATA", ROOT.parent / "shared" / "data"))
RUNS = {"workers_1": ["--workers", "1"], "workers_2x1": ["--workers", "2", "--worker-threads", "1"]}
BENCH = ["--methods", "gradcam,rise,mp", "--metrics", "deletion:rise-batch,insertion:rise-batch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--bench-photos", type=int, default=4)
    parser.add_argument("--bench-batch", type=int, default=2)
    parser.add_argument("--mp-steps", type=int, default=300, help="MP's steps (300: its default)")
    parser.add_argument("--rise-samples", type=int, default=4000, help="RISE's masks in bench (4000: its default)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/worker_scaling.json"))
    parser.add_argument("--reproject", action="store_true", help="only recompute the projection of --out")
    args = parser.parse_args()
    if args.reproject:
        return reproject(args.out)
    shorter = {"mp.steps": args.mp_steps, "rise.samples": args.rise_samples}
    photos = sorted((DATA / "imagenet-samples" / "images").glob("*.jpg"))[: args.photos]
    record: dict = {"configuration": {
        "explain": f"maskscope explain <first {args.photos} imagenet-samples photos> --method mp --param "
                   f"steps={args.mp_steps} (--images-per-batch 8)",
        "bench": f"maskscope bench --data imagenet-samples --limit {args.bench_photos} --images-per-batch "
                 f"{args.bench_batch} {' '.join(BENCH)} {' '.join(f'--param {k}={v}' for k, v in shorter.items())} "
                 "--no-report",
        "runs": RUNS}}
    with tempfile.TemporaryDirectory() as scratch:
        folders = {name: Path(scratch) / f"bench-{name}" for name in RUNS}
        record["bench"] = {name: timed(["bench", "--data", "imagenet-samples", "--limit", str(args.bench_photos),
                                        "--images-per-batch", str(args.bench_batch), *BENCH, "--no-report", "--quiet",
                                        *[f"--param={k}={v}" for k, v in shorter.items()],
                                        "--out", str(folders[name]), *options], args.bench_photos)
                           for name, options in RUNS.items()}
        record["bench"]["same_records"] = same_records(*folders.values())
        folders = {name: Path(scratch) / f"explain-{name}" for name in RUNS}
        record["explain"] = {name: timed(["explain", *map(str, photos), "--method", "mp", "--quiet",
                                          "--param", f"steps={args.mp_steps}",
                                          "--out", str(folders[name]), *options], len(photos))
                             for name, options in RUNS.items()}
        record["explain"]["maps"] = compare_maps(*folders.values())
    for command in ("explain", "bench"):
        runs = record[command]
        runs["speedup"] = runs["workers_2x1"]["photos_per_second"] / runs["workers_1"]["photos_per_second"]
    record["projection"] = projection(record, args.photos)
    record.update(machine())
    write_record(args.out, record)


def timed(arguments: list[str], photos: int) -> dict:
    """Wall seconds and photos a second of ``maskscope ARGUMENTS`` in a fresh process, with the load around it."""
    before = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "maskscope.cli.main", *arguments], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "photos_per_second": photos / seconds, "load_before": before,
              "load_after": os.getloadavg()[0]}
    print(arguments[0], arguments[-4:], result, flush=True)
    return result


def compare_maps(one: Path, other: Path) -> dict:
    """The largest difference between the two runs' maps, and their lowest per-photo Spearman."""
    largest, lowest = 0.0, 1.0
    paths = sorted(path for path in one.glob("*.npy") if not path.stem.endswith(("_mask", "_history")))
    for path in paths:
        a, b = np.load(path), np.load(other / path.name)
        largest = max(largest, float(np.abs(a - b).max()))
        lowest = min(lowest, float(spearmanr(a.ravel(), b.ravel())[0]))
    return {"photos": len(paths), "largest_difference": largest, "lowest_spearman": lowest}


def same_records(one: Path, other: Path) -> dict:
    """Whether the two runs hold the same triples and values (to 1e-6), the records' seconds aside."""
    def values(folder: Path) -> dict:
        lines = (json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines())
        return {(r["image"], r["method"], r["metric"]): r.get("values", {}) for r in lines}

    a, b = values(one), values(other)
    largest = max((abs(value - b[key][name]) for key in a if key in b for name, value in a[key].items()
                   if isinstance(value, float)), default=0.0)
    return {"records": len(a), "same_triples": set(a) == set(b), "largest_value_difference": largest}


def projection(record: dict, photos: int) -> dict:
    """The scaling to 8 and 16 cores: one one-thread worker's photos a second measured here (the
    two-worker rate, halved, at Ray's 1→2 efficiency undone), and the speedup over it of one
    worker per core at that efficiency, capped by the run's batches where it has fewer."""
    ray = json.loads((ROOT / "benchmarks" / "results" / "speed" / "ray_scaling.json").read_text())
    efficiency = ray["speedup_2_workers_over_1"] / 2
    projected = {"ray_efficiency_1_to_2_workers": efficiency,
                 "ray_workers_the_driver_can_feed": ray["workers_the_driver_can_feed"]}
    for command, batch in (("explain", 8), ("bench", None)):
        per_worker = record[command]["workers_2x1"]["photos_per_second"] / 2 / efficiency
        batches = math.ceil(photos / batch) if batch else None
        projected[command] = {"photos_per_second_per_one_thread_worker": per_worker}
        for cores in (8, 16):
            projected[command][f"{cores}_cores"] = {"speedup_over_one_worker": cores * efficiency,
                                                    "photos_per_second": per_worker * cores * efficiency}
        if batches:
            projected[command]["batches_of_the_run"] = batches
            projected[command]["note"] = (f"{photos} photos at --images-per-batch {batch} make {batches} batches, so at most "
                                          f"{batches} workers; --images-per-batch 1 spreads them on {photos}")
    return projected


def reproject(path: Path) -> None:
    """Recompute the projection of the record at ``path`` (``--reproject``: after a change to it, no rerun)."""
    record = json.loads(path.read_text())
    record["projection"] = projection(record, int(record["configuration"]["explain"].split("first ")[1].split()[0]))
    write_record(path, record, record["projection"])


if __name__ == "__main__":
    main()
