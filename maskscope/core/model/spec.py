"""Which classifier a command runs, and how: one :class:`ModelSpec`, its defaults stated once.

A spec names the model (``"default"``: EfficientNet-Lite0, ``efficientnet-lite1/2``, a
TorchScript file, an ONNX file, ``hf:FOLDER``, ``timm:NAME`` or ``torchvision:NAME`` with the
weights file ``checkpoint``), the device, the inference engine, the precision, the photos
``int8`` is calibrated on, and what the user says of the model's preprocessing where the model
does not say it or says it otherwise: ``mean``, ``std``, the input ``size`` and a file of
``class_names``. The command line builds one from its options
(:func:`maskscope.cli.options.model_spec`), ``bench`` from its configuration
(:meth:`maskscope.bench.config.BenchConfig.model_spec`); a worker process or a Ray worker is
handed the spec (a small frozen dataclass, picklable) and loads the classifier itself
(:func:`maskscope.core.model.loading.load_model`, and
:func:`maskscope.cli.options.load_classifier` with the calibration photos).

The defaults live here and nowhere else: the command line's options default to ``None``,
"not given", so that an option given on the command line always wins over a configuration
file, even when it names the default value.

A trained explainer's ``--checkpoint`` is not part of the spec: it is a parameter of the
``explainer`` method, which feeds the spec's classifier the way its training did
(:func:`maskscope.methods.explainer.checkpoint.classifier_for_checkpoint`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence

from maskscope.errors import MaskscopeValueError

#: ``--model``'s default, EfficientNet-Lite0 with ImageNet weights
DEFAULT_MODEL = "default"
#: where the classifier runs unless told
DEFAULT_DEVICE = "cpu"
#: the engine of a classifier loaded by name or file (the command line, ``Classifier.default``,
#: ``from_torchscript``): the fastest installed for the precision
DEFAULT_ENGINE = "auto"
#: the engine of a module handed to ``Classifier(module)`` directly: it runs as it is, without
#: an export to ONNX (a module of one's own may not export, or be changed after it was wrapped);
#: pass ``engine=DEFAULT_ENGINE`` to compile it
MODULE_ENGINE = "torch"
#: the forward passes' number type unless told
DEFAULT_PRECISION = "float32"
#: ``--model PREFIX:NAME``: a Hugging Face model folder, a timm or a torchvision architecture
SOURCES = ("hf", "timm", "torchvision")
#: the view of ``--size N``: the short side resized to N·256/224, then the centre N×N cropped
#: (ImageNet's rule: the crop keeps 87.5 % of the short side)
RESIZE_RATIO = 256 / 224


class ModelSpecError(MaskscopeValueError):
    """A model setting that cannot be read: a mean, std or size of the wrong form."""


@dataclass(frozen=True)
class ModelSpec:
    """The classifier a run uses: what :func:`load_classifier` needs, and nothing of the run.

    Attributes:
        model: ``"default"`` (EfficientNet-Lite0), ``efficientnet-lite0/1/2``, a TorchScript
            file, an ONNX file (black-box methods only), ``hf:FOLDER`` (a Hugging Face image
            classifier saved with ``save_pretrained``), ``timm:NAME`` or ``torchvision:NAME``
            (an architecture, its weights in ``checkpoint``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        engine: where the passes that need no gradient run: ``torch``, ``onnxruntime``,
            ``openvino`` or ``auto``.
        precision: ``float32``, ``bfloat16``, ``float16``, ``int8`` or ``fast``.
        calibration: a folder (or one photo) to calibrate ``int8`` on; ``None``: the first
            images the classifier runs.
        checkpoint: the weights file of a ``timm:`` or ``torchvision:`` architecture.
        mean, std: the normalisation ``(x − mean) / std``, three numbers (one for a
            one-channel model); ``None``: the model's own (or, for a file without any, ImageNet's,
            with a warning).
        size: the input size ``(height, width)`` the model takes; the view resizes the short
            side by :data:`RESIZE_RATIO` and crops the centre to it
            (:func:`~maskscope.core.model.loading.view_for_size`). ``None``: the
            model's own view.
        class_names: a file of class names, one a line or a JSON list (or the names themselves,
            comma-separated); ``None``: the model's own.

    Each value is read from the forms the command line and ``config.json`` give it (``"0.5,0.5,0.5"``
    or a list; ``"32"``, ``"160x320"``, ``32`` or ``[160, 320]``) and kept in one form: a tuple of
    floats, a ``(height, width)`` tuple, a string.
    """

    model: str = DEFAULT_MODEL
    device: str = DEFAULT_DEVICE
    engine: str = DEFAULT_ENGINE
    precision: str = DEFAULT_PRECISION
    calibration: str | None = None
    checkpoint: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    size: tuple[int, int] | None = None
    class_names: str | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            object.__setattr__(self, field.name, spec_value(field.name, getattr(self, field.name)))

    @classmethod
    def from_values(cls, **values: Any) -> "ModelSpec":
        """A spec of the given values; ``None`` (not given) and keys that are not a spec's are left out."""
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names and value is not None})

    def given(self, **values: Any) -> "ModelSpec":
        """This spec with the values that are not ``None`` put in (a command line over a file)."""
        names = {field.name for field in fields(self)}
        return replace(self, **{key: value for key, value in values.items() if key in names and value is not None})

    @property
    def is_onnx(self) -> bool:
        """Whether the model is an ONNX file."""
        return Path(self.model).suffix.lower() == ".onnx"

    @property
    def source(self) -> tuple[str, str] | None:
        """``(prefix, name)`` of ``hf:FOLDER``, ``timm:NAME`` or ``torchvision:NAME``; ``None`` for another model."""
        prefix, colon, name = self.model.partition(":")
        if colon and prefix.lower() in SOURCES:
            return prefix.lower(), name
        return None


