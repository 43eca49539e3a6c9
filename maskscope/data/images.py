"""Reading images from paths, PIL images, numpy arrays and tensors into one form.

Every image leaves this module as a float tensor of shape 3×H×W with values in [0, 1]:
grayscale is repeated to three channels, an alpha channel is composited over white,
16-bit and float images are rescaled, and the EXIF orientation of a file is applied.

Given ``min_side``, a large photo is reduced while it is decoded, by the largest integer
factor that keeps its short side at least ``min_side`` (JPEG's DCT scaling through PIL's
``draft``, else ``Image.reduce`` straight after decoding, before any conversion or copy), so
memory follows what the classifier sees, not the file: a 12000×12000 PNG peaks at its 8-bit
decode, not at a float copy of it.

A file larger than PIL's decompression-bomb limit (``2 × Image.MAX_IMAGE_PIXELS`` pixels) is an
:class:`ImageLoadError`, read no further than its header; below that limit PIL's warning is
not repeated, since the photo is decoded reduced.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from maskscope.errors import MaskscopeValueError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm")


class ImageLoadError(MaskscopeValueError):
    """An input could not be read as an image; the message names the input."""


def load_image(source: ImageLike, name: str | None = None, min_side: int | None = None) -> torch.Tensor:
    """Return ``source`` as a float tensor 3×H×W in [0, 1].

    Args:
        source: a file path, a PIL image, a numpy array (H×W, H×W×C or C×H×W with C in
            {1, 3, 4}; uint8, uint16 or float in [0, 1]) or a tensor of the same layouts.
        name: how to call the input in error messages (defaults to the path).
        min_side: reduce a file or PIL image while its short side stays at least this
            (``ClassifierView.decode_side``); ``None`` keeps the full size. Arrays are kept.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__)
    if isinstance(source, (str, os.PathLike)):
        return _from_pil(_open(Path(source), min_side), label, min_side)
    if isinstance(source, Image.Image):
        return _from_pil(source, label, min_side)
    if isinstance(source, torch.Tensor):
        return _from_array(source.detach().cpu().numpy(), label)
    if isinstance(source, np.ndarray):
        return _from_array(source, label)
    raise ImageLoadError(f"{label}: cannot read an image from a {type(source).__name__}")


#: how far outside [0, 1] a pixel may be (rounding of resizes and blends) before images count as normalised
PIXEL_RANGE_SLACK = 1e-3


def check_pixel_range(images: torch.Tensor) -> None:
    """ValueError unless ``images`` are pixel-space values in [0, 1] (within
    :data:`PIXEL_RANGE_SLACK`): a tensor that was already normalised (``(x − mean) / std``)
    would be normalised a second time by the classifier."""
    if images.numel() == 0:
        return
    low, high = float(images.min()), float(images.max())
    if low < -PIXEL_RANGE_SLACK or high > 1 + PIXEL_RANGE_SLACK:
        raise ValueError(
            f"images must be pixels in [0, 1], got values from {low:.3g} to {high:.3g}: pass them before "
            "normalisation (the classifier normalises them itself), or scale 0–255 images by 1/255"
        )


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files inside ``folder`` (and its sub-folders when ``recursive``, hidden ones
    left out), sorted; an error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageLoadError(f"{folder}: not a directory")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(
        path
        for path in candidates
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not files:
        raise ImageLoadError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def image_name(source: ImageLike, index: int) -> str:
    """What to call an image: a file's stem, else ``image_<index>``."""
    return Path(source).stem if isinstance(source, (str, os.PathLike)) else f"image_{index}"


def unique_names(names: list[str]) -> list[str]:
    """``names`` with repeats numbered: ``flower``, ``flower_1``, ``flower_2``, …"""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count}")
    return unique


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of the image file at ``path`` as displayed (EXIF orientation applied), from its
    header: the size its annotations' pixels refer to, whatever size it is decoded at."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                turned = image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
            raise ImageLoadError(f"{path}: unreadable image ({error})") from error
    return (width, height) if turned else (height, width)


