"""The ``maskscope`` command: one sub-command a module, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

from maskscope import __version__
from maskscope.cli.errors import CommandError

#: sub-command name → module in ``maskscope.cli`` that defines ``add_parser(subparsers)`` and ``run(args)``
COMMANDS = {
    "explain": "explain",
    "methods": "methods",
    "check": "check",
    "bench": "bench",
    "evaluate": "evaluate",
    "train-explainer": "train_explainer",
    "study": "study",
    "report": "report",
}


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="maskscope", description="Explain image classifiers by perturbation.")
    parser.add_argument("--version", action="version", version=f"maskscope {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for command, module_name in COMMANDS.items():
        module = importlib.import_module(f"maskscope.cli.{module_name}")
        module.add_parser(subparsers)
        modules[command] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except CommandError as error:
        print(f"maskscope {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"maskscope {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