def spec_value(name: str, value: Any) -> Any:
    """``value`` of the spec's field ``name`` in its one form (see :class:`ModelSpec`); ``None`` stays ``None``.

    Raises:
        ModelSpecError: a mean or std that is not 1 or 3 finite numbers (a std not positive), a
            size that is not N or HxW of positive whole numbers.
    """
    if value is None:
        return None
    if name in ("mean", "std"):
        return statistics(value, name)
    if name == "size":
        return input_size(value)
    return str(value)


def statistics(value: str | float | Sequence[float], name: str = "mean") -> tuple[float, ...]:
    """A mean or std: ``"R,G,B"``, one number (a one-channel model), or a sequence of them."""
    try:
        if isinstance(value, str):
            numbers = tuple(float(part) for part in value.split(","))
        elif isinstance(value, (int, float)):
            numbers = (float(value),)
        else:
            numbers = tuple(float(part) for part in value)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) not in (1, 3) or not all(math.isfinite(number) for number in numbers):
        raise ModelSpecError(f"--{name} needs three comma-separated numbers R,G,B (one for a one-channel model), "
                             f"got {_shown(value)}")
    if name == "std" and not all(number > 0 for number in numbers):
        raise ModelSpecError(f"--std needs three positive numbers (one for a one-channel model; the classifier divides "
                             f"by them), got {_shown(value)}")
    return numbers


def input_size(value: str | int | Sequence[int]) -> tuple[int, int]:
    """An input size: ``N`` or ``"HxW"`` (or a pair), as ``(height, width)``."""
    try:
        if isinstance(value, str):
            parts = [int(part) for part in value.lower().replace("×", "x").split("x")]
        elif isinstance(value, int):
            parts = [value]
        else:
            parts = [int(part) for part in value]
    except (TypeError, ValueError):
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise ModelSpecError(f"--size needs N or HxW in pixels (e.g. 32 or 160x320), got {_shown(value)}")
    return parts[0], parts[1]


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(list(value) if isinstance(value, tuple) else value)
