"""A command made of subcommands (``maskscope check NAME``, ``maskscope study NAME``).

Each subcommand is a module in ``maskscope.cli`` with ``add_parser(subparsers)`` and
``run(args)``; a group maps subcommand names to those modules.
"""

from __future__ import annotations

import argparse
import importlib


def add_group_parser(subparsers, name: str, help: str, modules: dict[str, str]) -> None:
    """Add the command ``name`` whose subcommands are the modules ``modules`` (name → module)."""
    parser = subparsers.add_parser(name, help=help)
    group = parser.add_subparsers(dest=name, required=True)
    for module_name in modules.values():
        importlib.import_module(f"maskscope.cli.{module_name}").add_parser(group)


def run_group(args: argparse.Namespace, name: str, modules: dict[str, str]) -> int:
    """Run the subcommand of ``name`` that ``args`` chose."""
    return int(importlib.import_module(f"maskscope.cli.{modules[getattr(args, name)]}").run(args) or 0)
