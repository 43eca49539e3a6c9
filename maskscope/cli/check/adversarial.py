"""``maskscope check adversarial``: the black-image check of FGVis (Table A1).

    maskscope check adversarial --classes 100 --steps 60 [--no-defense | --both] --json OUT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from maskscope.checks.adversarial import black_image_test
from maskscope.cli.errors import CommandError
from maskscope.cli.options import add_model_options, load_classifier
from maskscope.plotting.check_figures import save_check_figure


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "adversarial", help="black-image check: can the generation game make any class top-1 from a black image?"
    )
    add_model_options(parser)
    parser.add_argument("--classes", type=int, default=None, help="number of classes tried, evenly spaced (default: all)")
    parser.add_argument("--steps", type=int, default=500, help="most SGD steps per class (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="black images per batch (default: %(default)s)")
    defense = parser.add_mutually_exclusive_group()
    defense.add_argument("--no-defense", action="store_true", help="run without the adversarial defense")
    defense.add_argument("--both", action="store_true", help="run without and with the defense")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the results to this JSON file (and a figure beside it, .png)")
    parser.add_argument("--progress", action="store_true", help="print a line per batch")


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.batch_size < 1 or (args.classes is not None and args.classes < 1):
        raise CommandError("--steps, --batch-size and --classes must be positive")
    classifier = load_classifier(args)
    settings = [False, True] if args.both else [not args.no_defense]
    results = {}
    for defense in settings:
        result = black_image_test(
            classifier, args.classes, defense=defense, steps=args.steps, batch_size=args.batch_size, progress=args.progress
        )
        name = "defended" if defense else "undefended"
        results[name] = result.to_dict()
        print(f"{name}: {sum(result.became_top1)}/{len(result.classes)} classes became top-1 "
              f"({result.success_rate:.1%}) in {result.seconds:.0f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"model": classifier.name, **results}
        args.json.write_text(json.dumps(record, indent=2))
        save_check_figure("adversarial", record, args.json)
    return 0
