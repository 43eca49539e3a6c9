"""The classifier's view of an image: resize, then crop the centre, to the model's input size.

ImageNet classifiers see a photo resized so that its short side is ``resize`` pixels and
then centre-cropped to ``crop``×``crop`` (256 → 224 by default). A model may take any input
size, square or not: ``crop=(160, 320)`` is an input 160 pixels high and 320 wide, and a
``resize`` of two sides ``(h, w)`` scales the photo, keeping its aspect ratio, until it covers
``h``×``w`` (timm's rule for a non-square input). ``to_original`` maps a saliency map of that
view back onto the whole photo for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from maskscope.errors import MaskscopeValueError

#: the resampling modes a view can resize with (antialiased when the image shrinks)
INTERPOLATIONS = ("bilinear", "bicubic")

Size = int | tuple[int, int]


@dataclass(frozen=True)
class ClassifierView:
    """Resize-then-centre-crop policy.

    Args:
        resize: the short side after resizing (an int); or two sides ``(h, w)`` the resized
            photo covers, its aspect ratio kept; ``None``: resize the whole image to the crop's
            size without keeping the aspect ratio.
        crop: the input size the classifier sees: a side (a square) or ``(height, width)``.
            A pair of equal sides is stored as one int.
        interpolation: ``"bilinear"`` (default) or ``"bicubic"``, the resampling of the resize.
    """

    resize: Size | None = 256
    crop: Size = 224
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", _size(self.crop, "crop"))
        if self.resize is not None:
            object.__setattr__(self, "resize", _size(self.resize, "resize"))
        if self.interpolation not in INTERPOLATIONS:
            raise MaskscopeValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")

    @property
    def size(self) -> tuple[int, int]:
        """The input size the classifier sees, ``(height, width)``."""
        return _pair(self.crop)

    @property
    def square(self) -> bool:
        """Whether the classifier's input is square."""
        return isinstance(self.crop, int)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Map an image C×H×W (or a batch B×C×H×W) to the classifier's view, C×height×width."""
        batch = image if image.dim() == 4 else image[None]
        height, width = batch.shape[-2:]
        if self.resize is None:
            out = _resize(batch, self.size, self.interpolation)
        else:
            new_h, new_w = self.resized_size(height, width)
            out = _resize(batch, (new_h, new_w), self.interpolation)
            top, left, crop_h, crop_w = self._crop_box(new_h, new_w)
            out = out[..., top : top + crop_h, left : left + crop_w]
        return out if image.dim() == 4 else out[0]

    def to_original(self, saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Place a map of the view's size (or a batch B×height×width) back on an image of ``size`` (H, W).

        Pixels the classifier never saw (outside the centre crop) are NaN.
        """
        maps = saliency if saliency.dim() == 3 else saliency[None]
        height, width = size
        if self.resize is None:
            out = _resize(maps[:, None].float(), (height, width))[:, 0]
        else:
            new_h, new_w = self.resized_size(height, width)
            canvas = maps.new_full((maps.shape[0], new_h, new_w), float("nan"), dtype=torch.float32)
            top, left, crop_h, crop_w = self._crop_box(new_h, new_w)
            canvas[:, top : top + crop_h, left : left + crop_w] = maps.float()
            out = _resize(canvas[:, None], (height, width), mode="nearest")[:, 0]
        return out if saliency.dim() == 3 else out[0]

    @property
    def decode_side(self) -> int:
        """The short side a photo keeps when it is reduced while decoding: twice what the view
        resizes it to, so that the view's own antialiased resize makes the last step (for a
        view of two sides, twice the longer one: enough whatever the photo's aspect ratio)."""
        return 2 * max(_pair(self.resize if self.resize is not None else self.crop))

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """The size ``(h, w)`` an image of ``height``×``width`` is resized to before the crop:
        the short side to ``resize`` (or the image scaled to cover a two-sided ``resize``),
        scaled up further where needed so that it covers the crop."""
        if self.resize is None:
            raise TypeError("a view with resize=None resizes the whole image to the crop's size: it has no resized size")
        crop_h, crop_w = self.size
        if isinstance(self.resize, int):
            scale = self.resize / min(height, width)
        else:
            scale = max(self.resize[0] / height, self.resize[1] / width)
        if not self.square:
            scale = max(scale, crop_h / height, crop_w / width)
        return max(crop_h, round(height * scale)), max(crop_w, round(width * scale))

    def describe(self) -> str:
        """The view in words for messages and records: ``256->224``, ``None->160x320``."""
        return f"{_text(self.resize)}->{_text(self.crop)}"

    def _crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, crop height, crop width)`` of the centre crop of a ``height``×``width`` image."""
        crop_h, crop_w = self.size
        return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def _size(value: int | Sequence[int], name: str) -> Size:
    """A side or a pair of sides as the view stores it: one int for a square."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        sides: tuple[int, ...] = (int(value),)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (1, 2):
        sides = tuple(int(side) for side in value)
    else:
        raise MaskscopeValueError(f"{name} must be a side or (height, width), got {value!r}")
    if min(sides) < 1:
        raise MaskscopeValueError(f"{name} must be positive, got {value!r}")
    return sides[0] if len(set(sides)) == 1 else (sides[0], sides[1])


def _pair(value: Size) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else value


def _text(value: Size | None) -> str:
    return str(value) if value is None or isinstance(value, int) else f"{value[0]}x{value[1]}"


def _resize(batch: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    if mode == "nearest":
        return F.interpolate(batch, size=size, mode="nearest")
    antialias = size[0] < batch.shape[-2] or size[1] < batch.shape[-1]
    return F.interpolate(batch, size=size, mode=mode, align_corners=False, antialias=antialias).clamp(0, 1)
