"""``maskscope check NAME``: checks of a model or of an explanation method itself.

Each check is a module of this package with ``add_parser(subparsers)`` and ``run(args)``,
listed in ``CHECKS``.
"""

from __future__ import annotations

import argparse

from maskscope.cli.check import adversarial, entropy, randomisation
from maskscope.cli.command_group import add_group_parser, run_group

#: check name → its module
CHECKS = {"adversarial": adversarial, "entropy": entropy, "randomisation": randomisation}


def add_parser(subparsers) -> None:
    add_group_parser(subparsers, "check", "checks of a model or of an explanation method", CHECKS)


def run(args: argparse.Namespace) -> int:
    return run_group(args, "check", CHECKS)
