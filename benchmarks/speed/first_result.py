"""Time to first result: seconds for ``maskscope explain PHOTO --method M`` with defaults, per engine.

Each method (``--methods``; default: every method that needs no trained checkpoint) explains
one imagenet-samples photo with its default parameters, as a fresh ``maskscope explain``
process, on ``torch`` (eager, as before the engines) and on ``auto`` (the default). ``auto``
is timed with a cold cache (the first run of the model exports it) and with a warm one, or,
with ``--skip-cold``, only warm (the cache filled once before the first method). The runs of
a method take turns before the next method starts; the wall time includes starting Python
and importing torch. Writes JSON.

    python benchmarks/speed/first_result.py --methods rise,occlusion --out benchmarks/results/speed/first_result.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from maskscope.data.registry import open_dataset
from maskscope.methods import METHODS

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

NEEDS_CHECKPOINT = {"explainer"}


def explain_seconds(photo: Path, method: str, engine: str, cache: Path, timeout: float) -> float | None:
    """Wall seconds of one ``maskscope explain`` process (``None``: it ran past ``timeout``)."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "maskscope.cli.main", "explain", str(photo), "--method", method,
                   "--engine", engine, "--out", out, "--quiet"]
        start = time.perf_counter()
        try:
            subprocess.run(command, check=True, timeout=timeout, env={**os.environ, "MASKSCOPE_CACHE": str(cache)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(sorted(set(METHODS) - NEEDS_CHECKPOINT)))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a run is given up")
    parser.add_argument("--skip-cold", action="store_true",
                        help="leave out auto with a cold cache (the export: seconds, see benchmarks/speed/engines.py)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed/first_result.json"))
    args = parser.parse_args()

    photo = next(iter(open_dataset("imagenet-samples").limit(1))).path
    warm = Path(tempfile.mkdtemp(prefix="maskscope-warm-")) if args.skip_cold else None
    if warm is not None:  # fill the cache once, so every auto run below finds the export
        explain_seconds(photo, "whole", "auto", warm, args.timeout)
    rows = {}
    for method in args.methods.split(","):
        cold = Path(tempfile.mkdtemp(prefix="maskscope-cold-"))
        row = {"torch": explain_seconds(photo, method, "torch", cold, args.timeout)}
        if warm is None:
            row["auto_cold_cache"] = explain_seconds(photo, method, "auto", cold, args.timeout)
        row["auto_warm_cache"] = explain_seconds(photo, method, "auto", warm or cold, args.timeout)
        if row["torch"] and row["auto_warm_cache"]:
            row["speed_ratio_warm"] = row["torch"] / row["auto_warm_cache"]
        rows[method] = row
        print(method, row, flush=True)
    write_record(args.out, {"photo": photo.name, "seconds": rows, **machine()})


if __name__ == "__main__":
    main()
