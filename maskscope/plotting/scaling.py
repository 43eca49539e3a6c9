"""How a saliency map is turned into colours, said out loud on every figure.

A map is scaled either to its own range (``scale=None``: the default, each map stretched so
its minimum is the bottom of the colour bar and its maximum the top) or to a range shared by
several maps (``scale=(low, high)``), so that maps can be compared by colour. A signed map
(both clearly negative and positive values) is shown on a diverging colour map centred on 0,
``[-c, c]`` with ``c`` the largest magnitude. A pixel-level map (gradients, FGVis) is clipped
at the ``percentile``-th percentile of its magnitudes, since otherwise a handful of extreme
pixels take the whole colour bar and the rest looks empty. :attr:`MapColours.caption` says
which of these was done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: colour maps of unsigned and signed maps
SEQUENTIAL, DIVERGING = "jet", "RdBu_r"
#: negative values smaller than this share of the largest magnitude do not make a map signed
SIGN_TOLERANCE = 0.01


@dataclass
class MapColours:
    """A map ready for ``imshow``: the values, colour map, limits and a caption saying how."""

    values: np.ndarray
    cmap: str
    vmin: float
    vmax: float
    caption: str

    def rgba(self, alpha: float = 1.0) -> np.ndarray:
        """H×W×4 floats; NaN pixels (never seen by the classifier) are transparent."""
        from matplotlib import colormaps

        span = max(self.vmax - self.vmin, 1e-12)
        unit = np.clip((np.nan_to_num(self.values, nan=self.vmin) - self.vmin) / span, 0, 1)
        colours = colormaps[self.cmap](unit)
        colours[..., 3] = np.where(np.isfinite(self.values), alpha, 0.0)
        return colours


def map_colours(heat: np.ndarray, scale: tuple[float, float] | None = None, pixel_level: bool = False,
                percentile: float = 99.0) -> MapColours:
    """Choose the colour map and limits of ``heat`` (H×W, NaN where unseen); see the module text."""
    heat = np.asarray(heat, dtype=np.float64)
    finite = heat[np.isfinite(heat)]
    if finite.size == 0:
        return MapColours(heat, SEQUENTIAL, 0.0, 1.0, "empty map")
    magnitude = float(np.abs(finite).max())
    signed = float(finite.min()) < -SIGN_TOLERANCE * magnitude and float(finite.max()) > 0
    notes = []
    if scale is not None:
        low, high = float(scale[0]), float(scale[1])
        notes.append(f"shared scale {low:.3g} to {high:.3g}")
    elif pixel_level:
        limit = float(np.percentile(np.abs(finite), percentile))
        limit = limit if limit > 0 else magnitude
        low, high = (-limit, limit) if signed else (min(float(finite.min()), limit), limit)
        notes.append(f"clipped at the {percentile:g}th percentile ({limit:.3g})")
    else:
        low, high = float(finite.min()), float(finite.max())
        notes.append(f"own range {low:.3g} to {high:.3g}")
    if signed:
        bound = max(abs(low), abs(high))
        low, high = -bound, bound
        notes.insert(0, "signed, diverging around 0")
    if high <= low:
        high = low + 1e-12
    return MapColours(heat, DIVERGING if signed else SEQUENTIAL, low, high, "; ".join(notes))


def shared_scale(maps: list[np.ndarray]) -> tuple[float, float]:
    """The range ``(low, high)`` of all finite values of ``maps``, for :func:`map_colours`."""
    values = np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in maps])
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)

