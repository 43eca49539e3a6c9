"""Do a mask optimisation's maps hold when its gradient passes run at bfloat16?

For each method at its defaults, on the first ``--photos`` imagenet-samples photos, three runs:
float32 with seed 0, float32 with seed 1 (the *noise floor*: how far the method's own randomness
moves the map; a method without randomness has a floor of Spearman 1) and bfloat16 with seed 0
(``Classifier.default(precision="bfloat16")``: gradient passes under bfloat16 autocast, the
passes without gradient on the bfloat16 engine — what ``--precision fast`` gives a validated
method). Per photo it reports the Spearman between the maps (bf16 vs fp32, and the floor), the
deletion and insertion AUC of every map (``rise-batch`` protocol, scored by the float32
classifier, so only the maps differ), whether each run met its game's goal, and the time (the
speed-up is the median over photos of float32's seconds over bfloat16's; the engines are built
before the first run).

A method is *validated* for reduced precision when

* the median over photos of its bf16-vs-fp32 Spearman is no lower than the median of its
  fp32 seed-0-vs-seed-1 Spearman (the floor),
* the 95 % t intervals of the mean deletion and insertion AUC differences (bf16 − fp32) both
  include 0, and
* the bf16 runs meet no fewer goals than the fp32 seed-0 runs,

on at least :data:`MIN_PHOTOS` photos (``rule_holds`` says whether the three hold on the photos
measured, however few).

Photos run ``--batch`` at a time, the three runs interleaved per batch so that the load of the
shared machine falls on them alike; the record is rewritten after every batch and a rerun
skips the photos a method already has (same settings)::

    python benchmarks/investigations/precision_fidelity.py --methods mp igos --photos 16
    python benchmarks/investigations/precision_fidelity.py --methods ep --photos 4
    python benchmarks/investigations/precision_fidelity.py --markdown      # the docs' table of the record
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy import stats

from maskscope import Classifier
from maskscope.core.explanation import Explanation
from maskscope.methods.registry import get_method
from maskscope.metrics import deletion, insertion, spearman

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

METHODS = ("mp", "mp-g", "fgvis", "igos", "igos++", "ep")
#: the three runs: name -> (classifier precision, seed)
RUNS = {"fp32_seed0": ("float32", 0), "fp32_seed1": ("float32", 1), "bf16_seed0": ("bfloat16", 0)}
PROTOCOL = "rise-batch"
#: the fewest photos on which the rule's verdict validates a method
MIN_PHOTOS = 16
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "results" / "investigations" / "precision_fidelity.json"


def image_sized(saliency: torch.Tensor, side: int) -> torch.Tensor:
    """The maps B×H×W at the image's side (bilinear), as the deletion protocol ranks pixels."""
    if saliency.shape[-1] == side and saliency.shape[-2] == side:
        return saliency.float()
    return F.interpolate(saliency[:, None].float(), size=(side, side), mode="bilinear", align_corners=False)[:, 0]


def aucs(classifier: Classifier, images: torch.Tensor, maps: torch.Tensor, targets: list[list[int]]) -> dict:
    """Deletion and insertion AUC per photo of ``maps`` for the explained targets."""
    target = [classes[0] for classes in targets]
    with torch.no_grad():
        return {
            "deletion": deletion(classifier, images, maps, target, PROTOCOL).auc.tolist(),
            "insertion": insertion(classifier, images, maps, target, PROTOCOL).auc.tolist(),
        }


