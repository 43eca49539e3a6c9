"""``maskscope study NAME``: the G-removal paper's studies of fillers and of robustness.

Each study is a module of this package with ``add_parser(subparsers)`` and ``run(args)``,
listed in ``STUDIES``.
"""

from __future__ import annotations

import argparse

from maskscope.cli.command_group import add_group_parser, run_group
from maskscope.cli.study import fillers, robustness

#: study name → its module
STUDIES = {"fillers": fillers, "robustness": robustness}


def add_parser(subparsers) -> None:
    add_group_parser(subparsers, "study", "the filler and robustness studies of generative removal", STUDIES)


def run(args: argparse.Namespace) -> int:
    return run_group(args, "study", STUDIES)
