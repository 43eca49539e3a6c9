"""Thumbnails of the gallery: each map over its photo, as small JPEG files beside the page.

A bench map is crop×crop in the classifier's view of its photo; the photo is put in the same
view (short side resized to ``crop·256/224``, centre crop — the default model's policy) and
the map blended over it with the colours and caption of
:func:`maskscope.plotting.scaling.map_colours`. Without the photo the map is drawn alone. An
``explain`` folder already has an overlay PNG per map, which is shrunk instead. A thumbnail
newer than its sources is kept, so re-making a report only draws what changed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from maskscope.plotting.scaling import map_colours

#: side of a thumbnail in pixels
SIZE = 160
#: opacity of the map over its photo
ALPHA = 0.5


def photo_view(photo_path: Path, crop: int) -> np.ndarray:
    """The classifier's crop×crop view of the photo, H×W×3 floats in [0, 1]."""
    from maskscope.core.model.view import ClassifierView
    from maskscope.data.images import load_image

    view = ClassifierView(resize=round(crop * 256 / 224), crop=crop)
    return view(load_image(photo_path)).permute(1, 2, 0).clamp(0, 1).numpy()


def map_thumbnail(saliency: np.ndarray, pixel_level: bool, out: Path | None, photo: np.ndarray | None = None) -> str:
    """Write the map (over ``photo``, the same size, when given) to ``out``; returns the scaling caption.
    A ``pixel_level`` map is clipped at a percentile (:func:`~maskscope.plotting.scaling.map_colours`).

    With ``out=None`` nothing is drawn (the thumbnail is already there) and only the caption is returned.
    """
    colours = map_colours(saliency, pixel_level=pixel_level)
    if out is None:
        return colours.caption
    rgba = colours.rgba(ALPHA if photo is not None else 1.0)
    picture = rgba[..., :3] if photo is None else photo * (1 - rgba[..., 3:]) + rgba[..., :3] * rgba[..., 3:]
    _save(Image.fromarray((picture * 255).round().astype(np.uint8)), out)
    return colours.caption


def overlay_thumbnail(overlay: Path, out: Path) -> None:
    """Shrink an existing overlay PNG to ``SIZE`` pixels high."""
    with Image.open(overlay) as opened:
        image = opened.convert("RGB")
        _save(image.resize((max(1, round(image.width * SIZE / image.height)), SIZE), Image.Resampling.LANCZOS), out)


def is_fresh(out: Path, *sources: Path | None) -> bool:
    return out.is_file() and all(s is None or s.stat().st_mtime <= out.stat().st_mtime for s in sources)


def load_map(path: Path) -> np.ndarray:
    saliency = np.load(path).astype(np.float32)
    if saliency.ndim != 2:
        raise ValueError(f"{path}: a saliency map must be H×W, got shape {saliency.shape}")
    return saliency


def _save(image: Image.Image, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if image.height > SIZE * 1.01 and image.width == image.height:
        image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    image.save(out, quality=85)


