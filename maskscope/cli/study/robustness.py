"""``maskscope study robustness``: SP vs SP-G across patch sizes, LIME vs LIME-G and MP vs MP-G
across seeds, every pair of runs compared by SSIM, HOG-Pearson and Spearman (G-removal Table S3).

Records go to ``OUT/records.jsonl`` and maps to ``OUT/maps`` as they are made; the same command
resumes an interrupted run. The table is ``OUT/robustness.md`` (and ``.json``). The defaults are
the paper's protocol; ``--stride``, ``--samples`` and ``--steps`` make it cheaper.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskscope.cli.errors import CommandError
from maskscope.cli.options import (
    add_model_options,
    add_renamed_option,
    images_per_batch_option,
    load_classifier,
    model_spec,
)
from maskscope.data.registry import open_dataset
from maskscope.studies.robustness import (
    FAMILIES,
    PATCH_SIZES,
    SEEDS,
    SEGMENTS,
    protocol_variants,
    run_robustness_study,
    select_samples,
    study_config,
    summarise_robustness,
)


def _numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("robustness", help="stability of SP, LIME, MP with and without inpainting",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="imagenet-samples", help="a dataset (default: %(default)s)")
    parser.add_argument("--methods", default=",".join(FAMILIES),
                        help="comma-separated, of %(default)s (default: all)")
    parser.add_argument("--images", help="comma-separated image names (default: the first --limit)")
    parser.add_argument("--limit", type=int, default=50, help="the first N images (default: %(default)s)")
    parser.add_argument("--patch-sizes", type=_numbers, default=list(PATCH_SIZES),
                        help="SP's runs (default: 5,17,29,41,53)")
    parser.add_argument("--stride", type=int, default=3, help="SP's stride (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=500, help="LIME's N (default: %(default)s)")
    parser.add_argument("--segments", type=_numbers, default=list(SEGMENTS),
                        help="LIME's superpixel counts, one variant each (default: 50,150)")
    parser.add_argument("--steps", type=int, default=300, help="MP's and MP-G's steps (default: %(default)s)")
    parser.add_argument("--seeds", type=_numbers, default=list(SEEDS), help="LIME's and MP's runs (default: 0,1,2,3,4)")
    parser.add_argument("--inpainter", default="inpaint",
                        help="the G variants' filler: inpaint (Navier–Stokes), telea, biharmonic (default: %(default)s)")
    images_per_batch_option(parser, 1, "images per call of a method")
    add_renamed_option(parser, "--batch-size", "--images-per-batch")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--force", action="store_true", help="start afresh even if OUT holds another run")
    parser.add_argument("--summarise", metavar="OUT", help="only write the table of the run in OUT")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.summarise:
        return _summary(args.summarise, None)
    if not args.out:
        raise CommandError("--out is required")
    if min(args.stride, args.samples, args.steps, args.images_per_batch) < 1:
        raise CommandError("--stride, --samples, --steps and --images-per-batch must be at least 1")
    runs = {"--patch-sizes": args.patch_sizes, "--seeds": args.seeds}
    if any(len(values) < 2 for values in runs.values()):
        raise CommandError("--patch-sizes and --seeds need at least 2 runs each to compare")
    families = [name.strip().lower() for name in args.methods.split(",") if name.strip()]
    images = [name.strip() for name in args.images.split(",")] if args.images else None
    variants = protocol_variants(families, args.patch_sizes, args.stride, args.samples, args.segments,
                                 args.steps, args.seeds, args.inpainter)
    dataset = open_dataset(args.data)
    samples = select_samples(dataset, args.limit, images)
    spec = model_spec(args)
    classifier = load_classifier(spec)
    config = study_config(args.data, variants, spec, args.images_per_batch)
    run_robustness_study(classifier, samples, variants, config, args.out, args.force, not args.quiet)
    return _summary(args.out, [sample.name for sample in samples])


def _summary(out: str, images: list[str] | None) -> int:
    if not (Path(out, "records.jsonl").is_file() and Path(out, "config.json").is_file()):
        raise CommandError(f"{out}: no study run (records.jsonl and config.json) to summarise")
    summarise_robustness(out, images)
    print(Path(out, "robustness.md").read_text())
    print(f"wrote {out}/robustness.md and robustness.json", file=sys.stderr)
    return 0
