"""The classifier's view of an image: resize the short side, then crop the centre.

ImageNet classifiers see a photo resized so that its short side is ``resize`` pixels and
then centre-cropped to ``crop``×``crop`` (256 → 224 by default). ``to_original`` maps a
saliency map of that view back onto the whole photo for display.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ClassifierView:
    """Resize-then-centre-crop policy.

    Args:
        resize: length of the short side after resizing (``None``: resize the whole image
            to ``crop``×``crop`` without keeping the aspect ratio).
        crop: side of the square centre crop the classifier sees.
    """

    resize: int | None = 256
    crop: int = 224

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Map an image 3×H×W (or a batch B×3×H×W) to the classifier's crop×crop view."""
        batch = image if image.dim() == 4 else image[None]
        height, width = batch.shape[-2:]
        if self.resize is None:
            out = _resize(batch, (self.crop, self.crop))
        else:
            new_h, new_w = self.resized_size(height, width)
            out = _resize(batch, (new_h, new_w))
            top, left = (new_h - self.crop) // 2, (new_w - self.crop) // 2
            out = out[..., top : top + self.crop, left : left + self.crop]
        return out if image.dim() == 4 else out[0]

    def to_original(self, saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Place a crop×crop map (or B×crop×crop) back on an image of ``size`` (H, W).

        Pixels the classifier never saw (outside the centre crop) are NaN.
        """
        maps = saliency if saliency.dim() == 3 else saliency[None]
        height, width = size
        if self.resize is None:
            out = _resize(maps[:, None].float(), (height, width))[:, 0]
        else:
            new_h, new_w = self.resized_size(height, width)
            canvas = maps.new_full((maps.shape[0], new_h, new_w), float("nan"), dtype=torch.float32)
            top, left = (new_h - self.crop) // 2, (new_w - self.crop) // 2
            canvas[:, top : top + self.crop, left : left + self.crop] = maps.float()
            out = _resize(canvas[:, None], (height, width), mode="nearest")[:, 0]
        return out if saliency.dim() == 3 else out[0]

    @property
    def decode_side(self) -> int:
        """The short side a photo keeps when it is reduced while decoding: twice what the view
        resizes it to, so that the view's own antialiased resize makes the last step."""
        return 2 * (self.resize or self.crop)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        if self.resize is None:
            raise TypeError("a view with resize=None resizes the whole image to crop×crop: it has no resized size")
        scale = self.resize / min(height, width)
        new_h, new_w = max(self.crop, round(height * scale)), max(self.crop, round(width * scale))
        return new_h, new_w


def _resize(batch: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    if mode == "nearest":
        return F.interpolate(batch, size=size, mode="nearest")
    antialias = size[0] < batch.shape[-2] or size[1] < batch.shape[-1]
    return F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=antialias).clamp(0, 1)
