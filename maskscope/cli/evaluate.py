"""``maskscope evaluate``: score saliency maps on disk (``DIR/<image>.npy``) with the bench metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from maskscope.bench.runner import evaluate_maps
from maskscope.cli.bench import _summary, add_shared_options, build_config, open_dataset_and_model
from maskscope.cli.errors import CommandError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score saliency maps already on disk", description=__doc__)
    parser.add_argument("--maps", required=True, help="folder of <image>.npy maps (crop×crop or the photo's H×W)")
    parser.add_argument("--name", help="the method name in the records (default: the folder's name)")
    add_shared_options(parser)


def run(args: argparse.Namespace) -> int:
    if not args.out:
        raise CommandError("--out is required")
    name = args.name or Path(args.maps).resolve().name
    config = build_config(args, [name], {})
    dataset, classifier = open_dataset_and_model(args, config)
    try:
        evaluate_maps(classifier, dataset, args.maps, config, args.out, force=args.force, progress=not args.quiet)
    except ValueError as error:
        raise CommandError(str(error)) from error
    return _summary(args.out)
