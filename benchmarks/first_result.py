"""Time to first result: seconds for ``maskscope explain PHOTO --method M`` with defaults, per engine.

Each method (``--methods``; default: every method that needs no trained checkpoint) explains
one imagenet-samples photo with its default parameters, as a fresh ``maskscope explain``
process, on each ``--engines`` entry: ``torch`` (eager, as before the engines) and ``auto``
(the default). ``auto`` is timed with a cold cache (the first run of the model exports it)
and with a warm one. The runs of a method take turns (torch, auto cold, auto warm) before
the next method starts; the wall time includes starting Python and importing torch.
Writes JSON.

    python benchmarks/first_result.py --methods rise,occlusion --out benchmarks/results/first_result.json
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

from records import machine, write_record

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
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/first_result.json"))
    args = parser.parse_args()

    photo = next(iter(open_dataset("imagenet-samples").limit(1))).path
    rows = {}
    for method in args.methods.split(","):
        cold = Path(tempfile.mkdtemp(prefix="maskscope-cold-"))
        row = {
            "torch": explain_seconds(photo, method, "torch", cold, args.timeout),
            "auto_cold_cache": explain_seconds(photo, method, "auto", cold, args.timeout),
            "auto_warm_cache": explain_seconds(photo, method, "auto", cold, args.timeout),
        }
        if row["torch"] and row["auto_warm_cache"]:
            row["speed_ratio_warm"] = row["torch"] / row["auto_warm_cache"]
        rows[method] = row
        print(method, row, flush=True)
    write_record(args.out, {"photo": photo.name, "seconds": rows, **machine()})


if __name__ == "__main__":
    main()
