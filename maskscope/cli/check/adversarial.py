"""``maskscope check adversarial``: the black-image check of FGVis (Table A1).

    maskscope check adversarial --classes 100 --steps 60 [--no-defense | --both] --out OUT
"""

from __future__ import annotations

import argparse
import json

from maskscope.checks.adversarial import black_image_test
from maskscope.cli.errors import CommandError
from maskscope.cli.options import (
    add_model_options,
    add_renamed_option,
    add_results_option,
    images_per_batch_option,
    load_classifier,
    model_spec,
    results_path,
)
from maskscope.plotting.check_figures import save_check_figure


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "adversarial", help="black-image check: can the generation game make any class top-1 from a black image?"
    )
    add_model_options(parser)
    parser.add_argument("--classes", type=int, default=None, help="number of classes tried, evenly spaced (default: all)")
    parser.add_argument("--steps", type=int, default=500, help="most SGD steps per class (default: %(default)s)")
    images_per_batch_option(parser, 8, "black images optimised together")
    add_renamed_option(parser, "--batch-size", "--images-per-batch")
    defense = parser.add_mutually_exclusive_group()
    defense.add_argument("--no-defense", action="store_true", help="run without the adversarial defense")
    defense.add_argument("--both", action="store_true", help="run without and with the defense")
    add_results_option(parser, "adversarial", "the results")
    parser.add_argument("--progress", action="store_true", help="print a line per batch")


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.images_per_batch < 1 or (args.classes is not None and args.classes < 1):
        raise CommandError("--steps, --images-per-batch and --classes must be positive")
    path = results_path(args.out, "adversarial") if args.out else None  # a bad --out is refused before the run
    classifier = load_classifier(model_spec(args))
    settings = [False, True] if args.both else [not args.no_defense]
    results = {}
    for defense in settings:
        result = black_image_test(
            classifier, args.classes, defense=defense, steps=args.steps, images_per_batch=args.images_per_batch,
            progress=args.progress,
        )
        name = "defended" if defense else "undefended"
        results[name] = result.to_dict()
        print(f"{name}: {sum(result.became_top1)}/{len(result.classes)} classes became top-1 "
              f"({result.success_rate:.1%}) in {result.seconds:.0f} s")
    if path is not None:
        record = {"model": classifier.name, **results}
        path.write_text(json.dumps(record, indent=2))
        save_check_figure("adversarial", record, path)
    return 0
