"""Name → method class, for the command line and benchmarks."""

from __future__ import annotations

from typing import Any

from maskscope.methods.base import Method

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str, **params: Any) -> Method:
    """Instantiate the method called ``name`` with ``params``."""
    key = name.lower()
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[key](**params)
