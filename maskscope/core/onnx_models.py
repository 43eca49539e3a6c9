"""Classifiers as ONNX files: export a torch classifier, open one with ONNX Runtime.

Black-box methods (RISE, occlusion, LIME, …) need forward passes only, so they can explain a
model that is just an ONNX Runtime session. :func:`export_onnx` writes a classifier's model
(taking the *normalised* batch, as the torch model does) with a dynamic batch dimension, and
stores the wrapper's settings in the file's metadata: normalisation (``maskscope.mean``,
``maskscope.std``), output kind, view (``maskscope.resize``, ``maskscope.crop``), class names
and name. :func:`onnx_forward` opens a file as a function ``normalised batch → logits`` plus
those settings, which ``Classifier.from_onnx`` passes on, so an exported model comes back with
the same preprocessing; a file made elsewhere has no such metadata and gets the classifier's
defaults (ImageNet normalisation, 256 → 224 view) unless they are given.

Needs the optional extra ``maskscope[onnx]`` (``onnx``, ``onnxruntime``, and ``onnxscript``
for torch's exporter).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from maskscope.core.classifier import Classifier
from maskscope.core.view import ClassifierView

METADATA_PREFIX = "maskscope."
INSTALL_HINT = "pip install 'maskscope[onnx]'"


def export_onnx(classifier: Classifier, path: str | os.PathLike, opset_version: int | None = None) -> Path:
    """Write ``classifier``'s model to ``path`` as ONNX, with a dynamic batch dimension.

    The graph's input ``images`` is the normalised batch B×3×crop×crop and its output
    ``logits`` is B×C; the wrapper's settings travel in the metadata (see the module
    docstring). Uses torch's ``torch.export``-based exporter, which works offline.
    """
    if not isinstance(classifier.model, nn.Module):
        raise TypeError(f"classifier {classifier.name} wraps a {type(classifier.model).__name__}, not a torch module")
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"exporting to ONNX needs onnx and onnxscript: {INSTALL_HINT}") from error
    crop = classifier.view.crop
    example = torch.rand(2, 3, crop, crop, device=classifier.device)
    program = torch.onnx.export(
        classifier.model,
        (example,),
        dynamo=True,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        opset_version=opset_version,
        external_data=False,
        verbose=False,
    )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {METADATA_PREFIX + key: value for key, value in metadata(classifier).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


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


def onnx_forward(
    path: str | os.PathLike, providers: Sequence[str] | None = None
) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """Open ``path`` with ONNX Runtime: a function (normalised float32 batch → logits) and the
    ``Classifier`` settings stored in the file.

    ``providers`` are ONNX Runtime execution providers in order of preference (default:
    every provider the installed runtime offers).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        import onnxruntime
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf
    except ImportError as error:
        raise ImportError(f"running an ONNX model needs onnxruntime: {INSTALL_HINT}") from error
    try:
        session = onnxruntime.InferenceSession(
            str(path), providers=list(providers or onnxruntime.get_available_providers())
        )
    except (Fail, InvalidGraph, InvalidProtobuf) as error:
        raise ValueError(f"{path}: not a usable ONNX model ({str(error).splitlines()[0]})") from error
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"{path}: a classifier takes one input (the image batch), this model takes {len(inputs)}")
    input_name = inputs[0].name

    def forward(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: batch})[0]

    forward.__name__ = path.stem
    return forward, settings_from_metadata(session.get_modelmeta().custom_metadata_map)


def _floats(values: torch.Tensor) -> str:
    return ",".join(repr(float(v)) for v in values.flatten())
