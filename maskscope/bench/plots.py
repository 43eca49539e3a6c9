"""Mean deletion and insertion curves per method, one panel per metric (matplotlib's object API on the Agg canvas)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


def plot_curves(records: list[dict], path: Path) -> bool:
    """Plot the mean curve of each method for each deletion/insertion metric; False when there are none."""
    curves: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record["status"] == "ok" and record["metric"].partition(":")[0] in ("deletion", "insertion"):
            curves[record["metric"]][record["method"]].append(record["values"])
    if not curves:
        return False
    from maskscope.plotting.overlay import new_figure

    metrics = sorted(curves)
    figure = new_figure(4.5 * len(metrics), 3.6)
    axes = figure.subplots(1, len(metrics), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for method, values in sorted(curves[metric].items()):
            fractions = values[0]["fractions"]
            mean = np.mean([v["scores"] for v in values if len(v["scores"]) == len(fractions)], axis=0)
            auc = np.mean([v["auc"] for v in values])
            axis.plot(fractions, mean, label=f"{method} ({auc:.3f})")
        axis.set(title=metric, xlabel="fraction of pixels changed", ylabel="target probability", ylim=(0, 1))
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True
