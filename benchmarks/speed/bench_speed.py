"""The 100-photo ``bench`` command of the measurements against an earlier checkout: wall time and
the table.

The command (docs/results/measurements.md, "Deletion and insertion on imagenet-samples"):

    maskscope bench --data imagenet-samples --limit 100 --methods mp,rise,gradcam,integrated_gradients,\\
        gradient,centre,random --metrics deletion:rise-batch,insertion:rise-batch,deletion:igos,insertion:igos \\
        --param mp.steps=100 --param rise.samples=500 --images-per-batch 4 --seed 0 --out runs/imagenet

runs as a fresh process from the checkout ``--before`` and then from this one, each at its own
defaults (engines, workers), on the whole machine. The earlier code named ``--images-per-batch``
``--batch-size``; the script asks each checkout's ``bench --help`` which it takes. Each run's
``summary.csv`` gives every method and metric's mean AUC and its 95 % bootstrap interval; the
script writes both tables side by side, the largest difference of the means, and whether every
mean of this checkout lies inside the earlier interval.

    git worktree add ../maskscope-before 8f1d1d6
    python benchmarks/speed/bench_speed.py --before ../maskscope-before --out benchmarks/results/speed/bench_speed.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import git_commit, machine, write_record

HERE = Path(__file__).resolve().parents[2]
METHODS = "mp,rise,gradcam,integrated_gradients,gradient,centre,random"
METRICS = "deletion:rise-batch,insertion:rise-batch,deletion:igos,insertion:igos"


def bench_command(checkout: Path, photos: int, out: Path) -> list[str]:
    """The measurements' ``bench`` command for ``checkout``, with its name for images per batch."""
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    usage = subprocess.run([sys.executable, "-m", "maskscope.cli.main", "bench", "--help"], env=environment,
                           cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True).stdout
    per_batch = "--images-per-batch" if "--images-per-batch" in usage else "--batch-size"
    return [sys.executable, "-m", "maskscope.cli.main", "bench", "--data", "imagenet-samples", "--limit", str(photos),
            "--methods", METHODS, "--metrics", METRICS, "--param", "mp.steps=100", "--param", "rise.samples=500",
            per_batch, "4", "--seed", "0", "--no-report", "--quiet", "--out", str(out)]


def timed_run(checkout: Path, command: list[str], out: Path) -> dict:
    """Wall seconds of ``command`` (writing to ``out``) run from ``checkout``, its table (``{"method metric": (mean, low,
    high)}``) and where the time went: each method's record seconds (its maps and curves, summed
    over the records; with worker processes they add up to more than the wall time)."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(command, env={**os.environ, "PYTHONPATH": str(checkout)}, cwd=tempfile.gettempdir(), check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    with open(out / "summary.csv", newline="") as handle:
        table = {f"{row['method']} {row['metric']}": [float(row["mean"]), float(row["low"]), float(row["high"])]
                 for row in csv.DictReader(handle)}
    by_method: dict[str, float] = {}
    for line in (out / "records.jsonl").read_text().splitlines():
        record = json.loads(line)
        by_method[record["method"]] = by_method.get(record["method"], 0.0) + record.get("seconds", 0.0)
    return {"seconds": seconds, "load_before": load_before, "load_after": os.getloadavg()[0], "table": table,
            "record_seconds_by_method": by_method}


def compare_tables(before: dict, now: dict) -> dict:
    """The largest difference of the means, and the rows whose mean now lies outside the earlier interval."""
    shared = sorted(set(before) & set(now))
    outside = [key for key in shared if not before[key][1] <= now[key][0] <= before[key][2]]
    return {"rows": len(shared), "largest_mean_difference": max(abs(before[k][0] - now[k][0]) for k in shared),
            "means_outside_earlier_interval": outside, "missing_rows": sorted(set(before) ^ set(now))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the earlier code")
    parser.add_argument("--photos", type=int, default=100, help="the first N imagenet-samples photos")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/bench_speed.json"))
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="maskscope-bench-speed-") as scratch:
        for name, checkout in (("before", args.before.resolve()), ("now", HERE)):
            print(f"{name} …", flush=True)
            out = Path(scratch) / name
            command = bench_command(checkout, args.photos, out)
            runs[name] = timed_run(checkout, command, out)
            print(f"{name}: {runs[name]['seconds']:.1f} s", flush=True)
    record = {
        "benchmark": "bench_speed",
        "machine": machine(),
        "command": " ".join(command[3:]).replace(str(out), "runs/imagenet"),
        "before": str(args.before),
        "commits": {"before": git_commit(args.before), "now": git_commit(HERE)},
        "photos": args.photos,
        "runs": runs,
        "time_ratio": runs["now"]["seconds"] / runs["before"]["seconds"],
        "tables": compare_tables(runs["before"]["table"], runs["now"]["table"]),
    }
    write_record(args.out, record, shown={k: v for k, v in record.items() if k != "runs"})


if __name__ == "__main__":
    main()
