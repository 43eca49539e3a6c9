"""``maskscope study NAME``: the G-removal paper's studies of fillers and of robustness.

Each study is a module in ``maskscope.cli`` with ``add_parser(subparsers)`` and ``run(args)``,
listed in ``STUDIES``.
"""

from __future__ import annotations

import argparse

from maskscope.cli.command_group import add_group_parser, run_group

#: study name → module in ``maskscope.cli``
STUDIES: dict[str, str] = {
    "fillers": "study_fillers",
    "robustness": "study_robustness",
}


def add_parser(subparsers) -> None:
    add_group_parser(subparsers, "study", "the filler and robustness studies of generative removal", STUDIES)


def run(args: argparse.Namespace) -> int:
    return run_group(args, "study", STUDIES)
