"""One parameter schema per method: the constructor's type hints and defaults, plus the ranges
and choices each method declares, checked before the constructor runs.

A method declares only what its type hints cannot say::

    constraints = {"steps": at_least(1), "keep": Interval(0, 1, low_open=True), "game": OneOf("deletion", "preservation")}

and :func:`check_parameters` (called by :class:`~maskscope.methods.base.Method` for every
construction, from Python and from the command line's ``--param`` alike) raises a one-line
:class:`ParameterError` naming the parameter, the value and what is allowed; a misspelt name
lists the valid ones. Constraints apply to each element of a sequence parameter.

A variant of a method declares only what differs from its parent: its ``__init__`` takes its
new parameters and those whose default changes, and passes the rest on (``**params``); a
parent's parameter it does not take is in its ``fixed_params``, at the value it passes on.
:func:`method_signature` merges the signatures along the class's MRO into the full list::

    class IGOSPlusPlus(IGOS):
        fixed_params = {"relax_l1": False, ...}

        def __init__(self, *, tv_sigma: float = 0.01, initial_step: float = 1000.0, **params: Any) -> None:
            super().__init__(initial_step=initial_step, **IGOSPlusPlus.fixed_params, **params)
            self.tv_sigma = tv_sigma

has I-GOS's parameters (``initial_step`` at 1000, no ``relax_l1``) and then ``tv_sigma``.

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
    valid = list(signature.parameters)
    for name in kwargs:
        if name not in valid:
            raise ParameterError(f"unknown parameter {name!r} for {method}; valid: {', '.join(valid) or 'none'}")
    positional = [name for name, p in signature.parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if len(args) > len(positional):
        if not positional:
            raise ParameterError(f"{method} takes its parameters by name ({', '.join(valid)}), got {len(args)} by position")
        raise ParameterError(f"{method} takes at most {len(positional)} parameters ({', '.join(positional)}), got {len(args)}")
    given = {**dict(zip(positional, args)), **kwargs}
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


def method_signature(cls: type) -> inspect.Signature:
    """The full parameter list of ``cls``'s constructor, without ``self``: the signature of the
    nearest ``__init__`` that states every parameter (one without ``**params``), then along the
    MRO each variant's own parameters (replacing the parent's of the same name in place, new
    ones after) less the parent parameters it fixes (``fixed_params``). Every parameter is
    keyword-only when ``cls``'s own ``__init__`` passes the rest on (its parent's cannot be
    given by position)."""
    return _schema(cls)[0]


@lru_cache(maxsize=None)
def _schema(cls: type) -> tuple[inspect.Signature, dict[str, Any]]:
    parameters: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    passes_on = False
    for klass in reversed(cls.__mro__[:-1]):  # without object
        init = vars(klass).get("__init__")
        if init is not None:
            own = [p for p in inspect.signature(init).parameters.values() if p.name != "self"]
            passes_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own)
            if not passes_on:  # states every parameter
                parameters, hints = {}, {}
            own_hints = typing.get_type_hints(init)
            for p in own:
                if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    parameters[p.name] = p
                    hints[p.name] = own_hints.get(p.name)
        for name in vars(klass).get("fixed_params", {}):
            parameters.pop(name, None)
            hints.pop(name, None)
    if passes_on:
        parameters = {name: p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for name, p in parameters.items()}
    return inspect.Signature(list(parameters.values())), {name: hint for name, hint in hints.items() if hint is not None}


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
