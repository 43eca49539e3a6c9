"""Figures of explanations for notebooks and reports: one map, or a grid of photos × methods.

Both return a matplotlib ``Figure`` (object API, Agg canvas); in Jupyter a returned figure is
shown inline, and ``figure.savefig(path)`` writes it.
"""

from __future__ import annotations

from typing import Sequence

import torch

from maskscope.plotting.overlay import draw_map, map_on_photo, new_figure
from maskscope.plotting.scaling import is_pixel_level, map_colours, shared_scale


def plot_explanation(explanation, index: int = 0, image: torch.Tensor | None = None, view=None, ax=None,
                     shared: tuple[float, float] | None = None, alpha: float = 0.5):
    """Image ``index`` of ``explanation``: its map over ``image`` (if given), titled with class and scores.

    Args:
        explanation: an :class:`~maskscope.core.explanation.Explanation`.
        index: which image of the batch.
        image: the photo (3×H×W, whole or already in the classifier's view) or ``None``.
        view: the classifier's view, to place a map of the view back on a whole photo.
        ax: draw on this matplotlib axis instead of a new figure.
        shared: a ``(low, high)`` range shared with other maps; default: the map's own range.
    Returns: the ``Figure``.
    """
    if ax is None:
        ax = new_figure(4.4, 4.0).subplots()
    picture, heat = map_on_photo(image, explanation.saliency[index], view)
    draw_map(ax, picture, map_colours(heat, shared, is_pixel_level(explanation.method)), alpha)
    ax.set_title(explanation.title(index) + _after(explanation, index), fontsize=8)
    return ax.figure


def plot_explanations(explanations: Sequence, images: Sequence[torch.Tensor] | torch.Tensor | None = None,
                      view=None, shared: bool = False, size: float = 2.6):
    """A grid: a row per image, a column per explanation (method), each map over its photo.

    Args:
        explanations: explanations of the same images (one per method).
        images: the photos, one per row (whole photos with ``view``, or the classifier's view).
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
    figure = new_figure(size * len(explanations) + 0.6, size * rows)
    axes = figure.subplots(rows, len(explanations), squeeze=False)
    for row in range(rows):
        image = None if images is None else images[row]
        scale = shared_scale([e.saliency[row].float().numpy() for e in explanations]) if shared else None
        for column, explanation in enumerate(explanations):
            plot_explanation(explanation, row, image, view, axes[row][column], scale)
    figure.tight_layout()
    return figure


def _after(explanation, index: int) -> str:
    if explanation.scores_after is None:
        return ""
    return f" → {float(explanation.scores_after[index]):.2f}"