def t_interval(values: list[float]) -> list[float]:
    """The 95 % t interval of the mean of ``values`` (a point when all are equal or n is 1)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return [mean, mean]
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return [mean - half, mean + half]


def median(values: list[float]) -> float:
    """The median (the mean of the middle two for an even count)."""
    return float(statistics.median(values))


def run_batch(method_name: str, classifiers: dict[str, Classifier], images: torch.Tensor) -> dict[str, Explanation]:
    """The three runs of one batch of photos, in the order of :data:`RUNS`."""
    explanations = {}
    for run, (precision, seed) in RUNS.items():
        method = get_method(method_name)
        explanations[run] = method.explain(classifiers[precision], images, "top1", seed=seed)
    return explanations


def photo_rows(names: list[str], explanations: dict[str, Explanation], metric: Classifier, images: torch.Tensor) -> list[dict]:
    """Per photo: the Spearman of the maps, their AUCs, goals met, seconds and the gradient precision."""
    side = images.shape[-1]
    maps = {run: image_sized(e.saliency, side) for run, e in explanations.items()}
    targets = explanations["fp32_seed0"].targets
    curves = {run: aucs(metric, images, maps[run], targets) for run in RUNS}
    bf16_rho = spearman(maps["bf16_seed0"], maps["fp32_seed0"]).tolist()
    floor_rho = spearman(maps["fp32_seed1"], maps["fp32_seed0"]).tolist()
    rows = []
    for i, name in enumerate(names):
        row: dict = {"photo": name, "target": targets[i], "spearman_bf16_fp32": bf16_rho[i], "spearman_seed_floor": floor_rho[i]}
        for run, e in explanations.items():
            row[run] = {
                "deletion_auc": curves[run]["deletion"][i],
                "insertion_auc": curves[run]["insertion"][i],
                "goal_met": None if e.goal_met is None else bool(e.goal_met[i]),
                "seconds": e.seconds / len(names),
                "engine": e.engine,
            }
        rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict:
    """The rule applied to a method's photos (see the module's docstring)."""
    bf16_rho = [r["spearman_bf16_fp32"] for r in rows]
    floor_rho = [r["spearman_seed_floor"] for r in rows]
    result: dict = {
        "photos": len(rows),
        "spearman_bf16_fp32": {"median": median(bf16_rho), "min": min(bf16_rho)},
        "spearman_seed_floor": {"median": median(floor_rho), "min": min(floor_rho)},
    }
    holds = result["spearman_bf16_fp32"]["median"] >= result["spearman_seed_floor"]["median"]
    for kind in ("deletion_auc", "insertion_auc"):
        differences = [r["bf16_seed0"][kind] - r["fp32_seed0"][kind] for r in rows]
        seed_differences = [r["fp32_seed1"][kind] - r["fp32_seed0"][kind] for r in rows]
        interval = t_interval(differences)
        result[f"{kind}_difference"] = {"mean": sum(differences) / len(differences), "ci95": interval,
                                        "seed_floor_ci95": t_interval(seed_differences)}
        holds = holds and interval[0] <= 0 <= interval[1]
    goals = {run: sum(bool(r[run]["goal_met"]) for r in rows) for run in RUNS}
    result["goals_met"] = goals
    holds = holds and goals["bf16_seed0"] >= goals["fp32_seed0"]
    result["seconds"] = {run: sum(r[run]["seconds"] for r in rows) for run in RUNS}
    result["speedup_bf16"] = median([r["fp32_seed0"]["seconds"] / r["bf16_seed0"]["seconds"] for r in rows])
    result["rule_holds"] = bool(holds)
    result["validated"] = bool(holds and len(rows) >= MIN_PHOTOS)
    return result


def markdown(record: dict) -> str:
    """The docs' table of a record: a row per method measured."""
    lines = [
        "| method | photos | Spearman bf16 vs fp32 (median, min) | seed floor (median, min) "
        "| deletion AUC bf16 − fp32 (mean, 95 % CI) | insertion AUC bf16 − fp32 (mean, 95 % CI) "
        "| goals met fp32 / bf16 | speed-up | rule holds | validated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in record["methods"].items():
        s = entry["summary"]
        cells = [name, str(s["photos"])]
        for key in ("spearman_bf16_fp32", "spearman_seed_floor"):
            cells.append(f"{s[key]['median']:.3f}, {s[key]['min']:.3f}")
        for key in ("deletion_auc_difference", "insertion_auc_difference"):
            low, high = s[key]["ci95"]
            cells.append(f"{s[key]['mean']:+.4f} [{low:+.4f}, {high:+.4f}]")
        goals = s["goals_met"]
        cells += [f"{goals['fp32_seed0']}/{s['photos']} / {goals['bf16_seed0']}/{s['photos']}",
                  f"{s['speedup_bf16']:.2f}×", "yes" if s["rule_holds"] else "no", "yes" if s["validated"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge(out: Path, others: list[Path]) -> None:
    """Add the photos of ``others`` to ``out``'s methods of the same parameters (photo order as
    in imagenet-samples) and recompute their summaries."""
    record = json.loads(out.read_text())
    for other in others:
        for name, entry in json.loads(other.read_text())["methods"].items():
            mine = record["methods"].setdefault(name, {"params": entry["params"], "rows": []})
            if mine["params"] != entry["params"]:
                raise SystemExit(f"{other}: {name} ran with other parameters than in {out}")
            done = {row["photo"] for row in mine["rows"]}
            mine["rows"] += [row for row in entry["rows"] if row["photo"] not in done]
    for entry in record["methods"].values():
        entry["rows"].sort(key=lambda row: row["photo"])
        entry["summary"] = summary(entry["rows"])
    out.write_text(json.dumps(record, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--photos", type=int, default=16, help="the first N imagenet-samples photos (default: 16)")
    parser.add_argument("--start", type=int, default=0, help="skip the first K of them (another run has them)")
    parser.add_argument("--batch", type=int, default=4, help="photos explained in one call (default: 4)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="add the photos of these records (runs of the same settings, e.g. --start) to --out, run nothing")
    parser.add_argument("--markdown", action="store_true", help="print the docs' table of --out and run nothing")
    args = parser.parse_args()
    if args.merge:
        merge(args.out, args.merge)
    if args.merge or args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return
    torch.set_num_threads(args.threads)
    record: dict = json.loads(args.out.read_text()) if args.out.exists() else {"methods": {}}
    classifiers = {precision: Classifier.default(precision=precision) for precision in ("float32", "bfloat16")}
    names, images = imagenet_photos(classifiers["float32"], args.photos)
    with torch.no_grad():  # engines built (exported, compiled) before anything is timed
        for classifier in classifiers.values():
            classifier.logits(images[:1])
    for method_name in args.methods:
        entry = record["methods"].get(method_name, {})
        if entry.get("params") != get_method(method_name).get_params().__repr__():
            entry = {"params": get_method(method_name).get_params().__repr__(), "rows": []}
        done = {row["photo"] for row in entry["rows"]}
        todo = [i for i, name in enumerate(names) if name not in done and i >= args.start]
        for start in range(0, len(todo), args.batch):
            chosen = todo[start : start + args.batch]
            load = os.getloadavg()[0]
            began = time.perf_counter()
            explanations = run_batch(method_name, classifiers, images[chosen])
            rows = photo_rows([names[i] for i in chosen], explanations, classifiers["float32"], images[chosen])
            for row in rows:
                row["load_before"] = load
            entry["rows"] += rows
            entry["summary"] = summary(entry["rows"])
            if args.out.exists():  # another run may have written other methods meanwhile
                record = json.loads(args.out.read_text())
            record["methods"][method_name] = entry
            record.update(machine(), protocol=PROTOCOL, runs={k: list(v) for k, v in RUNS.items()})
            write_record(args.out, record, {method_name: entry["summary"]})
            print(f"{method_name}: {len(entry['rows'])} photos, batch {time.perf_counter() - began:.0f} s "
                  f"(load {load:.2f} -> {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
