"""Heat-map overlays of saliency on the photo they explain.

Figures are built with matplotlib's object API on the Agg canvas, so importing maskscope never
changes the user's matplotlib backend. A plain ``Figure`` made that way shows in Jupyter as the
text ``<Figure size …>`` until ``%matplotlib inline`` registers pyplot's display hook, so the
figures are a ``NotebookFigure`` (:func:`notebook_figure_class`): a ``Figure`` that draws itself as a PNG for IPython's
display (``_repr_png_``), with or without the magic. Every colour bar says how its map was
scaled (see :mod:`maskscope.plotting.scaling`).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import torch

from maskscope.plotting.scaling import MapColours, map_colours

#: dots per inch of a figure drawn for a notebook
NOTEBOOK_DPI = 100


def new_figure(width: float, height: float):
    """A ``NotebookFigure`` on its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = notebook_figure_class()(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


@functools.cache
def notebook_figure_class() -> type:
    """``NotebookFigure``: a matplotlib ``Figure`` that IPython displays as a PNG (made on first
    use, so that importing maskscope does not import matplotlib)."""
    from matplotlib.figure import Figure

    class NotebookFigure(Figure):
        """A matplotlib ``Figure`` that IPython displays as a PNG (its ``_repr_png_``)."""

        def _repr_png_(self) -> bytes:
            return figure_png(self)

    return NotebookFigure


def figure_png(figure, dpi: float = NOTEBOOK_DPI) -> bytes:
    """The PNG bytes of ``figure``, cropped to what it draws."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def map_on_photo(image: torch.Tensor | None, saliency: torch.Tensor, view=None) -> tuple[np.ndarray | None, np.ndarray]:
    """(photo H×W×3, map H×W) at the photo's size: ``saliency`` is placed back with ``view``.

    ``image`` is the whole photo (3×H×W) or the classifier's view of it; without one the map
    is returned alone. Pixels the classifier never saw are NaN.
    """
    heat = saliency.detach().cpu().float()
    if image is None:
        return None, heat.numpy()
    photo = image.detach().cpu().float()
    size = tuple(photo.shape[-2:])
    if tuple(heat.shape) != size:
        if view is not None:
            heat = view.to_original(heat, size)
        else:
            heat = torch.nn.functional.interpolate(heat[None, None], size=size, mode="bilinear")[0, 0]
    return photo.permute(1, 2, 0).numpy().clip(0, 1), heat.numpy()


def draw_map(axis, picture: np.ndarray | None, colours: MapColours, alpha: float = 0.5, colorbar: bool = True):
    """Draw the map over ``picture`` (or alone) on ``axis``, with a colour bar captioned by its scaling."""
    if picture is not None:
        axis.imshow(picture)
    shown = axis.imshow(np.ma.masked_invalid(colours.values), cmap=colours.cmap, vmin=colours.vmin,
                        vmax=colours.vmax, alpha=alpha if picture is not None else 1.0)
    axis.axis("off")
    if colorbar:
        bar = axis.figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.04)
        bar.set_label(colours.caption, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return shown


def overlay_figure(image: torch.Tensor, saliency: torch.Tensor, title: str = "", view=None, alpha: float = 0.5,
                   scale: tuple[float, float] | None = None, pixel_level: bool = False):
    """A figure: the photo, and the photo under the saliency heat map.

    ``image`` is the whole photo (3×H×W); ``saliency`` is at the classifier's view and is
    mapped back with ``view.to_original`` when a view is given. Pixels the classifier did not
    see are left uncoloured. The map is scaled to its own range unless ``scale`` gives a
    shared one; ``pixel_level`` maps are clipped at their 99th percentile.
    """
    picture, heat = map_on_photo(image, saliency, view)
    figure = new_figure(8, 4.4)
    axes = figure.subplots(1, 2)
    axes[0].imshow(picture)
    axes[0].set_title("input")
    axes[0].axis("off")
    draw_map(axes[1], picture, map_colours(heat, scale, pixel_level), alpha)
    axes[1].set_title("saliency")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_overlay(path: str | Path, image: torch.Tensor, saliency: torch.Tensor, title: str = "", view=None,
                 pixel_level: bool = False) -> None:
    overlay_figure(image, saliency, title, view, pixel_level=pixel_level).savefig(path, dpi=100)
