"""A command made of subcommands (``maskscope check NAME``, ``maskscope study NAME``).

Each subcommand is a module with ``add_parser(subparsers)`` and ``run(args)``; a group maps
subcommand names to those modules.
"""

from __future__ import annotations

import argparse
from types import ModuleType


def add_group_parser(subparsers, name: str, help: str, modules: dict[str, ModuleType]) -> None:
    """Add the command ``name`` whose subcommands are ``modules`` (subcommand name → module)."""
    parser = subparsers.add_parser(name, help=help)
    group = parser.add_subparsers(dest=name, required=True)
    for module in modules.values():
        module.add_parser(group)


def run_group(args: argparse.Namespace, name: str, modules: dict[str, ModuleType]) -> int:
    """Run the subcommand of ``name`` that ``args`` chose."""
    return int(modules[getattr(args, name)].run(args) or 0)
