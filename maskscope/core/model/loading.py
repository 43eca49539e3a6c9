"""The classifier a :class:`~maskscope.core.model.spec.ModelSpec` names, loaded on its device.

:func:`load_model` reads the model and sets its engine and precision:

- ``default``, ``efficientnet-lite0/1/2``: :meth:`Classifier.default <maskscope.core.model.classifier.Classifier.default>`;
- ``hf:FOLDER``: :meth:`Classifier.from_huggingface <maskscope.core.model.classifier.Classifier.from_huggingface>`;
- ``timm:NAME``: :meth:`Classifier.from_timm <maskscope.core.model.classifier.Classifier.from_timm>`,
  its weights in ``spec.checkpoint``;
- ``torchvision:NAME`` or ``torchvision:NAME:WEIGHTS`` (``torchvision:resnet50:IMAGENET1K_V2``, the
  weights enum whose transforms and categories are read):
  :meth:`Classifier.from_torchvision <maskscope.core.model.classifier.Classifier.from_torchvision>`,
  its weights in ``spec.checkpoint``;
- a ``.onnx`` file: :func:`~maskscope.core.model.onnx_models.load_onnx_classifier`;
- another file: :meth:`Classifier.from_torchscript <maskscope.core.model.classifier.Classifier.from_torchscript>`.

What the spec says of the preprocessing (``mean``, ``std``, ``size``, ``class_names``) wins over
what the model says (:func:`given_settings`). The spec's calibration photos are read by the
caller, which knows how to read photos (:func:`maskscope.cli.options.load_classifier`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from maskscope.core.model.classifier import Classifier, check_device, input_size_error
from maskscope.core.model.default_model import DEFAULT_MODEL as DEFAULT_LITE
from maskscope.core.model.default_model import EFFICIENTNET_LITE
from maskscope.core.model.onnx_models import load_onnx_classifier
from maskscope.core.model.spec import DEFAULT_MODEL, RESIZE_RATIO, SOURCES, ModelSpec
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeError, MaskscopeValueError, MissingFileError, MissingPackageError

#: the package a ``--model PREFIX:NAME`` needs → the extra that installs it
PACKAGES = {"hf": ("transformers", "hf"), "timm": ("timm", "vision"), "torchvision": ("torchvision", "vision")}


class ModelChoiceError(MaskscopeValueError):
    """A model name that names no model, or a model on a device it cannot run on."""


class ClassNamesError(MaskscopeValueError):
    """A class-names file that cannot be read, or that names another number of classes than the model has."""


def load_model(spec: ModelSpec) -> Classifier:
    """The classifier named by ``spec.model`` on ``spec.device`` with ``spec.engine`` at ``spec.precision``,
    fed as ``spec`` says where it says it (see the module docstring).

    The device is checked first (:func:`~maskscope.core.model.classifier.check_device`), so a
    device this machine lacks is an error before any model is read. Where class names are given,
    one pass of the model checks their number (and that the model takes the view's input size).

    Raises:
        ModelChoiceError: an unknown model name, an ONNX file on a device other than the CPU, or a
            ``checkpoint`` for a model that takes none.
        MissingPackageError: the package the model needs (transformers, timm, torchvision, onnx, its
            weights) is not installed; the message names the extra to install.
        ClassNamesError: the class-names file is unreadable or names another number of classes.
        DeviceError, ModelFileError, EngineChoiceError: see :class:`~maskscope.core.model.classifier.Classifier`.
    """
    name, source = spec.model, spec.source
    if spec.is_onnx and spec.device != "cpu":
        raise ModelChoiceError(f"an ONNX model runs on the CPU here, not --device {spec.device}")
    if spec.checkpoint is not None and (source is None or source[0] == "hf"):
        raise ModelChoiceError(f"--model-checkpoint {spec.checkpoint}: only a timm:NAME or torchvision:NAME model takes "
                               f"a weights file (--model {name} holds its own)")
    check_device(spec.device)
    settings = given_settings(spec)
    options: dict[str, Any] = {"device": spec.device, "engine": spec.engine, "precision": spec.precision}
    try:
        if source is not None:
            classifier = _load_source(source, spec.checkpoint, options, settings)
        elif name == DEFAULT_MODEL or name in EFFICIENTNET_LITE:
            lite = DEFAULT_LITE if name == DEFAULT_MODEL else name
            classifier = with_settings(Classifier.default(lite, **options), settings)
        elif spec.is_onnx:
            classifier = load_onnx_classifier(name, engine=spec.engine, precision=spec.precision, **settings)
        elif Path(name).suffix or Path(name).exists():
            classifier = Classifier.from_torchscript(name, **options, **settings)
        else:
            raise ModelChoiceError(
                f"unknown model {name!r}: use {DEFAULT_MODEL}, {', '.join(EFFICIENTNET_LITE)}, a TorchScript file, "
                f"an ONNX file, or {', '.join(f'{prefix}:NAME' for prefix in SOURCES)}"
            )
    except MaskscopeError:
        raise
    except ImportError as error:  # an optional package the model needs (its weights, onnx); the message says which
        raise MissingPackageError(_missing_package(source, error)) from error
    if spec.class_names is not None:
        check_class_count(classifier, spec.class_names)
    return classifier


def _load_source(source: tuple[str, str], checkpoint: str | None, options: dict, settings: dict) -> Classifier:
    """A ``hf:``, ``timm:`` or ``torchvision:`` model through its classmethod."""
    prefix, name = source
    if not name:
        raise ModelChoiceError(f"--model {prefix}: names no model: use {prefix}:{'FOLDER' if prefix == 'hf' else 'NAME'}")
    if prefix == "hf":
        return Classifier.from_huggingface(name, **options, **settings)
    if prefix == "timm":
        return Classifier.from_timm(name, checkpoint=checkpoint, **options, **settings)
    architecture, _, weights = name.partition(":")
    return Classifier.from_torchvision(architecture, checkpoint=checkpoint, weights_enum=weights or None, **options,
                                       **settings)


def _missing_package(source: tuple[str, str] | None, error: ImportError) -> str:
    """One line naming the package a model needs and the extra that installs it."""
    if source is not None:
        package, extra = PACKAGES[source[0]]
        return f"--model {source[0]}:{source[1]} needs {package}: pip install 'maskscope[{extra}]'"
    return str(error)


def given_settings(spec: ModelSpec) -> dict[str, Any]:
    """The ``Classifier`` keyword arguments the spec gives (``mean``, ``std``, ``view``, ``class_names``),
    only those it gives: they win over what the model says."""
    settings: dict[str, Any] = {}
    if spec.mean is not None:
        settings["mean"] = spec.mean
    if spec.std is not None:
        settings["std"] = spec.std
    if spec.size is not None:
        settings["view"] = view_for_size(spec.size)
    if spec.class_names is not None:
        settings["class_names"] = read_class_names(spec.class_names)
    return settings


def view_for_size(size: tuple[int, int]) -> ClassifierView:
    """The view of ``--size``: the photo's short side resized to ``RESIZE_RATIO`` (256/224) times the
    input's shorter side, then the centre ``height``×``width`` cropped (for 224: 256 → 224; for 32: 37 → 32)."""
    height, width = size
    return ClassifierView(resize=round(min(height, width) * RESIZE_RATIO), crop=(height, width))


def read_class_names(path: str) -> list[str]:
    """The class names in the file at ``path``: a JSON list of strings, or one name a line (blank lines
    skipped); a ``path`` that is no file but holds a comma is the names themselves (``cat,dog``).

    Raises:
        MissingFileError: no file at ``path`` (and no comma in it).
        ClassNamesError: the file cannot be read, or holds no name.
    """
    file = Path(path)
    if not file.is_file():
        if "," in path:
            return [name.strip() for name in path.split(",")]
        raise MissingFileError(f"--class-names {path}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ClassNamesError(f"--class-names {path}: cannot read it ({error})") from error
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as error:
            raise ClassNamesError(f"--class-names {path}: not a JSON list ({error})") from error
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ClassNamesError(f"--class-names {path}: a JSON file must hold a list of strings")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ClassNamesError(f"--class-names {path}: the file names no class")
    return names


def with_settings(classifier: Classifier, settings: dict[str, Any]) -> Classifier:
    """``classifier``'s module fed as ``settings`` say (``mean``, ``std``, ``view``, ``class_names``,
    ``output``), the rest kept; ``classifier`` itself when there are none."""
    if not settings:
        return classifier
    kept = {"mean": classifier.mean.flatten().tolist(), "std": classifier.std.flatten().tolist(),
            "view": classifier.view, "output": classifier.output, "name": classifier.name,
            "channels": classifier.channels,
            "class_names": classifier._class_names}  # the names it was given: reading class_names would run the model
    return Classifier(classifier.model, channels_last=classifier.channels_last, **{**kept, **settings},
                      **classifier.engine_settings())


def check_class_count(classifier: Classifier, path: str) -> None:
    """A :class:`ClassNamesError` unless the model gives one score per class name (``path`` names
    where they came from).

    One pass of the torch module on the mean colour, at the view's size: neither a compiled
    engine nor the ``int8`` calibration, which takes the first images the classifier runs, sees
    it. A forward-only classifier (an ONNX file) is checked at its first pass instead.

    Raises:
        ClassNamesError: another number of scores than of names.
        InputSizeError: the model does not take the view's input size.
    """
    if not classifier.differentiable:
        return
    height, width = classifier.view.size
    probe = classifier.mean_colour.expand(1, -1, height, width).to(classifier.device)
    try:
        with torch.no_grad():
            count = classifier.torch_engine(classifier.normalise(probe)).shape[-1]
    except RuntimeError as error:
        size_error = input_size_error(classifier.name, probe, error)
        if size_error is None:
            raise
        raise size_error from error
    named = len(classifier.class_names)
    if count != named:
        raise ClassNamesError(f"--class-names {path} names {named} classes, but model {classifier.name} gives "
                              f"{count} scores")
