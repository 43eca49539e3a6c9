"""A synthetic detection task with exact ground truth: shapes on clutter.

Each image holds one or more objects (a filled shape per class: square, disc, triangle,
cross, ring) placed without overlap on a textured background of random strokes and dots.
Labels are multi-hot; every object's exact mask and box are kept, so a saliency method can
be scored against the truth (does its maximum land on the object?).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SHAPES = ("square", "disc", "triangle", "cross", "ring")


@dataclass
class ShapesDataset:
    """Images N×3×S×S in [0, 1], labels N×K (multi-hot), masks N×K×S×S (bool), class names."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    class_names: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def single_labels(self) -> torch.Tensor:
        """One class an image for one-object datasets; images with no object get class K (background)."""
        return torch.where(self.labels.any(1), self.labels.argmax(1), self.labels.shape[1])

    def with_background(self) -> tuple[torch.Tensor, list[str]]:
        """Labels N×(K+1) and names with a last ``"background"`` class for images with no object.

        A single-label classifier trained with it has somewhere to go when the object is
        removed, so deleting the object (and only that) makes the class's score fall.
        """
        background = (~self.labels.bool().any(1, keepdim=True)).float()
        return torch.cat([self.labels, background], 1), self.class_names + ["background"]

    def object_mask(self, index: int) -> torch.Tensor:
        """Union of all objects' masks in one image (S×S, bool; empty for a background image)."""
        return self.masks[index].any(0)


def make_shapes(
    n: int,
    size: int = 64,
    num_classes: int = 4,
    objects: tuple[int, int] = (1, 1),
    object_size: tuple[int, int] = (14, 20),
    clutter: int = 14,
    seed: int = 0,
) -> ShapesDataset:
    """Draw ``n`` images of ``size``×``size`` pixels.

    Args:
        num_classes: how many of :data:`SHAPES` are used as classes (at most 5).
        objects: least and most objects an image (distinct classes, no overlap); a least of
            0 gives some images with background only.
        object_size: least and most side of an object's bounding square, in pixels.
        clutter: random strokes and dots drawn on the background.
        seed: fixes every drawing.
    """
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be in 1…{len(SHAPES)}, got {num_classes}")
    if not 0 <= objects[0] <= objects[1] <= num_classes:
        raise ValueError(f"objects must satisfy 0 ≤ least ≤ most ≤ num_classes, got {objects}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.float32)
    labels = np.zeros((n, num_classes), np.float32)
    masks = np.zeros((n, num_classes, size, size), bool)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(n):
        images[i] = _background(rng, size, clutter, yy, xx)
        count = int(rng.integers(objects[0], objects[1] + 1))
        occupied = np.zeros((size, size), bool)
        for cls in rng.choice(num_classes, count, replace=False):
            mask = _place(rng, SHAPES[cls], size, object_size, occupied, yy, xx)
            colour = rng.uniform(0.55, 1.0, 3) * rng.permutation([1.0, rng.uniform(0, 0.4), rng.uniform(0, 1)])
            images[i][mask] = colour
            masks[i, cls] = mask
            labels[i, cls] = 1
            occupied |= _dilate(mask, 3)
    return ShapesDataset(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=torch.from_numpy(labels),
        masks=torch.from_numpy(masks),
        class_names=list(SHAPES[:num_classes]),
    )


def _background(rng: np.random.Generator, size: int, clutter: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    image = rng.uniform(0.2, 0.5, 3)[None, None] + rng.normal(0, 0.06, (size, size, 3))
    for _ in range(clutter):
        colour = rng.uniform(0, 1, 3)
        if rng.random() < 0.5:  # a thin stroke
            y0, x0, y1, x1 = rng.uniform(0, size, 4)
            t = ((xx - x0) * (x1 - x0) + (yy - y0) * (y1 - y0)) / max((x1 - x0) ** 2 + (y1 - y0) ** 2, 1e-6)
            t = np.clip(t, 0, 1)
            distance = np.hypot(xx - (x0 + t * (x1 - x0)), yy - (y0 + t * (y1 - y0)))
            image[distance < 0.8] = colour
        else:  # a small dot
            cy, cx = rng.uniform(0, size, 2)
            image[np.hypot(yy - cy, xx - cx) < rng.uniform(1, 2.5)] = colour
    return np.clip(image, 0, 1).astype(np.float32)


def _place(rng, shape, size, object_size, occupied, yy, xx) -> np.ndarray:
    for _ in range(200):
        side = int(rng.integers(object_size[0], object_size[1] + 1))
        top, left = rng.integers(1, size - side - 1, 2)
        mask = _draw(shape, top, left, side, yy, xx)
        if not (mask & occupied).any():
            return mask
    raise RuntimeError("could not place an object without overlap; use fewer or smaller objects")


def _draw(shape: str, top: int, left: int, side: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    cy, cx, r = top + side / 2, left + side / 2, side / 2
    inside = (yy >= top) & (yy < top + side) & (xx >= left) & (xx < left + side)
    if shape == "square":
        return inside
    distance = np.hypot(yy + 0.5 - cy, xx + 0.5 - cx)
    if shape == "disc":
        return distance <= r
    if shape == "ring":
        return (distance <= r) & (distance >= 0.55 * r)
    if shape == "triangle":
        rows = (yy + 0.5 - top) / side
        return inside & (np.abs(xx + 0.5 - cx) <= rows * r)
    if shape == "cross":
        bar = side / 6
        return inside & ((np.abs(yy + 0.5 - cy) <= bar) | (np.abs(xx + 0.5 - cx) <= bar))
    raise ValueError(f"unknown shape {shape!r}")


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, iterations=radius)
