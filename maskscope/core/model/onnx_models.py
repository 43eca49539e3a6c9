"""Classifiers as ONNX files: export a torch classifier, read back the settings stored in one.

Black-box methods (RISE, occlusion, LIME, …) need forward passes only, so they can explain a
model that is just an ONNX file. :func:`export_onnx` writes a classifier's model
(taking the *normalised* batch, as the torch model does) with a dynamic batch dimension, and
stores the wrapper's settings in the file's metadata: normalisation (``maskscope.mean``,
``maskscope.std``), output kind, view (``maskscope.resize``, ``maskscope.crop``), class names
and name. :func:`load_onnx_classifier` opens such a file as a :class:`Classifier` with the
settings :func:`read_settings` reads back, so an exported model comes back with the same
preprocessing; a file made elsewhere has no such metadata and gets the classifier's defaults
(ImageNet normalisation, 256 → 224 view) unless they are given, with a one-line warning naming
the normalisation assumed (:func:`~maskscope.core.model.classifier.warn_assumed_normalisation`).
Its input is checked when it is opened (:func:`check_onnx_input`): one float32 batch B×3×H×W whose fixed sides, if any, are
the view's crop, so a model for another input size or number type is a one-line
:class:`OnnxInputError`, not an engine's error at the first pass. The file itself runs on an
inference engine (:mod:`maskscope.core.model.engines`); the export is
:func:`maskscope.core.model.engines.cache.export_module`, the one the engines' cache uses.

This module depends on :mod:`maskscope.core.model.classifier`, never the other way round.

Needs ``onnx``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier, MissingModelFile, ModelFileError, warn_assumed_normalisation
from maskscope.core.model.engines.cache import export_module
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeValueError

METADATA_PREFIX = "maskscope."
INSTALL_HINT = "pip install 'maskscope[onnx]'"
#: ``onnx.TensorProto.FLOAT``: the number type the engines feed
ONNX_FLOAT = 1


class OnnxInputError(MaskscopeValueError):
    """An ONNX model whose input is not the float32 batch B×3×crop×crop maskscope feeds it."""


def load_onnx_classifier(
    path: str | os.PathLike, engine: str = "auto", precision: str = "float32", **kwargs
) -> Classifier:
    """Open an ONNX file as a forward-only classifier (black-box methods) on an inference engine.

    The model takes the normalised batch B×3×H×W and returns logits. Settings stored by
    :func:`export_onnx` (normalisation, view, output kind, class names) are used unless
    ``kwargs`` (any :class:`Classifier` argument) override them. ``engine``: ``onnxruntime``,
    ``openvino`` or ``auto``; ``precision`` as for the :class:`Classifier` constructor (not
    ``float16``). A file whose metadata has no mean and std, given none here, is warned of in one
    line: ImageNet's are assumed.
    """
    proto = _read_model(path)
    settings = {**settings_from_metadata({prop.key: prop.value for prop in proto.metadata_props}), **kwargs}
    if check_onnx_input(proto, (settings.get("view") or ClassifierView()).size, Path(path)) == 1:
        settings.setdefault("channels", 1)  # a model of grey images: the classifier feeds it luminance
    classifier = Classifier(Path(path), **settings, engine=engine, precision=precision)
    if not {"mean", "std"} <= settings.keys():
        warn_assumed_normalisation(f"ONNX file {Path(path).name}", classifier.channels)
    return classifier


def check_onnx_input(proto: Any, size: tuple[int, int], path: Path) -> int | None:
    """An :class:`OnnxInputError` unless the graph takes one float32 input B×C×H×W of 3 or 1
    channels whose fixed sides equal ``size`` (the view's ``(height, width)``; a side given by
    name, or unset, takes any size). Returns the channels the graph fixes (``None``: not fixed)."""
    initialisers = {tensor.name for tensor in proto.graph.initializer}
    inputs = [value for value in proto.graph.input if value.name not in initialisers]
    if len(inputs) != 1:
        raise OnnxInputError(f"{path}: the model takes {len(inputs)} inputs; maskscope feeds one image batch")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != ONNX_FLOAT:
        import onnx

        kind = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
        raise OnnxInputError(f"{path}: the model's input {inputs[0].name!r} is {kind}; maskscope feeds float32 images")
    if not tensor.HasField("shape"):
        return None
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
    if len(dims) != 4 or dims[1] not in (None, 1, 3):
        shown = "×".join("?" if d is None else str(d) for d in dims)
        raise OnnxInputError(f"{path}: the model's input is {shown}; maskscope feeds image batches B×3×H×W (or B×1×H×W)")
    if any(side is not None and side != wanted for side, wanted in zip(dims[2:], size)):
        height, width = ("?" if d is None else str(d) for d in dims[2:])
        raise OnnxInputError(
            f"{path}: the model takes {height}×{width} images but its view crops {size[0]}×{size[1]}; "
            "export it with a dynamic size, or give it a view of that size"
        )
    return dims[1]


def export_onnx(classifier: Classifier, path: str | os.PathLike) -> Path:
    """Write ``classifier``'s model to ``path`` as ONNX, with a dynamic batch dimension.

    The graph's input ``images`` is the normalised batch B×3×crop×crop and its output
    ``logits`` is B×C; the wrapper's settings travel in the metadata (see the module
    docstring).
    """
    if not isinstance(classifier.model, nn.Module):
        raise TypeError(f"classifier {classifier.name} wraps a {type(classifier.model).__name__}, not a torch module")
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"exporting to ONNX needs onnx: {INSTALL_HINT}") from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = classifier.view.size
    export_module(classifier.model, path, height, width, classifier.channels)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {METADATA_PREFIX + key: value for key, value in metadata(classifier).items()})
    onnx.save(proto, str(path))
    return path


def metadata(classifier: Classifier) -> dict[str, str]:
    """The wrapper's settings as the strings stored in an exported file."""
    resize = classifier.view.resize
    return {
        "mean": _floats(classifier.mean),
        "std": _floats(classifier.std),
        "output": classifier.output,
        "resize": "" if resize is None else _sides_text(resize),
        "crop": _sides_text(classifier.view.crop),
        "class_names": "\n".join(classifier.class_names),
        "name": classifier.name,
    }


