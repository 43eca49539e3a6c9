"""``maskscope train-explainer``: train a learned explainer against a frozen classifier.

    maskscope train-explainer --data coco128 --groups coco --out runs/explainer
    maskscope train-explainer --model tiny.pt --input-size 64 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5 \\
        --multilabel --class-names square,disc,triangle,cross --data synthetic-shapes --out runs/shapes

The classifier is named by the model options every command shares (``--model``,
``--model-checkpoint``, ``--mean``, ``--std``, ``--size``, ``--class-names``, ``--device``, ...);
``--classifier`` is ``--model``'s older name, still read.

Writes OUT/best.pt (the explainer: ``maskscope explain --method explainer --checkpoint OUT/best.pt``),
OUT/last.pt (to resume with --resume), OUT/log.csv and OUT/loss.png.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from maskscope.cli.errors import CommandError
from maskscope.cli.options import add_model_options, load_classifier, model_spec, parse_params
from maskscope.core.model.classifier import Classifier
from maskscope.core.model.grouped_classifier import GroupedClassifier, read_groups
from maskscope.core.model.loading import check_class_count, read_class_names, with_settings
from maskscope.core.model.view import ClassifierView
from maskscope.data.registry import data_root
from maskscope.methods.explainer.networks import NETWORKS
from maskscope.training.images import LABEL_SOURCES, SYNTHETIC, open_training_images
from maskscope.training.losses import LOSSES, PRESETS, build_loss
from maskscope.training.trainer import TrainingConfig, train_explainer


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-explainer",
        help="train a learned explainer (every class mask in one pass) for a classifier",
        description=__doc__.splitlines()[0],
    )
    model = parser.add_argument_group("classifier")
    add_model_options(model)
    model.add_argument("--classifier", dest="model", help=argparse.SUPPRESS)  # --model's older name
    model.add_argument("--input-size", type=int, help="the classifier sees the whole image resized to N×N, "
                       "without a crop (--size N crops as for photos) (default: its own view)")  # fmt: skip
    model.add_argument("--multilabel", action="store_true", help="the classifier is multi-label (sigmoid outputs)")
    model.add_argument("--groups", help="explain groups of classes: 'coco' (COCO categories of an ImageNet model, from "
                       "coco128/imagenet_to_coco.json) or a JSON file {group: [classes]}")  # fmt: skip
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, help=f"imagenet-samples, coco128[:SPLIT], a dataset folder, or {SYNTHETIC}"
                      "[:n=600,size=64,classes=4,objects=1-3,seed=0]; several joined by +")  # fmt: skip
    data.add_argument("--labels", choices=LABEL_SOURCES, default="auto",
                      help="the dataset's labels (pseudo-labels for unlabelled images), or pseudo-labels for all")  # fmt: skip
    data.add_argument("--drop-unknown-labels", action="store_true", help="ignore labels that name no explained class")
    data.add_argument("--pseudo-threshold", type=float, default=0.5,
                      help="a class becomes a pseudo-label at this probability (default: %(default)s)")  # fmt: skip
    data.add_argument("--split", type=float, default=0.2, help="fraction of images for validation (default: %(default)s)")
    training = parser.add_argument_group("training")
    training.add_argument("--out", required=True, help="the run's folder")
    training.add_argument("--network", choices=sorted(NETWORKS), default="light", help="(default: %(default)s)")
    training.add_argument("--network-option", action="append", metavar="KEY=VALUE", help="e.g. width=32")
    training.add_argument("--loss", choices=LOSSES, default="explainer", help="(default: %(default)s)")
    training.add_argument("--preset", choices=sorted(PRESETS), default="vgg16-voc", help="loss weights, learning rate "
                          "and patience of a paper setting (default: %(default)s)")  # fmt: skip
    training.add_argument("--weight", action="append", metavar="KEY=VALUE", help="a loss weight, e.g. area_nontarget=0.5")
    training.add_argument("--epochs", type=int, default=50, help="(default: %(default)s)")
    training.add_argument("--batch-size", type=int, default=16, help="(default: %(default)s)")
    training.add_argument("--lr", type=float, help="Adam's learning rate (default: the preset's)")
    training.add_argument("--patience", type=int, help="early-stopping patience in epochs (default: the preset's)")
    training.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    training.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    training.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    training.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    classifier = build_classifier(args)
    config = TrainingConfig(
        network=args.network,
        network_options=parse_params(args.network_option),
        loss=args.loss,
        preset=args.preset,
        weights=parse_params(args.weight),
        learning_rate=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.patience,
        validation=args.split,
        seed=args.seed,
    )
    build_loss(config.loss, config.preset, config.weights, classifier.output == "sigmoid")
    data = open_training_images(
        args.data,
        classifier,
        labels=args.labels,
        unknown_labels="drop" if args.drop_unknown_labels else "error",
        threshold=args.pseudo_threshold,
        progress=not args.quiet,
    )
    print(f"training on {len(data)} images, {classifier.num_classes} classes, classifier {classifier.name}",
          file=sys.stderr)  # fmt: skip
    result = train_explainer(classifier, data, args.out, config, amp=not args.no_amp, resume=args.resume,
                             progress=not args.quiet)  # fmt: skip
    ending = "stopped early" if result.stopped_early else "done"
    print(f"{result.epochs} epochs ({ending}); best validation loss {result.best_loss:.4f} at epoch "
          f"{result.best_epoch}; explainer: {result.checkpoint}", file=sys.stderr)  # fmt: skip
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    """The arguments that need no classifier or data, checked before anything is loaded."""
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--patience", args.patience)):
        if value is not None and value < 1:
            raise CommandError(f"{option} must be at least 1, got {value}")
    if not 0 < args.split < 1:
        raise CommandError(f"--split must be between 0 and 1 (the validation fraction), got {args.split}")
    if not 0 < args.pseudo_threshold <= 1:
        raise CommandError(f"--pseudo-threshold must be in (0, 1], got {args.pseudo_threshold}")
    if args.lr is not None and not args.lr > 0:
        raise CommandError(f"--lr must be positive, got {args.lr}")
    if args.input_size is not None and args.input_size < 8:
        raise CommandError(f"--input-size must be at least 8, got {args.input_size}")
    if args.input_size is not None and args.size is not None:
        raise CommandError("--input-size and --size both give the input size: give one")
    model_spec(args)  # a mean, std or size that cannot be read
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {args.out}: is a file, not a folder")
    if (out / "last.pt").is_file() and not args.resume:
        raise CommandError(f"--out {args.out} already holds a training run: pass --resume to continue it, "
                           "or choose another folder")  # fmt: skip
    if args.groups and args.groups != "coco" and not Path(args.groups).is_file():
        raise CommandError(f"--groups {args.groups}: no such file")


def build_classifier(args: argparse.Namespace) -> Classifier:
    """The frozen classifier: loaded as ``--model`` would be (with the shared model options), seen
    whole at ``--input-size``, multi-label with ``--multilabel``, grouped if asked."""
    spec = model_spec(args)
    loaded = load_classifier(replace(spec, class_names=None))  # the names are checked at the view of --input-size
    settings: dict = {}
    if args.input_size:
        settings["view"] = ClassifierView(resize=None, crop=args.input_size)
    if spec.class_names is not None:
        settings["class_names"] = read_class_names(spec.class_names)
    if args.multilabel:
        settings["output"] = "sigmoid"
    classifier = with_settings(loaded, settings)
    if spec.class_names is not None:
        check_class_count(classifier, spec.class_names)
    if args.groups:
        classifier = GroupedClassifier(classifier, read_groups(_groups_file(args.groups)))
    return classifier


def _groups_file(spec: str) -> Path:
    if spec == "coco":
        path = data_root() / "coco128" / "imagenet_to_coco.json"
        if not path.is_file():
            raise CommandError(f"--groups coco: {path} not found (set MASKSCOPE_DATA to the shared data folder)")
        return path
    return Path(spec)
