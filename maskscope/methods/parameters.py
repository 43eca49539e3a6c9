"""One parameter schema per method: the constructor's type hints and defaults, plus the ranges
and choices each method declares, checked before the constructor runs.

A method declares only what its type hints cannot say::

    constraints = {"steps": at_least(1), "keep": Interval(0, 1, low_open=True), "game": OneOf("deletion", "preservation")}

and :func:`check_parameters` (called by :class:`~maskscope.methods.base.Method` for every
construction, from Python and from the command line's ``--param`` alike) raises a one-line
:class:`ParameterError` naming the parameter, the value and what is allowed; a misspelt name
lists the valid ones. Constraints apply to each element of a sequence parameter.

A ``layer`` parameter names a module of the model, which is known only once the model is;
:func:`check_layer_names` checks such names against the model and suggests close ones.
"""

from __future__ import annotations

import difflib
import inspect
import os
import types
import typing
from collections.abc import Callable as CallableType
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from maskscope.errors import MaskscopeValueError

if TYPE_CHECKING:
    from torch import nn

#: most close layer names an unknown layer's error suggests
LAYER_SUGGESTIONS = 5


class ParameterError(MaskscopeValueError):
    """A method parameter with an unknown name, a wrong type or a value out of range."""


def check_layer_names(model: "nn.Module", layer: Any) -> None:
    """A :class:`ParameterError` unless every layer *name* in ``layer`` (a name, a module, or a
    list of them; ``None`` for the method's default) is a module of ``model``; the message names
    the unknown layer and suggests the closest names of ``model.named_modules()``."""
    layers = layer if isinstance(layer, (list, tuple)) else [layer]
    names = [name for name, _ in model.named_modules() if name]
    for item in layers:
        if isinstance(item, str) and item not in names:
            close = difflib.get_close_matches(item, names, n=LAYER_SUGGESTIONS, cutoff=0.5)
            close = close or [name for name in names if item in name][:LAYER_SUGGESTIONS]
            shown = close or names[:LAYER_SUGGESTIONS]
            hint = f"did you mean {', '.join(shown)}?" if close else f"layer names look like {', '.join(shown)}, …"
            raise ParameterError(f"parameter 'layer': the model has no layer {item!r}; {hint}")


@dataclass(frozen=True)
class Interval:
    """Numbers between ``low`` and ``high`` (``None``: unbounded), ends included unless open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def allows(self, value: Any) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '≥'} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '≤'} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    choices: tuple

    def __init__(self, *choices: Any) -> None:
        object.__setattr__(self, "choices", choices)

    def allows(self, value: Any) -> bool:
        return value in self.choices

    def describe(self) -> str:
        return f"one of {', '.join(repr(c) for c in self.choices)}"


Constraint = typing.Union[Interval, OneOf]


def at_least(low: float) -> Interval:
    """Numbers ≥ ``low``."""
    return Interval(low)


def positive() -> Interval:
    """Numbers > 0."""
    return Interval(0, low_open=True)


def check_parameters(cls: type, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The constructor's arguments by name, each checked against ``cls``'s schema.

    Raises:
        ParameterError: an unknown name (the valid ones listed), too many positional
            arguments, a value of the wrong type or outside its range or choices.
    """
    method = getattr(cls, "name", "") or cls.__name__
    signature, hints = _schema(cls)
    valid = [name for name in signature.parameters if name != "self"]
    for name in kwargs:
        if name not in valid:
            raise ParameterError(f"unknown parameter {name!r} for {method}; valid: {', '.join(valid) or 'none'}")
    if len(args) > len(valid):
        raise ParameterError(f"{method} takes at most {len(valid)} parameters ({', '.join(valid)}), got {len(args)}")
    given = {**dict(zip(valid, args)), **kwargs}
    constraints = _constraints(cls)
    for name, value in given.items():
        hint = hints.get(name)
        if hint is not None and not _matches(value, hint):
            raise ParameterError(f"parameter {name!r} for {method} must be {_describe(hint)}, got {value!r}")
        constraint = constraints.get(name)
        if constraint is not None and value is not None:
            values = value if _is_sequence(value) else [value]
            for item in values:
                if isinstance(item, (int, float, str)) and not constraint.allows(item):
                    raise ParameterError(
                        f"parameter {name!r} for {method} must be {constraint.describe()}, got {value!r}"
                    )
    return given


@lru_cache(maxsize=None)
def _schema(cls: type[object]) -> tuple[inspect.Signature, dict[str, Any]]:
    init = cls.__init__
    return inspect.signature(init), typing.get_type_hints(init)


def _constraints(cls: type) -> dict[str, Constraint]:
    merged: dict[str, Constraint] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("constraints", {}))
    return merged


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _options(hint: Any) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _matches(value: Any, hint: Any) -> bool:
    for option in _options(hint):
        if option is Any:
            return True
        if option is type(None):
            if value is None:
                return True
        elif option is bool:
            if isinstance(value, bool):
                return True
        elif option is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif option is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True
        elif typing.get_origin(option) in (Sequence, list, tuple):
            (element,) = typing.get_args(option)[:1] or (Any,)
            if _is_sequence(value) and value and all(_matches(item, element) for item in value):
                return True
        elif typing.get_origin(option) is CallableType or option is CallableType:
            if callable(value):
                return True
        elif isinstance(option, type) and isinstance(value, option):
            return True
    return False


def _describe(hint: Any) -> str:
    words = []
    for option in _options(hint):
        if option is type(None):
            words.append("None")
        elif option is bool:
            words.append("True or False")
        elif option is int:
            words.append("an integer")
        elif option is float:
            words.append("a number")
        elif option is str:
            words.append("a string")
        elif option is os.PathLike:
            words.append("a path")
        elif typing.get_origin(option) in (Sequence, list, tuple):
            (element,) = typing.get_args(option)[:1] or (Any,)
            words.append(f"a non-empty list, each {_describe(element)}")
        elif typing.get_origin(option) is CallableType or option is CallableType:
            words.append("a function")
        else:
            words.append(f"a {getattr(option, '__name__', option)}")
    return " or ".join(words)
