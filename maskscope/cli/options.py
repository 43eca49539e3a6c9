"""Options shared by several sub-commands: the model, the device, method parameters, photos.

The model options (``--model``, ``--model-checkpoint``, ``--mean``, ``--std``, ``--size``,
``--class-names``, ``--device``, ``--engine``, ``--precision``, ``--calibrate``) default to
``None``, "not given": :func:`model_spec` fills in the defaults of
:class:`~maskscope.core.model.spec.ModelSpec`, and ``bench --config FILE`` lets every option
given win over the file's value, the default value included. Their help shows those defaults.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import torch

from maskscope.cli.errors import CommandError
from maskscope.core.model.classifier import Classifier
from maskscope.core.model.engines import ENGINE_CHOICES, FAST_PRECISION, PRECISION_CHOICES
from maskscope.core.model.loading import load_model
from maskscope.core.model.spec import (
    DEFAULT_DEVICE,
    DEFAULT_ENGINE,
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    ModelSpec,
    spec_value,
)

#: the options of :func:`add_model_options` → the :class:`ModelSpec` field each sets
MODEL_OPTIONS = {"model": "model", "model_checkpoint": "checkpoint", "mean": "mean", "std": "std", "size": "size",
                 "class_names": "class_names", "device": "device", "engine": "engine", "precision": "precision",
                 "calibrate": "calibration"}


def add_model_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--model``, ``--model-checkpoint``, ``--mean``, ``--std``, ``--size``, ``--class-names``, ``--device``,
    ``--engine``, ``--precision`` and ``--calibrate``, each ``None`` when not given."""
    parser.add_argument(
        "--model",
        help="'default' (EfficientNet-Lite0), efficientnet-lite1/2, a TorchScript file, an ONNX file (.onnx, "
        "black-box methods only), hf:FOLDER (a Hugging Face image classifier's folder), timm:NAME or "
        "torchvision:NAME[:WEIGHTS] (an architecture, its weights in --model-checkpoint; WEIGHTS: the torchvision "
        f"weights whose preprocessing they share, e.g. IMAGENET1K_V2) (default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--model-checkpoint", metavar="FILE",
                        help="the weights file of a timm:NAME or torchvision:NAME model (an explainer's trained "
                        "network is explain's --checkpoint)")  # fmt: skip
    parser.add_argument("--mean", metavar="R,G,B", help="the model's normalisation (x - mean) / std: three numbers, "
                        "one for a one-channel model (default: the model's own; ImageNet's, with a warning, for "
                        "a file that states none)")  # fmt: skip
    parser.add_argument("--std", metavar="R,G,B", help="the model's normalisation std, as --mean")
    parser.add_argument("--size", metavar="N|HxW", help="the model's input size: photos are resized to "
                        "N*256/224 on their short side and their centre N×N (or H×W) cropped (default: the "
                        "model's own view)")  # fmt: skip
    parser.add_argument("--class-names", metavar="FILE", help="the model's class names: a file of one a line or a "
                        "JSON list, or the names comma-separated (default: the model's own, else class_0 ...)")  # fmt: skip
    add_device_option(parser)
    parser.add_argument(
        "--engine",
        choices=list(ENGINE_CHOICES),
        help="where the forward passes that need no gradient run: torch, onnxruntime, openvino, or auto "
        f"(the fastest installed at --precision); gradient passes always run torch (default: {DEFAULT_ENGINE})",
    )
    parser.add_argument(
        "--precision",
        choices=list(PRECISION_CHOICES),
        help=f"the forward passes' number type: bfloat16 (CPUs with AVX-512 BF16 or AMX), float16 (GPUs, torch), "
        f"int8 (openvino, calibrated on --calibrate photos or the images explained), fast (= {FAST_PRECISION}); "
        f"fast runs a method's gradient passes at bfloat16 only where its maps were measured to hold "
        f"(default: {DEFAULT_PRECISION})",
    )
    parser.add_argument(
        "--calibrate", metavar="FOLDER", help="photos to calibrate --precision int8 on (default: the images explained)"
    )


def add_device_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device``, ``None`` when not given."""
    parser.add_argument("--device", help=f"cpu, cuda or cuda:N (default: {DEFAULT_DEVICE})")


def given_model_options(args: argparse.Namespace) -> dict:
    """The model options given on the command line, as :class:`ModelSpec` fields in their one form
    (``--mean 0.5,0.5,0.5`` → ``(0.5, 0.5, 0.5)``, ``--size 32`` → ``(32, 32)``; ``None``: not given).

    Raises:
        ModelSpecError: a mean, std or size that cannot be read.
    """
    return {field: spec_value(field, getattr(args, option, None)) for option, field in MODEL_OPTIONS.items()}


def model_spec(args: argparse.Namespace) -> ModelSpec:
    """The classifier the model options name, the defaults filled in."""
    return ModelSpec.from_values(**given_model_options(args))


def check_method_fits(classifier: Classifier, method) -> None:
    """A one-line error unless ``classifier`` can run ``method``: gradients where it needs them
    (:meth:`Classifier.require_gradients`), layer hooks where it needs them (:meth:`Classifier.require_hooks`:
    not on a TorchScript model)."""
    if method.needs_gradients:
        classifier.require_gradients(type(method).__name__)
    if method.needs_hooks:
        classifier.require_hooks(type(method).__name__)


def load_classifier(spec: ModelSpec) -> Classifier:
    """The classifier of ``spec`` (:func:`~maskscope.core.model.loading.load_model`), calibrated on
    the photos of ``spec.calibration`` when it names some."""
    classifier = load_model(spec)
    if spec.calibration:
        classifier.calibration = calibration_photos(Path(spec.calibration), classifier)
    return classifier


class _Renamed(argparse.Action):
    """An option that was renamed: refused with one line naming its new name."""

    def __init__(self, option_strings, dest, now: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.now = now

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} is now {self.now} (docs/vocabulary.md)")


def add_renamed_option(parser: argparse.ArgumentParser, old: str, now: str) -> None:
    """Refuse ``old`` (taking one value) with a line saying it is now ``now``."""
    parser.add_argument(old, action=_Renamed, now=now, dest=f"renamed_{old.strip('-').replace('-', '_')}")


def images_per_batch_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: int | None,
                            what: str) -> None:
    """``--images-per-batch``: how many images (``what``) one call handles; never a pass's
    perturbed images, which is ``batch_size`` (a method's ``--param batch_size=N``)."""
    shown = f" (default: {default})" if default is not None else ""
    parser.add_argument("--images-per-batch", type=int, default=default, help=f"{what}{shown}")


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


def add_results_option(parser: argparse.ArgumentParser, name: str, what: str) -> None:
    """``--out`` of a command that writes one JSON record and its figure (see :func:`results_path`);
    the ``--json`` it replaced is refused with a line naming it."""
    parser.add_argument("--out", metavar="OUT", help=f"also write {what} to OUT/{name}.json and a figure "
                        f"OUT/{name}.png; an OUT ending in .json is the file itself, the figure beside it")
    add_renamed_option(parser, "--json", "--out")


def results_path(out: str, name: str) -> Path:
    """The JSON file ``--out OUT`` names: ``OUT`` itself when it ends in ``.json``, else ``OUT/NAME.json``;
    its folder is made."""
    path = Path(out)
    if path.suffix.lower() != ".json":
        if path.exists() and not path.is_dir():
            raise CommandError(f"--out {out}: is a file, not a folder (name a .json file, or a folder)")
        path = path / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
