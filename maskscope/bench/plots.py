"""Mean deletion and insertion curves per method, one panel per metric (matplotlib's object API, Agg)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


def mean_curves(records: list[dict]) -> dict[str, dict[str, dict]]:
    """``{metric: {method: {"fractions", "scores", "auc", "n"}}}``: each method's mean curve and AUC."""
    curves: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record["status"] == "ok" and record["metric"].partition(":")[0] in ("deletion", "insertion"):
            curves[record["metric"]][record["method"]].append(record["values"])
    means: dict[str, dict[str, dict]] = {}
    for metric in sorted(curves):
        means[metric] = {}
        for method, values in sorted(curves[metric].items()):
            fractions = values[0]["fractions"]
            same = [v["scores"] for v in values if len(v["scores"]) == len(fractions)]
            means[metric][method] = {"fractions": list(fractions), "scores": np.mean(same, axis=0).tolist(),
                                     "auc": float(np.mean([v["auc"] for v in values])), "n": len(values)}
    return means


def plot_curves(records: list[dict], path: Path) -> bool:
    """Plot the mean curve of each method for each deletion/insertion metric; False when there are none."""
    curves = mean_curves(records)
    if not curves:
        return False
    from maskscope.plotting.overlay import new_figure

    figure = new_figure(4.5 * len(curves), 3.6)
    axes = figure.subplots(1, len(curves), squeeze=False)
    for axis, (metric, methods) in zip(axes[0], curves.items()):
        for method, curve in methods.items():
            axis.plot(curve["fractions"], curve["scores"], label=f"{method} ({curve['auc']:.3f})")
        axis.set(title=metric, xlabel="fraction of pixels changed", ylabel="target probability", ylim=(0, 1))
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True
