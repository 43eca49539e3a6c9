"""``maskscope check entropy``: a model's softmax entropy on removal references (FGVis Table A2).

Prints a Markdown table (reference, entropy mean ± std over photos, count) with the maximum
``log C`` as the last row; ``--out OUT`` also writes the rows (``OUT/entropy.json``, or the
``.json`` file OUT names) and their figure.
"""

from __future__ import annotations

import argparse
import json

from maskscope.checks.reference_entropy import EntropyRow, reference_entropy
from maskscope.cli.options import (
    add_model_options,
    add_photo_options,
    add_results_option,
    load_classifier,
    load_photos,
    model_spec,
    results_path,
)
from maskscope.plotting.check_figures import save_check_figure


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "entropy",
        help="softmax entropy of zero, noise and blurred references vs the photos",
        description="Entropy (nats) of the model's softmax on each removal reference, as in FGVis Table A2.",
    )
    add_photo_options(parser)
    add_model_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise references (default: %(default)s)")
    add_results_option(parser, "entropy", "the rows")


def markdown_table(rows: list[EntropyRow], model: str) -> str:
    lines = [f"| reference ({model}) | entropy (nats) | images |", "|---|---|---|"]
    for row in rows:
        value = f"{row.entropy:.3f} ± {row.std:.3f}" if row.count > 1 else f"{row.entropy:.3f}"
        lines.append(f"| {row.reference} | {value} | {row.count or '—'} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = results_path(args.out, "entropy") if args.out else None  # a bad --out is refused before the run
    classifier = load_classifier(model_spec(args))
    photos, names = load_photos(args, classifier)
    rows = reference_entropy(classifier, photos, seed=args.seed)
    print(markdown_table(rows, classifier.name))
    if path is not None:
        record = {"model": classifier.name, "photos": names, "rows": [row.as_dict() for row in rows]}
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        save_check_figure("entropy", record, path)
    return 0
