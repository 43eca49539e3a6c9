"""The training log: every loss term per epoch and split, as a CSV file and a PNG plot.

Rows are dicts ``{"epoch", "split", <term>…, "total", "seconds"}``; the files are rewritten
whole after every epoch from the rows kept in the checkpoint, so a resumed run's log is
continuous.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path


def write_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """All rows as CSV (columns in the order of the first row)."""
    if not rows:
        return
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_terms(path: str | os.PathLike, rows: list[dict]) -> None:
    """One panel per loss term: training (solid) and validation (dashed) value by epoch."""
    if not rows:
        return
    from maskscope.plotting.overlay import new_figure

    terms = [key for key in rows[0] if key not in ("epoch", "split", "seconds")]
    columns = min(4, len(terms))
    line_count = -(-len(terms) // columns)
    figure = new_figure(3.2 * columns, 2.6 * line_count)
    axes = figure.subplots(line_count, columns, squeeze=False)
    for axis, term in zip(axes.flat, terms):
        for split, style in (("train", "-"), ("validation", "--")):
            chosen = [row for row in rows if row["split"] == split]
            axis.plot([row["epoch"] for row in chosen], [row[term] for row in chosen], style, marker=".", label=split)
        axis.set_title(term, fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(terms):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
