"""Options shared by several sub-commands: the model, the device, method parameters, photos."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import torch

from maskscope.cli.errors import CommandError
from maskscope.core.model.classifier import Classifier, check_device
from maskscope.core.model.default_model import DEFAULT_MODEL, EFFICIENTNET_LITE
from maskscope.core.model.engines import ENGINE_CHOICES, FAST_PRECISION, PRECISION_CHOICES
from maskscope.core.model.onnx_models import load_onnx_classifier


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="default",
        help="'default' (EfficientNet-Lite0), efficientnet-lite1/2, a TorchScript file, "
        "or an ONNX file (.onnx, black-box methods only) (default: %(default)s)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    parser.add_argument(
        "--engine",
        default="auto",
        choices=list(ENGINE_CHOICES),
        help="where the forward passes that need no gradient run: torch, onnxruntime, openvino, or auto "
        "(the fastest installed at --precision); gradient passes always run torch (default: %(default)s)",
    )
    parser.add_argument(
        "--precision",
        default="float32",
        choices=list(PRECISION_CHOICES),
        help=f"the forward passes' number type: bfloat16 (CPUs with AVX-512 BF16 or AMX), float16 (GPUs, torch), "
        f"int8 (openvino, calibrated on --calibrate photos or the images explained), fast (= {FAST_PRECISION}); "
        "fast runs a method's gradient passes at bfloat16 only where its maps were measured to hold (default: %(default)s)",
    )
    parser.add_argument(
        "--calibrate", metavar="FOLDER", help="photos to calibrate --precision int8 on (default: the images explained)"
    )


def load_classifier(args: argparse.Namespace) -> Classifier:
    """The classifier named by ``--model`` on ``--device`` with ``--engine`` at ``--precision``.

    The device is checked first (:func:`~maskscope.core.model.classifier.check_device`), so a device
    this machine lacks is a one-line error before any model is read.
    """
    name = args.model
    settings = {"engine": getattr(args, "engine", "auto"), "precision": args.precision}
    is_onnx = Path(name).suffix.lower() == ".onnx"
    if is_onnx and str(args.device) != "cpu":
        raise CommandError(f"an ONNX model runs on the CPU here, not --device {args.device}")
    check_device(args.device)
    try:
        if name == "default" or name in EFFICIENTNET_LITE:
            classifier = Classifier.default(DEFAULT_MODEL if name == "default" else name, device=args.device, **settings)
        elif is_onnx:
            classifier = load_onnx_classifier(name, **settings)
        elif Path(name).suffix or Path(name).exists():
            classifier = Classifier.from_torchscript(name, device=args.device, **settings)
        else:
            raise CommandError(
                f"unknown model {name!r}: use default, {', '.join(EFFICIENTNET_LITE)}, a TorchScript file or an ONNX file"
            )
    except ImportError as error:  # an optional package the model needs (its weights, onnx); the message says which
        raise CommandError(str(error)) from error
    if getattr(args, "calibrate", None):
        classifier.calibration = calibration_photos(Path(args.calibrate), classifier)
    return classifier


def calibration_photos(folder: Path, classifier: Classifier) -> torch.Tensor:
    """The photos of ``folder`` (a file or folder) in the classifier's view, to calibrate int8 on."""
    from maskscope.data.images import ImageLoadError, list_images, load_image

    try:
        paths = list_images(folder) if folder.is_dir() else [folder]
        return torch.stack([classifier.view(load_image(path)) for path in paths])
    except ImageLoadError as error:
        raise CommandError(f"--calibrate: {error}") from error


def parse_params(pairs: list[str] | None) -> dict:
    """``KEY=VALUE`` strings as a dict; values are Python literals when they parse as one."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"cannot read parameter {pair!r}: use KEY=VALUE")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


#: scikit-image's bundled photos used when a check is given no images
BUNDLED_PHOTOS = ("chelsea", "coffee", "rocket")


def add_photo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images", nargs="*", help=f"image files or folders (default: scikit-image's {', '.join(BUNDLED_PHOTOS)})"
    )
    parser.add_argument("--data", help="a shared data folder (or its imagenet-samples folder): use its photos instead")
    parser.add_argument("--count", type=int, default=8, help="photos taken from --data (default: %(default)s)")


def load_photos(args: argparse.Namespace, classifier: Classifier) -> tuple[torch.Tensor, list[str]]:
    """The photos named by ``images`` / ``--data`` (or the bundled ones) in the classifier's view."""
    from maskscope.data.imagenet_samples import ImageNetSamples
    from maskscope.data.images import list_images, load_image

    side = classifier.view.decode_side
    if args.images:
        paths = []
        for argument in args.images:
            path = Path(argument)
            paths.extend(list_images(path, recursive=True) if path.is_dir() else [path])
        photos = [(load_image(path, min_side=side), path.stem) for path in paths]
    elif args.data:
        if args.count < 1:
            raise CommandError("--count must be at least 1")
        root = Path(args.data)
        root = root / "imagenet-samples" if (root / "imagenet-samples").is_dir() else root
        samples = list(ImageNetSamples(root))[: args.count]
        photos = [(load_image(sample.path, min_side=side), sample.name) for sample in samples]
    else:
        from skimage import data

        photos = [(load_image(getattr(data, name)(), name=name), name) for name in BUNDLED_PHOTOS]
    batch = torch.stack([classifier.view(image) for image, _ in photos]).to(classifier.device)
    return batch, [name for _, name in photos]
