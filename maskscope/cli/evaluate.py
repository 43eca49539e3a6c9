"""``maskscope evaluate``: score saliency maps on disk (``DIR/<image>.npy``) with the bench metrics.

The run folder follows ``bench``'s rules: it is the run's own (``--force`` deletes only its
records, summaries and curves), locked while the run writes, apart from the data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskscope.bench.runner import evaluate_maps
from maskscope.cli.bench import _finish, add_shared_options, build_config, claimed, open_dataset_and_model
from maskscope.cli.errors import CommandError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score saliency maps already on disk", description=__doc__)
    parser.add_argument("--maps", required=True, help="folder of <image>.npy maps (crop×crop or the photo's H×W)")
    parser.add_argument("--name", help="the method name in the records (default: the folder's name)")
    add_shared_options(parser)


def run(args: argparse.Namespace) -> int:
    if not args.out:
        raise CommandError("--out is required")
    if not Path(args.maps).is_dir():
        raise CommandError(f"--maps {args.maps}: no such folder of maps")
    name = args.name or Path(args.maps).resolve().name
    config = build_config(args, [name], {})
    with claimed(config, args.out, args.force):
        dataset, classifier = open_dataset_and_model(config)
        evaluate_maps(classifier, dataset, args.maps, config, args.out, force=args.force, progress=not args.quiet,
                      retry_failed=args.retry_failed)
        return _finish(args, args.out)
