"""``maskscope study fillers``: fill annotated objects with each filler and measure what is left
(G-removal Table 1): the probability of the object's class, whether it is still recognised
(top-1, top-5), and MS-SSIM to the photo. Writes ``OUT/filler_study.json`` and ``OUT/filler_study.md``.
"""

from __future__ import annotations

import argparse
import sys

from maskscope.bench.config import BenchConfig
from maskscope.cli.errors import CommandError
from maskscope.cli.options import (
    add_model_options,
    add_renamed_option,
    images_per_batch_option,
    load_classifier,
    model_spec,
)
from maskscope.data.registry import open_dataset
from maskscope.studies.fillers import (
    DEFAULT_FILLERS,
    MEASURES,
    PAPER_TABLE_1,
    dataset_objects,
    fill_objects,
    markdown_table,
    paired_differences,
    study_fillers,
    summarise_fillers,
    write_outputs,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("fillers", help="fill objects with blur, colours, noise and inpainters",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="coco128", help="a dataset with object masks and a label map "
                        "(default: %(default)s)")
    parser.add_argument("--fillers", default=",".join(DEFAULT_FILLERS),
                        help="comma-separated: blur[:σ], mean, gray, black, noise[:σ], ns, telea, biharmonic "
                        "(default: %(default)s)")
    parser.add_argument("--min-area", type=float, default=0.05,
                        help="smallest object, as a share of the classifier's view (default: %(default)s)")
    parser.add_argument("--max-area", type=float, default=0.5,
                        help="largest object, as a share of the classifier's view (default: %(default)s)")
    parser.add_argument("--dilate", type=int, default=2,
                        help="grow each object's mask by this many pixels (default: %(default)s)")
    parser.add_argument("--all-objects", action="store_true",
                        help="also objects the classifier does not have in its top-5 on the photo")
    parser.add_argument("--baselines", help="fillers every other is compared with, object by object "
                        "(default: those of blur:10 and mean that are among --fillers)")
    parser.add_argument("--limit", type=int, help="at most N objects")
    images_per_batch_option(parser, 8, "objects (photos) filled and scored together")
    add_renamed_option(parser, "--batch-size", "--images-per-batch")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(parser)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.min_area <= args.max_area <= 1:
        raise CommandError(f"need 0 ≤ --min-area ≤ --max-area ≤ 1, got {args.min_area} and {args.max_area}")
    if args.images_per_batch < 1 or (args.limit is not None and args.limit < 1):
        raise CommandError("--images-per-batch and --limit must be at least 1")
    spec = model_spec(args)
    classifier = load_classifier(spec)
    specs = [spec.strip() for spec in args.fillers.split(",") if spec.strip()]
    if args.baselines is None:
        baselines = [spec for spec in ("blur:10", "mean") if spec in specs]
    else:
        baselines = [spec.strip() for spec in args.baselines.split(",") if spec.strip()]
    unknown = [baseline for baseline in baselines if baseline not in specs]
    if unknown:
        raise CommandError(f"--baselines {', '.join(unknown)}: not among --fillers {', '.join(specs)}")
    fillers = study_fillers(specs, classifier.mean_colour)
    dataset = open_dataset(args.data)
    selection = {"min_area": args.min_area, "max_area": args.max_area, "dilate": args.dilate,
                 "recognised_only": not args.all_objects}
    objects, counts = dataset_objects(dataset, classifier, limit=args.limit, progress=not args.quiet, **selection)
    if not objects:
        raise CommandError(f"no object of {args.data} passes the selection ({counts})")
    rows = fill_objects(classifier, objects, fillers, args.images_per_batch, progress=not args.quiet)
    summary = summarise_fillers(rows)
    differences = [paired_differences(rows, baseline) for baseline in baselines]
    config = BenchConfig(args.data, specs, list(MEASURES), {"objects": selection}, limit=args.limit,
                         model=spec.model, images_per_batch=args.images_per_batch, device=spec.device,
                         precision=spec.precision, engine=spec.engine, calibration=spec.calibration)
    result = {"config": {**config.resolved(), "model_name": classifier.name}, "selection": counts,
              "summary": summary, "paired_differences": differences, "paper_table_1": PAPER_TABLE_1,
              "objects": rows}
    json_path, markdown_path = write_outputs(args.out, result)
    print(markdown_table(summary, differences))
    print(f"wrote {json_path} and {markdown_path}", file=sys.stderr)
    return 0
