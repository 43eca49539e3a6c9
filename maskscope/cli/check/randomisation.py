"""``maskscope check randomisation``: Adebayo et al.'s model-parameter randomisation test.

Re-initialises the model's layers from the logits down (cascading, and one at a time with
``--variant independent``), re-explains the photos with ``--method`` and prints the similarity
of each step's maps to the trained model's as a Markdown table, then the verdict; ``--out OUT``
also writes the steps (``OUT/randomisation.json``, or the ``.json`` file OUT names) and their
figure. Exit status 1 when the method fails the criterion.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from maskscope.checks.model_randomisation import (
    VARIANTS,
    RandomisationResult,
    model_randomisation,
    parametrised_layers,
)
from maskscope.cli.errors import CommandError
from maskscope.cli.options import (
    add_model_options,
    add_photo_options,
    add_results_option,
    check_method_fits,
    load_classifier,
    load_photos,
    model_spec,
    parse_params,
    results_path,
)
from maskscope.methods import get_method, method_names, resolve_method
from maskscope.methods.parameters import check_layer_names
from maskscope.plotting.check_figures import save_check_figure

COLUMNS = ("spearman", "spearman_abs", "ssim", "ssim_abs", "hog_pearson", "hog_pearson_abs")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "randomisation",
        help="does the method's explanation change when the model's weights are randomised?",
        description="Model-parameter randomisation test (Adebayo et al. 2018).",
    )
    add_photo_options(parser)
    parser.add_argument(
        "--method", default="gradient", help=f"one of: {', '.join(method_names())} (default: %(default)s)"
    )
    parser.add_argument("--param", action="append", metavar="KEY=VALUE", help="a method parameter, e.g. steps=100")
    parser.add_argument("--target", default="top1", help="top1, a class index or a class name (default: %(default)s)")
    add_model_options(parser)
    parser.add_argument(
        "--variant", choices=(*VARIANTS, "both"), default="cascading", help="which randomisation (default: %(default)s)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=8,
        help="evenly spaced steps over the layers; 0 = every layer (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the method and the re-initialisation")
    add_results_option(parser, "randomisation", "the steps")


def markdown_table(result: RandomisationResult) -> str:
    lines = ["| variant | layers | layer | " + " | ".join(COLUMNS) + " |", "|---|---|---|" + "---|" * len(COLUMNS)]
    for step in result.steps:
        values = " | ".join(f"{step.similarity[c]:.3f}" for c in COLUMNS)
        lines.append(f"| {step.variant} | {step.layers} | {step.layer or '(none)'} | {values} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    params = parse_params(args.param)
    method_class = resolve_method(args.method)[0]
    if "progress" in method_class.defaults():
        params.setdefault("progress", False)
    method = get_method(args.method, **params)
    if args.steps < 0:
        raise CommandError("--steps must be 0 (every layer) or a positive count")
    path = results_path(args.out, "randomisation") if args.out else None  # a bad --out is refused before the run
    classifier = load_classifier(model_spec(args))
    photos, names = load_photos(args, classifier)
    variants = VARIANTS if args.variant == "both" else (args.variant,)
    layers = parametrised_layers(classifier.module)  # a forward-only model: ForwardOnlyError
    if not layers:
        raise CommandError(f"model {classifier.name} has no parametrised layers to randomise")
    fixed = [(name, module) for name, module in layers if getattr(module, "reset_parameters", None) is None]
    if fixed:
        name, module = fixed[0]
        raise CommandError(f"layer {name!r} ({type(module).__name__}) has no reset_parameters to randomise it: "
                           "the check needs a torch model whose layers can be re-initialised")  # fmt: skip
    count = len(layers)
    layer = getattr(method, "layer", None)  # Grad-CAM's and MP's: named by the user, checked before running
    if layer is not None:
        check_layer_names(classifier.module, layer)
    check_method_fits(classifier, method)
    steps = None if args.steps == 0 else sorted({int(k) for k in np.linspace(1, count, min(args.steps, count))})
    result = model_randomisation(classifier, method, photos, args.target, args.seed, variants, steps)
    print(markdown_table(result))
    if result.passed is not None:
        verdict = "passes" if result.passed else "FAILS"
        print(f"\n{method.name} {verdict}: {result.criterion} (measured {result.full_spearman_abs:.3f})")
    if path is not None:
        record = {
            "model": classifier.name,
            "method": method.name,
            "photos": names,
            "num_layers": result.num_layers,
            "passed": result.passed,
            "criterion": result.criterion,
            "steps": [step.as_dict() for step in result.steps],
        }
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        save_check_figure("randomisation", record, path)
    return 0 if result.passed in (True, None) else 1
