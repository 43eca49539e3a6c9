"""``maskscope check NAME``: checks of a model or of an explanation method itself.

Each check is a module in ``maskscope.cli`` with ``add_parser(subparsers)`` and ``run(args)``,
listed in ``CHECKS``.
"""

from __future__ import annotations

import argparse

from maskscope.cli.command_group import add_group_parser, run_group

#: check name → module in ``maskscope.cli``
CHECKS: dict[str, str] = {
    "adversarial": "check_adversarial",
    "entropy": "check_entropy",
    "randomisation": "check_randomisation",
}


def add_parser(subparsers) -> None:
    add_group_parser(subparsers, "check", "checks of a model or of an explanation method", CHECKS)


def run(args: argparse.Namespace) -> int:
    return run_group(args, "check", CHECKS)
