"""Figures of explanations for notebooks and reports: one map, or a grid of photos × methods.

Both return a matplotlib ``Figure`` that a notebook shows inline without ``%matplotlib``
(see :func:`maskscope.plotting.overlay.new_figure`); ``figure.savefig(path)`` writes it. Each
panel's title is wrapped to the panel's width: the photo's name (when it has one of its own)
and the method, the class, the score before → after, and whether the goal was met.
"""

from __future__ import annotations

import re
import textwrap
from typing import Sequence

import torch

from maskscope.plotting.overlay import draw_map, map_on_photo, new_figure
from maskscope.plotting.scaling import map_colours, shared_scale

#: the names an explanation gives images that came without one (tensors, arrays)
UNNAMED = re.compile(r"image_[0-9]+(_top[0-9]+)?$")
#: title font size (points), and the width of its average character in font sizes
TITLE_SIZE, CHARACTER_WIDTH = 8, 0.55


def plot_explanation(explanation, index: int = 0, image: torch.Tensor | None = None, view=None, ax=None,
                     shared: tuple[float, float] | None = None, alpha: float = 0.5):
    """Image ``index`` of ``explanation``: its map over its photo, titled with class and scores.

    Args:
        explanation: an :class:`~maskscope.core.explanation.Explanation`.
        index: which image of the batch.
        image: the photo (3×H×W, whole or already in the classifier's view); by default the
            image the method explained (``explanation.images``), when it holds it.
        view: the classifier's view, to place a map of the view back on a whole photo.
        ax: draw on this matplotlib axis instead of a new figure.
        shared: a ``(low, high)`` range shared with other maps; default: the map's own range.
    Returns: the ``Figure``.
    """
    if image is None and explanation.images is not None:
        image, view = explanation.images[index], None
    if ax is None:
        ax = new_figure(4.4, 4.0).subplots()
    picture, heat = map_on_photo(image, explanation.saliency[index], view)
    draw_map(ax, picture, map_colours(heat, shared, explanation.pixel_level), alpha)
    inches = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(panel_title(explanation, index, int(inches * 72 / (TITLE_SIZE * CHARACTER_WIDTH))),
                 fontsize=TITLE_SIZE)
    return ax.figure


def plot_explanations(explanations: Sequence, images: Sequence[torch.Tensor] | torch.Tensor | None = None,
                      view=None, shared: bool = False, size: float = 2.6):
    """A grid: a row per image, a column per explanation (method), each map over its photo.

    Args:
        explanations: explanations of the same images (one per method).
        images: the photos, one per row (whole photos with ``view``, or the classifier's view);
            by default the images the first explanation holds (``Explanation.images``).
        shared: colour all maps of a row on one range (comparable colours) instead of each
            on its own range; the colour bars say which.
        size: inches per panel.
    Returns: the ``Figure``.
    """
    explanations = list(explanations)
    if not explanations:
        raise ValueError("explanations: give at least one Explanation")
    rows = len(explanations[0])
    if any(len(e) != rows for e in explanations):
        raise ValueError("explanations: every explanation must cover the same images")
    if images is None:
        images, view = explanations[0].images, None
    titles = max(panel_title(e, row, 1000).count("\n") + 1 for e in explanations for row in range(rows))
    figure = new_figure(size * len(explanations) + 0.6, (size + 0.14 * titles) * rows)
    axes = figure.subplots(rows, len(explanations), squeeze=False)
    for row in range(rows):
        image = None if images is None else images[row]
        scale = shared_scale([e.saliency[row].float().numpy() for e in explanations]) if shared else None
        for column, explanation in enumerate(explanations):
            plot_explanation(explanation, row, image, view, axes[row][column], scale)
    figure.tight_layout()
    return figure


def panel_title(explanation, index: int, width: int) -> str:
    """Image ``index``'s title in lines of at most ``width`` characters: name and method,
    class, score before → after, and a warning where the optimisation missed its goal."""
    name = explanation.names[index] if explanation.names else ""
    method = explanation.asked_method
    heading = method if not name or UNNAMED.match(name) else f"{name} · {method}"
    names = explanation.target_names[index] if explanation.target_names else [str(c) for c in explanation.targets[index]]
    lines = [heading, " + ".join(names)]
    if explanation.scores_before is not None:
        symbol = "p" if explanation.score == "probability" else "logit"
        after = "" if explanation.scores_after is None else f" → {float(explanation.scores_after[index]):.2f}"
        lines.append(f"{symbol} {float(explanation.scores_before[index]):.2f}{after}")
    if explanation.goal_met is not None and not explanation.goal_met[index]:
        lines.append("goal NOT met: map not meaningful")
    return "\n".join(textwrap.fill(line, max(width, 12)) for line in lines)
