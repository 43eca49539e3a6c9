"""Summary tables of a run: per method and metric, the mean with a 95% percentile bootstrap interval.

Per-image values: deletion/insertion AUC; pointing hit (accuracy is the per-class mean, as
in the pointing-game paper, with a ``centre-point`` baseline row); segmentation IoU;
weak-localisation error (1 − [IoU ≥ 0.5]) at α* chosen per threshold method (mean, value,
energy, and max: the G-removal protocol's h ≥ α·max) on the even-indexed images and reported
on the odd ones, plus the error at MP's fixed α (value 0.25, energy 0.90, mean 1.0) on all images.
Intervals: 1000 resamples of the images, seed 0. Each (image, method, metric) counts once: a
resumed run's later record replaces the earlier one (:class:`~maskscope.bench.records.RecordLog`).
The tables and the curves are written each to a temporary file, then renamed.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from maskscope.bench.folder import RunFolderError, is_disk_full, stopped
from maskscope.bench.records import RecordLog
from maskscope.core.atomic import atomic_path
from maskscope.errors import MaskscopeValueError
from maskscope.metrics.pointing import per_class_mean

RESAMPLES = 1000
FIXED_ALPHA = {"value": 0.25, "energy": 0.90, "mean": 1.0}


def bootstrap(
    values: np.ndarray, statistic=np.mean, groups: np.ndarray | None = None, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``statistic`` over ``RESAMPLES`` resamples of the images."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(RESAMPLES, len(values)))
    if groups is None:
        stats = [statistic(values[d]) for d in draws]
    else:
        stats = [statistic(values[d], groups[d]) for d in draws]
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def mean_interval(values: np.ndarray) -> dict:
    """``{"mean", "low", "high"}``: the mean of ``values`` and its 95% bootstrap interval."""
    low, high = bootstrap(values)
    return {"mean": float(values.mean()), "low": low, "high": high}


def summarise(out: str | os.PathLike) -> list[dict]:
    """Write ``OUT/summary.csv``, ``OUT/summary.md`` and ``OUT/curves.png``; return the table rows.

    Raises:
        RunFolderError: ``out`` has no records.
        MaskscopeValueError: a record lacks a key or a value its metric needs.
        RunStopped: the disk is full.
    """
    out = Path(out)
    if not (out / "records.jsonl").exists():
        raise RunFolderError(f"{out}: no records.jsonl to summarise")
    records = RecordLog(out / "records.jsonl").records
    rows = summary_rows(records)
    from maskscope.bench.plots import mean_curves, plot_curves

    try:
        with atomic_path(out / "summary.csv") as temporary:
            _write_csv(temporary, rows)
        with atomic_path(out / "summary.md") as temporary:
            _write_markdown(temporary, rows)
        if mean_curves(records):
            with atomic_path(out / "curves.png") as temporary:
                plot_curves(records, temporary)
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise stopped(out, error) from error
    return rows


def summary_rows(records: list[dict]) -> list[dict]:
    """The table rows of a run's records: per method and metric, mean, interval and counts."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        _check_values(record)
        groups[(record["method"], record["metric"])].append(record)
    rows = []
    for (method, metric), group in groups.items():
        ok = [r for r in group if r["status"] == "ok"]
        counts = {status: sum(r["status"] == status for r in group) for status in ("skipped", "failed")}
        rows += _rows(method, metric, ok, counts)
    rows.sort(key=lambda row: (row["metric"], row["method"]))
    return rows


#: the values an ``ok`` record of each kind of metric holds
VALUE_KEYS = {"deletion": ("auc", "fractions", "scores"), "insertion": ("auc", "fractions", "scores"),
              "segmentation": ("iou",), "pointing": ("hit", "centre_hit"), "weak_localisation": ("alphas", "ious")}


def _check_values(record: dict) -> None:
    """MaskscopeValueError naming the record unless an ``ok`` record holds its metric's values."""
    if record["status"] != "ok":
        return
    values = record.get("values")
    wanted = VALUE_KEYS.get(record["metric"].partition(":")[0], ())
    if not isinstance(values, dict) or any(key not in values for key in wanted):
        raise MaskscopeValueError(f"the record of ({record['image']}, {record['method']}, {record['metric']}) "
                                  f"lacks its values ({', '.join(wanted)}); remove its line from records.jsonl")


