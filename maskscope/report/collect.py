"""What a report shows, read from a run folder: a ``bench`` run or an ``explain`` output folder.

A ``bench`` run holds ``config.json`` and ``records.jsonl`` (and, when kept, the cached maps
``maps/<method>/<image>.npy``); an ``explain`` folder holds one ``NAME.json`` record per
image (beside ``NAME.npy`` and the overlay ``NAME.png``), possibly in a sub-folder per method.
Both become one :class:`RunData`: summary rows, mean curves, a gallery entry per image with a
cell per method (its per-map values and where its map is), the failed and skipped items,
and the configuration. Every metric carries the way it is better (:func:`better`).

A method is shown under the name it was asked for: a bench run's ``--methods`` name, an
explain record's ``asked_as`` (``lime-g``, not the ``lime`` it runs), so that two settings of
one method are never pooled (:func:`explain_group`).

The run is only read, never changed. A record that is not what ``bench`` or ``explain`` writes
(a line of ``records.jsonl`` that is not JSON or lacks a key, a ``NAME.json`` without its
method) is a one-line :class:`~maskscope.errors.MaskscopeValueError` naming the file and line:
a report that skipped it would show means and counts that differ from the run's ``summary.csv``.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maskscope.bench.records import parse_record
from maskscope.errors import MaskscopeValueError

#: the value of a metric's record that the gallery shows and sorts by
PRIMARY = {"deletion": "auc", "insertion": "auc", "pointing": "hit", "segmentation": "iou"}
#: the keys of a bench record's ``values`` per metric kind that the report reads
VALUE_KEYS: dict[str, dict[str, type]] = {"deletion": {"auc": float, "fractions": list, "scores": list},
              "insertion": {"auc": float, "fractions": list, "scores": list},
              "pointing": {"hit": float, "centre_hit": float}, "segmentation": {"iou": float},
              "weak_localisation": {"alphas": dict, "ious": dict}}
#: the way a metric is better, by its kind (the metric's name before ``:``): a deletion curve
#: falls fast under a good map (low AUC), an insertion curve rises fast (high AUC); pointing hits
#: and segmentation IoU are higher for a better map; weak localisation's summary rows are errors
BETTER = {"deletion": "lower is better", "insertion": "higher is better", "pointing": "higher is better",
          "segmentation": "higher is better", "weak_localisation": "lower is better",
          "score_before": "the model's score, not the map's quality",
          "score_after": "which way is better depends on the method's game", "seconds": "lower is faster"}
#: per-map values whose better direction differs from their metric's (segmentation's MAE and Sal)
LOWER_KEYS = ("mae", "sal")


@dataclass
class Cell:
    """One (image, method): per-map values, status, and the map (``.npy``) or overlay (``.png``) found."""

    values: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    reason: str = ""
    map_path: Path | None = None
    overlay_path: Path | None = None
    #: whether the map varies pixel by pixel (its thumbnail is clipped at a percentile)
    pixel_level: bool = False


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
    #: the run's folder: the page may link to its files
    folder: Path | None = None


def collect(run_dir: str | os.PathLike) -> RunData:
    """Read the run in ``run_dir``; a folder that is neither kind is a one-line ``MaskscopeValueError``."""
    run_dir = Path(run_dir)
    if (run_dir / "records.jsonl").is_file():
        return collect_bench(run_dir)
    if run_dir.is_dir() and any(_explain_records(run_dir)):
        return collect_explain(run_dir)
    raise MaskscopeValueError(f"{run_dir}: not a bench run (records.jsonl) nor an explain folder (NAME.json records)")


def collect_bench(run_dir: Path) -> RunData:
    from maskscope.bench.plots import mean_curves
    from maskscope.bench.summary import summary_rows

    records = read_records(run_dir / "records.jsonl")
    config = _read_object(run_dir / "config.json") if (run_dir / "config.json").is_file() else {}
    methods = _names(config.get("methods")) or list(dict.fromkeys(r["method"] for r in records))
    metrics = _names(config.get("metrics")) or list(dict.fromkeys(r["metric"] for r in records))
    entries: dict[str, ImageEntry] = {}
    problems = []
    for record in records:
        label = str(record.get("target_name") or "")
        entry = entries.setdefault(record["image"], ImageEntry(record["image"], label))
        entry.label = entry.label or label
        cell = entry.cells.setdefault(record["method"], Cell(pixel_level=makes_pixel_level_maps(record["method"])))
        if record["status"] == "ok":
            cell.values.update(metric_values(record["metric"], record["values"]))
        else:
            problems.append({key: record.get(key) for key in ("image", "method", "metric", "status", "reason")})
            if cell.status != "failed":
                cell.status, cell.reason = record["status"], str(record.get("reason") or "")
    notes = []
    maps_dir = run_dir / "maps"
    found = 0
    for entry in entries.values():
        for method, cell in entry.cells.items():
            path = maps_dir / method / f"{entry.name}.npy"
            if path.is_file() and path.resolve().is_relative_to(maps_dir.resolve()):
                cell.map_path = path
                found += 1
    if not found:
        notes.append(f"no cached maps in {maps_dir}: the gallery shows metric values only")
    dataset = config.get("dataset")
    photos = _photo_paths(dataset, set(entries)) if found and isinstance(dataset, str) else {}
    if found and not photos:
        notes.append(f"dataset {config.get('dataset')!r} could not be opened: maps are drawn without their photos")
    for name, path in photos.items():
        entries[name].photo_path = path
    return RunData("bench", f"bench: {config.get('dataset', run_dir.name)}", methods, metrics,
                   [{**row, "better": better(row["metric"])} for row in summary_rows(records)],
                   mean_curves(records), list(entries.values()), problems,
                   config, notes, run_dir)


def collect_explain(run_dir: Path) -> RunData:
    """An explain folder: a column per :func:`explain_group`, a row per photo (a sub-folder that
    holds one group's records alone, ``out/lime-g/cat.json``, is that group's and not part of the
    photo's name)."""
    from maskscope.bench.summary import mean_interval

    entries: dict[str, ImageEntry] = {}
    params: dict[str, dict] = {}
    values: dict[tuple[str, str], list[float]] = {}
    runs: dict[str, str] = {}  # the name shown → the method it runs
    found = [(path, record, explain_group(record), _photo_key(path.relative_to(run_dir), record))
             for path in _explain_records(run_dir) for record in [read_explain_record(path)]]
    folders: dict[str, set[str]] = {}  # first sub-folder → the groups with a record in it
    for _, _, group, key in found:
        folders.setdefault(key.split("/")[0] if "/" in key else "", set()).add(group)
    for path, record, method, key in found:
        params.setdefault(method, record.get("params") or {})
        runs.setdefault(method, record["method"])
        folder, _, rest = key.partition("/")
        name = rest if rest and (folder == method or folders[folder] == {method}) else key
        entry = entries.setdefault(name, ImageEntry(name, " + ".join(record.get("target_names") or [])))
        cell = Cell({k: float(record[k]) for k in ("score_before", "score_after", "seconds") if record.get(k) is not None})
        for metric, value in cell.values.items():
            values.setdefault((method, metric), []).append(value)
        cell.pixel_level = bool(record.get("pixel_level", False))
        cell.map_path = path.with_suffix(".npy") if path.with_suffix(".npy").is_file() else None
        cell.overlay_path = path.with_suffix(".png") if path.with_suffix(".png").is_file() else None
        entry.cells[method] = cell
    summary = []
    for (method, metric), numbers in sorted(values.items(), key=lambda item: (item[0][1], item[0][0])):
        summary.append({"method": method, "metric": metric, "better": better(metric),
                        **mean_interval(np.asarray(numbers)), "n": len(numbers),
                        "skipped": 0, "failed": 0, "note": EXPLAIN_NOTES[metric]})
    methods = sorted(params)
    return RunData("explain", f"explain: {run_dir.name}", methods, ["score_before", "score_after", "seconds"],
                   summary, {}, sorted(entries.values(), key=lambda e: e.name), [],
                   {"methods": params, "runs": runs, "versions": environment_versions()},
                   ["an explain folder has no deletion or insertion records: run maskscope bench for curves"],
                   run_dir)


EXPLAIN_NOTES = {"score_before": "target probability on the photo",
                 "score_after": "target probability on the perturbed photo", "seconds": "seconds per image"}


def better(metric: str) -> str:
    """Which way ``metric`` (a summary row's or a gallery value's name: ``deletion:rise``,
    ``segmentation mae``) is better: ``"lower is better"``, ``"higher is better"``, or what
    else can be said (``""`` for a metric the report does not know)."""
    name, _, key = metric.partition(" ")
    if key in LOWER_KEYS:
        return "lower is better"
    return BETTER.get(name.partition(":")[0], "")


def makes_pixel_level_maps(method: str) -> bool:
    """Whether the method a bench run names (a name or an alias) makes pixel-level maps; a bench
    run keeps no per-map record, so the registry says (a method this installation does not know: no)."""
    from maskscope.methods.registry import resolve_method

    try:
        return resolve_method(method)[0].pixel_level
    except ValueError:
        return False


def explain_group(record: dict) -> str:
    """The name an explain record is shown and pooled under: the name it was asked for
    (``asked_as``: ``lime-g``, ``sp``), for a record written before that was kept the alias its
    parameters match (``lime`` with ``filler="inpaint"`` is ``lime-g``) or else its method; plus
    ``filler=…`` when its filler is not the one that name implies, so different fillers never pool."""
    from maskscope.methods.registry import ALIASES, resolve_method

    method, params = record["method"], record.get("params") or {}
    name = record.get("asked_as") or next(
        (alias for alias, (registered, preset) in ALIASES.items()
         if registered == method and preset and all(params.get(k) == v for k, v in preset.items())), method)
    filler = params.get("filler")
    if filler is None:
        return name
    try:
        method_class, preset = resolve_method(name)
    except ValueError:  # a method this installation does not know: its filler cannot be told from its default
        return name
    implied = preset.get("filler", method_class.defaults().get("filler"))
    return name if filler == implied else f"{name} filler={filler}"


def read_records(path: Path) -> list[dict]:
    """The records of a bench run's ``records.jsonl``, each checked; a bad line is a one-line error naming it.

    An unfinished last line (no newline: a run killed mid-write, or one still writing) is left
    out, as ``bench`` itself does when it resumes; the file is not changed.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    records = []
    for number, line in enumerate(text[: text.rfind("\n") + 1].splitlines(), 1):
        if line.strip():
            records.append(check_record(line, f"{path}:{number}"))
    return records


def check_record(line: str, where: str) -> dict:
    """The bench record on ``line`` (of file and line ``where``) when it holds what the report reads."""
    record = parse_record(line, where)
    if record["status"] == "ok":
        values = record.get("values")
        kind = record["metric"].partition(":")[0]
        wanted = VALUE_KEYS.get(kind, {})
        wrong = [key for key, type_ in wanted.items()
                 if not isinstance(values, dict) or not _is_a(values.get(key), type_)]
        if not isinstance(values, dict) or wrong:
            what = "values (an object)" if not isinstance(values, dict) else f"values {', '.join(wrong)}"
            raise MaskscopeValueError(f"{where}: the {kind} record lacks its {what}; fix or delete the line")
        if kind == "pointing" and "target" not in record:
            raise MaskscopeValueError(f"{where}: the pointing record lacks its target; fix or delete the line")
    return record


def read_explain_record(path: Path) -> dict:
    """The explain record ``NAME.json``, checked; one that is not is a one-line error naming the file."""
    record = _read_object(path)
    if not isinstance(record.get("method"), str):
        raise MaskscopeValueError(f"{path}: an explanation record names its method (text); this one does not")
    if not isinstance(record.get("asked_as", ""), str):
        raise MaskscopeValueError(f"{path}: asked_as is {record['asked_as']!r}, not a method's name")
    for key in ("score_before", "score_after", "seconds"):
        if record.get(key) is not None and not _is_a(record[key], float):
            raise MaskscopeValueError(f"{path}: {key} is {record[key]!r}, not a number")
    names = record.get("target_names") or []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise MaskscopeValueError(f"{path}: target_names is {names!r}, not a list of class names")
    if not isinstance(record.get("params") or {}, dict):
        raise MaskscopeValueError(f"{path}: params is {record['params']!r}, not an object")
    return record


def _read_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise MaskscopeValueError(f"{path}: not JSON ({error})") from error
    if not isinstance(value, dict):
        raise MaskscopeValueError(f"{path}: a JSON object was expected, not {type(value).__name__}")
    return value


def _names(value: object) -> list[str]:
    """The distinct texts of a configuration's list ``value`` (``[]`` for anything else)."""
    return list(dict.fromkeys(item for item in value if isinstance(item, str))) if isinstance(value, list) else []


def _is_a(value: object, type_: type) -> bool:
    """``isinstance`` where a number is ``float`` (an int too, not a bool)."""
    if type_ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type_)


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


def _photo_key(relative: Path, record: dict) -> str:
    """The photo an explain record at ``relative`` (to the folder) shows: its folder and the
    photo's own name from the record, so ``cat_gradcam.json`` (saved beside another method's
    ``cat.json``) is the row of ``cat``."""
    name = record.get("name")
    stem = name.rsplit("/", 1)[-1] if isinstance(name, str) and name else relative.stem
    return (relative.parent / stem).as_posix()


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
