"""``maskscope check NAME``: checks of a model or of an explanation method itself.

Each check is a module in ``maskscope.cli`` with ``add_parser(subparsers)`` and ``run(args)``,
listed in ``CHECKS``.
"""

from __future__ import annotations

import argparse
import importlib

#: check name → module in ``maskscope.cli``
CHECKS: dict[str, str] = {
    "adversarial": "check_adversarial",
    "entropy": "check_entropy",
    "randomisation": "check_randomisation",
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("check", help="checks of a model or of an explanation method")
    checks = parser.add_subparsers(dest="check", required=True)
    for module_name in CHECKS.values():
        importlib.import_module(f"maskscope.cli.{module_name}").add_parser(checks)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(f"maskscope.cli.{CHECKS[args.check]}").run(args) or 0)
