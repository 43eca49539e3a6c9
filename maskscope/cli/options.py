"""Options shared by several sub-commands: the model, the device, method parameters."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from maskscope.cli.errors import CommandError
from maskscope.core.classifier import Classifier
from maskscope.core.default_model import EFFICIENTNET_LITE


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="default",
        help="'default' (EfficientNet-Lite0), efficientnet-lite1/2, or a TorchScript file (default: %(default)s)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")


def load_classifier(args: argparse.Namespace) -> Classifier:
    """The classifier named by ``--model`` on ``--device``."""
    name = args.model
    try:
        if name == "default":
            return Classifier.default(device=args.device)
        if name in EFFICIENTNET_LITE:
            return Classifier.default(name, device=args.device)
        if Path(name).suffix or Path(name).exists():
            return Classifier.from_torchscript(name, device=args.device)
    except (FileNotFoundError, ValueError, ImportError, RuntimeError) as error:
        raise CommandError(str(error)) from error
    raise CommandError(f"unknown model {name!r}: use default, {', '.join(EFFICIENTNET_LITE)} or a TorchScript file")


def parse_params(pairs: list[str]) -> dict:
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
