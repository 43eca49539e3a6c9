"""timm and torchvision classifiers with the preprocessing they state, read without a download.

:func:`timm_settings` and :func:`torchvision_settings` build (or take) the network, load a local
checkpoint into it, and return it in eval mode with the :class:`~maskscope.core.model.classifier.Classifier`
keyword arguments it implies: ``mean``, ``std``, ``view``, ``class_names``, ``name`` (and
``output``: these zoos' classifiers are single-label, softmax).

- timm: the model's ``pretrained_cfg`` gives ``mean``, ``std``, ``input_size`` (C, H, W),
  ``crop_pct`` and ``interpolation``; the view resizes to ``floor(size / crop_pct)`` and crops
  ``size`` (timm's own evaluation transform), or squashes the photo to ``size`` under
  ``crop_mode="squash"``.
- torchvision: a weights enum (``"ResNet50_Weights.IMAGENET1K_V2"``, ``"IMAGENET1K_V2"`` or the
  member) gives its ``transforms()`` (``resize_size``, ``crop_size``, ``mean``, ``std``,
  ``interpolation``) and ``meta["categories"]``; those are written in the package, only the
  weights themselves would be downloaded, and they are not. Without one, nothing is returned for
  the preprocessing and the classifier's defaults (ImageNet's, 256 → 224) apply.

Class names come from the checkpoint (a dict with ``class_names`` or ``classes``), then the
weights enum or the timm config (``label_names``), then ImageNet-1k's for a 1000-class model;
otherwise none are returned and the classifier names the classes ``class_0 …``.

The number of classes is the checkpoint's: the network is built with the architecture's
default head, and rebuilt with ``num_classes`` set to the first dimension of the checkpoint's
tensors whose shapes differ from it (the head). A model of one input channel (``in_chans=1``)
gets the mean of its three-value statistics.

This module does not import :mod:`maskscope.core.model.classifier` (which imports this one
lazily, in ``Classifier.from_timm`` and ``Classifier.from_torchvision``).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from maskscope.core.model.class_names import imagenet_class_names
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeValueError, MissingFileError, MissingPackageError

#: the ``pip install`` line that brings timm and torchvision
VISION_EXTRA = "pip install 'maskscope[vision]'"

Checkpoint = str | os.PathLike | None


class CheckpointError(MaskscopeValueError):
    """A checkpoint that is not a state dict of the architecture named."""


def timm_settings(model_or_name: nn.Module | str, checkpoint: Checkpoint = None) -> tuple[nn.Module, dict[str, Any]]:
    """A timm classifier and the Classifier settings its ``pretrained_cfg`` states.

    Args:
        model_or_name: a model ``timm.create_model`` made, or an architecture name (with or
            without a pretrained tag, ``vit_tiny_patch16_224.augreg_in21k``) built with
            ``pretrained=False``.
        checkpoint: a local file of the weights: a state dict, or a dict holding one under
            ``state_dict`` or ``model`` (a ``module.`` prefix is stripped), such as timm's
            ``train.py`` writes. It is read with ``weights_only``: tensors and plain values only.

    Raises:
        MissingFileError: no file at ``checkpoint``.
        MaskscopeValueError: an architecture timm does not know (close names given), or a
            checkpoint that does not fit it.
        MissingPackageError: timm is not installed.
    """
    timm = _import("timm")
    state, extra = _read_checkpoint(checkpoint)
    if isinstance(model_or_name, nn.Module):
        model = model_or_name
        name = str(getattr(model, "pretrained_cfg", {}).get("architecture") or type(model).__name__)
    else:
        name = str(model_or_name)
        if not timm.is_model(name.split(".")[0]):
            raise MaskscopeValueError(_unknown("timm", name, timm.list_models()))

        def build(**options: Any) -> nn.Module:
            return timm.create_model(name, pretrained=False, **options)

        model = _fitted(build, state, f"timm:{name}")
        state = None
    if state is not None:
        _load(model, state, f"timm:{name}")
    config = dict(getattr(model, "pretrained_cfg", None) or {})
    channels, height, width = config.get("input_size", (3, 224, 224))
    channels = int(getattr(model, "in_chans", channels) or channels)
    crop = (int(height), int(width))
    crop_pct = float(config.get("crop_pct") or 1.0)
    if config.get("crop_mode") == "squash":
        view = ClassifierView(resize=None, crop=crop, interpolation=_interpolation(config.get("interpolation")))
    else:
        resize = (math.floor(crop[0] / crop_pct), math.floor(crop[1] / crop_pct))
        resize_arg: int | tuple[int, int] = resize[0] if crop[0] == crop[1] else resize
        view = ClassifierView(resize=resize_arg, crop=crop, interpolation=_interpolation(config.get("interpolation")))
    settings: dict[str, Any] = {
        "mean": _statistics(config.get("mean", (0.485, 0.456, 0.406)), channels),
        "std": _statistics(config.get("std", (0.229, 0.224, 0.225)), channels),
        "view": view,
        "output": "softmax",
        "name": name,
    }
    names = _class_names(extra, config.get("label_names"), _num_classes(model))
    if names is not None:
        settings["class_names"] = names
    return model.eval(), settings


def torchvision_settings(
    architecture: str, checkpoint: Checkpoint = None, weights_enum: Any = None
) -> tuple[nn.Module, dict[str, Any]]:
    """A torchvision classifier and the Classifier settings its weights enum states.

    Args:
        architecture: a name ``torchvision.models.get_model`` knows (``resnet50``), built with
            ``weights=None``.
        checkpoint: a local file of the weights (as for :func:`timm_settings`); without one
            the weights are random.
        weights_enum: the weights the checkpoint was trained like: ``"ResNet50_Weights.IMAGENET1K_V2"``,
            a member's name of the architecture's enum (``"IMAGENET1K_V2"``, ``"DEFAULT"``) or
            the member; its transforms and categories are read, its weights are not downloaded.

    Raises:
        MissingFileError: no file at ``checkpoint``.
        MaskscopeValueError: an architecture or weights torchvision does not know (close names
            given), or a checkpoint that does not fit the architecture.
        MissingPackageError: torchvision is not installed.
    """
    models = _import("torchvision.models")
    known = models.list_models()
    if architecture not in known:
        raise MaskscopeValueError(_unknown("torchvision", architecture, known))
    weights = _weights(models, architecture, weights_enum)
    state, extra = _read_checkpoint(checkpoint)
    categories = list(weights.meta.get("categories") or []) if weights is not None else []

    def build(**options: Any) -> nn.Module:
        if categories and "num_classes" not in options:
            options["num_classes"] = len(categories)
        return models.get_model(architecture, weights=None, **options)

    model = _fitted(build, state, f"torchvision:{architecture}")
    settings: dict[str, Any] = {"output": "softmax", "name": architecture}
    if weights is not None:
        transforms = weights.transforms()
        resize = getattr(transforms, "resize_size", None)
        crop = getattr(transforms, "crop_size", None) or [224]
        settings["mean"] = tuple(float(v) for v in transforms.mean)
        settings["std"] = tuple(float(v) for v in transforms.std)
        settings["view"] = ClassifierView(
            resize=_side(resize) if resize else None,
            crop=_side(crop),
            interpolation=_interpolation(getattr(transforms, "interpolation", None)),
        )
    names = _class_names(extra, categories or None, _num_classes(model))
    if names is not None:
        settings["class_names"] = names
    return model.eval(), settings


def _import(module: str) -> Any:
    """``module`` imported, or a :class:`MissingPackageError` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise MissingPackageError(f"{package} is not installed ({error}): {VISION_EXTRA}") from error


