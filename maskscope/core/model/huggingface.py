"""A Hugging Face image classifier with the preprocessing it was trained with.

:func:`huggingface_settings` takes a ``transformers`` image classifier (a ``PreTrainedModel``
object, or a local folder written by its ``save_pretrained``) and reads what the
:class:`~maskscope.core.model.classifier.Classifier` needs from the model itself:

- the normalisation (``image_mean``, ``image_std``; none when ``do_normalize`` is off), the
  resize and the centre crop from its image processor (``preprocessor_config.json`` beside the
  model, as ``AutoImageProcessor.save_pretrained`` writes it, or a processor object given);
- the class names from ``config.id2label``, in index order, as the model names them;
- single- or multi-label from ``config.problem_type``: ``"multi_label_classification"``
  means sigmoid probabilities, anything else softmax.

A model without an image processor gets its config's ``image_size`` (224 where the config has
none) and the ImageNet mean and std, with a one-line warning naming what was assumed.
Nothing is downloaded: a folder is read with ``local_files_only``. This module does not import
the classifier (which imports it lazily in ``Classifier.from_huggingface``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Collection, Mapping

from torch import nn

from maskscope.core.json_files import read_json_object
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeValueError, MissingFileError

#: the file ``AutoImageProcessor.save_pretrained`` writes beside the model
PROCESSOR_FILE = "preprocessor_config.json"
#: the files ``PreTrainedModel.save_pretrained`` writes: the config and one of the weights files
CONFIG_FILE = "config.json"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
#: what is assumed for a model without an image processor (the ImageNet statistics, as
#: :data:`maskscope.core.model.classifier.IMAGENET_MEAN`, which this module cannot import)
ASSUMED_MEAN: tuple[float, ...] = (0.485, 0.456, 0.406)
ASSUMED_STD: tuple[float, ...] = (0.229, 0.224, 0.225)
ASSUMED_SIZE = 224


class HuggingFaceModelError(MaskscopeValueError):
    """A folder or object that is not a Hugging Face image classifier maskscope can read."""


def huggingface_settings(
    model_or_folder: nn.Module | str | os.PathLike, processor: Any = None, given: Collection[str] = ()
) -> tuple[nn.Module, dict[str, Any]]:
    """The module (in eval mode) and the :class:`Classifier` keyword arguments it implies.

    Args:
        model_or_folder: a ``transformers`` image classifier, or the folder its
            ``save_pretrained`` wrote (``config.json`` and its weights).
        processor: its image processor (an object with ``to_dict()``, such as a
            ``ViTImageProcessor``, or the dict of its settings); by default the folder's
            ``preprocessor_config.json``, and none for a model object.
        given: the settings the caller sets itself (``mean``, ``std``, ``view``): what is
            assumed for them without a processor is not warned about.

    Returns:
        ``(module, settings)``, with ``settings`` holding ``mean``, ``std``, ``view`` (a
        :class:`ClassifierView`), ``class_names``, ``output`` and ``name``.

    Raises:
        MissingFileError: the folder, its ``config.json`` or its weights are missing.
        HuggingFaceModelError: the folder's model is not an image classifier.
        ImportError: ``transformers`` is not installed (needed to read a folder only).
    """
    if isinstance(model_or_folder, nn.Module):
        model, name = model_or_folder, _model_name(model_or_folder)
        processor_values = _processor_values(processor)
    else:
        folder = Path(model_or_folder)
        model, name = _load_folder(folder), folder.resolve().name
        processor_values = _processor_values(processor) if processor is not None else _processor_file(folder)
    config = getattr(model, "config", None)
    if config is None:
        raise HuggingFaceModelError(f"{type(model).__name__} has no Hugging Face config: pass the module to Classifier(...)")
    model.eval()
    if processor_values is None:
        size = _config_size(config)
        mean, std, view = ASSUMED_MEAN, ASSUMED_STD, ClassifierView(resize=min(size), crop=_crop_value(size))
        assumed = {
            "mean": f"ImageNet mean {ASSUMED_MEAN}",
            "std": f"ImageNet std {ASSUMED_STD}",
            "view": f"a {_size_text(size)} view (short side resized, centre crop)",
        }
        unset = [text for key, text in assumed.items() if key not in given]
        if unset:
            warnings.warn(
                f"Hugging Face model {name} has no image processor: assumed {', '.join(unset)}; "
                "pass processor= or mean=, std=, view= to set them",
                stacklevel=3,
            )
    else:
        mean, std = _normalisation(processor_values)
        view = _processor_view(processor_values, name)
    settings = {
        "mean": mean,
        "std": std,
        "view": view,
        "class_names": _class_names(config),
        "output": "sigmoid" if getattr(config, "problem_type", None) == "multi_label_classification" else "softmax",
        "name": name,
    }
    return model, settings


def _load_folder(folder: Path) -> nn.Module:
    """The model ``save_pretrained`` wrote to ``folder``, read without any download."""
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such Hugging Face model folder")
    if not (folder / CONFIG_FILE).is_file():
        raise MissingFileError(f"{folder / CONFIG_FILE}: missing (a Hugging Face model folder holds its config.json)")
    if not any((folder / weights).is_file() for weights in WEIGHTS_FILES):
        raise MissingFileError(f"{folder / WEIGHTS_FILES[0]}: missing (no weights file in {folder})")
    try:
        import transformers
    except ImportError as error:
        raise ImportError("reading a Hugging Face model folder needs transformers: pip install transformers") from error
    config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    architectures = getattr(config, "architectures", None) or []
    model_class = getattr(transformers, architectures[0], None) if architectures else None
    if model_class is None:
        model_class = transformers.AutoModelForImageClassification
    try:
        model = model_class.from_pretrained(folder, local_files_only=True)
    except ValueError as error:  # an architecture the image-classification auto class does not know
        raise HuggingFaceModelError(f"{folder}: not an image classifier ({str(error).splitlines()[0]})") from error
    return model


def _model_name(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    path = getattr(config, "name_or_path", "") or getattr(config, "_name_or_path", "")
    return Path(str(path)).name if path else type(model).__name__


def _processor_values(processor: Any) -> dict[str, Any] | None:
    """An image processor's settings as a dict (``to_dict()`` of a processor object)."""
    if processor is None:
        return None
    if isinstance(processor, Mapping):
        return dict(processor)
    if hasattr(processor, "to_dict"):
        return dict(processor.to_dict())
    raise HuggingFaceModelError(f"processor must be an image processor or a dict of its settings, not {type(processor).__name__}")


