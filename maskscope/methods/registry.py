"""Name → method class, for the command line and benchmarks.

Every method is registered under its ``name``; the papers' own names for a method, or for a
method with a setting, are aliases (:data:`ALIASES`): ``sp-g`` is ``sliding_patch`` with
``filler="inpaint"``, as the G-removal paper names it.
"""

from __future__ import annotations

from typing import Any

from maskscope.errors import MaskscopeValueError
from maskscope.methods.base import Method

METHODS: dict[str, type[Method]] = {}

#: alias → (registered name, the parameters the alias sets; the user's own override them)
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sp": ("sliding_patch", {}),
    "sp-g": ("sliding_patch", {"filler": "inpaint"}),
    "lime-g": ("lime", {"filler": "inpaint"}),
    "ig": ("integrated_gradients", {}),
    "grad-cam": ("gradcam", {}),
    "score-cam": ("scorecam", {}),
    "hierarchical-perturbation": ("hipe", {}),
}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    METHODS[cls.name] = cls
    return cls


def method_names() -> list[str]:
    """Every name a method answers to: the registered names and the aliases."""
    return sorted([*METHODS, *ALIASES])


def resolve_method(name: str) -> tuple[type[Method], dict[str, Any]]:
    """The class that ``name`` (a registered name or an alias, any case) means, and the
    parameters the alias sets."""
    key = name.lower()
    if key in ALIASES:
        registered, preset = ALIASES[key]
        return METHODS[registered], dict(preset)
    if key not in METHODS:
        raise MaskscopeValueError(f"unknown method {name!r}; available: {', '.join(method_names())}")
    return METHODS[key], {}


def get_method(name: str, **params: Any) -> Method:
    """Instantiate the method called ``name`` (or an alias) with ``params``."""
    cls, preset = resolve_method(name)
    return cls(**{**preset, **params})