def _unknown(zoo: str, name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.6)
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    return f"{zoo} has no architecture {name!r}{hint}"


def _weights(models: Any, architecture: str, weights_enum: Any) -> Any:
    """The weights enum member named by ``weights_enum`` (``None`` stays ``None``)."""
    if weights_enum is None or not isinstance(weights_enum, str):
        return weights_enum
    try:
        if "." in weights_enum:
            return models.get_weight(weights_enum)
        return models.get_model_weights(architecture)[weights_enum]
    except (KeyError, ValueError, AttributeError) as error:
        enum = models.get_model_weights(architecture)
        members = ", ".join(f"{enum.__name__}.{member}" for member in enum.__members__)
        raise MaskscopeValueError(f"unknown weights {weights_enum!r} for torchvision:{architecture}: use {members}") from error


def _read_checkpoint(checkpoint: Checkpoint) -> tuple[dict[str, torch.Tensor] | None, Mapping[str, Any]]:
    """The state dict in ``checkpoint`` (a ``module.`` prefix stripped) and the dict around it."""
    if checkpoint is None:
        return None, {}
    path = Path(checkpoint)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):  # timm's train.py saves its arguments
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an unpickling error of any kind: not a plain file of tensors
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: not a checkpoint of tensors ({first_line}); save one with torch.save(model.state_dict(), path)"
        ) from error
    outer: Mapping[str, Any] = loaded if isinstance(loaded, Mapping) else {}
    state = loaded
    for key in ("state_dict", "model"):
        if isinstance(outer.get(key), Mapping):
            state = outer[key]
            break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict (a dict of tensors, or one under 'state_dict' or 'model')")
    prefix = "module."
    if state and all(key.startswith(prefix) for key in state):
        state = {key[len(prefix):]: value for key, value in state.items()}
    return dict(state), outer