#: the EXIF tag of the orientation
EXIF_ORIENTATION = 0x0112
#: the 16-bit modes, whose values are scaled by 65535
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L")


def _open(path: Path, min_side: int | None = None) -> Image.Image:
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageLoadError(f"{path}: is a directory, not an image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # decoded reduced below
        try:
            image = Image.open(path)
            factor = _reduction(image.size, min_side)
            if factor > 1 and image.format == "JPEG":
                width, height = image.size
                image.draft(image.mode, (-(-width // factor), -(-height // factor)))
            image.load()
        except Image.DecompressionBombError as error:
            reason = str(error).split(", could be")[0]
            raise ImageLoadError(f"{path}: {reason}: refused as a possible decompression bomb; shrink the photo") from error
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ImageLoadError(f"{path}: unreadable or truncated image ({error})") from error
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return ImageOps.exif_transpose(_with_orientation(_reduce(image, min_side), orientation))


def _reduction(size: tuple[int, int], min_side: int | None) -> int:
    """The largest integer factor that keeps the short side of ``size`` at least ``min_side``."""
    return 1 if min_side is None else max(1, min(size) // min_side)


def _reduce(image: Image.Image, min_side: int | None) -> Image.Image:
    """``image`` reduced by :func:`_reduction`'s factor (``Image.reduce``: a box average), the
    16-bit modes as ``I`` and palette and bilevel ones as RGB(A) first, since ``Image.reduce``
    takes neither; the mode a 16-bit image had is kept in ``info["maskscope.mode"]``, for its scale."""
    factor = _reduction(image.size, min_side)
    if factor == 1:
        return image
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        image = image.convert("I")
    elif mode in ("P", "1"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    reduced = image.reduce(factor)
    reduced.info["maskscope.mode"] = mode
    return reduced


def _with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` whose EXIF says ``orientation`` (a reduced copy has lost its EXIF)."""
    if orientation != 1 and image.getexif().get(EXIF_ORIENTATION, 1) != orientation:
        exif = image.getexif()
        exif[EXIF_ORIENTATION] = orientation
        image.info["exif"] = exif.tobytes()
    return image


def _from_pil(image: Image.Image, label: str, min_side: int | None = None) -> torch.Tensor:
    mode = image.info.get("maskscope.mode", image.mode)
    image = _reduce(image, min_side)
    if image.mode in (*SIXTEEN_BIT_MODES, "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode in SIXTEEN_BIT_MODES or array.max() > 255 else 255.0
        return _from_array((array / peak).astype(np.float32), label)
    if image.mode == "F":
        return _from_array(np.asarray(image, dtype=np.float32), label)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return _from_array(np.asarray(image.convert("RGB") if image.mode != "RGB" else image), label)


def _from_array(array: np.ndarray, label: str) -> torch.Tensor:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ImageLoadError(f"{label}: expected a 2-D or 3-D image array, got shape {array.shape}")
    if array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = np.transpose(array, (1, 2, 0))
    channels = array.shape[2]
    if channels not in (1, 3, 4):
        raise ImageLoadError(f"{label}: expected 1, 3 or 4 channels, got {channels}")
    values = _to_unit_range(array, label)
    if channels == 4:
        alpha = values[:, :, 3:]
        values = values[:, :, :3] * alpha + (1.0 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    if min(values.shape[:2]) < 8:
        raise ImageLoadError(f"{label}: image of {values.shape[1]}×{values.shape[0]} px is too small (need ≥ 8 px)")
    return torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1))).float()


def _to_unit_range(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        peak = 65535.0 if array.max() > 255 else 255.0
        return array.astype(np.float32) / peak
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise ImageLoadError(f"{label}: image contains NaN or infinite values")
    if values.min() < -1e-3 or values.max() > 1 + 1e-3:
        raise ImageLoadError(
            f"{label}: float image values must lie in [0, 1], got [{values.min():.3g}, {values.max():.3g}]"
        )
    return np.clip(values, 0.0, 1.0)
