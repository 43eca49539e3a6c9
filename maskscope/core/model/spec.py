"""Which classifier a command runs, and how: one :class:`ModelSpec`, its defaults stated once.

A spec names the model (``"default"``: EfficientNet-Lite0, ``efficientnet-lite1/2``, a
TorchScript file or an ONNX file), the device, the inference engine, the precision and the
photos ``int8`` is calibrated on. The command line builds one from its options
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

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class ModelSpec:
    """The classifier a run uses: what :func:`load_classifier` needs, and nothing of the run.

    Attributes:
        model: ``"default"`` (EfficientNet-Lite0), ``efficientnet-lite0/1/2``, a TorchScript
            file or an ONNX file (black-box methods only).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        engine: where the passes that need no gradient run: ``torch``, ``onnxruntime``,
            ``openvino`` or ``auto``.
        precision: ``float32``, ``bfloat16``, ``float16``, ``int8`` or ``fast``.
        calibration: a folder (or one photo) to calibrate ``int8`` on; ``None``: the first
            images the classifier runs.
    """

    model: str = DEFAULT_MODEL
    device: str = DEFAULT_DEVICE
    engine: str = DEFAULT_ENGINE
    precision: str = DEFAULT_PRECISION
    calibration: str | None = None

    @classmethod
    def from_values(cls, **values: Any) -> "ModelSpec":
        """A spec of the given values; ``None`` (not given) and keys that are not a spec's are left out."""
        names = {field.name for field in fields(cls)}
        return cls(**{key: str(value) for key, value in values.items() if key in names and value is not None})

    def given(self, **values: Any) -> "ModelSpec":
        """This spec with the values that are not ``None`` put in (a command line over a file)."""
        names = {field.name for field in fields(self)}
        return replace(self, **{key: str(value) for key, value in values.items() if key in names and value is not None})

    @property
    def is_onnx(self) -> bool:
        """Whether the model is an ONNX file."""
        return Path(self.model).suffix.lower() == ".onnx"
