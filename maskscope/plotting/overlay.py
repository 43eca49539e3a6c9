"""Heat-map overlays of saliency on the photo they explain."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def overlay_figure(image: torch.Tensor, saliency: torch.Tensor, title: str = "", view=None, alpha: float = 0.5):
    """A figure: the photo, and the photo under the saliency heat map (jet, min–max scaled).

    ``image`` is the whole photo (3×H×W); ``saliency`` is at the classifier's view and is
    mapped back with ``view.to_original`` when a view is given. Pixels the classifier did not
    see are left uncoloured.
    """
    photo = image.detach().cpu().float()
    heat = saliency.detach().cpu().float()
    if view is not None and tuple(heat.shape) != tuple(photo.shape[-2:]):
        heat = view.to_original(heat, tuple(photo.shape[-2:]))
    elif tuple(heat.shape) != tuple(photo.shape[-2:]):
        heat = torch.nn.functional.interpolate(heat[None, None], size=photo.shape[-2:], mode="bilinear")[0, 0]
    heat = heat.numpy()
    finite = np.isfinite(heat)
    low, high = (np.nanmin(heat), np.nanmax(heat)) if finite.any() else (0.0, 1.0)
    scaled = np.where(finite, (heat - low) / max(high - low, 1e-12), np.nan)
    picture = photo.permute(1, 2, 0).numpy().clip(0, 1)
    figure, axes = plt.subplots(1, 2, figsize=(8, 4.4))
    axes[0].imshow(picture)
    axes[0].set_title("input")
    axes[1].imshow(picture)
    shown = axes[1].imshow(np.ma.masked_invalid(scaled), cmap="jet", alpha=alpha, vmin=0, vmax=1)
    axes[1].set_title("saliency")
    figure.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    for axis in axes:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_overlay(path: str | Path, image: torch.Tensor, saliency: torch.Tensor, title: str = "", view=None) -> None:
    figure = overlay_figure(image, saliency, title, view)
    figure.savefig(path, dpi=100)
    plt.close(figure)
