"""The classifier a :class:`~maskscope.core.model.spec.ModelSpec` names, loaded on its device.

:func:`load_model` reads the model (a built-in EfficientNet-Lite, a TorchScript file or an
ONNX file) and sets its engine and precision; the spec's calibration photos are read by the
caller, which knows how to read photos (:func:`maskscope.cli.options.load_classifier`).
"""

from __future__ import annotations

from pathlib import Path

from maskscope.core.model.classifier import Classifier, check_device
from maskscope.core.model.default_model import DEFAULT_MODEL as DEFAULT_LITE
from maskscope.core.model.default_model import EFFICIENTNET_LITE
from maskscope.core.model.onnx_models import load_onnx_classifier
from maskscope.core.model.spec import DEFAULT_MODEL, ModelSpec
from maskscope.errors import MaskscopeError, MaskscopeValueError


class ModelChoiceError(MaskscopeValueError):
    """A model name that names no model, or a model on a device it cannot run on."""


class MissingPackage(MaskscopeError, ImportError):
    """An optional package the model needs is not installed; the message says which."""


def load_model(spec: ModelSpec) -> Classifier:
    """The classifier named by ``spec.model`` on ``spec.device`` with ``spec.engine`` at ``spec.precision``.

    The device is checked first (:func:`~maskscope.core.model.classifier.check_device`), so a
    device this machine lacks is an error before any model is read.

    Raises:
        ModelChoiceError: an unknown model name, or an ONNX file on a device other than the CPU.
        MissingPackage: the model's weights package, or onnx, is not installed.
        DeviceError, ModelFileError, EngineChoiceError: see :class:`~maskscope.core.model.classifier.Classifier`.
    """
    name, engine, precision = spec.model, spec.engine, spec.precision
    if spec.is_onnx and spec.device != "cpu":
        raise ModelChoiceError(f"an ONNX model runs on the CPU here, not --device {spec.device}")
    check_device(spec.device)
    try:
        if name == DEFAULT_MODEL or name in EFFICIENTNET_LITE:
            lite = DEFAULT_LITE if name == DEFAULT_MODEL else name
            return Classifier.default(lite, device=spec.device, engine=engine, precision=precision)
        if spec.is_onnx:
            return load_onnx_classifier(name, engine=engine, precision=precision)
        if Path(name).suffix or Path(name).exists():
            return Classifier.from_torchscript(name, device=spec.device, engine=engine, precision=precision)
    except MaskscopeError:
        raise
    except ImportError as error:  # an optional package the model needs (its weights, onnx); the message says which
        raise MissingPackage(str(error)) from error
    raise ModelChoiceError(
        f"unknown model {name!r}: use {DEFAULT_MODEL}, {', '.join(EFFICIENTNET_LITE)}, a TorchScript file or an ONNX file"
    )
