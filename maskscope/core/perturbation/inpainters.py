"""Inpainters: fillers that paint the removed region from the pixels around it.

G-removal (Agarwal & Nguyen, ACCV 2020; METHODS.md §5) replaces removed pixels by an
inpainter's guess ``G(x, holes)`` instead of blur or a flat colour, so the perturbed image
stays close to natural images. Holes come from the keep-mask ``m`` (1 = keep) by the rule
``hole = m < max(0.5, (max m + min m)/2)`` per image, and the composite is
``m·x + (1 − m)·G(x, holes)``.

Every inpainter has one interface, :meth:`Inpainter.inpaint` ``(images, holes) -> images``,
and is a :class:`~maskscope.core.perturbation.fillers.Filler` whose content depends on the mask, so any
method accepts it where it accepts a filler (``filler="inpaint"`` resolves to Navier–Stokes):

* :class:`OpenCVInpainter` — OpenCV's Navier–Stokes (Bertalmío et al. 2001, the default) or
  Telea's fast marching (2004) inpainting;
* :class:`BiharmonicInpainter` — scikit-image's biharmonic inpainting (exact on smooth
  ramps, several times slower);
* :class:`LearnedInpainter` — a model the user supplies (a TorchScript file or a callable,
  for example LaMa weights they have locally), run in batches on its device.

Pixels outside the holes are always returned unchanged, and an image without a hole is
returned without calling the backend.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from maskscope.core.perturbation.fillers import Filler
from maskscope.core.perturbation.masks import binarise
from maskscope.errors import MissingFileError


class InpainterOutputError(RuntimeError):
    """An inpainting model returned something other than finite images of the input's shape."""


