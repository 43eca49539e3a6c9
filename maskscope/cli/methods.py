"""``maskscope methods``: list the explanation methods and their default parameters."""

from __future__ import annotations

import argparse

from maskscope.methods import METHODS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list the methods and their defaults")
    parser.set_defaults(command="methods")


def run(args: argparse.Namespace) -> int:
    for name, cls in sorted(METHODS.items()):
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:12s} {summary}")
        for key, value in cls.defaults().items():
            print(f"    {key} = {value!r}")
    return 0