def _processor_file(folder: Path) -> dict[str, Any] | None:
    path = folder / PROCESSOR_FILE
    if not path.is_file():
        return None
    return read_json_object(path, HuggingFaceModelError, "a JSON object of processor settings")


def _normalisation(values: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` of a processor: its ``image_mean``/``image_std``, or none (0, 1) when it
    does not normalise."""
    if values.get("do_normalize") is False:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    mean, std = values.get("image_mean"), values.get("image_std")
    if mean is None or std is None:
        raise HuggingFaceModelError("the image processor normalises but names no image_mean/image_std; pass mean= and std=")
    return _triple(mean), _triple(std)


def _triple(value: Any) -> tuple[float, ...]:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    return tuple(values)


def _processor_view(values: Mapping[str, Any], name: str) -> ClassifierView:
    """The resize and centre crop of a processor as a :class:`ClassifierView`.

    ``size`` is ``{"shortest_edge": S}`` (the short side resized to S) or ``{"height": H,
    "width": W}`` (the whole image resized to H×W); ``crop_size`` is the centre crop where
    ``do_center_crop`` is on; ``resample`` picks bicubic or bilinear resizing. ConvNeXt's
    processor has ``crop_pct`` instead: below 384 px the short side goes to ``S / crop_pct`` and
    the centre S×S is cropped, from 384 px the image is resized to S×S.
    """
    size = _size_pair(values.get("size"), "size")
    crop = _size_pair(values.get("crop_size"), "crop_size") if values.get("do_center_crop") else None
    shortest = _shortest_edge(values.get("size"))
    crop_pct = values.get("crop_pct")
    interpolation = _interpolation(values.get("resample"))
    if values.get("do_resize") is False:
        if crop is None:
            raise HuggingFaceModelError(f"Hugging Face model {name}: its processor neither resizes nor crops; pass view=")
        return ClassifierView(resize=None, crop=_crop_value(crop), interpolation=interpolation)
    if shortest is not None and crop_pct is not None and crop is None:
        if shortest < 384:
            return ClassifierView(resize=round(shortest / float(crop_pct)), crop=shortest, interpolation=interpolation)
        return ClassifierView(resize=None, crop=shortest, interpolation=interpolation)
    if shortest is not None:
        return ClassifierView(resize=shortest, crop=_crop_value(crop or size), interpolation=interpolation)
    if crop is None or crop == size:
        return ClassifierView(resize=None, crop=_crop_value(size), interpolation=interpolation)
    # resized to H×W, then a smaller centre crop: the short side goes to min(H, W) (the same for a square size)
    return ClassifierView(resize=min(size), crop=_crop_value(crop), interpolation=interpolation)


def _interpolation(resample: Any) -> str:
    """The view's resampling for a processor's ``resample`` (PIL's codes: 3 is bicubic; bilinear,
    2, for it and for the others, which the view does not have)."""
    if isinstance(resample, str):
        return "bicubic" if resample.lower().endswith("bicubic") else "bilinear"
    try:
        return "bicubic" if resample is not None and int(resample) == 3 else "bilinear"
    except (TypeError, ValueError):
        return "bilinear"


def _shortest_edge(size: Any) -> int | None:
    if isinstance(size, Mapping) and "shortest_edge" in size and "height" not in size:
        return int(size["shortest_edge"])
    return None


def _size_pair(size: Any, key: str) -> tuple[int, int]:
    """``(height, width)`` of a processor's ``size`` or ``crop_size`` (a dict, a pair or an int)."""
    if isinstance(size, Mapping):
        if "height" in size and "width" in size:
            return int(size["height"]), int(size["width"])
        if "shortest_edge" in size:
            return int(size["shortest_edge"]), int(size["shortest_edge"])
        raise HuggingFaceModelError(f"the image processor's {key} {dict(size)} names no height/width or shortest_edge")
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise HuggingFaceModelError(f"the image processor's {key} is {size!r}: expected height/width or shortest_edge")


def _crop_value(size: tuple[int, int]) -> Any:
    """A view's crop: the side of a square, or ``(height, width)``."""
    return size[0] if size[0] == size[1] else size


def _config_size(config: Any) -> tuple[int, int]:
    size = getattr(config, "image_size", None)
    if size is None:
        return ASSUMED_SIZE, ASSUMED_SIZE
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}-px" if size[0] == size[1] else f"{size[0]}×{size[1]}"


def _class_names(config: Any) -> list[str] | None:
    """``config.id2label`` in index order (its keys may be strings, as read from JSON)."""
    labels = getattr(config, "id2label", None)
    if not labels:
        return None
    by_index = {int(index): str(label) for index, label in labels.items()}
    return [by_index.get(index, f"class_{index}") for index in range(max(by_index) + 1)]
