"""The optimisation methods against an earlier checkout of this project: ``maskscope explain`` on
the same photos, side by side, wall time and maps.

For each method (``--methods``; default the six mask optimisations) the script runs
``maskscope explain PHOTOS --method M`` at the method's defaults as a fresh process, in turn:
from the checkout ``--before`` (the code before the speed work), from this checkout at float32,
and from this checkout with ``--precision fast``. The variants of a method run one after the
other before the next method starts, so a drift of the machine's speed touches all three alike.
Each run writes its maps; the script compares every photo's map with the earlier checkout's
(Spearman rank correlation) and counts the goals met, and writes JSON with each run's wall
seconds and its processes' user and system seconds (``cpu_seconds``).

    python benchmarks/speed/optimisation_speed.py --before ../maskscope-before --photos 16 \\
        --out benchmarks/results/speed/optimisation_speed.json

``--before`` is a checkout of an earlier commit (``git worktree add ../maskscope-before COMMIT``);
both run in this Python environment. ``--new-args`` passes more options to the runs of this
checkout (``--workers 1`` to time one process). ``--rounding-floor N`` runs the earlier code once
more at N torch threads (``OMP_NUM_THREADS``): the same code and settings, only float rounding
changed, so the Spearman between its maps and the first run's is how far rounding alone moves a
method's maps (pinned to one core, ``taskset -c 0 python …``, the first run has one thread).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from maskscope.data.registry import open_dataset

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

OPTIMISATION_METHODS = ("mp", "mp-g", "fgvis", "igos", "igos++", "ep")
HERE = Path(__file__).resolve().parents[2]


def explain(checkout: Path, photos: list[Path], method: str, out: Path, extra: list[str], timeout: float,
            threads: int | None = None) -> dict | None:  # fmt: skip
    """Wall, user and system seconds of one ``maskscope explain`` process run from ``checkout``
    (``None``: timed out), at ``threads`` torch threads when given."""
    command = [sys.executable, "-m", "maskscope.cli.main", "explain", *map(str, photos), "--method", method,
               "--out", str(out), "--quiet", *extra]
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        subprocess.run(command, check=True, timeout=timeout, env=environment, cwd=tempfile.gettempdir(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        return None
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "system": after.ru_stime - before.ru_stime}


def read_run(out: Path, names: list[str]) -> tuple[list[np.ndarray], list[bool | None]]:
    """Every photo's map and whether its goal was met, from a run's folder."""
    maps, goals = [], []
    for name in names:
        maps.append(np.load(out / f"{name}.npy"))
        record = json.loads((out / f"{name}.json").read_text())
        goal = record.get("goal_met")
        goals.append(None if goal is None else bool(goal[0] if isinstance(goal, list) else goal))
    return maps, goals


def goals_met(goals: list[bool | None]) -> int | None:
    """How many photos met their goal (``None`` for a method that sets none)."""
    return None if all(goal is None for goal in goals) else sum(bool(goal) for goal in goals)


def compare(maps: list[np.ndarray], reference: list[np.ndarray]) -> list[float]:
    """Spearman's ρ between each map and the reference map of the same photo."""
    return [float(spearmanr(a.ravel(), b.ravel())[0]) for a, b in zip(maps, reference)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the earlier code")
    parser.add_argument("--methods", default=",".join(OPTIMISATION_METHODS))
    parser.add_argument("--photos", type=int, default=16, help="the first N imagenet-samples photos")
    parser.add_argument("--new-args", default="", help="more options for this checkout's runs")
    parser.add_argument("--skip-fast", action="store_true", help="leave out the --precision fast runs")
    parser.add_argument("--rounding-floor", type=int, metavar="THREADS",
                        help="run the earlier code again at THREADS torch threads (only float rounding differs)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds before a run is given up")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/optimisation_speed.json"))
    args = parser.parse_args()

    samples = list(open_dataset("imagenet-samples").limit(args.photos))
    photos = [Path(sample.path) for sample in samples]
    names = [path.stem for path in photos]
    variants: dict[str, tuple[Path, list[str], int | None]] = {
        "before": (args.before.resolve(), [], None),
        "float32": (HERE, shlex.split(args.new_args), None),
    }
    if not args.skip_fast:
        variants["fast"] = (HERE, [*shlex.split(args.new_args), "--precision", "fast"], None)
    if args.rounding_floor:
        variants["before_rounding"] = (args.before.resolve(), [], args.rounding_floor)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="maskscope-speed-") as scratch:
        for method in args.methods.split(","):
            seconds, usage, runs = {}, {}, {}
            for variant, (checkout, extra, threads) in variants.items():
                out = Path(scratch) / method / variant
                print(f"{method} {variant} …", flush=True)
                usage[variant] = explain(checkout, photos, method, out, extra, args.timeout, threads)
                seconds[variant] = None if usage[variant] is None else usage[variant]["wall"]
                runs[variant] = read_run(out, names) if seconds[variant] is not None else None
            before_maps, before_goals = runs["before"] if runs["before"] else (None, None)
            row: dict = {"seconds": seconds, "cpu_seconds": usage}
            for variant in variants:
                if variant == "before" or runs[variant] is None or before_maps is None:
                    continue
                maps, goals = runs[variant]
                rho = compare(maps, before_maps)
                row[variant] = {
                    "spearman_to_before": {"min": min(rho), "median": float(np.median(rho)), "per_photo": rho},
                    "goals_met": goals_met(goals),
                }
                if variant != "before_rounding":  # its threads share one core: its time says nothing
                    row[variant]["speed_up"] = seconds["before"] / seconds[variant]
            if before_goals is not None:
                row["goals_met_before"] = goals_met(before_goals)
            rows[method] = row
            print(json.dumps({method: {k: v for k, v in row.items() if k != "per_photo"}}, default=str)[:400], flush=True)
    record = {
        "benchmark": "optimisation_speed",
        "machine": machine(),
        "load_average": os.getloadavg(),
        "photos": names,
        "before": str(args.before),
        "new_args": args.new_args,
        "methods": rows,
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
