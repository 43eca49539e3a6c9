"""Peak resident memory of ``maskscope explain``, each run in a fresh process.

Every run is ``python -m maskscope.cli.main explain PHOTOS --method M --images-per-batch B`` in its
own interpreter, which reports its own peak resident set size (``ru_maxrss``) when it ends,
so one run's memory never hides in another's. Runs:

* I-GOS, iGOS++, EP, MP and Grad-CAM on the first 16 imagenet-samples photos at each of
  ``--batch-sizes`` (images per batched call), and I-GOS on 8 photos;
* Grad-CAM on one real photo upscaled to 6000×4000 (a JPEG written to a temporary folder),
  beside the same photo at its own size, and — with ``--compare-with`` a checkout of an
  earlier version — the same two runs of that version, to show the reduced decoding.

Peak memory does not depend on the number of optimisation steps (every step sends the same
tensors through the model), so the optimisation methods run ``--steps`` steps (recorded) to
keep the benchmark short; the model-only baseline (imports and the default model, nothing
explained) is measured the same way. Results: ``benchmarks/results/speed/peak_memory.json``.

    python benchmarks/speed/peak_memory.py                      # all runs
    python benchmarks/speed/peak_memory.py --methods gradcam,mp --batch-sizes 1,8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results" / "speed" / "peak_memory.json"
PHOTOS = "imagenet-samples/images"
OPTIMISERS = ("igos", "igos++", "ep", "mp")

#: runs in a fresh interpreter: the CLI (or, with no arguments, only the default model), then its peak RSS
MEASURE = """
import json, resource, sys
arguments = sys.argv[1:]
if arguments:
    from maskscope.cli.main import main
    status = main(arguments)
else:
    from maskscope import Classifier
    Classifier.default()
    status = 0
print(json.dumps({"status": status, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), file=sys.stderr)
"""


def measure(arguments: list[str], code_root: Path = ROOT) -> dict:
    """Peak RSS (MiB), wall time and exit status of one run in a fresh process."""
    environment = {**os.environ, "PYTHONPATH": str(code_root)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *arguments], capture_output=True, text=True, env=environment, cwd=code_root
    )
    seconds = time.perf_counter() - started
    report = json.loads(result.stderr.strip().splitlines()[-1])
    return {"peak_mib": round(report["peak_kib"] / 1024, 1), "seconds": round(seconds, 2), "status": report["status"]}


def data_root() -> Path:
    return Path(os.environ.get("MASKSCOPE_DATA", ROOT.parent / "shared" / "data"))


def photo_folder(work: Path, count: int) -> Path:
    """A folder of links to the first ``count`` imagenet-samples photos."""
    folder = work / f"photos_{count}"
    folder.mkdir()
    for path in sorted((data_root() / PHOTOS).glob("*.jpg"))[:count]:
        (folder / path.name).symlink_to(path)
    return folder


def explain(photos: Path, method: str, batch_size: int, out: Path, steps: int) -> list[str]:
    params = ["--param", f"steps={steps}"] if method in OPTIMISERS else []
    return ["explain", str(photos), "--method", method, "--images-per-batch", str(batch_size), "--out", str(out),
            "--quiet", *params]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="gradcam,mp,ep,igos,igos++")
    parser.add_argument("--batch-sizes", default="1,8", help="images per batched call (default: %(default)s)")
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1, help="optimisation steps of I-GOS, iGOS++, EP, MP")
    parser.add_argument("--compare-with", type=Path, help="a checkout of an earlier maskscope for the large photo")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 6000×4000 photo")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON to write (default: %(default)s)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    runs = [{"run": "model only", **measure([])}]
    print(runs[-1], flush=True)

    def add(run: dict) -> None:  # written after every run, so a stopped benchmark keeps what it measured
        runs.append(run)
        print(run, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"benchmark": "peak resident memory of maskscope explain, one fresh process per run",
                                   "machine": machine(), "runs": runs}, indent=2))

    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        if not args.skip_large:
            source = sorted((data_root() / PHOTOS).glob("*.jpg"))[0]
            large = work / "large" / f"{source.stem}_6000x4000.jpg"
            large.parent.mkdir()
            Image.open(source).convert("RGB").resize((6000, 4000), Image.BICUBIC).save(large, quality=90)
            versions = [("this version", ROOT)] + ([("earlier version", args.compare_with)] if args.compare_with else [])
            for label, root in versions:
                for name, photo in (("its own size", source), ("6000×4000", large)):
                    result = measure(explain(photo, "gradcam", 1, work / f"out_{len(runs)}", args.steps), root)
                    add({"run": f"gradcam, one photo at {name} ({label})", "method": "gradcam", "photos": 1,
                         "batch_size": 1, "photo_size": list(Image.open(photo).size), "code": label, **result})
        folders = {count: photo_folder(work, count) for count in {args.photos, 8}}
        plan = [(m, args.photos, b) for m in methods for b in batch_sizes]
        if "igos" in methods:
            plan.insert(plan.index(("igos", args.photos, batch_sizes[0])), ("igos", 8, 8))
        for method, count, batch_size in plan:
            result = measure(explain(folders[count], method, batch_size, work / f"out_{len(runs)}", args.steps))
            add({"run": f"{method}, {count} photos", "method": method, "photos": count, "batch_size": batch_size,
                 "steps": args.steps if method in OPTIMISERS else None, **result})


if __name__ == "__main__":
    main()
