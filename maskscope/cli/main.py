"""The ``maskscope`` command: one sub-command a module, each with ``add_parser`` and ``run``.

Errors a user can fix (:class:`~maskscope.errors.MaskscopeError`) are caught here, once, and
printed as one line ``maskscope COMMAND: error: MESSAGE`` with the exit status of
:func:`~maskscope.cli.errors.exit_status` (2 for bad arguments, 1 for a run that failed); any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from maskscope import __version__
from maskscope.cli import bench, check, evaluate, explain, methods, report, study, train_explainer
from maskscope.cli.errors import exit_status
from maskscope.errors import MaskscopeError

#: sub-command name → its module, which defines ``add_parser(subparsers)`` and ``run(args)``
COMMANDS = {
    "explain": explain,
    "methods": methods,
    "check": check,
    "bench": bench,
    "evaluate": evaluate,
    "train-explainer": train_explainer,
    "study": study,
    "report": report,
}


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="maskscope", description="Explain image classifiers by perturbation.")
    parser.add_argument("--version", action="version", version=f"maskscope {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(subparsers)
    return parser, COMMANDS


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except MaskscopeError as error:
        print(f"maskscope {args.command}: error: {one_line(str(error))}", file=sys.stderr)
        return exit_status(error)
    except KeyboardInterrupt:
        print(f"maskscope {args.command}: interrupted", file=sys.stderr)
        return 130


def one_line(message: str) -> str:
    """``message`` on one line: its line breaks become ``; `` (a message quoting a library's
    multi-line text would otherwise spill over several lines)."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