def _sides_text(sides: int | tuple[int, int]) -> str:
    """A view's side ``224`` or sides ``160x320`` as stored in a file's metadata."""
    return str(sides) if isinstance(sides, int) else f"{sides[0]}x{sides[1]}"


def _sides(text: str) -> int | tuple[int, int]:
    """The side or ``(height, width)`` of :func:`_sides_text`."""
    values = [int(value) for value in text.split("x")]
    return values[0] if len(values) == 1 else (values[0], values[1])


def settings_from_metadata(stored: dict[str, str]) -> dict[str, Any]:
    """``Classifier`` keyword arguments from a file's metadata (only those it holds)."""
    values = {key[len(METADATA_PREFIX) :]: value for key, value in stored.items() if key.startswith(METADATA_PREFIX)}
    settings: dict[str, Any] = {}
    for key in ("mean", "std"):
        if key in values:
            settings[key] = tuple(float(v) for v in values[key].split(","))
    if "output" in values:
        settings["output"] = values["output"]
    if "crop" in values:
        resize = values.get("resize", "")
        settings["view"] = ClassifierView(resize=_sides(resize) if resize else None, crop=_sides(values["crop"]))
    if values.get("class_names"):
        settings["class_names"] = values["class_names"].split("\n")
    if values.get("name"):
        settings["name"] = values["name"]
    return settings


def read_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The ``Classifier`` settings stored in the ONNX file at ``path`` (empty for a file made elsewhere)."""
    proto = _read_model(path)
    return settings_from_metadata({prop.key: prop.value for prop in proto.metadata_props})


def _read_model(path: str | os.PathLike) -> Any:
    """The ONNX graph at ``path`` (without external weights): a :class:`ModelFileError` when it is
    missing or not a usable model."""
    path = Path(path)
    if not path.is_file():
        raise MissingModelFile(f"{path}: no such model file")
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"reading an ONNX model needs onnx: {INSTALL_HINT}") from error
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others for a file that is not a model
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(f"{path}: not a usable ONNX model ({reason})") from error
    if not proto.graph.node:
        raise ModelFileError(f"{path}: not a usable ONNX model (it has no graph)")
    return proto


def _floats(values: torch.Tensor) -> str:
    return ",".join(repr(float(v)) for v in values.flatten())