def holes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Holes (True = to fill) of keep-masks B×1×H×W: below ``max(0.5, (max + min)/2)`` per image."""
    return ~binarise(masks)


class Inpainter(Filler):
    """Base class: subclasses implement :meth:`_inpaint` on the images that have holes."""

    depends_on_mask = True

    def inpaint(self, images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
        """Fill the holes of images B×3×H×W in [0, 1]; holes B×1×H×W bool, True = to fill.

        Returns B×3×H×W: the backend's content inside the holes, the input elsewhere.
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} needs images of shape B×3×H×W, got {tuple(images.shape)}")
        expected = (images.shape[0], 1, *images.shape[-2:])
        if tuple(holes.shape) != expected:
            raise ValueError(f"{type(self).__name__} needs holes of shape {expected}, got {tuple(holes.shape)}")
        images = images.detach()
        holes = holes.to(device=images.device, dtype=torch.bool)
        todo = holes.flatten(1).any(1)
        if not bool(todo.any()):
            return images
        out = images.clone()
        painted = self._inpaint(images[todo], holes[todo]).to(images)
        out[todo] = torch.where(holes[todo], painted, images[todo])
        return out

    def fill(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """The inpainted image for keep-masks B×1×H×W at image size (1 = keep)."""
        if masks is None:
            raise ValueError(f"{type(self).__name__} fills holes, so it needs the masks (B×1×H×W, 1 = keep)")
        if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"masks of shape {tuple(masks.shape)} do not match images of shape {tuple(images.shape)}"
            )
        return self.inpaint(images, holes_from_masks(masks.detach()))

    def _inpaint(self, images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def available_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class PerImageInpainter(Inpainter):
    """An inpainter that works on one H×W×3 float32 array at a time, on the CPU.

    The images of a batch are spread over a thread pool of ``workers`` threads (default:
    the CPUs this process may use); OpenCV and NumPy release the GIL while they work. An
    image that is all hole has nothing to paint from and becomes flat grey (0.5).
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers

    def _inpaint(self, images, holes):
        pixels = images.permute(0, 2, 3, 1).float().cpu().numpy()
        hole_arrays = holes[:, 0].cpu().numpy()
        workers = min(self.workers or available_cpus(), len(pixels))
        if workers == 1:
            painted = [self._paint_or_grey(p, h) for p, h in zip(pixels, hole_arrays)]
        else:
            with ThreadPoolExecutor(workers) as pool:
                painted = list(pool.map(self._paint_or_grey, pixels, hole_arrays))
        return torch.from_numpy(np.stack(painted)).permute(0, 3, 1, 2).to(images)

    def _paint_or_grey(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if hole.all():
            return np.full_like(image, 0.5)
        return self._paint(image, hole)

    def _paint(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Inpaint one image H×W×3 (float32, [0, 1]) where ``hole`` (H×W bool) is set."""
        raise NotImplementedError


#: method name → the name of its flag in ``cv2`` (OpenCV is imported when a photo is painted)
OPENCV_METHODS = {"ns": "INPAINT_NS", "telea": "INPAINT_TELEA"}


class OpenCVInpainter(PerImageInpainter):
    """OpenCV's ``cv2.inpaint``: Navier–Stokes (``"ns"``, the project's default) or Telea.

    Navier–Stokes (Bertalmío, Bertozzi & Sapiro, 2001) carries the image's isophotes into
    the hole along the flow of a fluid; Telea (2004) fills the hole from its edge inwards by
    fast marching, each pixel a weighted average of the known pixels within ``radius``.
    OpenCV inpaints 8-bit colour images, so each image is rounded to uint8 for the call: the
    painted pixels carry that quantisation (at most 1/510), the pixels outside the holes keep
    their full precision.

    Args:
        method: ``"ns"`` or ``"telea"``.
        radius: neighbourhood radius in pixels (OpenCV's ``inpaintRadius``).
        workers: threads over the images of a batch (default: all available CPUs).
    """

    def __init__(self, method: str = "ns", radius: float = 3.0, workers: int | None = None) -> None:
        if method not in OPENCV_METHODS:
            raise ValueError(f"OpenCV inpainting method must be one of {tuple(OPENCV_METHODS)}, got {method!r}")
        if radius <= 0:
            raise ValueError(f"radius must be positive, got {radius}")
        super().__init__(workers)
        self.method = method
        self.radius = radius

    def _paint(self, image, hole):
        import cv2

        pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
        flag = getattr(cv2, OPENCV_METHODS[self.method])
        painted = cv2.inpaint(pixels, hole.astype(np.uint8), float(self.radius), flag)
        return painted.astype(np.float32) / 255


class BiharmonicInpainter(PerImageInpainter):
    """scikit-image's ``inpaint_biharmonic``: each channel solves ``Δ²u = 0`` in the hole
    with the known pixels as boundary values (smooth ramps are filled exactly).

    Args:
        split_into_regions: solve each connected hole separately (faster for many small holes).
        workers: threads over the images of a batch (default: all available CPUs).
    """

    def __init__(self, split_into_regions: bool = False, workers: int | None = None) -> None:
        super().__init__(workers)
        self.split_into_regions = split_into_regions

    def _paint(self, image, hole):
        from skimage.restoration import inpaint_biharmonic

        painted = inpaint_biharmonic(image, hole, split_into_regions=self.split_into_regions, channel_axis=-1)
        return painted.astype(np.float32)


class LearnedInpainter(Inpainter):
    """A user-supplied inpainting model.

    The model is a TorchScript file (``torch.jit.save``) or any callable, ``nn.Module``
    included, with the signature ``model(images, holes) -> images``:

    * ``images`` B×3×H×W float32 in [0, 1], with the hole pixels set to 0 (nothing of the
      removed content reaches the model);
    * ``holes`` B×1×H×W float32, 1 = to fill, 0 = known;
    * it returns B×3×H×W in [0, 1] (values are clipped to [0, 1]; only the hole pixels are
      used).

    A network trained with another convention is wrapped in a small module. LaMa's
    generator, for example, takes ``cat([image·(1 − hole), hole], 1)`` and wants sizes that
    are multiples of 8, so a wrapper pads the batch, concatenates, calls the generator and
    crops the result back.

    Calls run under ``torch.no_grad()`` in chunks of ``batch_size`` images on ``device``
    (default: the model's own device for a module, else the images' device); the result
    comes back on the images' device. An output of the wrong shape or with NaN raises
    :class:`InpainterOutputError`.

    Args:
        model: a path to a TorchScript file, or the callable itself.
        batch_size: images per model call.
        device: where the model runs.
    """

    def __init__(
        self, model: str | os.PathLike | Callable, batch_size: int = 16, device: str | torch.device | None = None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self._network = load_inpainting_model(model, device)

    def __repr__(self) -> str:
        model = self.model if isinstance(self.model, (str, os.PathLike)) else type(self.model).__name__
        return f"LearnedInpainter(model={model!r}, batch_size={self.batch_size}, device={self.device!r})"

    @property
    def name(self) -> str:
        if isinstance(self.model, (str, os.PathLike)):
            return Path(self.model).name
        return getattr(self.model, "__name__", type(self.model).__name__)

    def _model_device(self, images: torch.Tensor) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        if isinstance(self._network, nn.Module):
            for tensor in list(self._network.parameters()) + list(self._network.buffers()):
                return tensor.device
        return images.device

    def _inpaint(self, images, holes):
        device = self._model_device(images)
        painted = []
        with torch.no_grad():
            for start in range(0, images.shape[0], self.batch_size):
                chunk = images[start : start + self.batch_size].to(device, torch.float32)
                chunk_holes = holes[start : start + self.batch_size].to(device, torch.float32)
                out = self._network(chunk * (1 - chunk_holes), chunk_holes)
                self._check(out, chunk)
                painted.append(out.clamp(0, 1).to(images.device))
        return torch.cat(painted)

    def _check(self, out: object, chunk: torch.Tensor) -> None:
        if not isinstance(out, torch.Tensor):
            raise InpainterOutputError(f"inpainting model {self.name} returned {type(out).__name__}, not a tensor")
        if out.shape != chunk.shape:
            raise InpainterOutputError(
                f"inpainting model {self.name} returned shape {tuple(out.shape)} "
                f"for images of shape {tuple(chunk.shape)}; it must return B×3×H×W like its input"
            )
        if not torch.isfinite(out).all():
            raise InpainterOutputError(f"inpainting model {self.name} returned NaN or infinite values")


def load_inpainting_model(model: str | os.PathLike | Callable, device: str | torch.device | None) -> Callable:
    """The callable behind a :class:`LearnedInpainter`: a loaded TorchScript file or the callable
    itself; modules are put in eval mode (and on ``device`` when given)."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise MissingFileError(f"{path}: no such inpainting model file")
        try:
            model = torch.jit.load(str(path), map_location=device or "cpu")
        except RuntimeError as error:
            raise ValueError(f"{path}: not a TorchScript model ({str(error).splitlines()[0]})") from error
    if not callable(model):
        raise TypeError(f"an inpainting model must be a TorchScript path or a callable, got {type(model).__name__}")
    if isinstance(model, nn.Module):
        model.eval()
        if device is not None:
            model.to(device)
    return model
