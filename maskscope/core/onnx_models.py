"""Classifiers as ONNX files: export a torch classifier, read back the settings stored in one.

Black-box methods (RISE, occlusion, LIME, …) need forward passes only, so they can explain a
model that is just an ONNX file. :func:`export_onnx` writes a classifier's model
(taking the *normalised* batch, as the torch model does) with a dynamic batch dimension, and
stores the wrapper's settings in the file's metadata: normalisation (``maskscope.mean``,
``maskscope.std``), output kind, view (``maskscope.resize``, ``maskscope.crop``), class names
and name. :func:`read_settings` reads those settings back, which ``Classifier.from_onnx``
passes on, so an exported model comes back with the same preprocessing; a file made elsewhere
has no such metadata and gets the classifier's defaults (ImageNet normalisation, 256 → 224
view) unless they are given. The file itself runs on an inference engine
(:mod:`maskscope.core.engines`). :func:`export_module` is the export the engines' cache uses.

Needs ``onnx``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from maskscope.core.view import ClassifierView

if TYPE_CHECKING:
    from maskscope.core.classifier import Classifier

METADATA_PREFIX = "maskscope."
INSTALL_HINT = "pip install 'maskscope[onnx]'"


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
    crop = classifier.view.crop
    export_module(classifier.model, path, crop, crop)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {METADATA_PREFIX + key: value for key, value in metadata(classifier).items()})
    onnx.save(proto, str(path))
    return path


def export_module(module: nn.Module, path: str | os.PathLike, height: int, width: int) -> None:
    """Write ``module`` (normalised batch → logits) to ``path`` as ONNX for B×3×height×width, B dynamic.

    Uses torch's TorchScript-based exporter, which works offline and takes a few seconds for
    EfficientNet-Lite0 (the ``torch.export``-based one takes about six times as long, and more
    than a minute to give up on a module it cannot convert). The export traces the module
    on a channels-first example of batch 2 on the module's device.
    """
    device = next((t.device for t in list(module.parameters()) + list(module.buffers())), torch.device("cpu"))
    example = torch.rand(2, 3, height, width, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            verbose=False,
        )


def metadata(classifier: Classifier) -> dict[str, str]:
    """The wrapper's settings as the strings stored in an exported file."""
    resize = classifier.view.resize
    return {
        "mean": _floats(classifier.mean),
        "std": _floats(classifier.std),
        "output": classifier.output,
        "resize": "" if resize is None else str(resize),
        "crop": str(classifier.view.crop),
        "class_names": "\n".join(classifier.class_names),
        "name": classifier.name,
    }


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
        settings["view"] = ClassifierView(resize=int(resize) if resize else None, crop=int(values["crop"]))
    if values.get("class_names"):
        settings["class_names"] = values["class_names"].split("\n")
    if values.get("name"):
        settings["name"] = values["name"]
    return settings


def read_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The ``Classifier`` settings stored in the ONNX file at ``path`` (empty for a file made elsewhere)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"reading an ONNX model needs onnx: {INSTALL_HINT}") from error
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others for a file that is not a model
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path}: not a usable ONNX model ({reason})") from error
    if not proto.graph.node:
        raise ValueError(f"{path}: not a usable ONNX model (it has no graph)")
    return settings_from_metadata({prop.key: prop.value for prop in proto.metadata_props})


def _floats(values: torch.Tensor) -> str:
    return ",".join(repr(float(v)) for v in values.flatten())