def _row(method, metric, values, counts, statistic=np.mean, groups=None, note=""):
    values = np.asarray(values, dtype=float)
    row = {"method": method, "metric": metric, "mean": None, "low": None, "high": None, "n": len(values)}
    if len(values):
        row["mean"] = float(statistic(values) if groups is None else statistic(values, groups))
        row["low"], row["high"] = bootstrap(values, statistic, groups)
    return {**row, **counts, "note": note}


def _rows(method: str, metric: str, ok: list[dict], counts: dict) -> list[dict]:
    kind = metric.partition(":")[0]
    if kind in ("deletion", "insertion"):
        return [_row(method, metric, [r["values"]["auc"] for r in ok], counts, note="AUC")]
    if kind == "segmentation":
        return [_row(method, metric, [r["values"]["iou"] for r in ok], counts, note="IoU")]
    if kind == "pointing":
        classes = np.asarray([r["target"] for r in ok])
        hits = [r["values"]["hit"] for r in ok]
        centre = [r["values"]["centre_hit"] for r in ok]
        return [
            _row(method, metric, hits, counts, per_class_mean, classes, "per-class mean accuracy"),
            _row("centre-point", metric, centre, {"skipped": 0, "failed": 0}, per_class_mean, classes,
                 f"baseline, on {method}'s images"),
        ]
    rows = []
    ordered = sorted(ok, key=lambda r: r["image"])
    if not ordered:
        return [_row(method, f"{metric}:{threshold}", [], counts) for threshold in FIXED_ALPHA]
    shared = set.intersection(*(set(r["values"]["alphas"]) for r in ordered))  # records made before "max" lack it
    for threshold, alphas in ordered[0]["values"]["alphas"].items():
        if threshold not in shared:
            continue
        ious = np.asarray([r["values"]["ious"][threshold] for r in ordered])
        errors = (ious < 0.5).astype(float)
        held_out = np.arange(len(ordered)) % 2 == 0
        if held_out.sum() and (~held_out).sum():
            best = int(np.argmin(errors[held_out].mean(0)))
            note = f"error; {method}: α*={alphas[best]} chosen on {int(held_out.sum())} even-indexed images"
            rows.append(_row(method, f"{metric}:{threshold}@α*", errors[~held_out, best], counts, note=note))
        if threshold in FIXED_ALPHA:
            fixed = FIXED_ALPHA[threshold]
            column = int(np.argmin(np.abs(np.asarray(alphas) - fixed)))
            rows.append(_row(method, f"{metric}:{threshold}@{fixed}", errors[:, column], counts, note="error, fixed α"))
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = ["method", "metric", "mean", "low", "high", "n", "skipped", "failed", "note"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _write_markdown(path: Path, rows: list[dict]) -> None:
    metrics = list(dict.fromkeys(row["metric"] for row in rows))
    methods = list(dict.fromkeys(row["method"] for row in rows))
    cells = {(row["method"], row["metric"]): row for row in rows}
    lines = ["| method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for method in methods:
        line = []
        for metric in metrics:
            row = cells.get((method, metric))
            if row is None:
                line.append("")
            elif row["mean"] is None:
                line.append(f"– (n=0, {row['skipped']} skipped, {row['failed']} failed)")
            else:
                extra = "".join(f", {row[k]} {k}" for k in ("skipped", "failed") if row[k])
                line.append(f"{row['mean']:.4f} [{row['low']:.4f}, {row['high']:.4f}] (n={row['n']}{extra})")
        lines.append(f"| {method} | " + " | ".join(line) + " |")
    notes = sorted({f"{row['metric']}: {row['note']}" for row in rows if row["note"]})
    lines += ["", "Mean [95% bootstrap interval, 1000 resamples] (n images scored).", ""] + [f"- {n}" for n in notes]
    path.write_text("\n".join(lines) + "\n")
