"""What a report shows, read from a run folder: a ``bench`` run or an ``explain`` output folder.

A ``bench`` run holds ``config.json`` and ``records.jsonl`` (and, when kept, the cached maps
``maps/<method>/<image>.npy``); an ``explain`` folder holds one ``NAME.json`` record per
image (beside ``NAME.npy`` and the overlay ``NAME.png``), possibly in a sub-folder per method.
Both become one :class:`RunData`: summary rows, mean curves, a gallery entry per image with a
cell per method (its per-map values and where its map is), the failed and skipped items,
and the configuration.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: the value of a metric's record that the gallery shows and sorts by
PRIMARY = {"deletion": "auc", "insertion": "auc", "pointing": "hit", "segmentation": "iou"}


@dataclass
class Cell:
    """One (image, method): per-map values, status, and the map (``.npy``) or overlay (``.png``) found."""

    values: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    reason: str = ""
    map_path: Path | None = None
    overlay_path: Path | None = None


@dataclass
class ImageEntry:
    name: str
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)
    photo_path: Path | None = None


@dataclass
class RunData:
    kind: str
    title: str
    methods: list[str]
    metrics: list[str]
    summary: list[dict]
    curves: dict
    images: list[ImageEntry]
    problems: list[dict]
    config: dict
    notes: list[str] = field(default_factory=list)


def collect(run_dir: str | os.PathLike) -> RunData:
    """Read the run in ``run_dir``; a folder that is neither kind is a one-line ``ValueError``."""
    run_dir = Path(run_dir)
    if (run_dir / "records.jsonl").is_file():
        return collect_bench(run_dir)
    if run_dir.is_dir() and any(_explain_records(run_dir)):
        return collect_explain(run_dir)
    raise ValueError(f"{run_dir}: not a bench run (records.jsonl) nor an explain folder (NAME.json records)")


def collect_bench(run_dir: Path) -> RunData:
    from maskscope.bench.plots import mean_curves
    from maskscope.bench.records import RecordLog
    from maskscope.bench.summary import summary_rows

    records = RecordLog(run_dir / "records.jsonl").records
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    methods = list(dict.fromkeys(config.get("methods") or [r["method"] for r in records]))
    metrics = list(dict.fromkeys(config.get("metrics") or [r["metric"] for r in records]))
    entries: dict[str, ImageEntry] = {}
    problems = []
    for record in records:
        entry = entries.setdefault(record["image"], ImageEntry(record["image"], record.get("target_name") or ""))
        entry.label = entry.label or record.get("target_name") or ""
        cell = entry.cells.setdefault(record["method"], Cell())
        if record["status"] == "ok":
            cell.values.update(metric_values(record["metric"], record["values"]))
        else:
            problems.append({key: record.get(key) for key in ("image", "method", "metric", "status", "reason")})
            if cell.status != "failed":
                cell.status, cell.reason = record["status"], record.get("reason", "")
    notes = []
    maps_dir = run_dir / "maps"
    found = 0
    for entry in entries.values():
        for method, cell in entry.cells.items():
            path = maps_dir / method / f"{entry.name}.npy"
            if path.is_file():
                cell.map_path = path
                found += 1
    if not found:
        notes.append(f"no cached maps in {maps_dir}: the gallery shows metric values only")
    photos = _photo_paths(config.get("dataset"), set(entries)) if found else {}
    if found and not photos:
        notes.append(f"dataset {config.get('dataset')!r} could not be opened: maps are drawn without their photos")
    for name, path in photos.items():
        entries[name].photo_path = path
    return RunData("bench", f"bench: {config.get('dataset', run_dir.name)}", methods, metrics,
                   summary_rows(records), mean_curves(records), list(entries.values()), problems,
                   config, notes)


def collect_explain(run_dir: Path) -> RunData:
    from maskscope.bench.summary import mean_interval

    entries: dict[str, ImageEntry] = {}
    params: dict[str, dict] = {}
    values: dict[tuple[str, str], list[float]] = {}
    for path in _explain_records(run_dir):
        record = json.loads(path.read_text())
        method = record["method"]
        params.setdefault(method, record.get("params", {}))
        key = str(path.relative_to(run_dir).with_suffix("")).replace("\\", "/")
        name = key if len(key.split("/")) < 2 or key.split("/")[0] != method else key.split("/", 1)[1]
        entry = entries.setdefault(name, ImageEntry(name, " + ".join(record.get("target_names") or [])))
        cell = Cell({k: float(record[k]) for k in ("score_before", "score_after", "seconds") if record.get(k) is not None})
        for metric, value in cell.values.items():
            values.setdefault((method, metric), []).append(value)
        cell.map_path = path.with_suffix(".npy") if path.with_suffix(".npy").is_file() else None
        cell.overlay_path = path.with_suffix(".png") if path.with_suffix(".png").is_file() else None
        entry.cells[method] = cell
    summary = []
    for (method, metric), numbers in sorted(values.items(), key=lambda item: (item[0][1], item[0][0])):
        summary.append({"method": method, "metric": metric, **mean_interval(np.asarray(numbers)), "n": len(numbers),
                        "skipped": 0, "failed": 0, "note": EXPLAIN_NOTES[metric]})
    methods = sorted(params)
    return RunData("explain", f"explain: {run_dir.name}", methods, ["score_before", "score_after", "seconds"],
                   summary, {}, sorted(entries.values(), key=lambda e: e.name), [],
                   {"methods": params, "versions": environment_versions()},
                   ["an explain folder has no deletion or insertion records: run maskscope bench for curves"])


EXPLAIN_NOTES = {"score_before": "target probability on the photo",
                 "score_after": "target probability on the perturbed photo", "seconds": "seconds per image"}


def metric_values(metric: str, values: dict) -> dict[str, float]:
    """The scalar values of one record: ``{metric: value}`` for its primary value, ``{metric key: value}`` else."""
    primary = PRIMARY.get(metric.partition(":")[0])
    scalars = {key: float(value) for key, value in values.items() if isinstance(value, (int, float))}
    if primary in scalars:
        return {metric: scalars.pop(primary), **{f"{metric} {key}": value for key, value in scalars.items()}}
    return {f"{metric} {key}": value for key, value in scalars.items()}


def environment_versions() -> dict[str, str]:
    """Versions of Python, torch, numpy and maskscope making the report."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("torch", "numpy", "maskscope"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _explain_records(run_dir: Path):
    for path in sorted(run_dir.rglob("*.json")):
        if path.with_suffix(".npy").is_file() and "report" not in path.relative_to(run_dir).parts:
            yield path


def _photo_paths(dataset: str | None, names: set[str]) -> dict[str, Path]:
    """Photo file per image name, from the run's dataset when it can be opened here."""
    if not dataset:
        return {}
    from maskscope.data.dataset import DatasetError
    from maskscope.data.registry import open_dataset

    try:
        return {sample.name: sample.path for sample in open_dataset(dataset) if sample.name in names}
    except (DatasetError, OSError, ValueError):
        return {}