def _fitted(build: Callable[..., nn.Module], state: dict[str, torch.Tensor] | None, label: str) -> nn.Module:
    """The network ``build()`` makes, with the checkpoint's weights: rebuilt with the checkpoint's
    number of classes when its head's shapes differ from the default one's."""
    model = build()
    if state is None:
        return model
    own = model.state_dict()
    differing = {key for key, value in state.items() if key in own and own[key].shape != value.shape}
    heads = {int(state[key].shape[0]) for key in differing if state[key].dim() >= 1}
    if differing and len(heads) == 1:
        model = build(num_classes=heads.pop())
    _load(model, state, label)
    return model


def _load(model: nn.Module, state: dict[str, torch.Tensor], label: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise CheckpointError(f"the checkpoint does not fit {label}: {' '.join(lines[1:3]) or lines[0]}") from error


def _num_classes(model: nn.Module) -> int | None:
    count = getattr(model, "num_classes", None)
    if isinstance(count, int):
        return count
    head = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return head[-1].out_features if head else None


def _class_names(extra: Mapping[str, Any], stated: Sequence[str] | None, count: int | None) -> list[str] | None:
    """Class names from the checkpoint, else those the weights state, else ImageNet's for 1000 classes."""
    for key in ("class_names", "classes"):
        names = extra.get(key)
        if isinstance(names, Sequence) and not isinstance(names, str) and len(names) == count:
            return [str(name) for name in names]
    if stated is not None and len(stated) == count:
        return [str(name) for name in stated]
    return imagenet_class_names() if count == 1000 else None


def _statistics(values: Sequence[float], channels: int) -> tuple[float, ...]:
    """Per-channel statistics for a model of ``channels`` inputs (one: the mean of three)."""
    values = tuple(float(v) for v in values)
    if channels == 1 and len(values) == 3:
        return (sum(values) / 3,)
    return values


def _side(values: Sequence[int] | int) -> int | tuple[int, int]:
    """torchvision's ``[224]`` (a side) or ``[h, w]``."""
    if isinstance(values, int):
        return values
    sides = [int(v) for v in values]
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def _interpolation(mode: Any) -> str:
    """timm's ``"bicubic"`` or torchvision's ``InterpolationMode.BICUBIC`` as a view's
    interpolation (bilinear for anything else)."""
    text = str(getattr(mode, "value", mode) or "bilinear").lower()
    return "bicubic" if "bicubic" in text else "bilinear"
