"""``maskscope methods``: list the explanation methods and their default parameters."""

from __future__ import annotations

import argparse

from maskscope.methods import ALIASES, METHODS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list the methods and their defaults")
    parser.set_defaults(command="methods")


def run(args: argparse.Namespace) -> int:
    for name, cls in sorted(METHODS.items()):
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:12s} {summary}")
        for key, value in cls.defaults().items():
            print(f"    {key} = {value!r}")
    print("aliases (the papers' names):")
    for alias, (name, preset) in sorted(ALIASES.items()):
        settings = ", ".join(f"{key}={value!r}" for key, value in preset.items())
        print(f"{alias:12s} {name}" + (f" with {settings}" if settings else ""))
    return 0
