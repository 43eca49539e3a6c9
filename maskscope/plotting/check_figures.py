"""A figure for each check, drawn from the same record its ``--json`` file holds.

``maskscope check NAME --json OUT.json`` writes ``OUT.png`` beside it with
:func:`save_check_figure`, so the figure can always be re-made from the JSON alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maskscope.plotting.overlay import new_figure


def adversarial_figure(record: dict):
    """Share of tried classes made top-1 from a black image, per setting (undefended / defended)."""
    settings = [name for name in ("undefended", "defended") if name in record]
    figure = new_figure(1.8 + 1.6 * len(settings), 3.2)
    axis = figure.subplots()
    rates = [record[name]["success_rate"] for name in settings]
    bars = axis.bar(settings, rates, color=["#c0392b" if name == "undefended" else "#2471a3" for name in settings])
    for bar, name in zip(bars, settings):
        result = record[name]
        axis.annotate(f"{result['successes']}/{result['classes_tried']}", (bar.get_x() + bar.get_width() / 2,
                      bar.get_height()), ha="center", va="bottom", fontsize=8)
    axis.set(ylim=(0, 1.1), ylabel="classes that became top-1",
             title=f"black-image check ({record.get('model', '')})")
    figure.tight_layout()
    return figure


def entropy_figure(record: dict):
    """Entropy (nats) of the softmax on each removal reference, ± its standard deviation over photos."""
    rows = record["rows"]
    figure = new_figure(1.5 + 0.8 * len(rows), 3.4)
    axis = figure.subplots()
    names = [row["reference"] for row in rows]
    axis.bar(names, [row["entropy"] for row in rows], yerr=[row["std"] for row in rows], color="#5d6d7e", capsize=3)
    axis.set(ylabel="entropy (nats)", title=f"softmax entropy on removal references ({record.get('model', '')})")
    axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    figure.tight_layout()
    return figure


def randomisation_figure(record: dict):
    """Similarity of the maps to the trained model's as layers are re-initialised, per variant."""
    variants = list(dict.fromkeys(step["variant"] for step in record["steps"]))
    figure = new_figure(4.2 * len(variants), 3.4)
    axes = figure.subplots(1, len(variants), squeeze=False)[0]
    for axis, variant in zip(axes, variants):
        steps = [step for step in record["steps"] if step["variant"] == variant]
        for column in steps[0]["similarity"]:
            axis.plot([s["layers"] for s in steps], [s["similarity"][column] for s in steps], marker=".", label=column)
        axis.set(title=f"{record.get('method', '')}: {variant}", xlabel="layers re-initialised from the top",
                 ylabel="similarity to the trained model's maps", ylim=(min(-0.1, _lowest(steps)), 1.05))
        axis.axhline(0, color="grey", linewidth=0.5)
        axis.legend(fontsize=6)
    figure.tight_layout()
    return figure


FIGURES = {"adversarial": adversarial_figure, "entropy": entropy_figure, "randomisation": randomisation_figure}


def save_check_figure(check: str, record: dict, json_path: str | Path) -> Path:
    """Draw check ``check``'s figure of ``record`` to the PNG beside ``json_path``; returns its path."""
    path = Path(json_path).with_suffix(".png")
    FIGURES[check](record).savefig(path, dpi=110)
    return path


def _lowest(steps: list[dict]) -> float:
    return float(np.min([value for step in steps for value in step["similarity"].values()]))
